//! The FCM HTTP v1 client: keeps a service account's access token fresh (one refresh at a
//! time), sends a multicast as one request per token over HTTP/2 with bounded
//! concurrency (`http2.rs`: its own connections, or a caller's hyper-util client), and folds
//! the replies into one [`MulticastReport`]. All protocol logic is gcm-proto's.

use std::sync::Arc;
use std::time::SystemTime;

use std::collections::BTreeMap;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use gcm_proto::ResponseError;
use gcm_proto::oauth::{AccessToken, MetadataServer, ServiceAccountKey, TokenCache, decode_token_response};
use gcm_proto::v1::{Fcm, Message, Multicast, Reply, Template};
use http::Response;
use hyper_util::client::legacy::connect::Connect;
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::client::{Builder, HttpClient, Limits, exchange, record_counts};
use crate::connector::DefaultConnector;
use crate::error::Error;
use http2::Http2;

mod credentials;
mod http2;
mod report;
mod retry;

pub use credentials::{BoxFuture, CREDENTIALS_ENV, Credentials, METADATA_HOST_ENV, TokenSource};
use credentials::{Candidate, candidates};
pub use report::{MulticastReport, Problem, Stopped};

/// What one request carries: a whole message, or one token of a multicast's template.
#[derive(Clone, Copy)]
enum Body<'a> {
    Message(&'a Message),
    Token(&'a Template, &'a str),
}

/// Default number of v1 requests in flight per fan-out (Google's HTTP/2 endpoints allow
/// 100 concurrent streams per connection).
pub const DEFAULT_CONCURRENCY: usize = 100;

/// Where an [`FcmClient`] reads the time: the system clock, or a test's own.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// What [`Builder`] needs for an [`FcmClient`].
pub struct V1Settings {
    fcm: Fcm,
    credentials: Credentials,
    concurrency: usize,
    cache: TokenCache,
    clock: Clock,
}

impl std::fmt::Debug for V1Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V1Settings")
            .field("fcm", &self.fcm)
            .field("credentials", &self.credentials)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl V1Settings {
    /// The defaults: 100 in flight, the default refresh margin, the system clock.
    fn new(fcm: Fcm, credentials: Credentials) -> Self {
        let clock = Arc::new(SystemTime::now);
        Self { fcm, credentials, concurrency: DEFAULT_CONCURRENCY, cache: TokenCache::new(), clock }
    }
}

impl Builder<V1Settings> {
    /// At most this many requests in flight per [`send_multicast`](FcmClient::send_multicast)
    /// (default 100, at least 1).
    pub fn concurrency(mut self, requests: usize) -> Self {
        self.protocol.concurrency = requests.max(1);
        self
    }

    /// Keeps the access tokens in this cache (for another refresh margin; a token it
    /// already holds is used until then).
    pub fn token_cache(mut self, cache: TokenCache) -> Self {
        self.protocol.cache = cache;
        self
    }

    /// Reads the time from this clock instead of the system's (tests that move time).
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.protocol.clock = Arc::new(clock);
        self
    }

    /// Builds the client: HTTP/2 only (ALPN `h2` over TLS, prior knowledge over plain TCP),
    /// one connection per origin.
    pub fn build(mut self) -> Result<FcmClient, Error> {
        let (tls, transport) = self.connector()?;
        let http = Http2::new(tls.enable_http2().wrap_connector(transport), self.pool_idle_timeout);
        let limits = self.limits();
        FcmClient::with_parts(self.protocol, Http::Direct(http), limits)
    }
}

