//! The HTTP side: a hyper server on a loopback port that hands each request to the engine.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use gcm_proto::oauth::ServiceAccountKey;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::engine::{
    DEFAULT_TOKEN_LIFETIME, Delivery, Engine, MOCK_SERVICE_ACCOUNT_JSON, ReceivedRequest, RecordingLimits,
    RecordingStats, key_file_with_token_uri,
};
use crate::scenario::Scenario;

/// Largest request body accepted by default (a 1000-token multicast with a full payload is
/// well under 300 KiB); larger bodies get 413.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// How long a request's body may take to arrive by default; a slower one gets 408 and its
/// memory back.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Concurrent HTTP/2 streams per connection by default (Google's endpoints allow 100).
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 100;

/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The mock's notion of the current time (FCM v1 tokens expire by it).
type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Configures and starts a [`MockServer`].
#[derive(Clone)]
pub struct Builder {
    scenario: Scenario,
    api_keys: Vec<String>,
    listen: SocketAddr,
    body_limit: usize,
    body_timeout: Duration,
    max_concurrent_streams: u32,
    recording: bool,
    recording_limits: RecordingLimits,
    service_account: Option<ServiceAccountKey>,
    token_lifetime: Duration,
    clock: Clock,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("scenario", &self.scenario)
            .field("api_keys", &self.api_keys.len())
            .field("listen", &self.listen)
            .field("body_limit", &self.body_limit)
            .field("body_timeout", &self.body_timeout)
            .field("max_concurrent_streams", &self.max_concurrent_streams)
            .field("recording", &self.recording)
            .field("recording_limits", &self.recording_limits)
            .field("service_account", &self.service_account)
            .field("token_lifetime", &self.token_lifetime)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            scenario: Scenario::default(),
            api_keys: Vec::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            body_limit: DEFAULT_BODY_LIMIT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            recording: true,
            recording_limits: RecordingLimits::default(),
            service_account: None,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            clock: Arc::new(SystemTime::now),
        }
    }
}

impl Builder {
    /// Accepts this API key (call again for more). With none, any `key=…` is accepted.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_keys.push(key.into());
        self
    }

    /// Scripts the server's behaviour.
    pub fn scenario(mut self, scenario: Scenario) -> Self {
        self.scenario = scenario;
        self
    }

    /// Overrides the scenario's seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.scenario.seed = seed;
        self
    }

    /// Listens on this address instead of `127.0.0.1:0` (a free loopback port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Answers bodies over this many bytes with 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Answers 408 to a request whose body has not fully arrived after `timeout` (default
    /// 10 s), on HTTP/1.1 and per HTTP/2 stream, and frees what it held.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// How many HTTP/2 streams a connection may have open at once (default 100).
    pub fn max_concurrent_streams(mut self, streams: u32) -> Self {
        self.max_concurrent_streams = streams;
        self
    }

    /// Whether to keep the inbox and the request log (default true). Off, memory stays
    /// flat under any load, for load tests and benchmarks.
    pub fn recording(mut self, on: bool) -> Self {
        self.recording = on;
        self
    }

    /// How much the inbox and the request log keep before dropping their oldest entries
    /// (see [`RecordingLimits`]; [`MockServer::recording_stats`] counts what was dropped).
    pub fn recording_limits(mut self, limits: RecordingLimits) -> Self {
        self.recording_limits = limits;
        self
    }

    /// FCM v1: accepts assertions signed by this service account and sends for its
    /// project (default: the built-in [`MOCK_SERVICE_ACCOUNT_JSON`], project `mock-project`).
    pub fn service_account(mut self, key: ServiceAccountKey) -> Self {
        self.service_account = Some(key);
        self
    }

    /// FCM v1: how long issued access tokens live (default 3599 s, as Google's).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Reads the time from this clock instead of the system's: a test that moves its own
    /// clock makes access tokens expire without waiting an hour.
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Binds the port and starts serving on the current tokio runtime.
    pub async fn start(self) -> io::Result<MockServer> {
        let listener = TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        let mut engine = Engine::new(self.scenario, self.api_keys);
        engine.set_recording(self.recording);
        engine.set_recording_limits(self.recording_limits);
        engine.set_token_lifetime(self.token_lifetime);
        if let Some(key) = &self.service_account {
            engine.set_service_account(key);
        }
        let service_account_json = match &self.service_account {
            Some(_) => None,
            None => Some(key_file_with_token_uri(MOCK_SERVICE_ACCOUNT_JSON, &format!("http://{addr}/token"))),
        };
        let shared = Arc::new(Shared {
            engine: Mutex::new(engine),
            connections: AtomicU64::new(0),
            body_limit: self.body_limit,
            body_timeout: self.body_timeout,
            clock: self.clock,
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, Arc::clone(&shared), self.max_concurrent_streams, stopped));
        Ok(MockServer { addr, shared, service_account_json, stop: Some(stop), task: Some(task) })
    }
}

struct Shared {
    engine: Mutex<Engine>,
    connections: AtomicU64,
    body_limit: usize,
    body_timeout: Duration,
    clock: Clock,
}

