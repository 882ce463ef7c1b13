//! The builder both clients share: timeouts, the body cap, the pool, the proxy and rustls.

use std::sync::Arc;
use std::time::Duration;

use gcm_proto::Gcm;
use http::{HeaderValue, Uri};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::connector::{DefaultConnector, Transport};
use crate::error::Error;
use crate::transport::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BODY, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, HttpClient,
    Limits,
};

/// Configures a [`Client`](crate::Client) (or, with FCM v1 settings, an `FcmClient`: feature `v1`)
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

/// A plain HTTP/1.1 client on the same connector (rustls, the proxy, the connect timeout),
/// for the other requests a push service makes, such as webhooks.
impl Builder<()> {
    /// A builder of a plain client, with the default settings.
    pub fn http() -> Self {
        Builder::new(())
    }

    /// The pooled HTTP/1.1 client (`https://` and `http://`). Its requests have no timeout
    /// of their own: wrap them in yours. Fails only on a TLS configuration that rustls refuses.
    pub fn build_http(mut self) -> Result<HttpClient<DefaultConnector>, Error> {
        self.http1_client()
    }
}

/// rustls configured, waiting for its HTTP versions.
pub(crate) type ConnectorBuilder = hyper_rustls::HttpsConnectorBuilder<hyper_rustls::builderstates::WantsProtocols1>;

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
