//! The shapes of the baselines: realistic tokens and payload, and the plain serde structs a
//! generic client uses. The same as `gcm_mock::baseline`'s, copied because gcm-mock depends
//! on this crate (a packaged crate must bench on its own).

// Each bench uses part of this file.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A registration token of realistic length (152 characters).
pub(crate) fn token(i: usize) -> String {
    format!("{i:08}:APA91bH{}", "x".repeat(137))
}

/// Five string data keys.
pub(crate) fn data() -> BTreeMap<String, String> {
    [
        ("title", "Hello"),
        ("body", "You have 3 new messages"),
        ("kind", "sync"),
        ("id", "123456789"),
        ("url", "https://example.com/inbox"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The request a plain serde client would send.
#[derive(Serialize)]
pub(crate) struct BaselineRequest<'a> {
    pub registration_ids: &'a [String],
    pub data: &'a BTreeMap<String, String>,
}

/// The response shape, owned, as a plain serde client would read it.
#[derive(Deserialize)]
#[allow(dead_code)]
pub(crate) struct BaselineResponse {
    pub multicast_id: i64,
    pub success: u32,
    pub failure: u32,
    pub canonical_ids: u32,
    pub results: Vec<BaselineResult>,
}

/// One result of [`BaselineResponse`].
#[derive(Deserialize)]
#[allow(dead_code)]
pub(crate) struct BaselineResult {
    pub message_id: Option<String>,
    pub registration_id: Option<String>,
    pub error: Option<String>,
}
