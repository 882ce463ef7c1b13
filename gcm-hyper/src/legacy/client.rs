//! The legacy protocol's client: encode with gcm-proto, send with a pooled hyper client,
//! collect the body within limits, decode with gcm-proto. No protocol logic lives here.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gcm_proto::{Gcm, Message, Outcome};
use hyper_util::client::legacy::connect::Connect;
use tracing::Instrument;

use crate::builder::Builder;
use crate::connector::DefaultConnector;
use crate::error::Error;
use crate::transport::{HttpClient, Limits, exchange, record_counts};

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

impl Builder {
    /// Builds the client. Fails only on a TLS configuration that rustls refuses.
    pub fn build(mut self) -> Result<Client, Error> {
        let http = self.http1_client()?;
        let limits = self.limits();
        Ok(Client { gcm: Arc::new(self.protocol), http, limits })
    }
}
