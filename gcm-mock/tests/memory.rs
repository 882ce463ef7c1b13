//! The mock's recording under heavy traffic: the request log and the inbox stay within
//! their limits and count what they drop, and a large inbox is served without holding up
//! a send. (The RSS figures have test binaries of their own: `memory_payload`,
//! `memory_stall`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::time::{Duration, Instant};

use common::*;
use gcm_mock::{MockServer, RecordingLimits};
use tokio::net::TcpStream;

/// One test at a time: the inbox test times sends, which a parallel flood would slow.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn the_log_and_the_inbox_stay_within_their_limits_and_count_what_they_drop() {
    let _serial = SERIAL.lock().await;
    let limits = RecordingLimits {
        inbox_entries: 1500,
        log_entries: 100,
        log_bytes: 1 << 20,
        log_body_bytes: 1 << 20,
        inbox_bytes: usize::MAX,
    };
    let server = MockServer::builder().api_key(KEY).recording_limits(limits).start().await.unwrap();
    for round in 0..4 {
        send_json(&server.url(), &big_multicast(round, 300 * 1024)).await;
    }
    let stats = server.recording_stats();
    assert_eq!((stats.inbox_entries, stats.inbox_dropped), (1500, 2500), "{stats:?}");
    assert_eq!(stats.delivered, 4000, "{stats:?}");
    assert!(stats.log_bytes <= 1 << 20 && stats.log_dropped >= 1, "{stats:?}");
    let first = server.inbox().first().unwrap().index;
    assert_eq!(first, 2501, "the oldest go first");
    assert_eq!(server.inbox_page(first + 1498, 10).len(), 1);
    // By default the log keeps 64 KiB of each body, and says how much it cut.
    let default = MockServer::builder().api_key(KEY).start().await.unwrap();
    let body = big_multicast(0, 300 * 1024);
    send_json(&default.url(), &body).await;
    let logged = &default.requests()[0].body;
    assert_eq!(logged.len(), (64 << 10) + format!("…({} more bytes)", body.len() - (64 << 10)).len());
    assert!(logged.ends_with(&format!("…({} more bytes)", body.len() - (64 << 10))));
}

/// With recording off the mock keeps nothing but still counts what it delivered (3
/// multicasts of 1000 tokens): a load test reads its duplicates there.
#[tokio::test]
async fn a_mock_that_records_nothing_counts_its_deliveries() {
    let _serial = SERIAL.lock().await;
    let server = MockServer::builder().api_key(KEY).recording(false).start().await.unwrap();
    for round in 0..3 {
        send_json(&server.url(), &big_multicast(round, 2 * 1024)).await;
    }
    let stats = server.recording_stats();
    assert_eq!((stats.delivered, stats.inbox_entries), (3000, 0), "{stats:?}");
}

/// While `/_mock/inbox` serializes a large inbox, sends are answered at once: the inbox is
/// a snapshot of pointers taken under the lock and serialized outside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_is_answered_while_a_large_inbox_is_served() {
    let _serial = SERIAL.lock().await;
    let server = MockServer::builder().api_key(KEY).start().await.unwrap();
    for round in 0..100 {
        send_json(&server.url(), &big_multicast(round, 2 * 1024)).await;
    }
    let url = format!("{}/_mock/inbox", server.base_url());
    let reading = tokio::spawn(async move {
        let started = Instant::now();
        let inbox = request(&client(), http::Method::GET, &url, &[], "").await;
        (inbox, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        assert!(send_json(&server.url(), r#"{"to":"during"}"#).await.body.contains(r#""success":1"#));
        slowest = slowest.max(started.elapsed());
    }
    let (inbox, reading_took) = reading.await.unwrap();
    eprintln!(
        "inbox of 100 000 deliveries: {} MB in {reading_took:?}; slowest send meanwhile {slowest:?}",
        inbox.body.len() >> 20
    );
    assert!(inbox.body.len() > 100 << 20, "a large inbox: {} bytes", inbox.body.len());
    // A send held behind the serialization would wait most of it; on a busy machine both
    // slow down together, so the bound is a share of the reading, not a fixed time.
    assert!(slowest < reading_took / 4, "a send waited {slowest:?} while the inbox took {reading_took:?}");
}

/// HTTP/2 streams whose bodies stall get 408 after the timeout, each on its own, while
/// their connection stays up; and no more streams than the cap are open at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_http2_streams_are_answered_408_after_the_body_timeout() {
    let _serial = SERIAL.lock().await;
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
