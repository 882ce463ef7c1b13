//! Bodies that never finish, alone in their process (an RSS figure is only meaningful when
//! nothing else ran before it): they get 408 after the body timeout and their memory
//! returns, so a second wave reuses it instead of growing the process again.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gcm_mock::MockServer;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn rss_kib() -> u64 {
    gcm_mock::baseline::status_kib("VmRSS")
}

/// Bodies that never finish: HTTP/1.1 requests and HTTP/2 streams that declare a length
/// and send part of it. They get 408 after the body timeout, and their memory returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_are_dropped_after_the_body_timeout() {
    let timeout = Duration::from_millis(500);
    let server = MockServer::builder().api_key(KEY).body_timeout(timeout).start().await.unwrap();
    let mut held = Vec::new();
    for wave in 0..2 {
        held.push(stall_and_time_out(&server, timeout).await);
        eprintln!("wave {wave}: 200 stalled HTTP/1.1 bodies of 900 KB: RSS {} KiB", rss_kib());
    }
    // The first wave's memory came back: the second reused it instead of growing by as much.
    assert!(held[1] < held[0] / 2 + 20_000, "RSS grew again by {} KiB after {} KiB", held[1], held[0]);
    // A valid client is still served.
    assert!(send_json(&server.url(), r#"{"to":"a"}"#).await.body.contains(r#""success":1"#));
}

/// 200 connections whose bodies stall, each answered 408 after the timeout; returns how
/// many KiB the process grew by.
async fn stall_and_time_out(server: &MockServer, timeout: Duration) -> u64 {
    let addr = server.addr();
    let before = rss_kib();
    let mut stalled = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /gcm/send HTTP/1.1\r\nhost: x\r\nauthorization: key={KEY}\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&vec![b' '; 900_000]).await.unwrap(); // 100 000 bytes short
        stalled.push(stream);
    }
    let grown = rss_kib().saturating_sub(before);
    // Every stalled request is answered 408 once the timeout passes.
    let started = Instant::now();
    let mut answered = 0;
    for stream in &mut stalled {
        let mut reply = String::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read_to_string(stream, &mut reply));
        if read.await.is_ok() && reply.starts_with("HTTP/1.1 408") {
            answered += 1;
        }
    }
    assert_eq!(answered, 200, "every stalled body gets 408");
    assert!(started.elapsed() < timeout + Duration::from_secs(4));
    grown
}

/// HTTP/2 streams whose bodies stall get 408 after the timeout, each on its own, while
/// their connection stays up; and no more streams than the cap are open at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_http2_streams_are_answered_408_after_the_body_timeout() {
    use bytes::Bytes;
    use http_body_util::{BodyExt as _, StreamBody};
    use hyper::body::Frame;
    let timeout = Duration::from_millis(500);
    let server = MockServer::builder().api_key(KEY).body_timeout(timeout).start().await.unwrap();
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let started = Instant::now();
    let mut streams = Vec::new();
    let mut keep_open = Vec::new();
    for _ in 0..50 {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        tx.send(Ok(Frame::data(Bytes::from(vec![b' '; 100_000])))).await.unwrap();
        keep_open.push(tx); // never sends the rest
        let body = StreamBody::new(tokio_stream_of(rx));
        let request = http::Request::post(format!("http://{}/gcm/send", server.addr()))
            .header("authorization", format!("key={KEY}"))
            .header("content-type", "application/json")
            .body(body.boxed())
            .unwrap();
        let mut sender = sender.clone();
        streams.push(tokio::spawn(async move { sender.send_request(request).await.map(|r| r.status()) }));
    }
    for stream in streams {
        assert_eq!(stream.await.unwrap().unwrap(), 408);
    }
    assert!(started.elapsed() < timeout + Duration::from_secs(4), "{:?}", started.elapsed());
}

/// A `Stream` of the channel's frames.
fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
