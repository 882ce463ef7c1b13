//! An optional local check of what FCM refuses with 400 `INVALID_ARGUMENT`, for callers who
//! want to fail before sending, and the rules gcm-mock answers with (one source of truth).
//! Encoding never applies it: the server stays the judge.

use std::fmt;

use serde_json::{Map, Value};

use super::condition::{Condition, MAX_CONDITION_TOPICS, MAX_TOPIC_NAME, is_valid_topic};
use super::message::{Content, Message, Target};
use crate::{MAX_PAYLOAD_BYTES, MAX_TIME_TO_LIVE};

/// The most `data` bytes of a message to a topic or a condition.
pub const MAX_TOPIC_PAYLOAD_BYTES: usize = 2048;

/// One thing FCM would refuse, with the field it blames, as a `BadRequest` field violation
/// names it (`message.android.ttl`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The field, from `message`.
    pub field: String,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a field.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A field FCM does not know, e.g. `priorty` in `message.android`.
    UnknownField {
        /// The name as sent.
        name: String,
    },
    /// A value FCM does not enumerate, e.g. `URGENT` for `message.android.priority`.
    UnknownValue {
        /// The value as sent.
        value: String,
    },
    /// A topic name outside `[a-zA-Z0-9-_.~%]{1,900}`.
    TopicName {
        /// The name.
        name: String,
    },
    /// A condition that does not parse.
    ConditionSyntax {
        /// What the parser expected, and where.
        error: String,
    },
    /// A condition naming more than five topics.
    TooManyTopics {
        /// How many it names.
        count: usize,
    },
    /// A `data` key FCM reserves: `from`, `message_type`, or one starting with `google.` or
    /// `gcm.`.
    ReservedDataKey {
        /// The key.
        key: String,
    },
    /// More `data` bytes (keys and values) than FCM takes: 4096, 2048 to a topic or a
    /// condition.
    PayloadTooBig {
        /// The size.
        bytes: usize,
        /// The limit for this target.
        limit: usize,
    },
    /// A TTL above 28 days.
    TtlTooLong {
        /// The TTL as written on the wire.
        ttl: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = &self.field;
        match &self.problem {
            Problem::UnknownField { name } => {
                write!(f, "Invalid JSON payload received. Unknown name \"{name}\" at '{field}': Cannot find field.")
            }
            Problem::UnknownValue { value } => write!(f, "Invalid value at '{field}', \"{value}\""),
            Problem::TopicName { name } => {
                write!(f, "Invalid topic name {name:?}: 1 to {MAX_TOPIC_NAME} of [a-zA-Z0-9-_.~%]")
            }
            Problem::ConditionSyntax { error } => write!(f, "Invalid condition expression: {error}"),
            Problem::TooManyTopics { count } => {
                write!(f, "Invalid condition expression: {count} topics, at most {MAX_CONDITION_TOPICS}")
            }
            Problem::ReservedDataKey { key } => write!(f, "Invalid data key {key:?}: the key is reserved"),
            Problem::PayloadTooBig { bytes, limit } => {
                write!(f, "Message is too big: {bytes} bytes of data, at most {limit}")
            }
            Problem::TtlTooLong { ttl } => {
                write!(f, "Invalid value at '{field}' ({ttl}): TTL is above {MAX_TIME_TO_LIVE}s (28 days)")
            }
        }
    }
}

impl std::error::Error for Violation {}

/// True for `data` keys FCM v1 refuses.
pub fn is_reserved_data_key(key: &str) -> bool {
    matches!(key, "from" | "message_type") || key.starts_with("google.") || key.starts_with("gcm.")
}

/// Checks `message` as FCM would: unknown fields and enumerated values anywhere FCM types
/// them (not inside `apns.payload` or `webpush.notification`, which it passes on), the
/// topic name, the condition, `data` keys and size, and the TTL. Every violation, in
/// field order.
///
/// ```
/// use gcm_proto::v1::{Message, check};
///
/// let message = Message::topic("bad topic!").data("from", "me");
/// let fields: Vec<_> = check(&message).into_iter().map(|v| v.field).collect();
/// assert_eq!(fields, ["message.topic", "message.data"]);
/// ```
pub fn check(message: &Message) -> Vec<Violation> {
    let mut out = Violations(Vec::new());
    let limit = match &message.target {
        Target::Topic(name) => {
            let name = name.strip_prefix("/topics/").unwrap_or(name);
            if !is_valid_topic(name) {
                out.push("message.topic", Problem::TopicName { name: name.to_owned() });
            }
            MAX_TOPIC_PAYLOAD_BYTES
        }
        Target::Condition(text) => {
            check_condition(text, &mut out);
            MAX_TOPIC_PAYLOAD_BYTES
        }
        Target::Token(_) | Target::Fid(_) => MAX_PAYLOAD_BYTES,
    };
    check_content(&message.content, limit, &mut out);
    out.0
}

