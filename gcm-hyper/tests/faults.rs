//! Fault injection end to end: a purpose-built misbehaving loopback server. Every fault
//! gives a clear error that says whether the request may have reached the server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gcm_hyper::gcm_proto::ResponseError;
use gcm_hyper::{Client, Error, Gcm, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const OK_BODY: &str =
    r#"{"multicast_id":1,"success":1,"failure":0,"canonical_ids":0,"results":[{"message_id":"0:1"}]}"#;

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Reads the request, then resets the connection without a word.
    ResetBeforeResponse,
    /// Sends the head and part of the body, then resets.
    ResetMidBody,
    /// Declares 1000 bytes, sends 20, then closes cleanly.
    Truncated,
    /// Declares fewer bytes than the JSON it sends.
    ShortContentLength,
    /// Answers correctly, then closes the kept-alive connection while it idles in the pool.
    CloseWhenIdle,
}

/// A server that commits `fault` on every connection; counts the requests it read.
async fn misbehaving(fault: Fault) -> (Client, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/gcm/send", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                if !read_request(&mut stream).await {
                    return;
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let head = |length: usize| {
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n")
                };
                match fault {
                    Fault::ResetBeforeResponse => reset(stream),
                    Fault::ResetMidBody => {
                        let _ = stream.write_all(format!("{}{}", head(OK_BODY.len()), &OK_BODY[..20]).as_bytes()).await;
                        let _ = stream.flush().await;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        reset(stream);
                    }
                    Fault::Truncated => {
                        let _ = stream.write_all(format!("{}{}", head(1000), &OK_BODY[..20]).as_bytes()).await;
                        let _ = stream.shutdown().await;
                    }
                    Fault::ShortContentLength => {
                        let _ = stream.write_all(format!("{}{OK_BODY}", head(30)).as_bytes()).await;
                        let _ = stream.shutdown().await;
                    }
                    Fault::CloseWhenIdle => {
                        let _ = stream.write_all(format!("{}{OK_BODY}", head(OK_BODY.len())).as_bytes()).await;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        let _ = stream.shutdown().await;
                    }
                }
            });
        }
    });
    let gcm = Gcm::new("k").unwrap().with_endpoint(&url).unwrap();
    let client = Client::builder(gcm).request_timeout(Duration::from_secs(5)).build().unwrap();
    (client, requests)
}

/// Reads one request (head and `Content-Length` body); false if the client went away.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Ok(n) = stream.read(&mut buf).await else { return false };
        if n == 0 {
            return false;
        }
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if data.len() >= end + 4 + length {
            return true;
        }
    }
}

/// Closes with RST instead of FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn send_error(fault: Fault) -> Error {
    let (client, requests) = misbehaving(fault).await;
    let error = client.send(&Message::to("a")).await.unwrap_err();
    assert_eq!(requests.load(Ordering::SeqCst), 1, "{fault:?}: the server read the request");
    assert!(error.may_have_reached_server(), "{fault:?}: {error:?}");
    assert!(!error.to_string().is_empty());
    error
}

#[tokio::test]
async fn a_reset_before_the_response_is_a_transport_error_that_may_have_been_delivered() {
    let error = send_error(Fault::ResetBeforeResponse).await;
    assert!(matches!(error, Error::Transport { connect: false, .. }), "{error:?}");
    assert!(error.is_retryable());
    assert!(std::error::Error::source(&error).is_some());
}

#[tokio::test]
async fn a_reset_mid_body_is_a_transport_error() {
    let error = send_error(Fault::ResetMidBody).await;
    assert!(matches!(error, Error::Transport { connect: false, .. }), "{error:?}");
}

#[tokio::test]
async fn a_truncated_body_is_a_transport_error() {
    let error = send_error(Fault::Truncated).await;
    assert!(matches!(error, Error::Transport { connect: false, .. }), "{error:?}");
}

#[tokio::test]
async fn a_content_length_shorter_than_the_json_gives_a_malformed_body() {
    let error = send_error(Fault::ShortContentLength).await;
    let Error::Response(ResponseError::Malformed { body, .. }) = &error else { panic!("{error:?}") };
    assert_eq!(body.as_bytes(), &OK_BODY.as_bytes()[..30]);
    assert!(!error.is_retryable(), "a malformed answer is not resent blindly");
}

#[tokio::test]
async fn a_connection_closed_while_idle_in_the_pool_is_replaced() {
    let (client, requests) = misbehaving(Fault::CloseWhenIdle).await;
    for _ in 0..3 {
        let outcome = client.send(&Message::to("a")).await.unwrap();
        assert_eq!(outcome.success().count(), 1);
        tokio::time::sleep(Duration::from_millis(60)).await; // the server closes meanwhile
    }
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_request_never_written_says_it_is_safe_to_resend() {
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let gcm = Gcm::new("k").unwrap().with_endpoint(&format!("http://{addr}/gcm/send")).unwrap();
    let error = Client::new(gcm).unwrap().send(&Message::to("a")).await.unwrap_err();
    assert!(matches!(error, Error::Transport { connect: true, .. }), "{error:?}");
    assert!(!error.may_have_reached_server());
}
