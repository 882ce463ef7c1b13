//! The mock's memory for a large multicast with recording on, alone in its process (an
//! RSS figure is only meaningful when nothing else ran before it): the 200 KB notification
//! is kept once for its 1000 deliveries, not once per delivery.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use common::*;
use gcm_mock::MockServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_payload_is_kept_once_for_all_its_deliveries() {
    let server = MockServer::builder().api_key(KEY).start().await.unwrap();
    send_json(&server.url(), &big_multicast(9999, 10)).await; // warm up: the runtime, the pool
    let rounds = 30;
    let bodies: Vec<String> = (0..rounds).map(|round| big_multicast(round, 200 * 1024)).collect();
    let request_bytes: usize = bodies.iter().map(String::len).sum();
    let before = gcm_mock::baseline::status_kib("VmRSS");
    for body in &bodies {
        assert!(send_json(&server.url(), body).await.body.contains(r#""success":1000"#));
    }
    let grown = gcm_mock::baseline::status_kib("VmRSS").saturating_sub(before) * 1024;
    eprintln!(
        "{rounds} multicasts of 1000 tokens, {} KiB of requests: RSS +{} KiB ({:.2}x)",
        request_bytes / 1024,
        grown / 1024,
        grown as f64 / request_bytes as f64
    );
    assert_eq!(server.inbox().len(), 1000 * (rounds + 1));
    // Before, each delivery copied the 200 KB notification: +6 GB for these requests. Now
    // the notification is kept once per request, each delivery costs its token and a
    // record, and the log keeps 64 KiB of each body.
    assert!(grown < 2 * request_bytes as u64, "RSS grew by {grown} bytes for {request_bytes} bytes of requests");
}
