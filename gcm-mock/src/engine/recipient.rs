//! Each recipient's result, for both protocols: message-wide errors first, then the token's
//! package, injected faults and the scenario's rule; a delivery is recorded in the inbox.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use gcm_proto::{MAX_PAYLOAD_BYTES, is_reserved_data_key, payload_size};
use rand::RngExt;
use serde_json::{Map, Value};

use super::Engine;
use super::http::MessageId;
use super::recording::Record;
use super::script;
use crate::scenario::{Behaviour, TokenRule};

/// One recipient's result.
/// It borrows nothing from the engine, so that it is written out after the lock.
pub(super) enum TokenResult {
    Delivered { id: MessageId, canonical: Option<String> },
    Error { code: Cow<'static, str>, retry_after: Option<String> },
}

impl TokenResult {
    pub(super) fn error(code: impl Into<Cow<'static, str>>, retry_after: Option<String>) -> Self {
        Self::Error { code: code.into(), retry_after }
    }
}

/// What applies to every recipient of a request.
pub(super) struct Context<'a> {
    pub(super) message_error: Option<&'static str>,
    pub(super) restricted_package: Option<&'a str>,
    pub(super) dry_run: bool,
    pub(super) seq: u64,
    pub(super) now: SystemTime,
    /// The payload, shared by the request's deliveries.
    pub(super) data: &'a Arc<Map<String, Value>>,
    pub(super) options: &'a Arc<Map<String, Value>>,
    /// The bytes each delivery counts for in the inbox: the body's size over the recipients.
    pub(super) payload_share: usize,
}

impl Engine {
    /// The result for one recipient: message-wide errors first, then the token's package,
    /// injected faults, and the scenario's rule. Records the delivery.
    pub(super) fn token_result(&mut self, token: &str, topic: bool, ctx: &Context<'_>) -> TokenResult {
        let rule: &TokenRule = self.scenario.tokens.get(token).unwrap_or(&self.scenario.default);
        let (key, attempt) = if self.recording.is_some() || rule.counts_attempts() {
            count_attempt(&mut self.attempts, token)
        } else {
            (None, 1)
        };
        if let Some(code) = ctx.message_error {
            return TokenResult::error(code, None);
        }
        if let (Some(wanted), Some(registered)) = (ctx.restricted_package, rule.package.as_deref()) {
            if wanted != registered {
                return TokenResult::error("InvalidPackageName", None);
            }
        }
        let faults = &self.scenario.faults;
        if faults.unavailable > 0.0 && self.rng.random_bool(faults.unavailable) {
            return TokenResult::error(
                "Unavailable",
                script::retry_after(faults.retry_after.as_deref(), None, ctx.now),
            );
        }
        let step = rule.step_at(attempt);
        let code: Option<Cow<'static, str>> = match step.result {
            Behaviour::Ok | Behaviour::Canonical => None,
            Behaviour::NotRegistered => Some("NotRegistered".into()),
            Behaviour::Invalid => Some("InvalidRegistration".into()),
            Behaviour::MismatchSender => Some("MismatchSenderId".into()),
            Behaviour::Unavailable => Some("Unavailable".into()),
            Behaviour::InternalError => Some("InternalServerError".into()),
            Behaviour::RateLimited if topic => Some("TopicsMessageRateExceeded".into()),
            Behaviour::RateLimited => Some("DeviceMessageRateExceeded".into()),
            Behaviour::Error => Some(step.code.map_or("Error".into(), |code| code.to_owned().into())),
        };
        if let Some(code) = code {
            return TokenResult::error(code, script::retry_after(step.retry_after, step.retry_after_date_in, ctx.now));
        }
        let canonical = step.canonical.map(str::to_owned);
        if ctx.dry_run {
            return TokenResult::Delivered { id: MessageId::Fake, canonical };
        }
        self.messages_sent += 1;
        let id = if topic { MessageId::Topic(self.messages_sent) } else { MessageId::Device(self.messages_sent) };
        if let (Some(recording), Some(key)) = (&mut self.recording, key) {
            let record = Record {
                index: recording.next_index(),
                token: key,
                id,
                data: Arc::clone(ctx.data),
                options: Arc::clone(ctx.options),
                attempt,
                request: ctx.seq,
                via: None,
            };
            recording.deliver(record, ctx.payload_share);
            if topic {
                // The devices subscribed to it get the message too.
                let via: Arc<str> = token.into();
                for device in self.subscriptions.audience(&via) {
                    let record = Record {
                        index: recording.next_index(),
                        token: device,
                        id,
                        data: Arc::clone(ctx.data),
                        options: Arc::clone(ctx.options),
                        attempt: 1,
                        request: ctx.seq,
                        via: Some(Arc::clone(&via)),
                    };
                    recording.deliver(record, ctx.payload_share);
                }
            }
        }
        TokenResult::Delivered { id, canonical }
    }
}

/// One more attempt for `token`: the counter's key (shared with the inbox) and the count.
fn count_attempt(attempts: &mut HashMap<Arc<str>, u32>, token: &str) -> (Option<Arc<str>>, u32) {
    if let Some(count) = attempts.get_mut(token) {
        *count = count.saturating_add(1);
        let count = *count;
        return (attempts.get_key_value(token).map(|(key, _)| Arc::clone(key)), count);
    }
    let key: Arc<str> = token.into();
    attempts.insert(Arc::clone(&key), 1);
    (Some(key), 1)
}

/// The error every recipient of a message gets, if any: a bad TTL, then the payload's size
/// and keys.
pub(super) fn message_error(ttl_ok: bool, data: DataLimits) -> Option<&'static str> {
    if !ttl_ok {
        Some("InvalidTtl")
    } else if data.payload_size > MAX_PAYLOAD_BYTES {
        Some("MessageTooBig")
    } else if data.reserved_key {
        Some("InvalidDataKey")
    } else {
        None
    }
}

/// What the service checks in a message's `data`: its size (keys and values) and whether a
/// key is reserved.
#[derive(Clone, Copy, Default)]
pub(super) struct DataLimits {
    payload_size: usize,
    reserved_key: bool,
}

impl DataLimits {
    pub(super) fn of(data: &Map<String, Value>) -> Self {
        Self { payload_size: payload_size(data), reserved_key: data.keys().any(|key| is_reserved_data_key(key)) }
    }

    /// One entry: its key, and its value's length as [`payload_size`] counts it.
    pub(super) fn add(&mut self, key: &str, value_length: usize) {
        self.payload_size = self.payload_size.saturating_add(key.len()).saturating_add(value_length);
        self.reserved_key |= is_reserved_data_key(key);
    }
}
