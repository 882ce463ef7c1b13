//! Replays every input kept under `tests/fuzz/regressions/` (seeds, and any input a fuzzer found
//! crashing) through the same harness the libFuzzer targets use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

#[path = "fuzz/harness.rs"]
mod harness;

type Target = fn(&[u8]);

#[test]
fn every_kept_fuzz_input_passes() {
    let targets: [(&str, Target); 6] = [
        ("decode_response", harness::decode_response),
        ("plain_text", harness::plain_text),
        ("retry_after", harness::retry_after),
        ("scenario", harness::scenario),
        ("mock_request", harness::mock_request),
        ("v1_response", harness::v1_response),
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/regressions");
    let mut replayed = 0;
    for (target, run) in targets {
        let mut inputs: Vec<_> = std::fs::read_dir(root.join(target)).unwrap().map(|e| e.unwrap().path()).collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "no input kept for {target}");
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            eprintln!("{target}: {}", input.display());
            run(&data);
            replayed += 1;
        }
    }
    assert!(replayed >= 5);
}
