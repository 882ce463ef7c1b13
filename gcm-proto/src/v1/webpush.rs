//! `webpush`: the options for browsers. `notification` is a Web Notification object, which
//! FCM passes on unchecked: typed here as the Notifications API names its fields
//! (`WebpushNotification`, `WebpushAction`), with `extra` for the rest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::wire::setters;

/// `webpush`: Web Push headers, data, a notification and FCM's options for it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebpushConfig {
    /// `headers`: Web Push headers (`TTL`, `Urgency`, `Topic`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `data`: replaces the message's `data` for web push.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// `notification`: a Web Notification object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<WebpushNotification>,
    /// `fcm_options`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fcm_options: Option<WebpushFcmOptions>,
    /// Fields this crate does not name, sent verbatim (the server validates them).
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl WebpushConfig {
    /// No option.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one Web Push header, e.g. `("Urgency", "high")`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Adds one `data` entry.
    pub fn data(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }
}

setters!(WebpushConfig { notification: WebpushNotification, fcm_options: WebpushFcmOptions });

/// `webpush.notification`, as the Notifications API names its options.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the fields are the Notifications API's, named as on the wire
pub struct WebpushNotification {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub badge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `auto`, `ltr` or `rtl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renotify: Option<bool>,
    #[serde(rename = "requireInteraction", skip_serializing_if = "Option::is_none")]
    pub require_interaction: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silent: Option<bool>,
    /// Milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Vibration and pause durations in milliseconds, alternately.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vibrate: Option<Vec<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<WebpushAction>>,
    /// Any JSON the service worker reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Options this crate does not name, sent verbatim.
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl WebpushNotification {
    /// A notification with a title and a body.
    pub fn new(title: impl Into<String>, body: impl Into<String>) -> Self {
        Self { title: Some(title.into()), body: Some(body.into()), ..Self::default() }
    }

    /// Adds one action button.
    pub fn action(mut self, action: WebpushAction) -> Self {
        self.actions.get_or_insert_with(Vec::new).push(action);
        self
    }
}

setters!(WebpushNotification {
    title: String,
    body: String,
    icon: String,
    badge: String,
    image: String,
    lang: String,
    tag: String,
    dir: String,
    renotify: bool,
    require_interaction: bool,
    silent: bool,
    timestamp: i64,
    vibrate: Vec<u64>,
    data: Value,
});

/// One action button of a web notification.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the fields are the Notifications API's, named as on the wire
pub struct WebpushAction {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Options this crate does not name, sent verbatim.
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl WebpushAction {
    /// The button `title`, which reports `action` to the service worker.
    pub fn new(action: impl Into<String>, title: impl Into<String>) -> Self {
        Self { action: Some(action.into()), title: Some(title.into()), ..Self::default() }
    }
}

setters!(WebpushAction { icon: String });

/// `webpush.fcm_options`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the fields are the protocol's, named as on the wire
pub struct WebpushFcmOptions {
    /// The `https://` page a click opens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytics_label: Option<String>,
    /// Fields this crate does not name, sent verbatim (the server validates them).
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

setters!(WebpushFcmOptions { link: String, analytics_label: String });
