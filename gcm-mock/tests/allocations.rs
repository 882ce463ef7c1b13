//! With recording off, a send's allocations do not grow with its recipients: the tokens
//! are borrowed from the body, results carry no owned text, message ids are written
//! straight into the answer, and the data is not turned into a map of values. Alone in its
//! process with a counting allocator (dhat).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use gcm_mock::baseline::{BaselineRequest, data, token};
use gcm_mock::{Engine, Scenario};
use http::Request;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn send(n: usize) -> Request<Vec<u8>> {
    let tokens: Vec<String> = (0..n).map(token).collect();
    let body = serde_json::to_vec(&BaselineRequest { registration_ids: &tokens, data: &data() }).unwrap();
    Request::post("/gcm/send")
        .header("authorization", "key=k")
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

/// Blocks allocated while the engine answers `request`.
fn blocks(engine: &mut Engine, request: &Request<Vec<u8>>) -> u64 {
    let before = dhat::HeapStats::get().total_blocks;
    let response = engine.handle(request, 1);
    assert_eq!(response.status(), 200);
    dhat::HeapStats::get().total_blocks - before
}

#[test]
fn a_send_allocates_the_same_for_1_and_1000_recipients() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut engine = Engine::new(Scenario::default(), vec!["k".into()]);
    engine.set_recording(false);
    let (one, thousand) = (send(1), send(1000));
    blocks(&mut engine, &thousand); // warm-up
    let for_one = blocks(&mut engine, &one);
    let for_thousand = blocks(&mut engine, &thousand);
    // A few more as the token list doubles its way to 1000 (about ten times), never one
    // per recipient.
    assert!(for_thousand <= for_one + 16, "1 recipient: {for_one} blocks; 1000 recipients: {for_thousand} blocks");
    // Nor one per data entry (five here): the data's limits are read from the body in
    // place. It was 19 blocks when the data became a map of values; 7 now.
    assert!(for_one <= 8, "1 recipient with 5 data entries: {for_one} blocks");
}
