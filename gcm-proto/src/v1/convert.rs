//! From a legacy [`Message`](crate::Message) to the v1 multicast or message it becomes,
//! so that existing callers can move over without rewriting their messages.

use std::fmt;
use std::sync::Arc;

use serde_json::{Value, json};

use super::message::{Content, Message, Multicast, Notification, Target};
use super::{AndroidConfig, AndroidNotification, AndroidPriority, ApnsConfig, Aps};
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
        ttl: options.time_to_live.map(|seconds| std::time::Duration::from_secs(seconds.into())),
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
    let mut aps = Aps::default();
    if options.content_available == Some(true) {
        aps = aps.content_available();
    }
    if options.mutable_content == Some(true) {
        aps = aps.mutable_content();
    }

    if let Some(n) = &legacy.notification {
        message.notification = Some(Notification {
            title: n.title.clone(),
            body: n.body.clone(),
            image: n.image.clone(),
            ..Notification::default()
        });
        let mut fields = AndroidNotification {
            icon: n.icon.clone(),
            sound: n.sound.clone(),
            tag: n.tag.clone(),
            color: n.color.clone(),
            click_action: n.click_action.clone(),
            channel_id: n.android_channel_id.clone(),
            body_loc_key: n.body_loc_key.clone(),
            title_loc_key: n.title_loc_key.clone(),
            extra: n.extra.clone(),
            ..AndroidNotification::default()
        };
        // Legacy arguments are a JSON array or its text; anything else goes as it came.
        for (name, args, slot) in [
            ("body_loc_args", &n.body_loc_args, &mut fields.body_loc_args),
            ("title_loc_args", &n.title_loc_args, &mut fields.title_loc_args),
        ] {
            match args.as_ref().map(loc_args) {
                Some(Ok(list)) => *slot = Some(list),
                Some(Err(value)) => {
                    fields.extra.insert(name.to_owned(), value);
                }
                None => {}
            }
        }
        if fields != AndroidNotification::default() {
            android.notification = Some(fields);
        }
        if let Some(badge) = &n.badge {
            match badge.parse::<i64>() {
                Ok(number) => aps.badge = Some(number),
                Err(_) => {
                    aps.extra.insert("badge".into(), json!(badge));
                }
            }
        }
        if let Some(sound) = &n.sound {
            aps.sound = Some(sound.as_str().into());
        }
    }
    if aps != Aps::default() {
        apns = apns.aps(aps);
    }
    if android != AndroidConfig::default() {
        message.android = Some(android);
    }
    if apns != ApnsConfig::default() {
        message.apns = Some(apns);
    }
    message
}

/// Localization arguments as a list of strings: a JSON array of strings, or its text.
fn loc_args(value: &Value) -> Result<Vec<String>, Value> {
    let parsed = match value {
        Value::String(text) => serde_json::from_str(text).ok(),
        other => serde_json::from_value(other.clone()).ok(),
    };
    parsed.ok_or_else(|| value.clone())
}

fn string_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
