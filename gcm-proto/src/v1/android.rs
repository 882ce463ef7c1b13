//! `android`: the options for Android devices, typed as FCM's REST reference types them
//! (`AndroidConfig`, `AndroidNotification`, `LightSettings`, `Color`,
//! `AndroidFcmOptions`). Every struct keeps the fields it does not name in `extra` and
//! sends them verbatim.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::duration;
use super::wire::{setters, wire_enum};

wire_enum! {
    /// `android.priority`.
    AndroidPriority {
        /// `NORMAL`: may be delayed to save battery.
        Normal = "NORMAL",
        /// `HIGH`: delivered at once, may wake a sleeping device.
        High = "HIGH",
    }
}

wire_enum! {
    /// `android.notification.notification_priority`.
    NotificationPriority {
        /// `PRIORITY_UNSPECIFIED`.
        Unspecified = "PRIORITY_UNSPECIFIED",
        /// `PRIORITY_MIN`.
        Min = "PRIORITY_MIN",
        /// `PRIORITY_LOW`.
        Low = "PRIORITY_LOW",
        /// `PRIORITY_DEFAULT`.
        Default = "PRIORITY_DEFAULT",
        /// `PRIORITY_HIGH`.
        High = "PRIORITY_HIGH",
        /// `PRIORITY_MAX`.
        Max = "PRIORITY_MAX",
    }
}

wire_enum! {
    /// `android.notification.visibility`: what a locked screen shows.
    Visibility {
        /// `VISIBILITY_UNSPECIFIED`.
        Unspecified = "VISIBILITY_UNSPECIFIED",
        /// `PRIVATE`: shown, its content hidden.
        Private = "PRIVATE",
        /// `PUBLIC`: shown whole.
        Public = "PUBLIC",
        /// `SECRET`: not shown.
        Secret = "SECRET",
    }
}

wire_enum! {
    /// `android.notification.proxy`: whether the notification may be proxied.
    Proxy {
        /// `PROXY_UNSPECIFIED`.
        Unspecified = "PROXY_UNSPECIFIED",
        /// `ALLOW`.
        Allow = "ALLOW",
        /// `DENY`.
        Deny = "DENY",
        /// `IF_PRIORITY_LOWERED`.
        IfPriorityLowered = "IF_PRIORITY_LOWERED",
    }
}

/// `android`: options for Android devices.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the fields are the protocol's, named as on the wire
pub struct AndroidConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collapse_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<AndroidPriority>,
    /// How long FCM keeps the message for an offline device (at most 28 days); sent as
    /// `"3600s"`.
    #[serde(skip_serializing_if = "Option::is_none", with = "duration::option")]
    pub ttl: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restricted_package_name: Option<String>,
    /// `data`: replaces the message's `data` on Android.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<AndroidNotification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fcm_options: Option<AndroidFcmOptions>,
    /// Delivered to an app in direct boot mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_boot_ok: Option<bool>,
    /// May be delivered over a bandwidth-constrained network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_constrained_ok: Option<bool>,
    /// May be delivered over a satellite network with restricted bandwidth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restricted_satellite_ok: Option<bool>,
    /// Fields this crate does not name, sent verbatim (the server validates them).
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl AndroidConfig {
    /// No option.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one `data` entry.
    pub fn data(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }
}

setters!(AndroidConfig {
    collapse_key: String,
    priority: AndroidPriority,
    ttl: Duration,
    restricted_package_name: String,
    notification: AndroidNotification,
    fcm_options: AndroidFcmOptions,
    direct_boot_ok: bool,
    bandwidth_constrained_ok: bool,
    restricted_satellite_ok: bool,
});

/// `android.notification`: the notification as Android shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the fields are the protocol's, named as on the wire
pub struct AndroidNotification {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// `#rrggbb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub click_action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_loc_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_loc_args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_loc_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_loc_args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sticky: Option<bool>,
    /// An RFC 3339 timestamp, e.g. `"2024-05-01T12:00:00Z"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_priority: Option<NotificationPriority>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_sound: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_vibrate_timings: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_light_settings: Option<bool>,
    /// Off and on durations, alternately; sent as `["0.500s", …]`.
    #[serde(skip_serializing_if = "Option::is_none", with = "duration::list")]
    pub vibrate_timings: Option<Vec<Duration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_count: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub light_settings: Option<LightSettings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Proxy>,
    /// Fields this crate does not name, sent verbatim (the server validates them).
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl AndroidNotification {
    /// A notification with a title and a body.
    pub fn new(title: impl Into<String>, body: impl Into<String>) -> Self {
        Self { title: Some(title.into()), body: Some(body.into()), ..Self::default() }
    }
}

setters!(AndroidNotification {
    title: String,
    body: String,
    icon: String,
    color: String,
    sound: String,
    tag: String,
    click_action: String,
    body_loc_key: String,
    body_loc_args: Vec<String>,
    title_loc_key: String,
    title_loc_args: Vec<String>,
    channel_id: String,
    ticker: String,
    sticky: bool,
    event_time: String,
    local_only: bool,
    notification_priority: NotificationPriority,
    default_sound: bool,
    default_vibrate_timings: bool,
    default_light_settings: bool,
    vibrate_timings: Vec<Duration>,
    visibility: Visibility,
    notification_count: i32,
    light_settings: LightSettings,
    image: String,
    proxy: Proxy,
});

/// `light_settings`: the notification LED.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the fields are the protocol's, named as on the wire
pub struct LightSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<Color>,
    #[serde(skip_serializing_if = "Option::is_none", with = "duration::option")]
    pub light_on_duration: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", with = "duration::option")]
    pub light_off_duration: Option<Duration>,
    /// Fields this crate does not name, sent verbatim (the server validates them).
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

setters!(LightSettings { color: Color, light_on_duration: Duration, light_off_duration: Duration });

/// `google.type.Color`: each component from 0 to 1.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the fields are the protocol's, named as on the wire
pub struct Color {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub red: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub green: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Fields this crate does not name, sent verbatim (the server validates them).
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl Color {
    /// `#rrggbb` or `#rrggbbaa` as Firebase Admin converts it (each byte / 255; alpha 1 when
    /// absent); `None` for anything else.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let digits = hex.strip_prefix('#').filter(|d| matches!(d.len(), 6 | 8) && d.is_ascii())?;
        let byte = |at: usize| -> Option<f64> {
            let pair = digits.get(at..at + 2)?;
            u8::from_str_radix(pair, 16).ok().map(|b| f64::from(b) / 255.0)
        };
        let alpha = if digits.len() == 8 { byte(6)? } else { 1.0 };
        Some(Self { red: byte(0), green: byte(2), blue: byte(4), alpha: Some(alpha), extra: Map::new() })
            .filter(|c| c.red.is_some() && c.green.is_some() && c.blue.is_some())
    }
}

/// `android.fcm_options`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // the fields are the protocol's, named as on the wire
pub struct AndroidFcmOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytics_label: Option<String>,
    /// Fields this crate does not name, sent verbatim (the server validates them).
    #[serde(flatten, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

setters!(AndroidFcmOptions { analytics_label: String });
