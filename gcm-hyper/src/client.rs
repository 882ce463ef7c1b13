//! The client: encode with gcm-proto, send with a pooled hyper client, collect the body
//! within limits, decode with gcm-proto. No protocol logic lives here.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use gcm_proto::{Gcm, Message, Outcome};
use http::header::USER_AGENT;
use http::{HeaderValue, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body as _;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tracing::Instrument;

use crate::connector::{DefaultConnector, Transport};
use crate::error::Error;

/// Default time to establish a TCP (and TLS) connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time for a whole send: connecting, writing the request, reading the response.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on a response body (a 1000-result response is about 61 KB).
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 1024 * 1024;
/// How long an idle pooled connection is kept.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The `User-Agent` of every request.
pub const USER_AGENT_VALUE: &str = concat!("gcm-hyper/", env!("CARGO_PKG_VERSION"));

/// The hyper-util client type a [`Client`] runs on.
pub type HttpClient<C> = HyperClient<C, Full<Bytes>>;

/// Sends GCM messages over hyper. Cheap to clone; clones share the connection pool, so one
/// client serves many concurrent tasks over a few keep-alive connections.
///
/// `send` never sleeps and never retries: see [`RetryLoop`](crate::RetryLoop) for an
/// opt-in loop.
#[derive(Clone)]
pub struct Client<C = DefaultConnector> {
    gcm: Arc<Gcm>,
    http: HttpClient<C>,
    limits: Limits,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) request_timeout: Duration,
    pub(crate) max_response_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { request_timeout: DEFAULT_REQUEST_TIMEOUT, max_response_body: DEFAULT_MAX_RESPONSE_BODY }
    }
}

impl<C> std::fmt::Debug for Client<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("gcm", &self.gcm).field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Client {
    /// A client for this API key on [`FCM_URL`](crate::FCM_URL), with the defaults. An
    /// empty key is refused.
    ///
    /// ```
    /// let client = gcm_hyper::Client::from_api_key("my-api-key")?;
    /// assert_eq!(client.gcm().endpoint(), gcm_hyper::FCM_URL);
    /// assert!(gcm_hyper::Client::from_api_key("").is_err());
    /// # Ok::<(), gcm_hyper::Error>(())
    /// ```
    pub fn from_api_key(api_key: &str) -> Result<Self, Error> {
        Self::new(Gcm::new(api_key)?)
    }

    /// A client for this API key on another endpoint: a compatible server, or gcm-mock's
    /// `http://127.0.0.1:PORT/gcm/send`.
    pub fn from_api_key_at(api_key: &str, endpoint: &str) -> Result<Self, Error> {
        Self::new(Gcm::new(api_key)?.with_endpoint(endpoint)?)
    }

    /// A client with the defaults: rustls with the webpki roots, the environment's proxy
    /// (see [`Builder::proxy`]), the default timeouts and body cap.
    pub fn new(gcm: Gcm) -> Result<Self, Error> {
        Self::builder(gcm).build()
    }

    /// A builder for timeouts, the body cap, a proxy or a TLS configuration.
    pub fn builder(gcm: Gcm) -> Builder {
        Builder::new(gcm)
    }
}

impl<P> Builder<P> {
    pub(crate) fn new(protocol: P) -> Self {
        Builder {
            protocol,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_response_body: DEFAULT_MAX_RESPONSE_BODY,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            proxy: None,
            tls: None,
        }
    }
}

