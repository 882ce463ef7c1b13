//! FCM HTTP v1, the endpoint Firebase serves today: the same sans-IO design and the same
//! result model as the legacy protocol.
//!
//! A v1 request carries one message to one target, authorized by an OAuth2 access token
//! (see [`crate::oauth`], feature `oauth`). A legacy multicast becomes a fan-out — one
//! request per token ([`Message::fan_out`], [`Message::from_legacy`]) — whose replies
//! [`Fcm::outcome`] folds into one [`Outcome`](crate::Outcome), with the same buckets:
//! success, not registered, failed, retry.
//!
//! ```
//! use std::time::SystemTime;
//! use gcm_proto::v1::{Fcm, Message};
//!
//! let fcm = Fcm::new("my-project")?;
//! let messages = Message::token("").data("kind", "sync").fan_out(["tokA", "tokB"]);
//! let request = fcm.encode(&messages[0], "ya29.access-token")?;
//! assert_eq!(request.uri(), "https://fcm.googleapis.com/v1/projects/my-project/messages:send");
//! assert_eq!(request.body().as_slice(), br#"{"message":{"token":"tokA","data":{"kind":"sync"}}}"#);
//!
//! // The two answers, as any HTTP client received them:
//! let ok = http::Response::new(r#"{"name":"projects/my-project/messages/0:1%a"}"#);
//! let gone = http::Response::builder().status(404).body(
//!     r#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND",
//!         "details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#,
//! )?;
//! let now = SystemTime::now();
//! let replies = vec![fcm.decode(&ok, now)?, fcm.decode(&gone, now)?];
//! let outcome = fcm.outcome(&messages, replies);
//! assert_eq!(outcome.success().collect::<Vec<_>>(), [("tokA", "projects/my-project/messages/0:1%a")]);
//! assert_eq!(outcome.not_registered().collect::<Vec<_>>(), ["tokB"]);
//! assert_eq!(outcome.retry_v1(&messages), None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod convert;
mod message;
mod request;
mod response;

pub use convert::ConversionError;
pub use message::{
    AndroidConfig, AndroidPriority, ApnsConfig, FcmOptions, Message, Notification, Target, WebpushConfig,
};
pub use request::{FCM_V1_BASE_URL, Fcm, encode_body};
pub use response::Reply;
