//! Messages: who receives them, what they carry, and the protocol's options.
//!
//! A [`Message`] is plain data. It serializes with serde (as JSON, for instance) and
//! deserializes to an equal value, so a retry can wait in a job queue and be sent later by
//! another process.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::retryable::Retryable;

/// Most registration tokens in one multicast.
pub const MAX_REGISTRATION_IDS: usize = 1000;

/// How the request body is encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `application/json`: any target, any option, nested data values.
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`: one registration token, scalar values only.
    PlainText,
}

/// Who receives a message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// `registration_ids`: a multicast to 1..=1000 registration tokens (JSON only).
    /// Shared, so that cloning a message and decoding its outcome copy no token.
    RegistrationIds(Arc<[String]>),
    /// `to`: one registration token, a device-group notification key, or `/topics/<name>`.
    /// In plain text this is the `registration_id` field.
    To(String),
    /// `condition`: a boolean expression over topics, e.g. `'a' in topics && 'b' in topics`.
    Condition(String),
}

/// `priority`: how urgently the server should deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// `"normal"`: may be delayed to save battery.
    Normal,
    /// `"high"`: delivered at once, may wake a sleeping device.
    High,
}

impl Priority {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::High => "high",
        }
    }
}

/// The protocol's message options. `None` fields are not sent; `Some(false)` and
/// `Some(0)` are sent, since they say something the server's default does not.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// `collapse_key`: only the newest stored message with this key is delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collapse_key: Option<String>,
    /// `priority`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// `content_available`: iOS `content-available` (wakes the app).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_available: Option<bool>,
    /// `mutable_content`: iOS 10+ `mutable-content`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mutable_content: Option<bool>,
    /// `delay_while_idle`: hold until the device is active (no longer honoured by FCM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_while_idle: Option<bool>,
    /// `time_to_live` in seconds; the server accepts 0..=2419200 (28 days, its default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_live: Option<u32>,
    /// `restricted_package_name`: only tokens of this Android package receive the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restricted_package_name: Option<String>,
    /// `dry_run`: the server validates the request but delivers nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Options this crate does not know, sent verbatim (by key order), so that a new server
    /// option needs no new release. The server validates them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
}

impl Options {
    /// True when no option is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The `notification` payload: what the device displays without the app's help.
/// Every field is optional; `extra` carries keys this crate does not name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the fields are the protocol's, named as on the wire
pub struct Notification {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub badge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `#rrggbb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub click_action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub android_channel_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_loc_key: Option<String>,
    /// A JSON array, or the array as a string, as the server accepts both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_loc_args: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_loc_key: Option<String>,
    /// A JSON array, or the array as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_loc_args: Option<Value>,
    /// Keys this crate does not name, sent verbatim.
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl Notification {
    /// A notification with a title and a body.
    pub fn new(title: impl Into<String>, body: impl Into<String>) -> Self {
        Self { title: Some(title.into()), body: Some(body.into()), ..Self::default() }
    }
}

/// A message to send: a target, a format, a data payload, an optional notification, options.
///
/// Build one with [`Message::multicast`], [`Message::to`], [`Message::topic`],
/// [`Message::condition`] or [`Message::plain_text`], then chain the setters:
///
/// ```
/// use gcm_proto::{Message, Priority};
///
/// let message = Message::multicast(["token-a", "token-b"])
///     .data("kind", "sync")
///     .collapse_key("inbox")
///     .time_to_live(3600)
///     .priority(Priority::High);
/// assert_eq!(message.tokens().len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who receives the message.
    pub target: Target,
    /// How the body is encoded.
    #[serde(default)]
    pub format: Format,
    /// The custom payload. Devices receive strings: prefer string values.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub data: Map<String, Value>,
    /// What the device displays (JSON only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
    /// The protocol's options.
    #[serde(default, skip_serializing_if = "Options::is_empty")]
    pub options: Options,
}

impl Message {
    /// A JSON message to these registration tokens (`registration_ids`).
    pub fn multicast<I, S>(tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_target(Target::RegistrationIds(tokens.into_iter().map(Into::into).collect()))
    }

    /// A JSON message to one registration token, notification key or `/topics/<name>` (`to`).
    pub fn to(recipient: impl Into<String>) -> Self {
        Self::with_target(Target::To(recipient.into()))
    }

    /// A JSON message to a topic; `/topics/` is prepended unless already there.
    pub fn topic(name: &str) -> Self {
        match name.strip_prefix(TOPIC_PREFIX) {
            Some(_) => Self::to(name),
            None => Self::to(format!("{TOPIC_PREFIX}{name}")),
        }
    }

    /// A JSON message to the devices subscribed to a combination of topics.
    pub fn condition(expression: impl Into<String>) -> Self {
        Self::with_target(Target::Condition(expression.into()))
    }

