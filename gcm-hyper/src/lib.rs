//! Sends FCM HTTP v1 and GCM / FCM legacy messages with hyper 1.x on tokio: a thin adapter
//! over the sans-IO [`gcm_proto`] core.
//!
#![cfg_attr(
    feature = "v1",
    doc = r#"
For FCM HTTP v1, [`FcmClient`] reads a service-account key file (or finds application
default credentials), keeps its access token fresh (one refresh at a time), and
[`send_multicast`](FcmClient::send_multicast) sends a [`Multicast`](v1::Multicast) as one
request per token over shared HTTP/2 connections, returning one [`MulticastReport`] — or
[`Stopped`] for a failure that concerns every message. It never sleeps and never retries:
the report's [`Outcome`] says which tokens need a retry and after how long, so you can
schedule it in your own job queue. [`RetryLoop`] is an opt-in loop for callers who would
rather wait in place.

```
use gcm_hyper::{FcmClient, RetryLoop};
use gcm_hyper::v1::Multicast;

# #[tokio::main(flavor = "current_thread")]
# async fn main() -> Result<(), Box<dyn std::error::Error>> {
# let mock = gcm_mock::MockServer::builder()
#     .scenario(gcm_mock::Scenario::default().token("token-2", gcm_mock::TokenRule::new(gcm_mock::Behaviour::NotRegistered)))
#     .start()
#     .await?;
# let key_file = mock.service_account_json().unwrap_or_default().to_owned();
// The key file Firebase hands out (here the mock's, whose token_uri is the mock).
let client = FcmClient::from_service_account(&key_file)?
    .base_url(&mock.v1_base_url())?; // in production: leave the default
let multicast = Multicast::new(["token-1", "token-2"]).data("kind", "sync");

// Err only for what concerns every message: credentials refused, no route.
let report = client.send_multicast(&multicast).await?;
assert_eq!(report.outcome.success().count(), 1);
for token in report.outcome.not_registered() {
    assert_eq!(token, "token-2"); // remove it from your database
}
if let Some(retry) = report.outcome.retry() {
    let delay = report.outcome.delay(0, &mut gcm_hyper::rand::rng());
    /* schedule `retry` (a Multicast, serializable) after `delay` in your job queue */
}

// Or wait in place: resends what needs it, returns one merged report.
let report = RetryLoop::new().max_attempts(5).run_multicast(&client, &multicast).await?;
assert!(!report.outcome.needs_retry());
# Ok(())
# }
```
"#
)]
#![cfg_attr(not(feature = "v1"), doc = "FCM HTTP v1 (`FcmClient`) needs the `v1` feature, on by default.\n")]
//! For the legacy protocol (compatible servers, mocks), [`Client::send`] builds the request
//! with gcm-proto, sends it over a pooled keep-alive connection, collects the body within a
//! size and time limit, and decodes it with gcm-proto, canonical ids included:
//!
//! ```
//! use gcm_hyper::{Client, Message};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let mock = gcm_mock::MockServer::builder()
//! #     .scenario(gcm_mock::Scenario::default().token("token-2", gcm_mock::TokenRule::canonical("token-2b")))
//! #     .start()
//! #     .await?;
//! # let endpoint = mock.url(); // in production: gcm_hyper::FCM_URL
//! let client = Client::from_api_key_at("my-api-key", &endpoint)?;
//! let message = Message::multicast(["token-1", "token-2"]).data("kind", "sync");
//! let outcome = client.send(&message).await?;
//! for (token, canonical) in outcome.canonical() {
//!     assert_eq!((token, canonical), ("token-2", "token-2b")); // replace token by canonical
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Where things are
#![cfg_attr(
    feature = "v1",
    doc = r#"- FCM v1 (`fcm/`, feature `v1`): [`FcmClient`] — `setup` (builder settings
  [`V1Settings`], constructors, application default credentials), `tokens` (the access
  token), `transport` (one request), `http2` (its own HTTP/2 connections), `fanout` (a
  multicast, or several messages with `send_each`), `retry`, [`Credentials`] and
  [`TokenSource`] (`credentials`), [`V1Report`] ([`MulticastReport`], [`MessagesReport`]),
  [`Problem`] and [`Stopped`] (`report`)."#
)]
//! - Legacy (`legacy/`): [`Client`] (`client`), [`Report`] (`report`), its loop (`retry`).
//! - Shared: [`Builder`] (`builder`: timeouts, pool, proxy, TLS), `transport` (the HTTP
//!   exchange, [`HttpClient`], limits, `User-Agent`), [`DefaultConnector`] and [`Transport`]
//!   (`connector`: direct or through a proxy), [`RetryLoop`] (`retry`: the loop's limits),
//!   [`Error`] (`error`).
//!
//! # Features
//! - `v1` (default): FCM HTTP v1 — `FcmClient`, `Credentials`, token refresh, HTTP/2.
//! - `webpki-roots` (default): Mozilla's root certificates, built in.
//! - `native-roots`: the system's certificate store (rustls-native-certs), beside or
//!   instead of webpki's.
//! - `env-proxy` (default): without [`Builder::proxy`] or [`Builder::no_proxy`], the proxy
//!   comes from `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (as curl reads them).
//!
//! Every public future is `Send`: spawn them, or await them in an axum handler.
//!
//! Each send is an INFO `tracing` span (`gcm.send`, `fcm.send_multicast`) whose fields are
//! the endpoint, the token count, the status and the counts of each fate, closed by an INFO
//! event. What needs a human is a WARN: credentials refused, a token endpoint that fails, a
//! retry loop that gives up with recipients pending. Per-message events (DEBUG) carry the
//! message's index. No key, assertion or token ever appears.
#![deny(missing_docs)]

mod builder;
mod connector;
mod error;
#[cfg(feature = "v1")]
mod fcm;
mod legacy;
mod retry;
mod transport;

pub use builder::Builder;
pub use connector::{DefaultConnector, Transport};
pub use error::Error;
#[cfg(feature = "v1")]
pub use fcm::{
    BoxFuture, CREDENTIALS_ENV, Clock, Credentials, DEFAULT_CONCURRENCY, DEFAULT_MAX_CONNECTIONS, FcmClient,
    METADATA_HOST_ENV, MessagesReport, MulticastReport, Problem, Stopped, SubscriptionReport, TokenSource, V1Report,
    V1Settings,
};
pub use legacy::{Client, Report};
pub use retry::{DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_DELAY, RetryLoop, Sleeper, TokioSleep};
pub use transport::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BODY, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, HttpClient,
    USER_AGENT_VALUE,
};

// Shown as re-exports with gcm-proto's own pages (whose examples name gcm-proto's paths).
#[doc(no_inline)]
pub use gcm_proto::{self, FCM_URL, GCM_HTTP_URL, GCM_URL, Gcm, Message, Outcome, v1};
/// Re-exported so that `outcome.delay(attempt, &mut gcm_hyper::rand::rng())` needs no rand
/// version of your own: this is the one whose generators gcm-proto takes.
pub use rand;