struct Violations(Vec<Violation>);

impl Violations {
    fn push(&mut self, field: &str, problem: Problem) {
        self.0.push(Violation { field: field.to_owned(), problem });
    }

    fn unknown(&mut self, field: &str, extra: &Map<String, Value>) {
        for name in extra.keys() {
            self.push(field, Problem::UnknownField { name: name.clone() });
        }
    }

    /// A value of one of FCM's enumerations, unless FCM knows it.
    fn enumerated(&mut self, field: &str, value: Option<(&str, bool)>) {
        if let Some((value, false)) = value {
            self.push(field, Problem::UnknownValue { value: value.to_owned() });
        }
    }
}

fn check_condition(text: &str, out: &mut Violations) {
    match Condition::parse(text) {
        Err(error) => out.push("message.condition", Problem::ConditionSyntax { error: error.to_string() }),
        Ok(condition) => {
            let topics = condition.topics();
            if topics.len() > MAX_CONDITION_TOPICS {
                out.push("message.condition", Problem::TooManyTopics { count: topics.len() });
            }
            for name in topics.into_iter().filter(|name| !is_valid_topic(name)) {
                out.push("message.condition", Problem::TopicName { name: name.to_owned() });
            }
        }
    }
}

fn check_content(content: &Content, limit: usize, out: &mut Violations) {
    out.unknown("message", &content.extra);
    check_data("message.data", content.data.iter(), limit, out);
    if let Some(notification) = &content.notification {
        out.unknown("message.notification", &notification.extra);
    }
    if let Some(android) = &content.android {
        out.unknown("message.android", &android.extra);
        out.enumerated("message.android.priority", android.priority.as_ref().map(|v| (v.as_str(), v.is_known())));
        if let Some(ttl) = android.ttl.filter(|ttl| ttl.as_secs_f64() > f64::from(MAX_TIME_TO_LIVE)) {
            out.push("message.android.ttl", Problem::TtlTooLong { ttl: super::duration::text(ttl) });
        }
        check_data("message.android.data", android.data.iter(), limit, out);
        if let Some(notification) = &android.notification {
            let field = "message.android.notification";
            out.unknown(field, &notification.extra);
            let priority = notification.notification_priority.as_ref();
            out.enumerated(&format!("{field}.notification_priority"), priority.map(|v| (v.as_str(), v.is_known())));
            let visibility = notification.visibility.as_ref();
            out.enumerated(&format!("{field}.visibility"), visibility.map(|v| (v.as_str(), v.is_known())));
            let proxy = notification.proxy.as_ref();
            out.enumerated(&format!("{field}.proxy"), proxy.map(|v| (v.as_str(), v.is_known())));
            if let Some(light) = &notification.light_settings {
                out.unknown("message.android.notification.light_settings", &light.extra);
                if let Some(color) = &light.color {
                    out.unknown("message.android.notification.light_settings.color", &color.extra);
                }
            }
        }
        if let Some(options) = &android.fcm_options {
            out.unknown("message.android.fcm_options", &options.extra);
        }
    }
    if let Some(apns) = &content.apns {
        out.unknown("message.apns", &apns.extra);
        if let Some(options) = &apns.fcm_options {
            out.unknown("message.apns.fcm_options", &options.extra);
        }
    }
    if let Some(webpush) = &content.webpush {
        out.unknown("message.webpush", &webpush.extra);
        check_data("message.webpush.data", webpush.data.iter(), limit, out);
        if let Some(options) = &webpush.fcm_options {
            out.unknown("message.webpush.fcm_options", &options.extra);
        }
    }
    if let Some(options) = &content.fcm_options {
        out.unknown("message.fcm_options", &options.extra);
    }
}

fn check_data<'a>(
    field: &str,
    data: impl Iterator<Item = (&'a String, &'a String)>,
    limit: usize,
    out: &mut Violations,
) {
    let mut bytes = 0usize;
    for (key, value) in data {
        if is_reserved_data_key(key) {
            out.push(field, Problem::ReservedDataKey { key: key.clone() });
        }
        bytes = bytes.saturating_add(key.len()).saturating_add(value.len());
    }
    if bytes > limit {
        out.push(field, Problem::PayloadTooBig { bytes, limit });
    }
}
