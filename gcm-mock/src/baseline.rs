//! What the benchmarks of this workspace measure against, public so that a packaged crate
//! benchmarks on its own and so that you can measure your client the same way: a minimal
//! hyper server that answers every request with the same bytes (the floor of any server),
//! the request and response shapes a plain serde client uses, realistic tokens and data,
//! and this process's memory figures. Using the mock needs none of it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

/// Starts, on a free loopback port, an HTTP/1.1 server that reads each request and
/// answers `200` with `body` as JSON.
pub async fn fixed_server(body: Bytes) -> std::io::Result<SocketAddr> {
    serve(body, false).await
}

/// The same server over HTTP/2 with prior knowledge (FCM v1 clients multiplex).
pub async fn fixed_server_h2(body: Bytes) -> std::io::Result<SocketAddr> {
    serve(body, true).await
}

async fn serve(body: Bytes, http2: bool) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        let _ = request.into_body().collect().await;
                        let mut response = http::Response::new(Full::new(body));
                        response.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/json; charset=UTF-8"),
                        );
                        Ok::<_, Infallible>(response)
                    }
                });
                let io = TokioIo::new(stream);
                let _ = if http2 {
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new()).serve_connection(io, service).await
                } else {
                    hyper::server::conn::http1::Builder::new().serve_connection(io, service).await
                };
            });
        }
    });
    Ok(addr)
}

/// A registration token of realistic length (152 characters).
pub fn token(i: usize) -> String {
    format!("{i:08}:APA91bH{}", "x".repeat(137))
}

/// Five string data keys.
pub fn data() -> BTreeMap<String, String> {
    [
        ("title", "Hello"),
        ("body", "You have 3 new messages"),
        ("kind", "sync"),
        ("id", "123456789"),
        ("url", "https://example.com/inbox"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The legacy request a plain serde client would send.
#[derive(Debug, Serialize)]
pub struct BaselineRequest<'a> {
    /// The tokens.
    pub registration_ids: &'a [String],
    /// The data.
    pub data: &'a BTreeMap<String, String>,
}

/// The legacy response, owned, as a plain serde client would read it.
#[derive(Debug, Deserialize)]
pub struct BaselineResponse {
    /// `multicast_id`.
    pub multicast_id: i64,
    /// `success`.
    pub success: u32,
    /// `failure`.
    pub failure: u32,
    /// `canonical_ids`.
    pub canonical_ids: u32,
    /// `results`.
    pub results: Vec<BaselineResult>,
}

/// One result of [`BaselineResponse`].
#[derive(Debug, Deserialize)]
pub struct BaselineResult {
    /// `message_id`.
    pub message_id: Option<String>,
    /// `registration_id`.
    pub registration_id: Option<String>,
    /// `error`.
    pub error: Option<String>,
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`…), in KiB; 0 when unreadable
/// (not Linux).
pub fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
