//! The mock's protocol logic, without IO: a request in, a response out, deliveries recorded.
//! Given the same scenario, seed and request sequence it gives the same response bytes.
//!
//! By job: [`legacy`] sends, [`v1`] sends and tokens, [`recording`] (the bounded inbox and
//! log), [`script`] (scripted replies and `Retry-After`), [`http`] (the answers' pieces).
//! This module routes requests and decides each recipient's result, for both protocols.

mod answer;
mod http;
mod legacy;
mod prepare;
mod recording;
mod script;
mod v1;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use ::http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE};
use ::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use bytes::Bytes;
use gcm_proto::{MAX_PAYLOAD_BYTES, is_reserved_data_key, payload_size};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value};

use crate::scenario::{Behaviour, Reply, Scenario, TokenReply, TokenRule};
pub use answer::Answer;
pub use http::UNAUTHORIZED_HTML;
use http::{MessageId, header_text, json, text, with_retry_after};
use prepare::Body;
pub use prepare::Prepared;
pub use recording::{Delivery, InboxPage, REQUEST_LOG_CAPACITY, ReceivedRequest, RecordingLimits, RecordingStats};
use recording::{Record, Recording};
pub use script::Hang;
use script::Queue;
pub(crate) use v1::key_file_with_token_uri;
pub use v1::{DEFAULT_TOKEN_LIFETIME, MOCK_REFRESH_TOKEN, MOCK_SERVICE_ACCOUNT_JSON};

/// The mock's state: scenario, counters, random generator, inbox and request log.
/// `Debug` shows how many API keys and access tokens it holds, never their values.
pub struct Engine {
    scenario: Scenario,
    api_keys: Vec<String>,
    rng: Xoshiro256PlusPlus,
    replies: Queue<Reply>,
    token_replies: Queue<TokenReply>,
    /// Attempts per recipient; the inbox's records share the key.
    attempts: HashMap<Arc<str>, u32>,
    requests_seen: u64,
    messages_sent: u64,
    id_base: u64,
    recording: Option<Recording>,
    v1: v1::State,
    /// The data and options of every delivery while nothing records them.
    nothing: Arc<Map<String, Value>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("scenario", &self.scenario)
            .field("api_keys", &self.api_keys.len())
            .field("requests_seen", &self.requests_seen)
            .field("messages_sent", &self.messages_sent)
            .field("recording", &self.recording.as_ref().map(Recording::stats))
            .field("v1", &self.v1)
            .finish_non_exhaustive()
    }
}

/// One recipient's result.
/// It borrows nothing from the engine, so that it is written out after the lock.
enum TokenResult {
    Delivered { id: MessageId, canonical: Option<String> },
    Error { code: Cow<'static, str>, retry_after: Option<String> },
}

impl TokenResult {
    fn error(code: impl Into<Cow<'static, str>>, retry_after: Option<String>) -> Self {
        Self::Error { code: code.into(), retry_after }
    }
}

/// What applies to every recipient of a request.
struct Context<'a> {
    message_error: Option<&'static str>,
    restricted_package: Option<&'a str>,
    dry_run: bool,
    seq: u64,
    now: SystemTime,
    /// The payload, shared by the request's deliveries.
    data: &'a Arc<Map<String, Value>>,
    options: &'a Arc<Map<String, Value>>,
    /// The bytes each delivery counts for in the inbox: the body's size over the recipients.
    payload_share: usize,
}

impl Engine {
    /// A fresh engine. With no API key configured, any `key=…` is accepted.
    pub fn new(scenario: Scenario, api_keys: Vec<String>) -> Self {
        let seed = scenario.seed;
        Self {
            replies: script::replies(&scenario.replies),
            token_replies: script::token_replies(&scenario.token_replies),
            scenario,
            api_keys,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            attempts: HashMap::new(),
            requests_seen: 0,
            messages_sent: 0,
            id_base: splitmix64(seed),
            recording: Some(Recording::default()),
            v1: v1::State::default(),
            nothing: Arc::default(),
        }
    }

    /// Whether deliveries go to the inbox, requests to the log, and attempts are counted
    /// for every token (default true). Off, memory stays flat under any load; attempts are
    /// then counted only for tokens whose rule has `times` or `steps`.
    pub fn set_recording(&mut self, on: bool) {
        match (on, self.recording.is_some()) {
            (true, false) => self.recording = Some(Recording::new(RecordingLimits::default())),
            (false, _) => self.recording = None,
            (true, true) => {} // keep what is recorded
        }
    }