impl Shared {
    fn engine(&self) -> MutexGuard<'_, Engine> {
        // The engine never panics while locked; if it ever did, keep serving.
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running mock GCM server on a loopback port. One per test; it stops when dropped or
/// when [`shutdown`](MockServer::shutdown) is awaited.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    service_account_json: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl MockServer {
    /// A builder, for API keys, a scenario, a seed or an address.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Starts a server that accepts any API key and delivers to every token.
    pub async fn start() -> io::Result<Self> {
        Builder::default().start().await
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The GCM send URL, `http://127.0.0.1:PORT/gcm/send`.
    pub fn url(&self) -> String {
        format!("http://{}/gcm/send", self.addr)
    }

    /// The FCM legacy send URL, `http://127.0.0.1:PORT/fcm/send` (same protocol).
    pub fn fcm_url(&self) -> String {
        format!("http://{}/fcm/send", self.addr)
    }

    /// FCM v1: the built-in service account's key file, its `token_uri` pointing at this
    /// server. Hand it to a v1 client as you would the file from Firebase. `None` when the
    /// builder was given another service account.
    pub fn service_account_json(&self) -> Option<&str> {
        self.service_account_json.as_deref()
    }

    /// FCM v1: the base URL to send to (`/v1/projects/{project}/messages:send` is below it).
    /// Same as [`base_url`](MockServer::base_url).
    pub fn v1_base_url(&self) -> String {
        self.base_url()
    }

    /// FCM v1: how many access tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.engine().tokens_issued()
    }

    /// Every delivery the inbox holds, in order.
    pub fn inbox(&self) -> Vec<Delivery> {
        self.inbox_page(0, usize::MAX)
    }

    /// The deliveries numbered after `after` ([`Delivery::index`]), at most `limit`; they
    /// are built after the engine's lock is released.
    pub fn inbox_page(&self, after: u64, limit: usize) -> Vec<Delivery> {
        let page = self.shared.engine().inbox_page(after, limit);
        page.deliveries().collect()
    }

    /// What the inbox and the request log hold, and what they dropped to stay within
    /// their limits.
    pub fn recording_stats(&self) -> RecordingStats {
        self.shared.engine().recording_stats()
    }

    /// Empties the inbox.
    pub fn clear_inbox(&self) {
        self.shared.engine().clear_inbox();
    }

    /// The requests received so far (the most recent, within the log's limits), oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.engine().requests()
    }

    /// How many TCP connections the server has accepted.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Back to the state right after start: inbox, log, attempts, replies, ids and faults;
    /// FCM v1 access tokens are forgotten, so a client's next send is refused with 401.
    pub fn reset(&self) {
        self.shared.engine().reset();
    }

    /// Stops accepting, lets requests in flight finish (up to 5 s), and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, streams: u32, mut stopped: oneshot::Receiver<()>) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let connection = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
                let shared = Arc::clone(&shared);
                let service = service_fn(move |request| handle(Arc::clone(&shared), request, connection));
                // HTTP/1.1, or HTTP/2 with prior knowledge (FCM v1 clients multiplex).
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    // No timer: hyper's 30 s header-read timeout arms, boxes and clears a timer
                    // on every keep-alive request (without it, 1-token load went from 85 % to
                    // 97 % of a minimal server). Bodies keep their timeout; hyper bounds headers.
                    // A client that shuts its write side after the request still gets the answer.
                    .half_close(true)
                    // No `Date` header: the same requests give the same response bytes.
                    .auto_date_header(false);
                builder.http2().timer(TokioTimer::new()).auto_date_header(false).max_concurrent_streams(streams);
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(error) = conn.await {
                        tracing::debug!(%error, connection, "connection ended with an error");
                    }
                });
            }
            _ = &mut stopped => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    connection: u64,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    // A declared length over the limit is refused before the body arrives.
    if body.size_hint().lower() > shared.body_limit as u64 {
        return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large\n"));
    }
    let collecting = Limited::new(body, shared.body_limit).collect();
    let body = match tokio::time::timeout(shared.body_timeout, collecting).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large\n"));
        }
        Ok(Err(error)) => {
            return Ok(plain(StatusCode::BAD_REQUEST, &format!("cannot read the request body: {error}\n")));
        }
        Err(_) => {
            tracing::debug!(path = parts.uri.path(), connection, "request body timed out");
            let mut response = plain(StatusCode::REQUEST_TIMEOUT, "Request Timeout\n");
            // What is left of the body is never read: the connection cannot be reused.
            response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
            return Ok(response);
        }
    };
    let request = Request::from_parts(parts, body);
    if request.method() == http::Method::GET && request.uri().path() == "/_mock/inbox" {
        return Ok(inbox_page(&shared, request.uri().query()).await);
    }
    let now = (shared.clock)();
    // Parsing and writing the bodies happen outside the lock: only deciding is serialized.
    let prepared = crate::Prepared::new(&request);
    let answer = shared.engine().answer(prepared, connection, now);
    let response = answer.into_response();
    if response.extensions().get::<crate::Hang>().is_some() {
        // A scripted hang: the client's timeout (or its closing the stream) ends this.
        std::future::pending::<()>().await;
    }
    tracing::debug!(
        method = %request.method(),
        path = request.uri().path(),
        status = response.status().as_u16(),
        connection,
        "request"
    );
    Ok(response.map(Full::new))
}

/// `GET /_mock/inbox`: a snapshot of pointers under the lock, serialized off the runtime's
/// threads, so that a large inbox never holds up a send.
async fn inbox_page(shared: &Shared, query: Option<&str>) -> Response<Full<Bytes>> {
    let (after, limit) = crate::engine::page_query(query);
    let page = shared.engine().inbox_page(after, limit);
    let body = tokio::task::spawn_blocking(move || serde_json::to_vec(&page)).await;
    match body {
        Ok(Ok(body)) => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json; charset=UTF-8"));
            response
        }
        _ => plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the inbox\n"),
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(text.as_bytes())));
    *response.status_mut() = status;
    response
}
