//! The Google Cloud Messaging HTTP protocol (GCM, and the identical FCM "legacy" endpoint)
//! without IO.
//!
//! This crate turns a [`Message`] into an [`http::Request`] and the server's
//! [`http::Response`] into an [`Outcome`] that says, for every recipient, what happened and
//! what to do next. What moves the bytes is up to you: `gcm-hyper`, any other HTTP client,
//! or a test that writes responses by hand.
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
//! # Encode, send with anything, decode
//! ```
//! use std::time::{Duration, SystemTime};
//! use gcm_proto::{ErrorCode, Gcm, Message};
//!
//! let gcm = Gcm::new("my-api-key")?;
//! let message = Message::multicast(["tokA", "tokB", "tokC", "tokD"]).data("kind", "sync");
//!
//! let request = gcm.encode(&message)?;
//! assert_eq!(request.uri(), "https://fcm.googleapis.com/fcm/send");
//! assert_eq!(
//!     request.body().as_slice(),
//!     br#"{"registration_ids":["tokA","tokB","tokC","tokD"],"data":{"kind":"sync"}}"#
//! );
//!
//! // Send `request` with the HTTP client of your choice; here is what the server answered.
//! let response = http::Response::builder()
//!     .status(200)
//!     .header("retry-after", "30")
//!     .body(
//!         r#"{"multicast_id":216,"success":2,"failure":2,"canonical_ids":1,"results":[
//!             {"message_id":"0:1%a"},
//!             {"message_id":"0:2%a","registration_id":"tokB2"},
//!             {"error":"NotRegistered"},
//!             {"error":"Unavailable"}]}"#,
//!     )?;
//! let outcome = gcm.decode(&message, &response, SystemTime::now())?;
//!
//! assert_eq!(outcome.success().collect::<Vec<_>>(), [("tokA", "0:1%a"), ("tokB", "0:2%a")]);
//! assert_eq!(outcome.canonical().collect::<Vec<_>>(), [("tokB", "tokB2")]); // update your database
//! assert_eq!(outcome.not_registered().collect::<Vec<_>>(), ["tokC"]); // remove from your database
//! assert_eq!(outcome.failed().count(), 0);
//!
//! // Schedule the retry in your job queue: only tokD, after the server's Retry-After.
//! let retry = outcome.retry().expect("tokD needs a retry"); // built from the outcome alone
//! assert_eq!(retry.tokens(), ["tokD"]);
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
//! # Where things are
//! * [`Message`], [`Target`], [`Options`], [`Notification`]: what to send.
//! * [`Gcm`]: API key, endpoint and backoff; [`Gcm::encode`] and [`Gcm::decode`].
//! * [`Outcome`] and [`Fate`]: what happened, per recipient.
//! * [`Backoff`] and [`parse_retry_after`]: when to retry.
//! * [`BuildError`], [`ResponseError`], [`ErrorCode`]: what went wrong, per stage.
//! * [`Message::check_limits`]: the server's limits, checked early if you want.
//! * [`v1`]: FCM HTTP v1, the endpoint Firebase serves today, into the same [`Outcome`];
//!   `oauth` (feature `oauth`): its service-account access tokens.
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
