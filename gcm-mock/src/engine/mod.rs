//! The mock's protocol logic, without IO: a request in, a response out, deliveries recorded.
//! Given the same scenario, seed and request sequence it gives the same response bytes.
//!
//! By job: [`route`] (where a request goes, decided once), [`prepare`] (a send's body read
//! before the lock), [`v1`] sends, [`oauth`] (the token endpoint), [`metadata`] (the
//! metadata server), [`rpc`] (v1 error bodies), [`topics`] (topic management, both APIs,
//! and who a topic send reaches), [`legacy`] sends, [`recipient`] (each
//! recipient's result), [`answer`] (written after the lock), [`recording`] (the bounded
//! inbox and log), [`script`] (scripted replies and `Retry-After`), [`http`] (the answers'
//! pieces). This module holds the engine's state and answers each route.

mod answer;
mod http;
mod legacy;
mod metadata;
mod oauth;
mod prepare;
mod recipient;
mod recording;
mod route;
mod rpc;
mod script;
mod topics;
mod v1;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use ::http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE};
use ::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use bytes::Bytes;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value};

use crate::scenario::{Reply, Scenario, TokenReply};
pub use answer::Answer;
pub use http::UNAUTHORIZED_HTML;
use http::{header_text, json, text, with_retry_after};
pub(crate) use oauth::key_file_with_token_uri;
pub use oauth::{DEFAULT_TOKEN_LIFETIME, MOCK_REFRESH_TOKEN, MOCK_SERVICE_ACCOUNT_JSON};
use prepare::Body;
pub use prepare::Prepared;
use recording::Recording;
pub use recording::{Delivery, InboxPage, REQUEST_LOG_CAPACITY, ReceivedRequest, RecordingLimits, RecordingStats};
use route::{Api, Route};
pub use script::Hang;
use script::Queue;
pub use topics::{MAX_SUBSCRIPTIONS, MAX_TOPICS_PER_TOKEN};

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
    oauth: oauth::State,
    /// The data and options of every delivery while nothing records them.
    nothing: Arc<Map<String, Value>>,
    /// Topic subscriptions (the Instance ID API).
    subscriptions: topics::Subscriptions,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("scenario", &self.scenario)
            .field("api_keys", &self.api_keys.len())
            .field("requests_seen", &self.requests_seen)
            .field("messages_sent", &self.messages_sent)
            .field("recording", &self.recording.as_ref().map(Recording::stats))
            .field("oauth", &self.oauth)
            .finish_non_exhaustive()
    }
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
            oauth: oauth::State::default(),
            nothing: Arc::default(),
            subscriptions: topics::Subscriptions::default(),
        }
    }

    /// How long the server waits before sending each answer (`faults.latency_ms`).
    pub fn latency(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.scenario.faults.latency_ms)
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
        let accounts = self.oauth.fresh();
        *self = Self::new(self.scenario.clone(), std::mem::take(&mut self.api_keys));
        self.recording = recording.map(Recording::new);
        self.oauth = accounts;
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

    /// Each topic with the tokens subscribed to it, in order (`GET /_mock/topics`).
    pub fn topics(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        self.subscriptions.listing()
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

    /// What the inbox and the log hold and what they dropped, and how many messages were
    /// delivered.
    pub fn recording_stats(&self) -> RecordingStats {
        let stats = self.recording.as_ref().map(Recording::stats).unwrap_or_default();
        RecordingStats { delivered: self.messages_sent, ..stats }
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
        let Prepared { request, route, body } = prepared;
        match (route, body) {
            (Route::V1Send { project }, Body::V1(send)) => self.logged(request, connection, |engine, seq| {
                let (response, authorized) = engine.v1_send(request, send, project, seq, now);
                (response.into(), authorized)
            }),
            (Route::LegacySend, body) => {
                let json = match body {
                    Body::LegacyJson(json) => Some(json),
                    _ => None,
                };
                self.logged(request, connection, |engine, seq| {
                    let authorized = engine.authorized(request.headers());
                    (engine.legacy_send(request.body().as_ref(), json, authorized, seq, now), authorized)
                })
            }
            (Route::Token, _) => self.logged(request, connection, |engine, _| {
                let (response, authorized) = engine.v1_token(request, now);
                (response.into(), authorized)
            }),
            (Route::Topics { action }, _) => self.logged(request, connection, |engine, _| {
                let (response, authorized) = engine.topic_call(request, action, now);
                (response.into(), authorized)
            }),
            (Route::Registration(registration), _) => self.logged(request, connection, |engine, _| {
                let (response, authorized) = engine.registration_call(request, registration, now);
                (response.into(), authorized)
            }),
            (Route::MetadataToken, _) => self.logged(request, connection, |engine, _| {
                let (response, authorized) = engine.metadata_token(request, now);
                (response.into(), authorized)
            }),
            (Route::Api(api), _) => self.api(request, api).into(),
            // `Prepared::new` reads the body of every v1 send: this pairing is never built.
            (Route::V1Send { .. }, _) => text(StatusCode::NOT_FOUND, "Not Found\n").into(),
        }
    }

    /// The routes that are neither sends nor tokens: the metadata server's project id, and
    /// the mock's own API.
    fn api<B>(&mut self, request: &Request<B>, api: Api) -> Response<Bytes> {
        match api {
            Api::MetadataProjectId => self.metadata_project_id(request),
            Api::PostOnly => {
                let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
                response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
                response
            }
            Api::Inbox => {
                let (after, limit) = page_query(request.uri().query());
                json(StatusCode::OK, &self.inbox_page(after, limit))
            }
            Api::ClearInbox => {
                self.clear_inbox();
                json(StatusCode::OK, &[(); 0])
            }
            Api::Requests => json(StatusCode::OK, &self.requests()),
            Api::Stats => json(StatusCode::OK, &self.recording_stats()),
            Api::Topics => json(StatusCode::OK, &self.subscriptions.listing()),
            Api::ServiceAccount => self.v1_key_file(request),
            Api::Reset => {
                self.reset();
                json(StatusCode::OK, &[(); 0])
            }
            Api::NotFound => text(StatusCode::NOT_FOUND, "Not Found\n"),
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
            body: if request.uri().path() == oauth::TOKEN_PATH {
                // The assertion is a credential (good for an hour): keep the grant type only.
                oauth::redacted_token_form(body)
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

    fn multicast_id(&self, seq: u64) -> i64 {
        // Positive, 63-bit, from the seed and the request's sequence number.
        ((self.id_base >> 2).wrapping_add(seq) & (i64::MAX as u64)) as i64
    }
}

/// SplitMix64: spreads a small seed over 64 bits for the ids.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
