//! Configuring and starting a [`MockServer`](super::MockServer).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use gcm_proto::oauth::ServiceAccountKey;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::serve::serve;
use super::{Clock, DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_CONCURRENT_STREAMS, MockServer, Shared};
use crate::engine::{
    DEFAULT_TOKEN_LIFETIME, Engine, MOCK_SERVICE_ACCOUNT_JSON, RecordingLimits, key_file_with_token_uri,
};
use crate::scenario::Scenario;

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
    #[cfg(feature = "tls")]
    tls: Option<super::Tls>,
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
            #[cfg(feature = "tls")]
            tls: None,
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

    /// Serves HTTPS with this certificate (feature `tls`): HTTP/2 by ALPN, or HTTP/1.1.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: super::Tls) -> Self {
        self.tls = Some(tls);
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
        #[cfg(feature = "tls")]
        let acceptor = self.tls.map(|tls| tls.acceptor);
        #[cfg(not(feature = "tls"))]
        let acceptor = None;
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let service_account_json = match &self.service_account {
            Some(_) => None,
            None => Some(key_file_with_token_uri(MOCK_SERVICE_ACCOUNT_JSON, &format!("{scheme}://{addr}/token"))),
        };
        let shared = Arc::new(Shared {
            engine: Mutex::new(engine),
            connections: AtomicU64::new(0),
            body_limit: self.body_limit,
            body_timeout: self.body_timeout,
            clock: self.clock,
            hold: tokio::sync::watch::Sender::new(false),
            held: tokio::sync::watch::Sender::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, acceptor, Arc::clone(&shared), self.max_concurrent_streams, stopped));
        Ok(MockServer { addr, scheme, shared, service_account_json, stop: Some(stop), task: Some(task) })
    }
}
