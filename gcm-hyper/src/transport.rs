//! The HTTP exchange both protocols share: the pooled client type, the limits of one
//! exchange, the `User-Agent`, and a send's counts as span fields.

use std::time::Duration;

use bytes::Bytes;
use gcm_proto::Outcome;
use http::HeaderValue;
use http::header::USER_AGENT;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body as _;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::Connect;

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

/// The hyper-util client type a [`Client`](crate::Client) runs on.
pub type HttpClient<C> = HyperClient<C, Full<Bytes>>;

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
