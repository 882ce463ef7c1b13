//! Bodies that never finish, alone in their process with a counting allocator (dhat):
//! they get 408 after the body timeout and the memory they held is freed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::time::{Duration, Instant};

use common::*;
use gcm_mock::MockServer;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Bytes on the heap now.
fn heap_bytes() -> usize {
    dhat::HeapStats::get().curr_bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_are_dropped_after_the_body_timeout() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let timeout = Duration::from_secs(2);
    let server = MockServer::builder().api_key(KEY).body_timeout(timeout).start().await.unwrap();
    let before = heap_bytes();
    let mut stalled = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        let head = format!(
            "POST /gcm/send HTTP/1.1\r\nhost: x\r\nauthorization: key={KEY}\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&vec![b' '; 900_000]).await.unwrap(); // 100 000 bytes short
        stalled.push(stream);
    }
    // The server reads what was written at its own pace (a loaded CI machine held 84 MB
    // after a fixed 125 ms): watch the heap until it holds the bodies, well within the timeout.
    let mut held = 0;
    let watching = Instant::now();
    while held <= 100 << 20 && watching.elapsed() < timeout / 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        held = held.max(heap_bytes().saturating_sub(before));
    }
    // Every stalled request is answered 408 once the timeout passes.
    let started = Instant::now();
    for stream in &mut stalled {
        let mut reply = String::new();
        let read = tokio::io::AsyncReadExt::read_to_string(stream, &mut reply);
        tokio::time::timeout(Duration::from_secs(5), read).await.unwrap().unwrap();
        assert!(reply.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{reply:?}");
    }
    assert!(started.elapsed() < timeout + Duration::from_secs(4), "{:?}", started.elapsed());
    drop(stalled);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = heap_bytes().saturating_sub(before);
    eprintln!(
        "200 stalled bodies of 900 KB: {} KiB on the heap while held, {} KiB after the 408s",
        held >> 10,
        after >> 10
    );
    assert!(held > 100 << 20, "the bodies were held: {held} bytes");
    assert!(after < 4 << 20, "{after} bytes still held after the timeout");
    // A valid client is still served.
    assert!(send_json(&server.url(), r#"{"to":"a"}"#).await.body.contains(r#""success":1"#));
}