    /// Bounds the inbox and the request log (see [`RecordingLimits`]); what they hold
    /// beyond the new limits is dropped at the next entry.
    pub fn set_recording_limits(&mut self, limits: RecordingLimits) {
        if let Some(recording) = &mut self.recording {
            recording.limits = limits;
        }
    }

    /// Back to the state right after [`Engine::new`]: inbox, log, counters, attempts,
    /// replies and random generator; FCM v1 access tokens are forgotten (the service
    /// account and the token lifetime stay).
    pub fn reset(&mut self) {
        let recording = self.recording.as_ref().map(|recording| recording.limits);
        let v1 = self.v1.fresh();
        *self = Self::new(self.scenario.clone(), std::mem::take(&mut self.api_keys));
        self.recording = recording.map(Recording::new);
        self.v1 = v1;
    }

    /// Every delivery the inbox holds, in order.
    pub fn inbox(&self) -> Vec<Delivery> {
        self.inbox_page(0, usize::MAX).deliveries().collect()
    }

    /// The deliveries numbered after `after` ([`Delivery::index`]), at most `limit`, in
    /// order, taken cheaply (see [`InboxPage`]).
    pub fn inbox_page(&self, after: u64, limit: usize) -> InboxPage {
        let empty = Recording::default();
        self.recording.as_ref().unwrap_or(&empty).inbox_page(after, limit, self.id_base)
    }

    /// Empties the inbox.
    pub fn clear_inbox(&mut self) {
        if let Some(recording) = &mut self.recording {
            recording.clear_inbox();
        }
    }

