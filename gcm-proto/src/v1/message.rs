//! The FCM HTTP v1 message: one target, a string-valued `data` map, a notification, and the
//! per-platform blocks; and the multicast, one content to many tokens. Plain data, like
//! the legacy [`Message`](crate::Message).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use serde_json::{Map, Value};

use super::android::{AndroidConfig, AndroidPriority};
use super::apns::ApnsConfig;
use super::webpush::WebpushConfig;
use crate::retryable::{Retryable, sealed::Sealed};

/// Who receives a v1 message: exactly one of a token, a topic, a condition or a Firebase
/// installation id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Target {
    /// `token`: one registration token.
    Token(String),
    /// `topic`: a topic name, without the legacy `/topics/` prefix.
    Topic(String),
    /// `condition`: a boolean expression over topics, e.g. `'a' in topics && 'b' in topics`.
    Condition(String),
    /// `fid`: a Firebase installation id, which Google's newer SDKs prefer to a token.
    Fid(String),
}

impl Target {
    /// The recipient as an [`Outcome`](crate::Outcome) names it: the token, `/topics/<name>`
    /// (as in the legacy protocol), or the condition.
    pub fn recipient(&self) -> String {
        match self {
            Self::Token(token) => token.clone(),
            Self::Topic(topic) => format!("/topics/{topic}"),
            Self::Condition(condition) => condition.clone(),
            Self::Fid(fid) => fid.clone(),
        }
    }
}

/// `notification`: the basic notification shown on every platform.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the fields are the protocol's, named as on the wire
pub struct Notification {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// An `https://` URL of an image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Fields this crate does not name, sent verbatim (the server validates them).
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl Notification {
    /// A notification with a title and a body.
    pub fn new(title: impl Into<String>, body: impl Into<String>) -> Self {
        Self { title: Some(title.into()), body: Some(body.into()), ..Self::default() }
    }
}

/// `fcm_options`: options for every platform.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FcmOptions {
    /// `analytics_label`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytics_label: Option<String>,
    /// Fields this crate does not name, sent verbatim (the server validates them).
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Everything a v1 message carries but its target: a `data` map of strings, an optional
/// notification, the per-platform blocks and `validate_only`. A [`Multicast`] sends one
/// `Content` to many tokens; a [`Message`] sends it to one target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Content {
    /// `data`: the custom payload, string values only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// `notification`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
    /// `android`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub android: Option<AndroidConfig>,
    /// `apns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apns: Option<ApnsConfig>,
    /// `webpush`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webpush: Option<WebpushConfig>,
    /// `fcm_options`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fcm_options: Option<FcmOptions>,
    /// `validate_only` (beside `message` on the wire): the server checks the message and
    /// answers with a fake id, delivering nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub validate_only: bool,
    /// Fields of `message` this crate does not name, sent verbatim beside the others (the
    /// server validates them): nothing a caller writes is dropped. A target (`token`,
    /// `topic`, `condition`, `fid`) here is the caller's to refuse; it is not one.
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl Content {
    /// No payload and no option.
    pub fn new() -> Self {
        Self::default()
    }

    fn content_mut(&mut self) -> &mut Content {
        self
    }
}

/// An FCM HTTP v1 message to one [`Target`]: a token, a topic or a condition.
///
/// To send one content to many tokens, use a [`Multicast`] instead: the content is
/// stored and encoded once.
///
/// ```
/// use std::time::Duration;
/// use gcm_proto::v1::{AndroidPriority, Message, Notification, Target};
///
/// let message = Message::topic("news")
///     .data("kind", "sync")
///     .notification(Notification::new("Hello", "World"))
///     .android_priority(AndroidPriority::High)
///     .android_ttl(Duration::from_secs(3600));
/// assert_eq!(message.target, Target::Topic("news".into()));
/// assert_eq!(message.content.data["kind"], "sync");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who receives the message.
    pub target: Target,
    /// What it carries.
    #[serde(flatten)]
    pub content: Content,
}

impl Message {
    /// `content` to `target`.
    pub fn new(target: Target, content: Content) -> Self {
        Self { target, content }
    }

    /// A message to one registration token.
    pub fn token(token: impl Into<String>) -> Self {
        Self::with_target(Target::Token(token.into()))
    }