/// Sends FCM HTTP v1 messages for a service account. Cheap to clone; clones share the
/// connection pool and the access token.
///
/// ```
/// use gcm_hyper::FcmClient;
/// use gcm_hyper::v1::Multicast;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let mock = gcm_mock::MockServer::start().await?;
/// # let key_file = mock.service_account_json().unwrap_or_default().to_owned();
/// // The key file Firebase hands out (here the mock's, whose token_uri is the mock).
/// let client = FcmClient::from_service_account(&key_file)?
///     .base_url(&mock.v1_base_url())?; // in production: leave the default
/// let multicast = Multicast::new(["token-1", "token-2"]).data("kind", "sync");
/// // Err only for what concerns every message: credentials refused, no route.
/// let report = client.send_multicast(&multicast).await?;
/// assert_eq!(report.outcome.success().count(), 2);
/// if let Some(retry) = report.outcome.retry() {
///     let delay = report.outcome.delay(0, &mut gcm_hyper::rand::rng());
///     /* schedule `retry` (a Multicast, serializable) after `delay` */
/// }
/// # Ok(())
/// # }
/// ```
pub struct FcmClient<C = DefaultConnector> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    fcm: Fcm,
    credentials: Credentials,
    http: Http<C>,
    /// HTTP/1.1 without a proxy, for the metadata server (which speaks nothing else).
    metadata_http: Option<HttpClient<DefaultConnector>>,
    limits: Limits,
    concurrency: usize,
    clock: Clock,
    /// The configured cache, empty: what a client for another base URL starts with.
    empty_cache: TokenCache,
    /// Held across a refresh: one token request at a time, the others wait for its token
    /// (or share its failure).
    tokens: Mutex<Tokens>,
}

/// How requests reach the server: gcm-hyper's own HTTP/2 connections, or the hyper-util
/// client a caller brought.
#[derive(Clone)]
enum Http<C> {
    Direct(Http2),
    Pooled(HttpClient<C>),
}

impl<C: Connect + Clone + Send + Sync + 'static> Http<C> {
    async fn exchange(
        &self,
        request: http::Request<Vec<u8>>,
        limits: Limits,
    ) -> Result<(http::response::Parts, bytes::Bytes), Error> {
        match self {
            Self::Direct(http) => http.exchange(request, limits).await,
            Self::Pooled(http) => exchange(http, request, limits).await,
        }
    }
}

/// The cache, and the last failed refresh while the cache backs off.
struct Tokens {
    cache: TokenCache,
    failure: Option<Arc<Error>>,
}

impl<C> Clone for FcmClient<C> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<C> std::fmt::Debug for FcmClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmClient")
            .field("fcm", &self.inner.fcm)
            .field("credentials", &self.inner.credentials)
            .field("limits", &self.inner.limits)
            .field("concurrency", &self.inner.concurrency)
            .finish_non_exhaustive()
    }
}

impl FcmClient {
    /// A client for this project with these credentials (a [`ServiceAccountKey`] or any
    /// [`Credentials`]), with the defaults.
    pub fn new(fcm: Fcm, credentials: impl Into<Credentials>) -> Result<Self, Error> {
        Self::builder(fcm, credentials).build()
    }

    /// A client for the key file's project (its `project_id`), with the defaults. `json`
    /// is the file's text; for a path, see [`from_key_file`](FcmClient::from_key_file).
    pub fn from_service_account(json: &str) -> Result<Self, Error> {
        let key = ServiceAccountKey::from_json(json).map_err(Error::Auth)?;
        Self::for_project_of(key.into(), None)
    }

    /// A client for a credential file on disk (its project).
    pub fn from_key_file(path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        Self::for_project_of(Credentials::from_file(path)?, None)
    }

    /// Application default credentials, in Google's order: the file
    /// `GOOGLE_APPLICATION_CREDENTIALS` names, gcloud's well-known file, then the metadata
    /// server (`GCE_METADATA_HOST`, else `metadata.google.internal`). The project is the
    /// file's, else `GOOGLE_CLOUD_PROJECT`, else the metadata server's. The error lists
    /// every place tried.
    pub async fn application_default() -> Result<Self, Error> {
        Self::application_default_from(&|name| std::env::var(name).ok()).await
    }