    /// The requests the log holds (the most recent, within its limits), oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.recording.iter().flat_map(|recording| recording.requests().cloned()).collect()
    }

    /// What the inbox and the log hold and what they dropped.
    pub fn recording_stats(&self) -> RecordingStats {
        self.recording.as_ref().map(Recording::stats).unwrap_or_default()
    }

    /// Answers one request that arrived on `connection`, at the system clock's time.
    pub fn handle<B: AsRef<[u8]>>(&mut self, request: &Request<B>, connection: u64) -> Response<Bytes> {
        self.handle_at(request, connection, SystemTime::now())
    }

    /// Answers one request that arrived on `connection` at `now` (FCM v1 access tokens
    /// expire; nothing else depends on the time).
    pub fn handle_at<B: AsRef<[u8]>>(
        &mut self,
        request: &Request<B>,
        connection: u64,
        now: SystemTime,
    ) -> Response<Bytes> {
        self.answer(Prepared::new(request), connection, now).into_response()
    }

    /// [`handle_at`](Engine::handle_at) in three steps, for a server that shares the engine
    /// behind a lock: [`Prepared::new`] before taking it, this under it,
    /// [`Answer::into_response`] after.
    pub fn answer<B: AsRef<[u8]>>(&mut self, prepared: Prepared<'_, B>, connection: u64, now: SystemTime) -> Answer {
        let Prepared { request, body } = prepared;
        let path = request.uri().path();
        let send_path = legacy::is_send_path(path);
        let v1_send = v1::project_of(path);
        let token_path = path == v1::TOKEN_PATH;
        let metadata_token = path == gcm_proto::oauth::METADATA_TOKEN_PATH;
        // `Prepared::new` read the body of every send, so its kind routes sends.
        let json = match body {
            Body::V1(send) => {
                let project = v1_send.unwrap_or_default();
                return self.logged(request, connection, |engine, seq| {
                    let (response, authorized) = engine.v1_send(request, send, project, seq, now);
                    (response.into(), authorized)
                });
            }
            Body::LegacyJson(json) => Some(json),
            Body::Unread => None,
        };
        match (request.method(), path) {
            (&Method::POST, _) if send_path => self.logged(request, connection, |engine, seq| {
                let authorized = engine.authorized(request.headers());
                (engine.legacy_send(request.body().as_ref(), json, authorized, seq, now), authorized)
            }),
            (&Method::POST, _) if token_path => self.logged(request, connection, |engine, _| {
                let (response, authorized) = engine.v1_token(request, now);
                (response.into(), authorized)
            }),
            (&Method::GET, _) if metadata_token => self.logged(request, connection, |engine, _| {
                let (response, authorized) = engine.metadata_token(request, now);
                (response.into(), authorized)
            }),
            _ => self.route_other(request, send_path || v1_send.is_some() || token_path).into(),
        }
    }

    /// The routes that are neither sends nor tokens: the mock's own API.
    fn route_other<B>(&mut self, request: &Request<B>, post_only: bool) -> Response<Bytes> {
        match (request.method(), request.uri().path()) {
            (&Method::GET, gcm_proto::oauth::METADATA_PROJECT_ID_PATH) => self.metadata_project_id(request),
            (_, _) if post_only => {
                let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
                response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
                response
            }
            (&Method::GET, "/_mock/inbox") => {
                let (after, limit) = page_query(request.uri().query());
                json(StatusCode::OK, &self.inbox_page(after, limit))
            }
            (&Method::DELETE, "/_mock/inbox") => {
                self.clear_inbox();
                json(StatusCode::OK, &[(); 0])
            }
            (&Method::GET, "/_mock/requests") => json(StatusCode::OK, &self.requests()),
            (&Method::GET, "/_mock/stats") => json(StatusCode::OK, &self.recording_stats()),
            (&Method::GET, "/_mock/service-account") => self.v1_key_file(request),
            (&Method::POST, "/_mock/reset") => {
                self.reset();
                json(StatusCode::OK, &[(); 0])
            }
            _ => text(StatusCode::NOT_FOUND, "Not Found\n"),
        }
    }

    /// Numbers a request, answers it with `answer` (the response, and whether its
    /// credentials were accepted) and logs it.
    fn logged<B: AsRef<[u8]>>(
        &mut self,
        request: &Request<B>,
        connection: u64,
        answer: impl FnOnce(&mut Self, u64) -> (Answer, bool),
    ) -> Answer {
        self.requests_seen += 1;
        let seq = self.requests_seen;
        let body = request.body().as_ref();
        let (response, authorized) = answer(self, seq);
        let Some(recording) = &mut self.recording else { return response };
        recording.log(ReceivedRequest {
            seq,
            connection,
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            content_type: header_text(request.headers(), &CONTENT_TYPE),
            authorized,
            body: if request.uri().path() == v1::TOKEN_PATH {
                // The assertion is a credential (good for an hour): keep the grant type only.
                v1::redacted_token_form(body)
            } else {
                String::from_utf8_lossy(body).into_owned()
            },
            status: response.status().as_u16(),
        });
        response
    }

    /// A whole-request failure drawn from the faults, if one is due.
    fn injected_server_error(&mut self) -> Option<Response<Bytes>> {
        let faults = &self.scenario.faults;
        if faults.server_error > 0.0 && self.rng.random_bool(faults.server_error) {
            let status = StatusCode::from_u16(faults.server_error_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return Some(with_retry_after(text(status, ""), faults.retry_after.as_deref()));
        }
        None
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(key) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("key="))
        else {
            return false;
        };
        if self.api_keys.is_empty() { !key.is_empty() } else { self.api_keys.iter().any(|k| k == key) }
    }

    /// The result for one recipient: message-wide errors first, then the token's package,
    /// injected faults, and the scenario's rule. Records the delivery.
    fn token_result(&mut self, token: &str, topic: bool, ctx: &Context<'_>) -> TokenResult {
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
        if let (Some(recording), Some(token)) = (&mut self.recording, key) {
            let record = Record {
                index: recording.next_index(),
                token,
                id,
                data: Arc::clone(ctx.data),
                options: Arc::clone(ctx.options),
                attempt,
                request: ctx.seq,
            };
            recording.deliver(record, ctx.payload_share);
        }
        TokenResult::Delivered { id, canonical }
    }

    fn multicast_id(&self, seq: u64) -> i64 {
        // Positive, 63-bit, from the seed and the request's sequence number.
        ((self.id_base >> 2).wrapping_add(seq) & (i64::MAX as u64)) as i64
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

/// SplitMix64: spreads a small seed over 64 bits for the ids.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The error every recipient of a message gets, if any: a bad TTL, then the payload's size
/// and keys.
fn message_error(ttl_ok: bool, data: DataLimits) -> Option<&'static str> {
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
struct DataLimits {
    payload_size: usize,
    reserved_key: bool,
}

impl DataLimits {
    fn of(data: &Map<String, Value>) -> Self {
        Self { payload_size: payload_size(data), reserved_key: data.keys().any(|key| is_reserved_data_key(key)) }
    }

    /// One entry: its key, and its value's length as [`payload_size`] counts it.
    fn add(&mut self, key: &str, value_length: usize) {
        self.payload_size = self.payload_size.saturating_add(key.len()).saturating_add(value_length);
        self.reserved_key |= is_reserved_data_key(key);
    }
}

/// `after` and `limit` of `?after=N&limit=M` (defaults: from the start, everything).
pub(crate) fn page_query(query: Option<&str>) -> (u64, usize) {
    let (mut after, mut limit) = (0, usize::MAX);
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*key {
            "after" => after = value.parse().unwrap_or(0),
            "limit" => limit = value.parse().unwrap_or(usize::MAX),
            _ => {}
        }
    }
    (after, limit)
}
