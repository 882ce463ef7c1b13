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

/// The environment variable that tells an executable started again by [`ChildServer::start`]
/// which server to be (see [`child_role`]).
pub const CHILD_SERVER_VAR: &str = "GCM_BENCH_CHILD_SERVER";

/// A server running in a child process: this same executable started again with
/// [`CHILD_SERVER_VAR`] set to a role, whose `main` hands it to [`run_child_server`]. Client
/// and server in one process on a small machine share one scheduler, and a figure then
/// depends on how their threads were placed; in two processes it reproduces. Dropping this
/// kills the child.
///
/// Roles: `mock` (gcm-mock, recording off, any API key, its built-in service account),
/// `fixed` and `fixed-h2` (the minimal server over HTTP/1.1 or HTTP/2, answering `body`).
#[derive(Debug)]
pub struct ChildServer {
    child: std::process::Child,
    url: String,
}

impl ChildServer {
    /// Starts this executable again as the server `role`, hands it `body` (for the fixed
    /// servers' answer) and waits for its URL.
    pub fn start(role: &str, body: &[u8]) -> std::io::Result<Self> {
        use std::io::{BufRead as _, Write as _};
        use std::process::{Command, Stdio};

        let mut child = Command::new(std::env::current_exe()?)
            .env(CHILD_SERVER_VAR, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut url = String::new();
        if let (Some(stdin), Some(stdout)) = (child.stdin.as_mut(), child.stdout.take()) {
            stdin.write_all(&(body.len() as u64).to_le_bytes())?;
            stdin.write_all(body)?;
            stdin.flush()?;
            std::io::BufReader::new(stdout).read_line(&mut url)?;
        }
        let url = url.trim().to_owned();
        if url.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(format!("the child server {role:?} printed no URL")));
        }
        Ok(Self { child, url })
    }

    /// Where the child listens (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In an executable started by [`ChildServer::start`], the role it was given.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_SERVER_VAR).ok()
}

/// The child's side of [`ChildServer`]: reads the body, starts the server `role` names,
/// prints its URL and serves until the parent closes standard input (or dies), so that no
/// server outlives its benchmark.
pub fn run_child_server(role: &str) -> std::io::Result<()> {
    use std::io::{Read as _, Write as _};

    let mut stdin = std::io::stdin().lock();
    let mut len = [0; 8];
    stdin.read_exact(&mut len)?;
    let mut body = vec![0; usize::try_from(u64::from_le_bytes(len)).map_err(std::io::Error::other)?];
    stdin.read_exact(&mut body)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let _mock;
    let url = match role {
        "mock" => {
            let mock = runtime.block_on(crate::MockServer::builder().recording(false).start())?;
            let url = mock.base_url();
            _mock = mock;
            url
        }
        "fixed" => format!("http://{}", runtime.block_on(fixed_server(Bytes::from(body)))?),
        "fixed-h2" => format!("http://{}", runtime.block_on(fixed_server_h2(Bytes::from(body)))?),
        other => return Err(std::io::Error::other(format!("unknown child server role {other:?}"))),
    };
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{url}")?;
    stdout.flush()?;
    let _ = stdin.read_to_end(&mut Vec::new());
    Ok(())
}