    /// [`application_default`](FcmClient::application_default) reading the environment
    /// through `env` (tests, or a configuration of your own).
    pub async fn application_default_from(env: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<Self, Error> {
        let project = env("GOOGLE_CLOUD_PROJECT");
        let mut tried = Vec::new();
        for candidate in candidates(env) {
            match candidate {
                Candidate::Env(path) => {
                    // Set but unreadable is an error, not a reason to look elsewhere.
                    let credentials = Credentials::from_file(&path)?;
                    return Self::for_project_of(credentials, project);
                }
                Candidate::WellKnown(path) if path.is_file() => {
                    return Self::for_project_of(Credentials::from_file(&path)?, project);
                }
                Candidate::WellKnown(path) => tried.push(format!("{} (no such file)", path.display())),
                Candidate::Metadata(host) => {
                    let server = MetadataServer::new(&host).map_err(Error::Auth)?;
                    match metadata_project(&server).await {
                        Ok(found) => {
                            return Self::for_project_of(Credentials::Metadata(server), project.or(Some(found)));
                        }
                        Err(error) => tried.push(format!("the metadata server at {host} ({error})")),
                    }
                }
            }
        }
        Err(Error::Config(format!(
            "no application default credentials: {CREDENTIALS_ENV} is not set; tried {}",
            tried.join("; ")
        )))
    }

    /// A client for `credentials`, for `project` or the project they name.
    fn for_project_of(credentials: Credentials, project: Option<String>) -> Result<Self, Error> {
        let project = credentials.project_id().map(str::to_owned).or(project).ok_or_else(|| {
            Error::Config(format!(
                "{} names no project: set GOOGLE_CLOUD_PROJECT or build Fcm::new(project)",
                credentials.describe()
            ))
        })?;
        Self::new(Fcm::new(&project)?, credentials)
    }

    /// A builder for timeouts, the body cap, a proxy, TLS, the concurrency or the clock.
    pub fn builder(fcm: Fcm, credentials: impl Into<Credentials>) -> Builder<V1Settings> {
        Builder::new(V1Settings::new(fcm, credentials.into()))
    }
}

/// The project id the metadata server tells, within a short timeout (the server answers
/// at once where it exists; elsewhere the name does not resolve or the address is silent).
async fn metadata_project(server: &MetadataServer) -> Result<String, Error> {
    let http = metadata_client()?;
    let limits = Limits { request_timeout: METADATA_PROBE_TIMEOUT, ..Limits::default() };
    let (parts, body) = exchange(&http, server.project_id_request(), limits).await?;
    MetadataServer::decode_project_id(&Response::from_parts(parts, body)).map_err(Error::Auth)
}

/// How long discovery waits for the metadata server.
const METADATA_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A direct HTTP/1.1 client (the metadata server is plain HTTP, and never behind a proxy).
fn metadata_client() -> Result<HttpClient<DefaultConnector>, Error> {
    Builder::new(()).no_proxy().http1_client()
}

impl<C> FcmClient<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// Brings your own hyper-util client; it must speak HTTP/2 to share connections. (The
    /// built client drives h2 directly, which costs less CPU per message: BENCHMARKS.md.)
    pub fn from_hyper(fcm: Fcm, credentials: impl Into<Credentials>, http: HttpClient<C>) -> Result<Self, Error> {
        Self::with_parts(V1Settings::new(fcm, credentials.into()), Http::Pooled(http), Limits::default())
    }

