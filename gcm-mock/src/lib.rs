//! A deterministic mock of Firebase Cloud Messaging — **FCM HTTP v1** with its OAuth2 token
//! endpoint and metadata server, and the legacy GCM / FCM HTTP endpoint — for offline tests
//! of any client, in Rust or in any other language.
//!
//! It speaks the protocols from the server's side — the real status codes and bodies
//! (google.rpc errors for v1), per-token errors, `Retry-After` — and does what a
//! [`Scenario`] scripts: per-token behaviours, whole-request replies, and seeded random
//! faults. The same scenario, seed and request sequence give the same response bytes.
//! Every delivered message lands in an inbox, so a test can prove that nothing was lost
//! or sent twice.
//!
//! ```
//! use gcm_mock::{Behaviour, MockServer, Scenario, TokenRule};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let scenario = Scenario::default()
//!     .token("gone", TokenRule::new(Behaviour::NotRegistered))
//!     .token("flaky", TokenRule::unavailable_times(1));
//! let server = MockServer::builder().scenario(scenario).start().await?;
//! // FCM v1: the key file to hand your client (its token_uri is this server's `/token`)
//! // and the base URL to send to (`/v1/projects/mock-project/messages:send` below it).
//! let key_file = server.service_account_json().unwrap_or_default();
//! let base_url = server.v1_base_url();
//! # assert!(key_file.contains("/token") && base_url.starts_with("http://127.0.0.1:"));
//! // … send messages …
//! assert!(server.inbox().is_empty());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! `POST /token` verifies the service account's signed JWT (or the mock user's refresh
//! token) and issues expiring access tokens; `POST /v1/projects/{project}/messages:send`
//! checks them and applies the scenario with the real v1 error bodies. The built-in test
//! account is [`MOCK_SERVICE_ACCOUNT_JSON`]; [`MockServer::service_account_json`] hands it out
//! with this server's `token_uri`, and so does `GET /_mock/service-account`. The legacy
//! protocol answers at [`MockServer::url`] (`POST /gcm/send` and `POST /fcm/send`, JSON and
//! plain text, with an API key: [`Builder::api_key`]).
//!
//! For clients that drive it from another process (see the `gcm-mock` binary), the server
//! also answers `GET /_mock/inbox`, `DELETE /_mock/inbox`, `GET /_mock/requests`,
//! `GET /_mock/stats` and `POST /_mock/reset`.
//!
//! # Where things are
//! - `server`: [`MockServer`] (addresses, inspection), [`Builder`] (`server/builder.rs`), the
//!   hyper loop (`server/serve.rs`).
//! - `engine`: [`Engine`], the protocols without IO — `route` (where a request goes, decided
//!   once), [`Prepared`] (`prepare`: a send's body read before the lock), `v1` (sends),
//!   `oauth` (the token endpoint and the accounts), `metadata` (the metadata server), `rpc`
//!   (v1 error bodies), `legacy` (legacy sends), `recipient` (each recipient's result),
//!   [`Answer`] (`answer`: written after the lock), `recording` (the bounded inbox and log),
//!   `script` (scripted replies and `Retry-After`), `http` (the answers' pieces).
//! - `scenario`: [`Scenario`], [`TokenRule`], [`Behaviour`], [`Faults`]: what the mock does.
//! - [`baseline`]: what the benchmarks measure against.
#![deny(missing_docs)]

pub mod baseline;
mod engine;
mod scenario;
mod server;

pub use engine::{
    Answer, DEFAULT_TOKEN_LIFETIME, Delivery, Engine, Hang, InboxPage, MAX_SUBSCRIPTIONS, MAX_TOPICS_PER_TOKEN,
    MOCK_REFRESH_TOKEN, MOCK_SERVICE_ACCOUNT_JSON, Prepared, REQUEST_LOG_CAPACITY, ReceivedRequest, RecordingLimits,
    RecordingStats, UNAUTHORIZED_HTML,
};
pub use scenario::{Behaviour, Faults, MAX_COUNT, Reply, Scenario, ScenarioError, Step, TokenReply, TokenRule};
pub use server::{Builder, DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_CONCURRENT_STREAMS, MockServer};
#[cfg(feature = "tls")]
pub use server::{GOOGLE_HOSTS, Tls};