    /// A message to a topic; a legacy `/topics/` prefix is removed.
    pub fn topic(name: &str) -> Self {
        Self::with_target(Target::Topic(name.strip_prefix("/topics/").unwrap_or(name).to_owned()))
    }

    /// A message to the devices subscribed to a combination of topics.
    pub fn condition(expression: impl Into<String>) -> Self {
        Self::with_target(Target::Condition(expression.into()))
    }

    /// A message to one Firebase installation id (`fid`).
    pub fn fid(id: impl Into<String>) -> Self {
        Self::with_target(Target::Fid(id.into()))
    }

    /// A message to `target` with no payload and no option.
    pub fn with_target(target: Target) -> Self {
        Self::new(target, Content::default())
    }

    fn content_mut(&mut self) -> &mut Content {
        &mut self.content
    }
}

/// One [`Content`] to many registration tokens: what Firebase Admin calls
/// `sendEachForMulticast`. v1 has no multicast on the wire, so a client sends one request
/// per token, but the content is kept (and, by [`Template`](super::Template), encoded)
/// once, and the token list is shared: cloning a multicast or building its retry copies
/// neither.
///
/// ```
/// use gcm_proto::v1::{Multicast, Notification};
///
/// let multicast = Multicast::new(["token-a", "token-b"])
///     .data("kind", "sync")
///     .notification(Notification::new("Hello", "World"));
/// assert_eq!(multicast.tokens(), ["token-a", "token-b"]);
/// assert_eq!(multicast.content().data["kind"], "sync");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Multicast {
    content: Arc<Content>,
    tokens: Arc<[String]>,
    /// What the recipients are: registration tokens (the default) or installation ids.
    #[serde(default, skip_serializing_if = "Recipients::is_tokens")]
    recipients: Recipients,
}

/// What a [`Multicast`]'s recipients are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipients {
    /// Registration tokens, sent as `token`.
    #[default]
    Tokens,
    /// Firebase installation ids, sent as `fid` (Firebase Admin's `FidMulticastMessage`).
    Fids,
}

impl Recipients {
    fn is_tokens(&self) -> bool {
        *self == Self::Tokens
    }

    /// The target of one recipient.
    pub fn target(self, recipient: String) -> Target {
        match self {
            Self::Tokens => Target::Token(recipient),
            Self::Fids => Target::Fid(recipient),
        }
    }
}

impl Multicast {
    /// No content yet, to these tokens in order.
    pub fn new<I, S>(tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_content(Content::default(), tokens)
    }

    /// `content` to these tokens in order.
    pub fn with_content<I, S>(content: Content, tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tokens = tokens.into_iter().map(Into::into).collect();
        Self { content: Arc::new(content), tokens, recipients: Recipients::Tokens }
    }

    /// No content yet, to these Firebase installation ids in order (sent as `fid`).
    pub fn fids<I, S>(fids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self { recipients: Recipients::Fids, ..Self::new(fids) }
    }

    /// `content` to a token list shared with another value (a legacy multicast).
    pub(super) fn shared(content: Content, tokens: Arc<[String]>) -> Self {
        Self { content: Arc::new(content), tokens, recipients: Recipients::Tokens }
    }

    /// What the recipients are: tokens or installation ids.
    pub fn recipient_kind(&self) -> Recipients {
        self.recipients
    }

    /// The recipients (tokens or installation ids), in order.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The content every token receives.
    pub fn content(&self) -> &Content {
        &self.content
    }

    /// The message token `index` receives, if there is one: what [`Fcm::encode`](super::Fcm::encode)
    /// of it gives is what the multicast sends.
    pub fn message(&self, index: usize) -> Option<Message> {
        let token = self.tokens.get(index)?;
        Some(Message::new(self.recipients.target(token.clone()), Content::clone(&self.content)))
    }

    fn content_mut(&mut self) -> &mut Content {
        Arc::make_mut(&mut self.content)
    }
}

impl Sealed for Multicast {}

impl Retryable for Multicast {
    fn recipients(&self) -> Arc<[String]> {
        Arc::clone(&self.tokens)
    }

    fn with_recipients(&self, recipients: Vec<String>) -> Self {
        Self { content: Arc::clone(&self.content), tokens: recipients.into(), recipients: self.recipients }
    }
}