    fn with_parts(settings: V1Settings, http: Http<C>, limits: Limits) -> Result<Self, Error> {
        let V1Settings { fcm, credentials, concurrency, cache, clock } = settings;
        let metadata_http = match credentials {
            Credentials::Metadata(_) => Some(metadata_client()?),
            _ => None,
        };
        let empty_cache = cache.clone();
        let tokens = Mutex::new(Tokens { cache, failure: None });
        let inner = Inner { fcm, credentials, http, metadata_http, limits, concurrency, clock, empty_cache, tokens };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The same client sending to another server (a mock's base URL).
    pub fn base_url(self, base: &str) -> Result<Self, Error> {
        let fcm = self.inner.fcm.clone().with_base_url(base)?;
        let inner = &self.inner;
        let settings = V1Settings {
            fcm,
            credentials: inner.credentials.clone(),
            concurrency: inner.concurrency,
            cache: inner.empty_cache.clone(),
            clock: Arc::clone(&inner.clock),
        };
        Self::with_parts(settings, inner.http.clone(), inner.limits)
    }

    /// The protocol configuration: project, send URL, backoff.
    pub fn fcm(&self) -> &Fcm {
        &self.inner.fcm
    }

    /// Sends one message and decodes the answer. A refused access token is refreshed and
    /// the message sent once more. Never sleeps, never retries otherwise.
    pub async fn send(&self, message: &Message) -> Result<Reply, Error> {
        let span = tracing::debug_span!("fcm.send", url = %self.inner.fcm.send_url());
        self.send_one(Body::Message(message)).instrument(span).await
    }

    /// Sends `multicast`'s content to each of its tokens (one request per token, the
    /// content encoded once, at most the configured number in flight over shared HTTP/2
    /// connections) and folds the replies into one report, in token order.
    ///
    /// Each message keeps its own fate, the server's detail and the error that left it
    /// unanswered (`report.problems`). A failure that concerns every message — no access
    /// token, credentials refused, or no connection to the endpoint for any message — is
    /// [`Err(Stopped)`](Stopped): it is not a reason to retry each message, and the report
    /// inside it keeps every message pending. Never sleeps, never retries (but a refused
    /// access token is refreshed once and its message resent).
    pub async fn send_multicast(&self, multicast: &Multicast) -> Result<MulticastReport, Stopped> {
        let span = tracing::info_span!(
            "fcm.send_multicast",
            url = %self.inner.fcm.send_url(),
            tokens = multicast.tokens().len(),
            success = tracing::field::Empty,
            not_registered = tracing::field::Empty,
            failed = tracing::field::Empty,
            retry = tracing::field::Empty,
        );
        self.send_multicast_inner(multicast).instrument(span).await
    }

    async fn send_multicast_inner(&self, multicast: &Multicast) -> Result<MulticastReport, Stopped> {
        // One token for the whole multicast, or none: a refused key costs one request,
        // not one per message.
        if let Err(error) = self.access_token(None).await {
            tracing::debug!(%error, "fcm multicast without an access token");
            let unsent = MulticastReport::new(self.inner.fcm.outcome(multicast, []), BTreeMap::new());
            return Err(Stopped::new(error, unsent));
        }
        let template = Template::new(multicast.content());
        let tokens = multicast.tokens();
        let mut replies = vec![Reply::unanswered(); tokens.len()];
        let mut problems = BTreeMap::new();
        let mut in_flight = FuturesUnordered::new();
        let mut queued = tokens.iter().enumerate();
        loop {
            while in_flight.len() < self.inner.concurrency {
                let Some((index, token)) = queued.next() else { break };
                // Every event of this message (its error reply, its refresh) names its index.
                let span = tracing::debug_span!("fcm.message", index);
                // The send is made inside the block: a future captured by the block would be
                // stored twice in it (once captured, once awaited).
                let template = &template;
                let fut = async move { (index, self.send_one(Body::Token(template, token)).await) }.instrument(span);
                in_flight.push(fut);
            }
            let Some((index, answer)) = in_flight.next().await else { break };
            match answer {
                Ok(mut reply) => {
                    if let Some(detail) = reply.detail.take() {
                        problems.insert(index, Problem::Detail(detail));
                    }
                    if let Some(slot) = replies.get_mut(index) {
                        *slot = reply;
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, index, "fcm message unanswered");
                    problems.insert(index, Problem::Error(error));
                }
            }
        }
        let report = MulticastReport::new(self.inner.fcm.outcome(multicast, replies), problems);
        record_counts(&tracing::Span::current(), &report.outcome);
        tracing::info!("fcm multicast done");
        report.into_stopped_if_systemic()
    }

    async fn send_one(&self, body: Body<'_>) -> Result<Reply, Error> {
        let token = self.access_token(None).await?;
        match self.exchange_one(body, &token).await {
            Err(Error::Response(ResponseError::Authentication { .. })) => {
                // Revoked or expired early: a new token, and one more try (boxed: rare, and
                // a second exchange's state in every message's future would double it).
                Box::pin(async {
                    let token = self.access_token(Some(&token)).await?;
                    self.exchange_one(body, &token).await
                })
                .await
            }
            other => other,
        }
    }

    async fn exchange_one(&self, body: Body<'_>, token: &AccessToken) -> Result<Reply, Error> {
        let request = match body {
            Body::Message(message) => self.inner.fcm.encode(message, token.secret())?,
            Body::Token(template, to) => self.inner.fcm.encode_token(template, to, token.secret())?,
        };
        let (parts, body) = self.inner.http.exchange(request, self.inner.limits).await?;
        let reply = self.inner.fcm.decode_parts(parts.status, &parts.headers, &body, (self.inner.clock)());
        if let Ok(Reply { detail: Some(detail), .. }) = &reply {
            tracing::debug!(status = parts.status.as_u16(), detail, "fcm error reply");
        }
        Ok(reply?)
    }

    /// A token good now: the cached one, or a new one. `refused` is a token the server
    /// just turned down; it is dropped unless another task already replaced it. While a
    /// failed refresh backs off, every caller gets that failure at once.
    async fn access_token(&self, refused: Option<&AccessToken>) -> Result<AccessToken, Error> {
        let mut tokens = self.inner.tokens.lock().await;
        let now = (self.inner.clock)();
        if let Some(refused) = refused {
            if tokens.cache.current(now) == Some(refused) {
                tokens.cache.clear();
            }
        }
        if let Some(token) = tokens.cache.current(now) {
            return Ok(token.clone());
        }
        if let Some(failure) = tokens.failure.as_ref().filter(|_| !tokens.cache.may_refresh(now)) {
            return Err(self.token_error(Arc::clone(failure)));
        }
        // Boxed: a refresh is rare, and its state would make every message's future larger.
        match Box::pin(self.fetch_token(now)).await {
            Ok(token) => {
                tracing::debug!(expires_at = ?token.expires_at(), "fcm access token refreshed");
                tokens.cache.store(token.clone(), (self.inner.clock)());
                tokens.failure = None;
                Ok(token)
            }
            Err(error) => {
                let retry_at = tokens.cache.refresh_failed((self.inner.clock)());
                let source = self.inner.credentials.describe();
                if error.is_authentication() {
                    tracing::warn!(%error, source, "fcm credentials refused: fix them, sending cannot succeed");
                } else {
                    tracing::warn!(%error, source, ?retry_at, "fcm access token refresh failed");
                }
                let failure = Arc::new(error);
                tokens.failure = Some(Arc::clone(&failure));
                Err(self.token_error(failure))
            }
        }
    }

    fn token_error(&self, cause: Arc<Error>) -> Error {
        Error::Credentials { source: self.inner.credentials.describe(), cause }
    }

    /// Asks the credentials for a new token.
    async fn fetch_token(&self, now: SystemTime) -> Result<AccessToken, Error> {
        let limits = self.inner.limits;
        let (request, http) = match &self.inner.credentials {
            Credentials::ServiceAccount(key) => (key.token_request(now).map_err(Error::Auth)?, None),
            Credentials::AuthorizedUser(user) => (user.token_request(), None),
            Credentials::Metadata(server) => (server.token_request(), self.inner.metadata_http.as_ref()),
            Credentials::Custom(source) => return source.fetch().await,
        };
        let (parts, body) = match http {
            Some(http) => exchange(http, request, limits).await?,
            None => self.inner.http.exchange(request, limits).await?,
        };
        decode_token_response(&Response::from_parts(parts, body), (self.inner.clock)()).map_err(Error::Auth)
    }
}
