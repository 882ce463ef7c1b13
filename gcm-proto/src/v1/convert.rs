//! From a legacy [`Message`](crate::Message) to the v1 multicast or message it becomes,
//! so that existing callers can move over without rewriting their messages.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::message::{AndroidConfig, AndroidPriority, ApnsConfig, Content, Message, Multicast, Notification, Target};
use crate::message::{Message as Legacy, Priority, Target as LegacyTarget};

/// A legacy field that has no place in a v1 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversionError {
    /// The legacy field, e.g. an extra option `notification_key`.
    pub field: String,
}

impl fmt::Display for ConversionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the legacy field {:?} has no FCM HTTP v1 equivalent", self.field)
    }
}

impl std::error::Error for ConversionError {}

/// What a legacy message becomes in FCM HTTP v1.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Converted {
    /// `registration_ids`, or `to` a token: one content to these tokens.
    Multicast(Multicast),
    /// `to` a topic, or a `condition`: one message (boxed: a message holds its whole
    /// content, a multicast shares it).
    Message(Box<Message>),
}

impl Converted {
    /// What a legacy message becomes in v1:
    ///
    /// * `registration_ids` and `to` a token → a [`Multicast`] to those tokens, in order;
    ///   `to` `/topics/x` → a [`Message`] to `topic`; `condition` → one to `condition`;
    /// * `data` values → strings (non-string values as their JSON text, which is what
    ///   devices received from the legacy endpoint);
    /// * `notification` → `notification` (title, body, image), Android's fields →
    ///   `android.notification` (`android_channel_id` as `channel_id`), `badge` and `sound`
    ///   also → the APNs `aps` dictionary;
    /// * `collapse_key` → `android.collapse_key` and the `apns-collapse-id` header;
    ///   `priority` → `android.priority` and `apns-priority` (10 high, 5 normal);
    ///   `time_to_live` → `android.ttl`; `restricted_package_name` → Android's;
    ///   `content_available` / `mutable_content` → `aps`; `dry_run` → `validate_only`;
    /// * `delay_while_idle` is dropped (FCM has ignored it since 2016).
    ///
    /// Extra options have no v1 place and are refused, rather than silently dropped.
    pub fn from_legacy(legacy: &Legacy) -> Result<Self, ConversionError> {
        if let Some(field) = legacy.options.extra.keys().next() {
            return Err(ConversionError { field: field.clone() });
        }
        let content = content(legacy);
        Ok(match &legacy.target {
            LegacyTarget::RegistrationIds(tokens) => Self::Multicast(Multicast::shared(content, Arc::clone(tokens))),
            LegacyTarget::To(to) => match to.strip_prefix("/topics/") {
                Some(topic) => Self::Message(Box::new(Message::new(Target::Topic(topic.to_owned()), content))),
                None => Self::Multicast(Multicast::with_content(content, [to])),
            },
            LegacyTarget::Condition(condition) => {
                Self::Message(Box::new(Message::new(Target::Condition(condition.clone()), content)))
            }
        })
    }
}

/// Everything but the target.
fn content(legacy: &Legacy) -> Content {
    let options = &legacy.options;
    let mut message = Content::new();
    message.data = legacy.data.iter().map(|(key, value)| (key.clone(), string_value(value))).collect();
    message.validate_only = options.dry_run.unwrap_or(false);

    let mut android = AndroidConfig {
        collapse_key: options.collapse_key.clone(),
        priority: options.priority.map(|p| match p {
            Priority::High => AndroidPriority::High,
            Priority::Normal => AndroidPriority::Normal,
        }),
        ttl: options.time_to_live,
        restricted_package_name: options.restricted_package_name.clone(),
        ..AndroidConfig::default()
    };
    let mut apns = ApnsConfig::default();
    if let Some(key) = &options.collapse_key {
        apns.headers.insert("apns-collapse-id".into(), key.clone());
    }
    if let Some(priority) = options.priority {
        apns.headers.insert("apns-priority".into(), if priority == Priority::High { "10" } else { "5" }.into());
    }
    let mut aps = Map::new();
    if options.content_available == Some(true) {
        aps.insert("content-available".into(), json!(1));
    }
    if options.mutable_content == Some(true) {
        aps.insert("mutable-content".into(), json!(1));
    }

    if let Some(n) = &legacy.notification {
        message.notification = Some(Notification {
            title: n.title.clone(),
            body: n.body.clone(),
            image: n.image.clone(),
            ..Notification::default()
        });
        let mut fields = Map::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                fields.insert(name.to_owned(), value);
            }
        };
        put("icon", n.icon.clone().map(Value::String));
        put("sound", n.sound.clone().map(Value::String));
        put("tag", n.tag.clone().map(Value::String));
        put("color", n.color.clone().map(Value::String));
        put("click_action", n.click_action.clone().map(Value::String));
        put("channel_id", n.android_channel_id.clone().map(Value::String));
        put("body_loc_key", n.body_loc_key.clone().map(Value::String));
        put("body_loc_args", n.body_loc_args.clone());
        put("title_loc_key", n.title_loc_key.clone().map(Value::String));
        put("title_loc_args", n.title_loc_args.clone());
        fields.extend(n.extra.clone());
        if !fields.is_empty() {
            android.notification = Some(fields);
        }
        if let Some(badge) = &n.badge {
            aps.insert("badge".into(), badge.parse::<u64>().map_or_else(|_| json!(badge), |b| json!(b)));
        }
        if let Some(sound) = &n.sound {
            aps.insert("sound".into(), json!(sound));
        }
    }
    if !aps.is_empty() {
        apns.payload = Some(Map::from_iter([("aps".to_owned(), Value::Object(aps))]));
    }
    if android != AndroidConfig::default() {
        message.android = Some(android);
    }
    if apns != ApnsConfig::default() {
        message.apns = Some(apns);
    }
    message
}

fn string_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
