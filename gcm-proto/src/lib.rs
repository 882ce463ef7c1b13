//! The Firebase Cloud Messaging protocols without IO: **FCM HTTP v1**, the endpoint Firebase
//! serves today ([`v1`]), and the legacy GCM / FCM HTTP protocol it replaced.
//!
//! This crate turns a message into an [`http::Request`] and the server's [`http::Response`]
//! into an [`Outcome`] that says, for every recipient, what happened and what to do next.
//! What moves the bytes is up to you: `gcm-hyper`, any other HTTP client, or a test that
//! writes responses by hand.
//!
//! # The promise
//! * **No IO.** Nothing here opens a socket, spawns a task or blocks.
//! * **No clock.** Decoding takes the current time as an argument (it turns a
//!   `Retry-After` date into a delay), so every result is reproducible.
//! * **No global RNG.** Backoff jitter is drawn from a [`rand_core::Rng`] you pass in; the
//!   same seed gives the same delays. (With the `oauth` feature, ring draws RSA blinding
//!   from the OS while signing; the signature bytes do not depend on it.)
//! * **No panics on input.** Any response — bad JSON, wrong types, huge numbers, invalid
//!   UTF-8, odd headers — is a [`ResponseError`] that keeps the body, never a panic.
//! * **Never forget a result.** Every recipient lands in exactly one of success, not
//!   registered, failed and retry; canonical ids ride along with successes, and outcomes of
//!   several attempts [`merge`](Outcome::merge) without losing any of them.
//!
//! # FCM HTTP v1: encode, send with anything, decode
//! A [`v1::Multicast`] is sent as one request per token, its content encoded once
//! ([`v1::Template`]); [`v1::Fcm::outcome`] folds the replies into one [`Outcome`]. The
//! access token comes from the `oauth` module (feature `oauth`) or from your own source.
//! ```
//! use std::time::{Duration, SystemTime};
//! use gcm_proto::v1::{Fcm, Multicast, Template};
//!
//! let fcm = Fcm::new("my-project")?;
//! let multicast = Multicast::new(["tokA", "tokB", "tokC"]).data("kind", "sync");
//! let template = Template::new(multicast.content());
//! let request = fcm.encode_token(&template, "tokA", "ya29.access-token")?;
//! assert_eq!(request.uri(), "https://fcm.googleapis.com/v1/projects/my-project/messages:send");
//! assert_eq!(request.body().as_slice(), br#"{"message":{"token":"tokA","data":{"kind":"sync"}}}"#);
//!
//! // Send each request with the HTTP client of your choice; here is what the server answered.
//! let ok = http::Response::new(r#"{"name":"projects/my-project/messages/0:1%a"}"#);
//! let gone = http::Response::builder().status(404).body(
//!     r#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND",
//!         "details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#,
//! )?;
//! let busy = http::Response::builder().status(503).header("retry-after", "30").body(
//!     r#"{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}"#,
//! )?;
//! let now = SystemTime::now();
//! let replies = vec![fcm.decode(&ok, now)?, fcm.decode(&gone, now)?, fcm.decode(&busy, now)?];
//! let outcome = fcm.outcome(&multicast, replies);
//!
//! assert_eq!(outcome.success().collect::<Vec<_>>(), [("tokA", "projects/my-project/messages/0:1%a")]);
//! assert_eq!(outcome.not_registered().collect::<Vec<_>>(), ["tokB"]); // remove from your database
//!
//! // Schedule the retry in your job queue: only tokC, after the server's Retry-After.
//! let retry = outcome.retry().expect("tokC needs a retry"); // built from the outcome alone
//! assert_eq!(retry.tokens(), ["tokC"]);
//! let mut rng = Zero; // any rand_core generator: rand::rng(), a seeded ChaCha…
//! assert_eq!(outcome.delay(0, &mut rng), Duration::from_secs(30));
//! # struct Zero; // a generator that always draws 0
//! # impl rand_core::TryRng for Zero {
//! #     type Error = core::convert::Infallible;
//! #     fn try_next_u32(&mut self) -> Result<u32, Self::Error> { Ok(0) }
//! #     fn try_next_u64(&mut self) -> Result<u64, Self::Error> { Ok(0) }
//! #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), Self::Error> { d.fill(0); Ok(()) }
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The legacy protocol, for compatible servers
//! The same model over one request per multicast, with canonical ids:
//! ```
//! use std::time::SystemTime;
//! use gcm_proto::{Gcm, Message};
//!
//! let gcm = Gcm::new("my-api-key")?;
//! let message = Message::multicast(["tokA", "tokB", "tokC"]).data("kind", "sync");
//!
//! let request = gcm.encode(&message)?;
//! assert_eq!(request.uri(), "https://fcm.googleapis.com/fcm/send");
//! assert_eq!(
//!     request.body().as_slice(),
//!     br#"{"registration_ids":["tokA","tokB","tokC"],"data":{"kind":"sync"}}"#
//! );
//! let response = http::Response::builder().status(200).body(
//!     r#"{"multicast_id":216,"success":2,"failure":1,"canonical_ids":1,"results":[
//!         {"message_id":"0:1%a"},
//!         {"message_id":"0:2%a","registration_id":"tokB2"},
//!         {"error":"NotRegistered"}]}"#,
//! )?;
//! let outcome = gcm.decode(&message, &response, SystemTime::now())?;
//! assert_eq!(outcome.success().collect::<Vec<_>>(), [("tokA", "0:1%a"), ("tokB", "0:2%a")]);
//! assert_eq!(outcome.canonical().collect::<Vec<_>>(), [("tokB", "tokB2")]); // update your database
//! assert_eq!(outcome.not_registered().collect::<Vec<_>>(), ["tokC"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where things are
//! * [`v1`]: FCM HTTP v1 — [`v1::Message`], [`v1::Multicast`], [`v1::Fcm`] (encode and
//!   decode), the platform blocks (`android`, `apns`, `webpush`), [`v1::check`] and
//!   [`v1::Condition`] (what FCM refuses), [`v1::Subscription`] (topic management),
//!   [`v1::Converted`] (from a legacy message), and a table from Firebase Admin to here;
//!   `oauth` (feature `oauth`): its service-account, user and metadata-server access tokens.
//! * [`Outcome`] (`outcome`), [`Fate`] and [`RetryCause`] (`fate`): what happened, per
//!   recipient; [`Retryable`] (`retryable`): what an outcome's retry resends.
//! * [`Backoff`] and [`parse_retry_after`] (`backoff`): when to retry.
//! * [`BuildError`], [`ResponseError`], [`ErrorCode`] (`error`): what went wrong, per stage.
//! * The legacy protocol: [`Message`], [`Target`], [`Options`], [`Notification`]
//!   (`message`); [`Gcm`] with [`Gcm::encode`] (`request`) and [`Gcm::decode`] (`response`);
//!   [`Message::check_limits`] (`limits`): the server's limits, checked early if you want.
#![deny(missing_docs)]

mod backoff;
mod error;
mod fate;
mod json;
mod limits;
mod message;
#[cfg(feature = "oauth")]
pub mod oauth;
mod outcome;
mod request;
mod response;
mod retryable;
pub mod v1;

pub use backoff::{Backoff, parse_retry_after};
pub use error::{BuildError, ErrorCode, ErrorKind, RawBody, ResponseError};
pub use fate::{Fate, RetryCause};
pub use limits::{LimitViolation, MAX_PAYLOAD_BYTES, MAX_TIME_TO_LIVE, is_reserved_data_key, payload_size};
pub use message::{Format, MAX_REGISTRATION_IDS, Message, Notification, Options, Priority, Target};
pub use outcome::Outcome;
pub use request::{CONTENT_TYPE_JSON, CONTENT_TYPE_PLAIN_TEXT, FCM_URL, GCM_HTTP_URL, GCM_URL, Gcm};
pub use retryable::Retryable;

/// Re-exported so that callers build requests and responses with the same `http` version.
pub use http;
/// Re-exported so that callers name the generator trait of the same `rand_core` version.
pub use rand_core;