/// FCM v1 messages sent together, each with its own target and content (Firebase Admin's
/// `sendEach`): what the [`Outcome`](crate::Outcome) of such a send answers, one fate per
/// message in order, and what its retry resends (the pending messages, picked by position).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Messages(Vec<Message>);

impl Messages {
    /// The messages, in the order their fates will follow.
    pub fn new(messages: impl IntoIterator<Item = Message>) -> Self {
        Self(messages.into_iter().collect())
    }

    /// The messages.
    pub fn as_slice(&self) -> &[Message] {
        &self.0
    }

    /// The messages, owned.
    pub fn into_vec(self) -> Vec<Message> {
        self.0
    }
}

impl From<Vec<Message>> for Messages {
    fn from(messages: Vec<Message>) -> Self {
        Self(messages)
    }
}

impl Sealed for Messages {}

impl Retryable for Messages {
    fn recipients(&self) -> Arc<[String]> {
        self.0.iter().map(|message| message.target.recipient()).collect()
    }

    /// The messages to these recipients, in order (a recipient named twice keeps two).
    fn with_recipients(&self, recipients: Vec<String>) -> Self {
        let mut wanted: BTreeMap<String, usize> = BTreeMap::new();
        for recipient in recipients {
            *wanted.entry(recipient).or_default() += 1;
        }
        let mut take = |message: &&Message| match wanted.get_mut(&message.target.recipient()) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        };
        Self(self.0.iter().filter(&mut take).cloned().collect())
    }

    /// Every message: each has its own content.
    fn kept(&self) -> Self {
        self.clone()
    }

    fn resend(&self, positions: &[usize], _recipients: Vec<String>) -> Self {
        Self(positions.iter().filter_map(|&position| self.0.get(position).cloned()).collect())
    }
}

/// The setters of a [`Content`], on every type that carries one.
macro_rules! content_setters {
    ($($kind:ty),*) => {$(
        impl $kind {
            /// Adds one `data` entry.
            pub fn data(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
                self.content_mut().data.insert(key.into(), value.into());
                self
            }

            /// Sets `notification`.
            pub fn notification(mut self, notification: Notification) -> Self {
                self.content_mut().notification = Some(notification);
                self
            }

            /// Sets `android.priority`.
            pub fn android_priority(mut self, priority: AndroidPriority) -> Self {
                self.content_mut().android.get_or_insert_with(AndroidConfig::default).priority = Some(priority);
                self
            }

            /// Sets `android.ttl` (at most 28 days; whole seconds as `"3600s"`).
            pub fn android_ttl(mut self, ttl: std::time::Duration) -> Self {
                self.content_mut().android.get_or_insert_with(AndroidConfig::default).ttl = Some(ttl);
                self
            }

            /// Sets `android.collapse_key`.
            pub fn android_collapse_key(mut self, key: impl Into<String>) -> Self {
                self.content_mut().android.get_or_insert_with(AndroidConfig::default).collapse_key = Some(key.into());
                self
            }

            /// Sets `android`, replacing what the other `android_*` setters set.
            pub fn android(mut self, android: AndroidConfig) -> Self {
                self.content_mut().android = Some(android);
                self
            }

            /// Sets `apns`.
            pub fn apns(mut self, apns: ApnsConfig) -> Self {
                self.content_mut().apns = Some(apns);
                self
            }

            /// Sets `webpush`.
            pub fn webpush(mut self, webpush: WebpushConfig) -> Self {
                self.content_mut().webpush = Some(webpush);
                self
            }

            /// Sets `fcm_options.analytics_label`.
            pub fn analytics_label(mut self, label: impl Into<String>) -> Self {
                self.content_mut().fcm_options.get_or_insert_with(FcmOptions::default).analytics_label = Some(label.into());
                self
            }

            /// Sets `fcm_options`.
            pub fn fcm_options(mut self, options: FcmOptions) -> Self {
                self.content_mut().fcm_options = Some(options);
                self
            }

            /// Sets `validate_only`.
            pub fn validate_only(mut self, on: bool) -> Self {
                self.content_mut().validate_only = on;
                self
            }
        }
    )*};
}

content_setters!(Content, Message, Multicast);
