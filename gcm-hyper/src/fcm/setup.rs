//! Setting up an [`FcmClient`]: the builder's v1 settings, the constructors, application
//! default credentials (and the metadata server's project), another base URL.

use std::sync::Arc;
use std::time::SystemTime;

use gcm_proto::oauth::{MetadataServer, ServiceAccountKey, TokenCache};
use gcm_proto::v1::Fcm;
use http::Response;
use hyper_util::client::legacy::connect::Connect;
use tokio::sync::Mutex;

use super::credentials::{CREDENTIALS_ENV, Candidate, Credentials, candidates};
pub use super::http2::DEFAULT_MAX_CONNECTIONS;
use super::http2::Http2;
use super::tokens::Tokens;
use super::transport::Http;
use super::{FcmClient, Inner};
use crate::builder::Builder;
use crate::connector::DefaultConnector;
use crate::error::Error;
use crate::transport::{HttpClient, Limits, exchange};

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
    max_connections: usize,
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
        Self {
            fcm,
            credentials,
            concurrency: DEFAULT_CONCURRENCY,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            cache: TokenCache::new(),
            clock,
        }
    }
}

impl Builder<V1Settings> {
    /// At most this many requests in flight per [`send_multicast`](FcmClient::send_multicast)
    /// (default 100, at least 1).
    pub fn concurrency(mut self, requests: usize) -> Self {
        self.protocol.concurrency = requests.max(1);
        self
    }

    /// At most this many HTTP/2 connections per origin (default 8, at least 1): another is
    /// opened when every open one carries as many streams as its server allows
    /// (`SETTINGS_MAX_CONCURRENT_STREAMS`; 100 at Google), so that a concurrency above that
    /// is not queued behind one connection.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.protocol.max_connections = connections.max(1);
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
    /// up to [`max_connections`](Self::max_connections) connections per origin.
    pub fn build(mut self) -> Result<FcmClient, Error> {
        let (tls, transport) = self.connector()?;
        let connector = tls.enable_http2().wrap_connector(transport);
        let http = Http2::new(connector, self.pool_idle_timeout, self.protocol.max_connections);
        let limits = self.limits();
        FcmClient::with_parts(self.protocol, Http::Direct(http), limits)
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
        let V1Settings { fcm, credentials, concurrency, cache, clock, .. } = settings;
        let metadata_http = match credentials {
            Credentials::Metadata(_) => Some(metadata_client()?),
            _ => None,
        };
        let empty_cache = cache.clone();
        let tokens = Mutex::new(Tokens::new(cache));
        let inner = Inner { fcm, credentials, http, metadata_http, limits, concurrency, clock, empty_cache, tokens };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The same client sending to another server (a mock's base URL), topic management
    /// calls included.
    pub fn base_url(self, base: &str) -> Result<Self, Error> {
        let fcm = self.inner.fcm.clone().with_base_url(base)?;
        let inner = &self.inner;
        let settings = V1Settings {
            fcm,
            credentials: inner.credentials.clone(),
            concurrency: inner.concurrency,
            // The connections are the original client's: their cap stays its own.
            max_connections: DEFAULT_MAX_CONNECTIONS,
            cache: inner.empty_cache.clone(),
            clock: Arc::clone(&inner.clock),
        };
        Self::with_parts(settings, inner.http.clone(), inner.limits)
    }
}
