//! FCM HTTP v1, the endpoint Firebase serves today: the same sans-IO design and the same
//! result model as the legacy protocol.
//!
//! A v1 request carries one message to one target, authorized by an OAuth2 access token
//! (see the `oauth` module, feature `oauth`). A [`Multicast`] — one [`Content`] to many
//! tokens, what a legacy multicast becomes ([`Converted::from_legacy`]) — is sent as one
//! request per token, its content encoded once ([`Template`]); [`Fcm::outcome`] folds the
//! replies into one [`Outcome`](crate::Outcome), with the same buckets: success, not
//! registered, failed, retry. Topics and conditions are single [`Message`]s.
//!
//! ```
//! use std::time::SystemTime;
//! use gcm_proto::v1::{Fcm, Multicast, Template};
//!
//! let fcm = Fcm::new("my-project")?;
//! let multicast = Multicast::new(["tokA", "tokB"]).data("kind", "sync");
//! let template = Template::new(multicast.content());
//! let request = fcm.encode_token(&template, "tokA", "ya29.access-token")?;
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
//! let outcome = fcm.outcome(&multicast, replies);
//! assert_eq!(outcome.success().collect::<Vec<_>>(), [("tokA", "projects/my-project/messages/0:1%a")]);
//! assert_eq!(outcome.not_registered().collect::<Vec<_>>(), ["tokB"]);
//! assert_eq!(outcome.retry(), None); // nothing to resend
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod android;
mod apns;
mod check;
mod condition;
mod convert;
pub mod duration;
mod message;
mod request;
mod response;
mod topics;
mod webpush;
mod wire;

pub use android::{
    AndroidConfig, AndroidFcmOptions, AndroidNotification, AndroidPriority, Color, LightSettings, NotificationPriority,
    Proxy, Visibility,
};
pub use apns::{
    Alert, ApnsConfig, ApnsFcmOptions, ApnsPayload, Aps, ApsAlert, CriticalSound, InterruptionLevel, Sound,
};
pub use check::{MAX_TOPIC_PAYLOAD_BYTES, Problem, Violation, check, is_reserved_data_key};
pub use condition::{Condition, ConditionError, MAX_CONDITION_TOPICS, MAX_TOPIC_NAME, is_valid_topic};
pub use convert::{ConversionError, Converted};
pub use message::{Content, FcmOptions, Message, Messages, Multicast, Notification, Recipients, Target};
pub use request::{FCM_V1_BASE_URL, Fcm, Template, encode_body};
pub use response::Reply;
pub use topics::{IID_BASE_URL, MAX_SUBSCRIPTION_TOKENS, Subscription, TopicAction};
pub use webpush::{WebpushAction, WebpushConfig, WebpushFcmOptions, WebpushNotification};
