//! Load on the mock: many concurrent keep-alive clients and a flood of malformed requests at
//! once. Correct requests keep getting correct answers, memory stays flat from one round to
//! the next, and the server shuts down cleanly afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::KEY;
use gcm_mock::MockServer;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLIENTS: usize = 32;
const SENDS_PER_CLIENT: usize = 100;
const FLOODERS: usize = 16;

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    gcm_mock::baseline::status_kib("VmRSS")
}

/// One keep-alive connection sending valid multicasts and checking every answer.
async fn client(addr: std::net::SocketAddr, id: usize) -> usize {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut ok = 0;
    for n in 0..SENDS_PER_CLIENT {
        let body = format!(r#"{{"registration_ids":["c{id}-{n}-a","c{id}-{n}-b"],"data":{{"n":"{n}"}}}}"#);
        let request = http::Request::post("/gcm/send")
            .header("host", "127.0.0.1")
            .header("authorization", format!("key={KEY}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["success"], 2, "{answer}");
        assert_eq!(answer["results"].as_array().unwrap().len(), 2);
        ok += 1;
    }
    ok
}

/// Malformed requests of every kind, each with the answer it must get (the start of the
/// reply, and something its body must hold): the parser's 400s, the engine's reasons, 413.
const GARBAGE: [(&[u8], &str, &str); 6] = [
    (b"NOT HTTP AT ALL\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n", ""),
    (b"POST /gcm/send HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n", ""),
    (
        b"POST /gcm/send HTTP/1.1\r\nHost: x\r\nAuthorization: key=test-key\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"to\":[1]",
        "HTTP/1.1 400 Bad Request\r\n",
        "JSON_PARSING_ERROR: EOF while parsing",
    ),
    (
        b"POST /gcm/send HTTP/1.1\r\nHost: x\r\nAuthorization: key=test-key\r\nContent-Length: 99999999\r\n\r\nab",
        "HTTP/1.1 413 Payload Too Large\r\n",
        "Request Entity Too Large",
    ),
    (
        b"POST /gcm/send HTTP/1.1\r\nHost: x\r\nAuthorization: key=test-key\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n\xff\xfe\xfd\xfc",
        "HTTP/1.1 400 Bad Request\r\n",
        "JSON_PARSING_ERROR: expected value",
    ),
    // A head cut off by the client's close: nothing to answer (hyper closes, as a front
    // end does).
    (b"POST /gcm/send HTTP/1.1\r\nHost: x\r\nContent-Le", "", ""),
];

/// Sends the malformed requests, each on a fresh connection, until told to stop, and checks
/// every answer; returns how many were answered as they must be.
async fn flood(addr: std::net::SocketAddr, stop: Arc<AtomicUsize>) -> usize {
    let mut checked = 0;
    while stop.load(Ordering::SeqCst) == 0 {
        let (request, status, body) = GARBAGE[checked % GARBAGE.len()];
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply)).await.unwrap().unwrap();
        let reply = String::from_utf8_lossy(&reply);
        let expected = if status.is_empty() { reply.is_empty() } else { reply.starts_with(status) };
        assert!(expected && reply.contains(body), "{:?} got {reply:?}", String::from_utf8_lossy(request));
        checked += 1;
    }
    checked
}

async fn round(server: &MockServer) -> (usize, usize) {
    let stop = Arc::new(AtomicUsize::new(0));
    let flooders: Vec<_> = (0..FLOODERS).map(|_| tokio::spawn(flood(server.addr(), Arc::clone(&stop)))).collect();
    let clients: Vec<_> = (0..CLIENTS).map(|id| tokio::spawn(client(server.addr(), id))).collect();
    let mut ok = 0;
    for client in clients {
        ok += tokio::time::timeout(Duration::from_secs(60), client).await.unwrap().unwrap();
    }
    stop.store(1, Ordering::SeqCst);
    let mut malformed = 0;
    for flooder in flooders {
        malformed += flooder.await.unwrap();
    }
    (ok, malformed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correct_answers_flat_memory_and_a_clean_shutdown_under_load() {
    let server = MockServer::builder().api_key(KEY).recording(false).start().await.unwrap();
    let (ok, malformed) = round(&server).await;
    assert_eq!(ok, CLIENTS * SENDS_PER_CLIENT);
    let after_first = rss_kib();
    let (ok, malformed_again) = round(&server).await;
    assert_eq!(ok, CLIENTS * SENDS_PER_CLIENT);
    let after_second = rss_kib();
    eprintln!(
        "load: {} valid requests and {} malformed ones in two rounds; RSS {after_first} KiB after the first, \
         {after_second} KiB after the second; {} connections",
        2 * CLIENTS * SENDS_PER_CLIENT,
        malformed + malformed_again,
        server.connections()
    );
    assert!(malformed >= GARBAGE.len() && malformed_again >= GARBAGE.len(), "every kind was answered");
    assert!(after_second < after_first + 16 * 1024, "memory grew by {} KiB in a round", after_second - after_first);
    let addr = server.addr();
    tokio::time::timeout(Duration::from_secs(10), server.shutdown()).await.expect("shutdown in time");
    assert!(TcpStream::connect(addr).await.is_err(), "the port is closed");
}