impl<C> Client<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// Brings your own hyper-util client (a custom connector for TLS, DNS or a proxy).
    /// The default timeout and body cap apply; see [`Client::with_limits`].
    pub fn from_hyper(gcm: Gcm, http: HttpClient<C>) -> Self {
        Self { gcm: Arc::new(gcm), http, limits: Limits::default() }
    }

    /// Sets the request timeout and the response body cap.
    pub fn with_limits(mut self, request_timeout: Duration, max_response_body: usize) -> Self {
        self.limits = Limits { request_timeout, max_response_body };
        self
    }

    /// The protocol configuration: endpoint, API key, backoff.
    pub fn gcm(&self) -> &Gcm {
        &self.gcm
    }

    /// Sends `message` once and decodes the answer. 200 and 5xx responses give an
    /// [`Outcome`]; anything else is an [`Error`]. Never sleeps, never retries.
    pub async fn send(&self, message: &Message) -> Result<Outcome, Error> {
        let span = tracing::info_span!(
            "gcm.send",
            endpoint = %self.gcm.endpoint(),
            tokens = message.tokens().len(),
            format = ?message.format,
            status = tracing::field::Empty,
            success = tracing::field::Empty,
            not_registered = tracing::field::Empty,
            failed = tracing::field::Empty,
            retry = tracing::field::Empty,
        );
        self.send_inner(message).instrument(span).await
    }

    async fn send_inner(&self, message: &Message) -> Result<Outcome, Error> {
        let request = self.gcm.encode(message)?;
        let (parts, body) = exchange(&self.http, request, self.limits).await?;
        let decoded = self.gcm.decode_parts(message, parts.status, &parts.headers, &body, SystemTime::now());
        let span = tracing::Span::current();
        span.record("status", parts.status.as_u16());
        match &decoded {
            Ok(outcome) => {
                record_counts(&span, outcome);
                tracing::info!(retry_after = ?outcome.retry_after(), "gcm send done");
            }
            Err(error @ gcm_proto::ResponseError::Authentication { .. }) => {
                tracing::warn!(%error, "gcm API key refused")
            }
            Err(error) => tracing::debug!(%error, "gcm error response"),
        }
        Ok(decoded?)
    }
}

/// Records the counts of each bucket as fields of `span` (declared empty where it opened).
pub(crate) fn record_counts<P: gcm_proto::Retryable>(span: &tracing::Span, outcome: &Outcome<P>) {
    // Four passes over up to 1000 fates: only for a subscriber that listens.
    if span.is_disabled() {
        return;
    }
    span.record("success", outcome.success().count());
    span.record("not_registered", outcome.not_registered().count());
    span.record("failed", outcome.failed().count());
    span.record("retry", outcome.to_retry().count());
}

/// Sends `request` with the `User-Agent`, and collects the response within the limits.
pub(crate) async fn exchange<C>(
    http: &HttpClient<C>,
    request: http::Request<Vec<u8>>,
    limits: Limits,
) -> Result<(http::response::Parts, Bytes), Error>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let endpoint = request.uri().clone();
    let mut request = request.map(|body| Full::new(Bytes::from(body)));
    request.headers_mut().insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    let exchange = async {
        let response =
            http.request(request).await.map_err(|e| Error::transport(&endpoint, e.is_connect(), Box::new(e)))?;
        let (parts, body) = response.into_parts();
        let limit = limits.max_response_body;
        let too_large = Error::BodyTooLarge { limit, status: parts.status.as_u16() };
        if body.size_hint().lower() > limit as u64 {
            return Err(too_large);
        }
        let body = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large),
            Err(source) => return Err(Error::transport(&endpoint, false, source)),
        };
        Ok((parts, body))
    };
    match tokio::time::timeout(limits.request_timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout { endpoint: endpoint.clone(), after: limits.request_timeout }),
    }
}

/// Configures a [`Client`] (or, with FCM v1 settings, an `FcmClient`: feature `v1`)
/// with the default connector. `Debug` never shows the proxy's credentials.
pub struct Builder<P = Gcm> {
    pub(crate) protocol: P,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_response_body: usize,
    pub(crate) pool_idle_timeout: Duration,
    proxy: Option<Proxy>,
    tls: Option<rustls::ClientConfig>,
}

/// The proxy a builder was given; without one, the environment's (feature `env-proxy`).
enum Proxy {
    Fixed(Uri, Option<HeaderValue>),
    None,
}

