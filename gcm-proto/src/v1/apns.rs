//! `apns`: the options for Apple devices. FCM passes `headers` to APNs as request headers
//! and `payload` as the APNs JSON payload, which it does not check: the `aps` dictionary is
//! typed here as Apple documents it (`Aps`, `ApsAlert`, `CriticalSound`), with APNs'
//! hyphenated key names on the wire, and every struct keeps what it does not name in
//! `extra`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::wire::{setters, wire_enum};

/// `apns`: APNs headers, the APNs payload and FCM's options for it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApnsConfig {
    /// `headers`: APNs request headers (`apns-priority`, `apns-expiration`,
    /// `apns-push-type`, `apns-collapse-id`…).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `payload`: the APNs JSON payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<ApnsPayload>,
    /// `fcm_options`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fcm_options: Option<ApnsFcmOptions>,
    /// `live_activity_token`: the push token of a Live Activity to update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_activity_token: Option<String>,
    /// Fields this crate does not name, sent verbatim (the server validates them).
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl ApnsConfig {
    /// No option.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one APNs header, e.g. `("apns-priority", "5")`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Sets `payload.aps`, keeping the payload's custom keys.
    pub fn aps(mut self, aps: Aps) -> Self {
        self.payload.get_or_insert_with(ApnsPayload::default).aps = Some(aps);
        self
    }
}

setters!(ApnsConfig { payload: ApnsPayload, fcm_options: ApnsFcmOptions, live_activity_token: String });

/// `apns.payload`: the `aps` dictionary and the app's own keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApnsPayload {
    /// `aps`: what Apple's system reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aps: Option<Aps>,
    /// The app's custom keys, beside `aps`.
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

wire_enum! {
    /// `aps.interruption-level` (iOS 15).
    InterruptionLevel {
        /// `passive`: added to the list silently.
        Passive = "passive",
        /// `active`: the default.
        Active = "active",
        /// `time-sensitive`: breaks through Focus.
        TimeSensitive = "time-sensitive",
        /// `critical`: breaks through Focus and the mute switch (an entitlement).
        Critical = "critical",
    }
}

/// `aps`: the dictionary Apple's system reads, with APNs' key names on the wire.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the fields are Apple's, named as on the wire
pub struct Aps {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<Alert>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub badge: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sound: Option<Sound>,
    #[serde(rename = "thread-id", skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// `1` wakes the app in the background.
    #[serde(rename = "content-available", skip_serializing_if = "Option::is_none")]
    pub content_available: Option<i64>,
    /// `1` lets a notification service extension change the content.
    #[serde(rename = "mutable-content", skip_serializing_if = "Option::is_none")]
    pub mutable_content: Option<i64>,
    #[serde(rename = "target-content-id", skip_serializing_if = "Option::is_none")]
    pub target_content_id: Option<String>,
    #[serde(rename = "interruption-level", skip_serializing_if = "Option::is_none")]
    pub interruption_level: Option<InterruptionLevel>,
    /// From 0 to 1: the notification's place in a summary.
    #[serde(rename = "relevance-score", skip_serializing_if = "Option::is_none")]
    pub relevance_score: Option<f64>,
    #[serde(rename = "filter-criteria", skip_serializing_if = "Option::is_none")]
    pub filter_criteria: Option<String>,
    /// Live Activities: seconds since the epoch of this update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Live Activities: `start`, `update` or `end`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Live Activities: the activity's new state.
    #[serde(rename = "content-state", skip_serializing_if = "Option::is_none")]
    pub content_state: Option<Value>,
    #[serde(rename = "stale-date", skip_serializing_if = "Option::is_none")]
    pub stale_date: Option<i64>,
    #[serde(rename = "dismissal-date", skip_serializing_if = "Option::is_none")]
    pub dismissal_date: Option<i64>,
    /// Keys this crate does not name, sent verbatim.
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl Aps {
    /// Nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// `content-available: 1`: a background update.
    pub fn content_available(mut self) -> Self {
        self.content_available = Some(1);
        self
    }

    /// `mutable-content: 1`.
    pub fn mutable_content(mut self) -> Self {
        self.mutable_content = Some(1);
        self
    }
}

setters!(Aps {
    alert: Alert,
    badge: i64,
    sound: Sound,
    thread_id: String,
    category: String,
    target_content_id: String,
    interruption_level: InterruptionLevel,
    relevance_score: f64,
    filter_criteria: String,
    timestamp: i64,
    event: String,
    content_state: Value,
    stale_date: i64,
    dismissal_date: i64,
});

/// `aps.alert`: a text, or the dictionary of its parts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Alert {
    /// `"alert": "Hello"`.
    Text(String),
    /// `"alert": {"title": …, "body": …}` (boxed: the text form is the common one).
    Fields(Box<ApsAlert>),
}

impl From<&str> for Alert {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Alert {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<ApsAlert> for Alert {
    fn from(fields: ApsAlert) -> Self {
        Self::Fields(Box::new(fields))
    }
}

/// The dictionary form of `aps.alert`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
#[allow(missing_docs)] // the fields are Apple's, named as on the wire
pub struct ApsAlert {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_loc_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_loc_args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle_loc_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle_loc_args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loc_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loc_args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_loc_key: Option<String>,
    /// Keys this crate does not name, sent verbatim.
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

setters!(ApsAlert {
    title: String,
    subtitle: String,
    body: String,
    launch_image: String,
    title_loc_key: String,
    title_loc_args: Vec<String>,
    subtitle_loc_key: String,
    subtitle_loc_args: Vec<String>,
    loc_key: String,
    loc_args: Vec<String>,
    action_loc_key: String,
});

/// `aps.sound`: a sound file's name, or a critical alert's sound.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Sound {
    /// `"sound": "default"`.
    Name(String),
    /// `"sound": {"critical": 1, "name": …, "volume": …}`.
    Critical(CriticalSound),
}

impl From<&str> for Sound {
    fn from(name: &str) -> Self {
        Self::Name(name.to_owned())
    }
}

impl From<CriticalSound> for Sound {
    fn from(sound: CriticalSound) -> Self {
        Self::Critical(sound)
    }
}

/// The dictionary form of `aps.sound`, for critical alerts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the fields are Apple's, named as on the wire
pub struct CriticalSound {
    /// `1` for a critical alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// From 0 (silent) to 1 (full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<f64>,
    /// Keys this crate does not name, sent verbatim.
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl CriticalSound {
    /// A critical alert playing `name` at `volume` (0 to 1).
    pub fn new(name: impl Into<String>, volume: f64) -> Self {
        Self { critical: Some(1), name: Some(name.into()), volume: Some(volume), extra: Map::new() }
    }
}

/// `apns.fcm_options`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the fields are the protocol's, named as on the wire
pub struct ApnsFcmOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytics_label: Option<String>,
    /// An `https://` URL of an image the notification service extension downloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Fields this crate does not name, sent verbatim (the server validates them).
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

setters!(ApnsFcmOptions { analytics_label: String, image: String });
