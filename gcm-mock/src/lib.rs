//! A deterministic mock of the Google Cloud Messaging HTTP server (GCM, and the FCM legacy
//! endpoint), for offline tests of any GCM client, in Rust or in any other language.
//!
//! It speaks the protocol from the server's side — JSON and plain-text requests, the real
//! status codes and bodies, per-token errors, `Retry-After` — and does what a
//! [`Scenario`] scripts: per-token behaviours, whole-request replies, and seeded random
//! faults. The same scenario, seed and request sequence give the same response bytes.
//! Every delivered message lands in an inbox, so a test can prove that nothing was lost
//! or sent twice.
//!
//! ```
//! use gcm_mock::{MockServer, Scenario, TokenRule, Behaviour};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let scenario = Scenario::default()
//!     .token("gone", TokenRule::new(Behaviour::NotRegistered))
//!     .token("flaky", TokenRule::unavailable_times(1));
//! let server = MockServer::builder().api_key("KEY").scenario(scenario).start().await?;
//! let url = server.url(); // http://127.0.0.1:PORT/gcm/send: point your client here
//! # assert!(url.starts_with("http://127.0.0.1:"));
//! // … send messages …
//! assert!(server.inbox().is_empty());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Besides `POST /gcm/send` and `POST /fcm/send`, the server answers `GET /_mock/inbox`,
//! `DELETE /_mock/inbox`, `GET /_mock/requests` and `POST /_mock/reset`, for clients that
//! drive it from another process (see the `gcm-mock` binary).
//!
//! It also speaks FCM HTTP v1: `POST /token` verifies the service account's signed JWT and
//! issues expiring access tokens, `POST /v1/projects/{project}/messages:send` checks them and
//! applies the same scenario with the real v1 error bodies. The built-in test account is
//! [`MOCK_SERVICE_ACCOUNT_JSON`]; [`MockServer::service_account_json`] hands it out with this
//! server's `token_uri`, and so does `GET /_mock/service-account`.
#![deny(missing_docs)]

pub mod baseline;
mod engine;
mod scenario;
mod server;

pub use engine::{
    Answer, DEFAULT_TOKEN_LIFETIME, Delivery, Engine, Hang, InboxPage, MOCK_REFRESH_TOKEN, MOCK_SERVICE_ACCOUNT_JSON,
    Prepared, REQUEST_LOG_CAPACITY, ReceivedRequest, RecordingLimits, RecordingStats, UNAUTHORIZED_HTML,
};
pub use scenario::{Behaviour, Faults, MAX_COUNT, Reply, Scenario, ScenarioError, Step, TokenReply, TokenRule};
pub use server::{Builder, DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_CONCURRENT_STREAMS, MockServer};
