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

//! By job: `message` (the message, the multicast, the messages), `android`,
//! `apns` and `webpush` (the platform blocks), [`duration`] (protobuf durations), `wire`
//! (the enums with an escape, the setters), `check` and `condition` (what FCM refuses),
//! `request` and `response` (encoding, decoding), `topics` (topic management), `convert`
//! (from legacy).
//!
//! # From Firebase Admin
//!
//! Each Firebase Admin messaging call and type (Node, Python, Go, Java name them alike), and
//! its equivalent here. gcm-hyper's `FcmClient` does the IO; everything below it is plain,
//! serializable data.
//!
//! | Firebase Admin | here |
//! |---|---|
//! | `send(message)` | gcm-hyper `FcmClient::send(&Message)`; sans-IO [`Fcm::encode`] and [`Fcm::decode`] |
//! | `send(message, dryRun)` | [`Message::validate_only`] |
//! | `sendEach(messages)` (at most 500) | `FcmClient::send_each(&Messages)` (no cap); [`Messages`], [`Fcm::outcome`] |
//! | `sendEachForMulticast(MulticastMessage)` (at most 500 tokens) | `FcmClient::send_multicast(&Multicast)` (no cap, the content encoded once: [`Template`]) |
//! | `FidMulticastMessage` / `Message.fid` | [`Multicast::fids`], [`Message::fid`] |
//! | `sendAll`, `sendMulticast` (the batch endpoint, shut down in 2024) | none: use the two above |
//! | `subscribeToTopic(tokens, topic)` (at most 1000) | `FcmClient::subscribe(topic, tokens)` (no cap, 1000 a call); sans-IO [`Subscription`], [`Fcm::encode_subscription`], [`Fcm::decode_subscription`] |
//! | `unsubscribeFromTopic(tokens, topic)` | `FcmClient::unsubscribe(topic, tokens)` |
//! | `TopicManagementResponse` (`successCount`, `failureCount`, `errors[{index, error}]`) | [`Outcome`](crate::Outcome)`<Subscription>`: success, not registered, failed and retry, by token |
//! | `BatchResponse` (`responses[]`, `successCount`, `failureCount`) | gcm-hyper `V1Report`: one [`Outcome`](crate::Outcome) in order, plus each message's detail or error |
//! | `messaging/registration-token-not-registered` | [`Fate::NotRegistered`](crate::Fate::NotRegistered) (remove the token) |
//! | `messaging/invalid-argument`, `mismatched-credential`, `third-party-auth-error` | [`Fate::Failed`](crate::Fate::Failed) with the [`ErrorCode`](crate::ErrorCode) |
//! | `messaging/server-unavailable`, `internal-error`, `message-rate-exceeded` (the SDK retries in place) | [`Fate::Retry`](crate::Fate::Retry) and [`Outcome::delay`](crate::Outcome::delay): you schedule the retry (`Retry-After`, else backoff with the cause's floor) |
//! | `Message` (`token`, `topic`, `condition`, `fid`) | [`Message`] and [`Target`] |
//! | `Notification` | [`Notification`] |
//! | `AndroidConfig`, `AndroidNotification`, `LightSettings`, `AndroidFcmOptions` | [`AndroidConfig`], [`AndroidNotification`], [`LightSettings`] (its color a [`Color`], [`Color::from_hex`] reads `#rrggbbaa`), [`AndroidFcmOptions`] |
//! | `priority`, `notificationPriority` / `priority`, `visibility`, `proxy` (strings) | [`AndroidPriority`], [`NotificationPriority`], [`Visibility`], [`Proxy`]: enums with `Other(String)` |
//! | `ttl`, `vibrateTimingsMillis`, `lightOnDurationMillis` (milliseconds) | [`std::time::Duration`], written `"3600s"` ([`duration`]) |
//! | `ApnsConfig`, `ApnsPayload`, `Aps`, `ApsAlert`, `CriticalSound`, `ApnsFcmOptions`, `liveActivityToken` | [`ApnsConfig`], [`ApnsPayload`], [`Aps`] (with `interruption-level` as [`InterruptionLevel`], and Live Activity keys), [`ApsAlert`] or a text ([`Alert`]), [`CriticalSound`] or a name ([`Sound`]), [`ApnsFcmOptions`] |
//! | `WebpushConfig`, `WebpushNotification`, `WebpushNotificationAction`, `WebpushFcmOptions` | [`WebpushConfig`], [`WebpushNotification`], [`WebpushAction`], [`WebpushFcmOptions`] |
//! | `FcmOptions` | [`FcmOptions`] |
//! | `customData` (APNs, Web Push), `[key: string]: any` | the `extra` map of every struct: kept when read, sent as written |
//! | the SDK's own checks (it throws before sending) | optional [`check`]: every [`Violation`] with its field's path (gcm-mock answers with the same rules) |
//! | `admin.initializeApp({credential})`, `GOOGLE_APPLICATION_CREDENTIALS` | gcm-hyper `FcmClient::from_key_file`, `application_default`; the pure half in the `oauth` module |
//! | `enableLegacyHttpTransport()` | none needed: gcm-hyper speaks HTTP/2, opening more connections when a server's stream limit is reached |

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
pub use request::{FCM_V1_BASE_URL, Fcm, IID_BASE_URL, Template, encode_body};
pub use response::Reply;
pub use topics::{MAX_SUBSCRIPTION_TOKENS, Subscription, TopicAction};
pub use webpush::{WebpushAction, WebpushConfig, WebpushFcmOptions, WebpushNotification};