impl<P: std::fmt::Debug> std::fmt::Debug for Builder<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proxy = match &self.proxy {
            Some(Proxy::Fixed(uri, authorization)) => {
                let authorization = if authorization.is_some() { "<redacted>" } else { "none" };
                // Host and port only: a URL's user-info may hold credentials too.
                let host = uri.host().unwrap_or_default();
                let port = uri.port_u16().map(|port| format!(":{port}")).unwrap_or_default();
                format!("{host}{port} (authorization: {authorization})")
            }
            Some(Proxy::None) => "none".to_owned(),
            None if cfg!(feature = "env-proxy") => "from the environment".to_owned(),
            None => "none".to_owned(),
        };
        f.debug_struct("Builder")
            .field("protocol", &self.protocol)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_response_body", &self.max_response_body)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("proxy", &proxy)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl<P> Builder<P> {
    /// Time to establish a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time for a whole send, from connecting to the last byte of the response (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Largest response body accepted (default 1 MiB).
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.max_response_body = bytes;
        self
    }

    /// How long an idle connection stays in the pool (default 90 s).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Sends through an HTTP proxy (`http://host:port`), tunnelling with `CONNECT`; TLS to
    /// an `https://` endpoint runs inside the tunnel. Without a call to `proxy` or
    /// [`no_proxy`](Self::no_proxy), the proxy comes from the environment as curl reads it
    /// (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, lower case too) when the
    /// `env-proxy` feature is on, as it is by default.
    pub fn proxy(mut self, proxy: Uri) -> Self {
        self.proxy = Some(Proxy::Fixed(proxy, None));
        self
    }

    /// Connects directly, whatever the environment says.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = Some(Proxy::None);
        self
    }

    /// Sends through an HTTP proxy that wants this `Proxy-Authorization` value
    /// (e.g. `Basic …`). The value is marked sensitive and never logged.
    pub fn proxy_with_authorization(mut self, proxy: Uri, mut authorization: HeaderValue) -> Self {
        authorization.set_sensitive(true);
        self.proxy = Some(Proxy::Fixed(proxy, Some(authorization)));
        self
    }

    /// Uses this rustls configuration (custom roots, client certificates) instead of the
    /// default roots (webpki's, or the system's with the `native-roots` feature).
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// The limits of each exchange.
    pub(crate) fn limits(&self) -> Limits {
        Limits { request_timeout: self.request_timeout, max_response_body: self.max_response_body }
    }

    /// The TLS layer (rustls) and the route under it (direct, or a proxy's tunnel), still
    /// to be told which HTTP versions to speak.
    pub(crate) fn connector(&mut self) -> Result<(ConnectorBuilder, Transport), Error> {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(self.connect_timeout));
        let transport = match self.proxy.take() {
            Some(Proxy::Fixed(proxy, authorization)) => {
                if proxy.host().is_none() {
                    return Err(Error::Config(format!("the proxy {proxy} has no host")));
                }
                Transport::proxy(proxy, tcp, authorization)
            }
            Some(Proxy::None) => Transport::direct(tcp),
            #[cfg(feature = "env-proxy")]
            None => Transport::from_env(tcp),
            #[cfg(not(feature = "env-proxy"))]
            None => Transport::direct(tcp),
        };
        let tls = match self.tls.take() {
            Some(config) => config,
            None => default_tls()?,
        };
        Ok((hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http(), transport))
    }

    /// The pool's settings.
    pub(crate) fn pool(&self) -> hyper_util::client::legacy::Builder {
        let mut builder = HyperClient::builder(TokioExecutor::new());
        builder.pool_timer(TokioTimer::new()).pool_idle_timeout(self.pool_idle_timeout);
        builder
    }

    /// The pooled HTTP/1.1 client of the legacy protocol (and of the metadata server).
    pub(crate) fn http1_client(&mut self) -> Result<HttpClient<DefaultConnector>, Error> {
        let (tls, transport) = self.connector()?;
        Ok(self.pool().build(tls.enable_http1().wrap_connector(transport)))
    }
}

/// rustls configured, waiting for its HTTP versions.
pub(crate) type ConnectorBuilder = hyper_rustls::HttpsConnectorBuilder<hyper_rustls::builderstates::WantsProtocols1>;

impl Builder {
    /// Builds the client. Fails only on a TLS configuration that rustls refuses.
    pub fn build(mut self) -> Result<Client, Error> {
        let http = self.http1_client()?;
        let limits = self.limits();
        Ok(Client { gcm: Arc::new(self.protocol), http, limits })
    }
}

/// rustls with the ring provider and the roots the features choose: webpki's (built in,
/// the default), the system's (`native-roots`), or both.
fn default_tls() -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    #[allow(unused_mut)]
    let mut roots = rustls::RootCertStore::empty();
    #[cfg(feature = "webpki-roots")]
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    #[cfg(feature = "native-roots")]
    {
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
            tracing::warn!(errors = ?errors, "no usable certificate in the system's store");
        }
    }
    if roots.is_empty() {
        return Err(Error::Config(
            "no root certificates: enable the webpki-roots or native-roots feature, or pass a tls_config".into(),
        ));
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
