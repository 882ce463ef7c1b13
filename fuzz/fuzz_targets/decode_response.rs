#![no_main]

// Each target uses one function of the shared harness.
#[allow(dead_code)]
#[path = "../../gcm-mock/tests/fuzz/harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::decode_response(data));
