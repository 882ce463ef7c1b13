//! The FCM HTTP v1 client, by job: [`setup`] (builder, credentials discovery, the clients'
//! constructors), [`tokens`] (the access token: one refresh at a time, failures shared while
//! they back off), [`transport`] (one request: encode, the HTTP path — [`http2`]'s own
//! connections or a caller's hyper-util client —, decode), [`fanout`] (a multicast as one
//! request per token, bounded concurrency, one [`MulticastReport`]), [`topics`] (topic
//! management, 1000 tokens a call), [`retry`] (the opt-in loop), [`credentials`] and
//! [`report`]. All protocol logic is gcm-proto's.

use std::sync::Arc;

use gcm_proto::oauth::TokenCache;
use gcm_proto::v1::Fcm;
use tokio::sync::Mutex;

use crate::connector::DefaultConnector;
use crate::transport::{HttpClient, Limits};

mod credentials;
mod fanout;
mod http2;
mod report;
mod retry;
mod setup;
mod tokens;
mod topics;
mod transport;

pub use credentials::{BoxFuture, CREDENTIALS_ENV, Credentials, METADATA_HOST_ENV, TokenSource};
pub use report::{MessagesReport, MulticastReport, Problem, Stopped, V1Report};
pub use setup::{Clock, DEFAULT_CONCURRENCY, DEFAULT_MAX_CONNECTIONS, V1Settings};
use tokens::Tokens;
pub use topics::SubscriptionReport;
use transport::Http;

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

impl<C> FcmClient<C> {
    /// The protocol configuration: project, send URL, backoff.
    pub fn fcm(&self) -> &Fcm {
        &self.inner.fcm
    }
}