    /// A plain-text (form-encoded) message to one registration token.
    pub fn plain_text(token: impl Into<String>) -> Self {
        Self { format: Format::PlainText, ..Self::to(token) }
    }

    /// A JSON message to `target` with no payload and no option.
    pub fn with_target(target: Target) -> Self {
        Self { target, format: Format::Json, data: Map::new(), notification: None, options: Options::default() }
    }

    /// The recipients whose results the response reports, in request order: the
    /// registration tokens, or the single `to` / `condition` value.
    pub fn tokens(&self) -> &[String] {
        match &self.target {
            Target::RegistrationIds(tokens) => tokens,
            Target::To(one) | Target::Condition(one) => std::slice::from_ref(one),
        }
    }

    /// The recipients as a shared list: free for a multicast, one small allocation for a
    /// single recipient.
    pub(crate) fn shared_tokens(&self) -> Arc<[String]> {
        match &self.target {
            Target::RegistrationIds(tokens) => Arc::clone(tokens),
            Target::To(one) | Target::Condition(one) => Arc::from([one.clone()]),
        }
    }

    /// The same message (payload, notification, options, format) to other recipients.
    /// A multicast keeps `registration_ids`; a single-recipient message keeps its target.
    pub fn with_tokens(&self, tokens: Vec<String>) -> Self {
        let target = match &self.target {
            Target::RegistrationIds(_) => Target::RegistrationIds(tokens.into()),
            single => single.clone(),
        };
        Self { target, ..self.clone() }
    }

    /// The message as requests of at most [`MAX_REGISTRATION_IDS`]
    /// (1000) registration tokens each, in token order: the message itself when it fits or
    /// is not a multicast. Send each part and fold the parts' outcomes with
    /// [`Outcome::append`](crate::Outcome::append), in order.
    pub fn split(&self) -> Vec<Message> {
        match &self.target {
            Target::RegistrationIds(tokens) if tokens.len() > MAX_REGISTRATION_IDS => {
                tokens.chunks(MAX_REGISTRATION_IDS).map(|part| self.with_tokens(part.to_vec())).collect()
            }
            _ => vec![self.clone()],
        }
    }

    /// Adds one `data` entry.
    pub fn data(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }

    /// Sets the `notification` payload.
    pub fn notification(mut self, notification: Notification) -> Self {
        self.notification = Some(notification);
        self
    }

    /// Sets `collapse_key`.
    pub fn collapse_key(mut self, key: impl Into<String>) -> Self {
        self.options.collapse_key = Some(key.into());
        self
    }

    /// Sets `time_to_live` in seconds.
    pub fn time_to_live(mut self, seconds: u32) -> Self {
        self.options.time_to_live = Some(seconds);
        self
    }

    /// Sets `delay_while_idle`.
    pub fn delay_while_idle(mut self, on: bool) -> Self {
        self.options.delay_while_idle = Some(on);
        self
    }

    /// Sets `restricted_package_name`.
    pub fn restricted_package_name(mut self, package: impl Into<String>) -> Self {
        self.options.restricted_package_name = Some(package.into());
        self
    }

    /// Sets `dry_run`.
    pub fn dry_run(mut self, on: bool) -> Self {
        self.options.dry_run = Some(on);
        self
    }

    /// Sets `priority`.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.options.priority = Some(priority);
        self
    }

    /// Sets `content_available`.
    pub fn content_available(mut self, on: bool) -> Self {
        self.options.content_available = Some(on);
        self
    }

    /// Sets `mutable_content`.
    pub fn mutable_content(mut self, on: bool) -> Self {
        self.options.mutable_content = Some(on);
        self
    }

    /// Sets an option this crate does not know by name; it is sent verbatim.
    pub fn option(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.options.extra.insert(name.into(), value.into());
        self
    }
}

const TOPIC_PREFIX: &str = "/topics/";

impl crate::retryable::sealed::Sealed for Message {}

impl Retryable for Message {
    fn recipients(&self) -> Arc<[String]> {
        self.shared_tokens()
    }

    fn with_recipients(&self, recipients: Vec<String>) -> Self {
        self.with_tokens(recipients)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_adds_the_prefix_once() {
        assert_eq!(Message::topic("news").target, Target::To("/topics/news".into()));
        assert_eq!(Message::topic("/topics/news").target, Target::To("/topics/news".into()));
        assert_eq!(Message::to(String::from("t")).tokens(), ["t"]);
    }

    #[test]
    fn with_tokens_keeps_everything_but_the_recipients() {
        let message = Message::multicast(["a", "b", "c"]).data("k", "v").dry_run(true);
        let retry = message.with_tokens(vec!["b".into()]);
        assert_eq!(retry.tokens(), ["b"]);
        assert_eq!(retry.data, message.data);
        assert_eq!(retry.options, message.options);
        let single = Message::plain_text("x").data("k", 1);
        assert_eq!(single.with_tokens(vec![]), single);
    }
}
