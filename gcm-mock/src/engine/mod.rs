//! The mock's protocol logic, without IO: a request in, a response out, deliveries recorded.
//! Given the same scenario, seed and request sequence it gives the same response bytes.

mod v1;

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::time::SystemTime;

use bytes::Bytes;
use gcm_proto::{MAX_PAYLOAD_BYTES, MAX_REGISTRATION_IDS, MAX_TIME_TO_LIVE, is_reserved_data_key, payload_size};
use http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::scenario::{Behaviour, Reply, Scenario, TokenReply, TokenRule};

pub(crate) use v1::key_file_with_token_uri;
pub use v1::{DEFAULT_TOKEN_LIFETIME, MOCK_REFRESH_TOKEN, MOCK_SERVICE_ACCOUNT_JSON};

/// The body of a 401, as the real service sends it.
pub const UNAUTHORIZED_HTML: &str = "<HTML>\n<HEAD>\n<TITLE>Unauthorized</TITLE>\n</HEAD>\n\
<BODY BGCOLOR=\"#FFFFFF\" TEXT=\"#000000\">\n<H1>Unauthorized</H1>\n<H2>Error 401</H2>\n</BODY>\n</HTML>\n";

/// How many received requests the log keeps (the oldest are dropped first).
pub const REQUEST_LOG_CAPACITY: usize = 10_000;

/// A message the mock accepted for one recipient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The token (or `/topics/<name>`, or condition) as the request named it.
    pub token: String,
    /// The message id the mock answered with.
    pub message_id: String,
    /// The `data` payload (plain text: the `data.<key>` fields, as strings).
    pub data: Map<String, Value>,
    /// Every other field of the request (`collapse_key`, `notification`, unknown options…).
    pub options: Map<String, Value>,
    /// How many requests had named this recipient when it was delivered (1 = first try).
    pub attempt: u32,
    /// The sequence number of the request that delivered it (1 = first request).
    pub request: u64,
}

/// A request the mock received, as its log keeps it. The `Authorization` header is not
/// kept, only whether it was accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedRequest {
    /// Sequence number (1 = first request).
    pub seq: u64,
    /// Which TCP connection carried it (1 = first accepted connection).
    pub connection: u64,
    /// The HTTP method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// True when the credentials were accepted: the API key, the FCM v1 access token, or
    /// the token endpoint's assertion.
    pub authorized: bool,
    /// The body, as (lossy) UTF-8.
    pub body: String,
    /// The status the mock answered with.
    pub status: u16,
}

/// The mock's state: scenario, counters, random generator, inbox and request log.
/// `Debug` shows how many API keys and access tokens it holds, never their values.
pub struct Engine {
    scenario: Scenario,
    api_keys: Vec<String>,
    rng: Xoshiro256PlusPlus,
    replies: VecDeque<Reply>,
    /// The scripted token replies, each with how many requests it still answers.
    token_replies: VecDeque<(TokenReply, u32)>,
    attempts: HashMap<String, u32>,
    requests_seen: u64,
    messages_sent: u64,
    id_base: u64,
    inbox: Vec<Delivery>,
    log: VecDeque<ReceivedRequest>,
    recording: bool,
    v1: v1::State,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("scenario", &self.scenario)
            .field("api_keys", &self.api_keys.len())
            .field("requests_seen", &self.requests_seen)
            .field("messages_sent", &self.messages_sent)
            .field("inbox", &self.inbox.len())
            .field("log", &self.log.len())
            .field("recording", &self.recording)
            .field("v1", &self.v1)
            .finish_non_exhaustive()
    }
}

/// Marks a response the server must never send: the scripted token endpoint hangs.
#[derive(Clone, Copy, Debug)]
pub struct Hang;

impl Engine {
    /// The next scripted token reply, if any is left.
    fn next_token_reply(&mut self) -> Option<TokenReply> {
        let (reply, left) = self.token_replies.front_mut()?;
        let reply = reply.clone();
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.token_replies.pop_front();
        }
        Some(reply)
    }
}

/// One recipient's result.
enum TokenResult {
    Delivered { id: MessageId, canonical: Option<String> },
    Error { code: String, retry_after: Option<String> },
}

impl TokenResult {
    fn error(code: &str, retry_after: Option<&String>) -> Self {
        Self::Error { code: code.to_owned(), retry_after: retry_after.cloned() }
    }
}

/// A message id, written out only when answering: devices get `0:<16 digits>%<16 hex>`
/// (the shape of real ids), topics a JSON number, dry runs `fake_message_id`.
#[derive(Clone, Copy)]
enum MessageId {
    Device(u64),
    Topic(u64),
    Fake,
}

impl MessageId {
    fn write(self, base: u64, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = match self {
            Self::Device(n) => write!(out, "0:{:016}%{base:016x}", 1_400_000_000_000_000 + n),
            Self::Topic(n) => write!(out, "{}", base % 1_000_000_000_000 + n),
            Self::Fake => write!(out, "fake_message_id"),
        };
    }

    fn text(self, base: u64) -> String {
        let mut out = Vec::with_capacity(36);
        self.write(base, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The fields of a JSON send that drive the mock's behaviour. Strings are borrowed from
/// the body; `null` counts as absent. Anything this does not accept is looked at again by
/// [`json_rejection`] for the service's 400 reason.
#[derive(Deserialize)]
struct JsonSend<'a> {
    #[serde(default, borrow)]
    registration_ids: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    to: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    condition: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    restricted_package_name: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "collapse_key")]
    _collapse_key: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "priority")]
    _priority: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "notification_key")]
    _notification_key: Option<Cow<'a, str>>,
    #[serde(default)]
    time_to_live: Option<serde_json::Number>,
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(default, rename = "delay_while_idle")]
    _delay_while_idle: Option<bool>,
    #[serde(default, rename = "content_available")]
    _content_available: Option<bool>,
    #[serde(default, rename = "mutable_content")]
    _mutable_content: Option<bool>,
    #[serde(default)]
    data: Option<Map<String, Value>>,
    #[serde(default, rename = "notification")]
    _notification: Option<serde::de::IgnoredAny>,
}

/// What applies to every recipient of a request.
struct Context<'a> {
    message_error: Option<&'static str>,
    restricted_package: Option<&'a str>,
    dry_run: bool,
    seq: u64,
    data: &'a Map<String, Value>,
    options: &'a Map<String, Value>,
}

impl Engine {
    /// A fresh engine. With no API key configured, any `key=…` is accepted.
    pub fn new(scenario: Scenario, api_keys: Vec<String>) -> Self {
        let seed = scenario.seed;
        Self {
            replies: expand_replies(&scenario.replies),
            token_replies: scenario.token_replies.iter().map(|r| (r.clone(), r.repeat.unwrap_or(1))).collect(),
            scenario,
            api_keys,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            attempts: HashMap::new(),
            requests_seen: 0,
            messages_sent: 0,
            id_base: splitmix64(seed),
            inbox: Vec::new(),
            log: VecDeque::new(),
            recording: true,
            v1: v1::State::default(),
        }
    }

    /// Whether deliveries go to the inbox, requests to the log, and attempts are counted
    /// for every token (default true). Off, memory stays flat under any load; attempts are
    /// then counted only for tokens whose rule has `times`.
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// Back to the state right after [`Engine::new`]: inbox, log, counters, attempts,
    /// replies and random generator; FCM v1 access tokens are forgotten (the service
    /// account and the token lifetime stay).
    pub fn reset(&mut self) {
        let recording = self.recording;
        let v1 = self.v1.fresh();
        *self = Self::new(self.scenario.clone(), std::mem::take(&mut self.api_keys));
        self.recording = recording;
        self.v1 = v1;
    }

    /// Every delivery so far, in order.
    pub fn inbox(&self) -> &[Delivery] {
        &self.inbox
    }

    /// Empties the inbox.
    pub fn clear_inbox(&mut self) {
        self.inbox.clear();
    }

    /// The most recent requests (up to [`REQUEST_LOG_CAPACITY`]), oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.log.iter().cloned().collect()
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
        let path = request.uri().path();
        let send_path = matches!(path, "/gcm/send" | "/fcm/send");
        let v1_send = v1::project_of(path);
        let token_path = path == v1::TOKEN_PATH;
        let metadata_token = path == gcm_proto::oauth::METADATA_TOKEN_PATH;
        match (request.method(), path) {
            (&Method::POST, _) if send_path => self.logged(request, connection, |engine, seq| {
                let authorized = engine.authorized(request.headers());
                (engine.answer(request.headers(), request.body().as_ref(), authorized, seq), authorized)
            }),
            (&Method::POST, _) if v1_send.is_some() => {
                let project = v1_send.unwrap_or_default();
                self.logged(request, connection, |engine, seq| engine.v1_send(request, project, seq, now))
            }
            (&Method::POST, _) if token_path => {
                self.logged(request, connection, |engine, _| engine.v1_token(request, now))
            }
            (&Method::GET, _) if metadata_token => {
                self.logged(request, connection, |engine, _| engine.metadata_token(request, now))
            }
            (&Method::GET, gcm_proto::oauth::METADATA_PROJECT_ID_PATH) => self.metadata_project_id(request),
            (_, _) if send_path || v1_send.is_some() || token_path => {
                let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
                response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
                response
            }
            (&Method::GET, "/_mock/inbox") => json(StatusCode::OK, &self.inbox),
            (&Method::DELETE, "/_mock/inbox") => {
                self.clear_inbox();
                json(StatusCode::OK, &self.inbox)
            }
            (&Method::GET, "/_mock/requests") => json(StatusCode::OK, &self.log),
            (&Method::GET, "/_mock/service-account") => self.v1_key_file(request),
            (&Method::POST, "/_mock/reset") => {
                self.reset();
                json(StatusCode::OK, &self.inbox)
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
        answer: impl FnOnce(&mut Self, u64) -> (Response<Bytes>, bool),
    ) -> Response<Bytes> {
        self.requests_seen += 1;
        let seq = self.requests_seen;
        let body = request.body().as_ref();
        let (response, authorized) = answer(self, seq);
        if !self.recording {
            return response;
        }
        if self.log.len() == REQUEST_LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(ReceivedRequest {
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

    fn answer(&mut self, headers: &HeaderMap, body: &[u8], authorized: bool, seq: u64) -> Response<Bytes> {
        if let Some(reply) = self.replies.pop_front() {
            return scripted(&reply);
        }
        if !authorized {
            return unauthorized();
        }
        if let Some(fault) = self.injected_server_error() {
            return fault;
        }
        let is_json = header_text(headers, &CONTENT_TYPE)
            .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/json"));
        if is_json { self.send_json(body, seq) } else { self.send_plain_text(body, seq) }
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

    fn send_json(&mut self, body: &[u8], seq: u64) -> Response<Bytes> {
        let request: JsonSend<'_> = match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(error) => return bad_request(&json_rejection(body, &error)),
        };
        if let Some(ids) = &request.registration_ids {
            if request.to.is_some() {
                return bad_request("Must use either \"registration_ids\" field or \"to\", not both");
            }
            if ids.is_empty() {
                return bad_request("\"registration_ids\" field cannot be empty");
            }
            if ids.len() > MAX_REGISTRATION_IDS {
                return bad_request(&format!(
                    "Number of messages on bulk ({}) exceeds maximum allowed ({MAX_REGISTRATION_IDS})",
                    ids.len()
                ));
            }
        }
        let data = request.data.unwrap_or_default();
        // Only the inbox needs the other fields; read them again only when recording.
        let options = if self.recording { json_options(body) } else { Map::new() };
        let ttl_ok =
            request.time_to_live.is_none_or(|ttl| ttl.as_u64().is_some_and(|t| t <= u64::from(MAX_TIME_TO_LIVE)));
        let dry_run = request.dry_run.unwrap_or(false);
        let ctx = Context {
            message_error: message_error(ttl_ok, &data),
            restricted_package: request.restricted_package_name.as_deref(),
            dry_run,
            seq,
            data: &data,
            options: &options,
        };
        let to = request.to.as_deref().filter(|to| !to.is_empty());
        let condition = request.condition.as_deref().filter(|c| !c.is_empty());
        let topic = to.filter(|to| to.starts_with("/topics/")).or(if to.is_none() { condition } else { None });
        if let Some(topic) = topic {
            let result = self.token_result(topic, true, &ctx);
            return topic_response(result, self.id_base);
        }
        let results: Vec<TokenResult> = match (&request.registration_ids, to) {
            (Some(ids), _) => ids.iter().map(|token| self.token_result(token, false, &ctx)).collect(),
            (None, Some(to)) => vec![self.token_result(to, false, &ctx)],
            (None, None) => vec![TokenResult::error("MissingRegistration", None)],
        };
        let multicast_id = if dry_run { -1 } else { self.multicast_id(seq) };
        multicast_response(multicast_id, &results, self.id_base)
    }

    fn send_plain_text(&mut self, body: &[u8], seq: u64) -> Response<Bytes> {
        let mut token = None;
        let mut data = Map::new();
        let mut options = Map::new();
        for (key, value) in form_urlencoded::parse(body) {
            if key == "registration_id" {
                token.get_or_insert(value.into_owned());
            } else if let Some(name) = key.strip_prefix("data.") {
                data.insert(name.to_owned(), Value::String(value.into_owned()));
            } else {
                options.insert(key.into_owned(), Value::String(value.into_owned()));
            }
        }
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return plain_text_response(TokenResult::error("MissingRegistration", None), self.id_base);
        };
        let option = |name: &str| options.get(name).and_then(Value::as_str);
        let ttl_ok = option("time_to_live").is_none_or(|ttl| ttl.parse::<u32>().is_ok_and(|t| t <= MAX_TIME_TO_LIVE));
        let ctx = Context {
            message_error: message_error(ttl_ok, &data),
            restricted_package: option("restricted_package_name"),
            dry_run: option("dry_run").is_some_and(|v| v == "1" || v == "true"),
            seq,
            data: &data,
            options: &options,
        };
        let result = self.token_result(&token, false, &ctx);
        plain_text_response(result, self.id_base)
    }

    /// The result for one recipient: message-wide errors first, then the token's package,
    /// injected faults, and the scenario's rule. Records the delivery.
    fn token_result(&mut self, token: &str, topic: bool, ctx: &Context<'_>) -> TokenResult {
        let rule: &TokenRule = self.scenario.tokens.get(token).unwrap_or(&self.scenario.default);
        let attempt = if self.recording || rule.times.is_some() {
            let count = self.attempts.entry(token.to_owned()).or_insert(0);
            *count = count.saturating_add(1);
            *count
        } else {
            0
        };
        let error = TokenResult::error;
        if let Some(code) = ctx.message_error {
            return error(code, None);
        }
        if let (Some(wanted), Some(registered)) = (ctx.restricted_package, rule.package.as_deref()) {
            if wanted != registered {
                return error("InvalidPackageName", None);
            }
        }
        let faults = &self.scenario.faults;
        if faults.unavailable > 0.0 && self.rng.random_bool(faults.unavailable) {
            return error("Unavailable", faults.retry_after.as_ref());
        }
        let failing = rule.times.is_none_or(|times| attempt <= times);
        let code = match rule.result {
            _ if !failing => None,
            Behaviour::Ok | Behaviour::Canonical => None,
            Behaviour::NotRegistered => Some("NotRegistered"),
            Behaviour::Invalid => Some("InvalidRegistration"),
            Behaviour::MismatchSender => Some("MismatchSenderId"),
            Behaviour::Unavailable => Some("Unavailable"),
            Behaviour::InternalError => Some("InternalServerError"),
            Behaviour::RateLimited if topic => Some("TopicsMessageRateExceeded"),
            Behaviour::RateLimited => Some("DeviceMessageRateExceeded"),
            Behaviour::Error => Some(rule.code.as_deref().unwrap_or("Error")),
        };
        if let Some(code) = code {
            return error(code, rule.retry_after.as_ref());
        }
        let canonical = rule.canonical.clone();
        if ctx.dry_run {
            return TokenResult::Delivered { id: MessageId::Fake, canonical };
        }
        self.messages_sent += 1;
        let id = if topic { MessageId::Topic(self.messages_sent) } else { MessageId::Device(self.messages_sent) };
        if self.recording {
            self.inbox.push(Delivery {
                token: token.to_owned(),
                message_id: id.text(self.id_base),
                data: ctx.data.clone(),
                options: ctx.options.clone(),
                attempt,
                request: ctx.seq,
            });
        }
        TokenResult::Delivered { id, canonical }
    }

    fn multicast_id(&self, seq: u64) -> i64 {
        // Positive, 63-bit, from the seed and the request's sequence number.
        ((self.id_base >> 2).wrapping_add(seq) & (i64::MAX as u64)) as i64
    }
}

fn expand_replies(replies: &[Reply]) -> VecDeque<Reply> {
    replies
        .iter()
        .flat_map(|reply| std::iter::repeat_n(reply.clone(), reply.repeat.unwrap_or(1).max(1) as usize))
        .collect()
}

/// SplitMix64: spreads a small seed over 64 bits for the ids.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 400 the real service sends for a field of the wrong JSON type.
fn field_type_error(fields: &Map<String, Value>) -> Option<String> {
    for (name, value) in fields.iter().filter(|(_, value)| !value.is_null()) {
        let expected = match name.as_str() {
            "registration_ids" => {
                if !value.is_array() {
                    return Some("\"registration_ids\" field is not a JSON array".into());
                }
                if value.as_array().is_some_and(|ids| ids.iter().any(|id| !id.is_string())) {
                    return Some(format!("Field \"registration_ids\" must be a JSON array of strings: {value}"));
                }
                continue;
            }
            "to" | "condition" | "collapse_key" | "restricted_package_name" | "priority" | "notification_key" => {
                (value.is_string(), "string")
            }
            "time_to_live" => (value.is_number(), "number"),
            "delay_while_idle" | "dry_run" | "content_available" | "mutable_content" => (value.is_boolean(), "boolean"),
            "data" | "notification" => (value.is_object(), "object"),
            _ => continue,
        };
        if let (false, kind) = expected {
            return Some(format!("Field \"{name}\" must be a JSON {kind}: {value}"));
        }
    }
    None
}

/// The 400 reason for a JSON body that [`JsonSend`] refused: the parser's error, or the
/// field of the wrong type.
fn json_rejection(body: &[u8], error: &serde_json::Error) -> String {
    match serde_json::from_slice::<Value>(body) {
        Err(e) => format!("JSON_PARSING_ERROR: {e}"),
        Ok(Value::Object(fields)) => {
            field_type_error(&fields).unwrap_or_else(|| format!("JSON_PARSING_ERROR: {error}"))
        }
        Ok(_) => "JSON_PARSING_ERROR: the request body is not a JSON object".to_owned(),
    }
}

/// Every field but the target and the data, as the inbox records them.
fn json_options(body: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut fields)) => {
            for name in ["registration_ids", "to", "condition", "data"] {
                fields.remove(name);
            }
            fields
        }
        _ => Map::new(),
    }
}

/// The error every recipient of a message gets, if any: a bad TTL, then the payload's size
/// and keys.
fn message_error(ttl_ok: bool, data: &Map<String, Value>) -> Option<&'static str> {
    if !ttl_ok {
        Some("InvalidTtl")
    } else if payload_size(data) > MAX_PAYLOAD_BYTES {
        Some("MessageTooBig")
    } else if data.keys().any(|key| is_reserved_data_key(key)) {
        Some("InvalidDataKey")
    } else {
        None
    }
}

fn multicast_response(multicast_id: i64, results: &[TokenResult], id_base: u64) -> Response<Bytes> {
    let success = results.iter().filter(|r| matches!(r, TokenResult::Delivered { .. })).count();
    let canonical_ids =
        results.iter().filter(|r| matches!(r, TokenResult::Delivered { canonical: Some(_), .. })).count();
    let mut out = Vec::with_capacity(96 + 48 * results.len());
    let _ = write!(
        out,
        r#"{{"multicast_id":{multicast_id},"success":{success},"failure":{},"canonical_ids":{canonical_ids},"results":["#,
        results.len() - success
    );
    let mut retry_after = None;
    for (i, result) in results.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match result {
            TokenResult::Delivered { id, canonical } => {
                out.extend_from_slice(br#"{"message_id":""#);
                id.write(id_base, &mut out);
                out.push(b'"');
                if let Some(canonical) = canonical {
                    out.extend_from_slice(br#","registration_id":"#);
                    json_string(canonical, &mut out);
                }
                out.push(b'}');
            }
            TokenResult::Error { code, retry_after: after } => {
                retry_after = retry_after.or(after.as_deref());
                out.extend_from_slice(br#"{"error":"#);
                json_string(code, &mut out);
                out.push(b'}');
            }
        }
    }
    out.extend_from_slice(b"]}");
    with_retry_after(response(StatusCode::OK, "application/json; charset=UTF-8", Bytes::from(out)), retry_after)
}

/// Appends `text` as a JSON string.
fn json_string(text: &str, out: &mut Vec<u8>) {
    // A string always serializes.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn topic_response(result: TokenResult, id_base: u64) -> Response<Bytes> {
    match result {
        TokenResult::Delivered { id, .. } => {
            let mut out = br#"{"message_id":"#.to_vec();
            match id {
                // Topic message ids are JSON numbers.
                MessageId::Topic(_) => id.write(id_base, &mut out),
                other => json_string(&other.text(id_base), &mut out),
            }
            out.push(b'}');
            response(StatusCode::OK, "application/json; charset=UTF-8", Bytes::from(out))
        }
        TokenResult::Error { code, retry_after } => {
            with_retry_after(json(StatusCode::OK, &serde_json::json!({ "error": code })), retry_after.as_deref())
        }
    }
}

fn plain_text_response(result: TokenResult, id_base: u64) -> Response<Bytes> {
    match result {
        TokenResult::Delivered { id, canonical: None } => text(StatusCode::OK, &format!("id={}\n", id.text(id_base))),
        TokenResult::Delivered { id, canonical: Some(canonical) } => {
            text(StatusCode::OK, &format!("id={}\nregistration_id={canonical}\n", id.text(id_base)))
        }
        // Plain text never says `Error=Unavailable`: the service answers 500 instead.
        TokenResult::Error { code, retry_after } if code == "Unavailable" || code == "InternalServerError" => {
            with_retry_after(text(StatusCode::INTERNAL_SERVER_ERROR, ""), retry_after.as_deref())
        }
        TokenResult::Error { code, .. } => text(StatusCode::OK, &format!("Error={code}\n")),
    }
}

fn scripted(reply: &Reply) -> Response<Bytes> {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let response = match (&reply.body, status) {
        (None, StatusCode::UNAUTHORIZED) => unauthorized(),
        (body, status) => text(status, body.as_deref().unwrap_or("")),
    };
    with_retry_after(response, reply.retry_after.as_deref())
}

fn unauthorized() -> Response<Bytes> {
    let mut response = text(StatusCode::UNAUTHORIZED, UNAUTHORIZED_HTML);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
    response
}

fn bad_request(reason: &str) -> Response<Bytes> {
    text(StatusCode::BAD_REQUEST, &format!("{reason}\n"))
}

fn with_retry_after(mut response: Response<Bytes>, retry_after: Option<&str>) -> Response<Bytes> {
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

fn text(status: StatusCode, body: &str) -> Response<Bytes> {
    response(status, "text/plain; charset=UTF-8", Bytes::copy_from_slice(body.as_bytes()))
}

fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Bytes> {
    match serde_json::to_vec(value) {
        Ok(body) => response(status, "application/json; charset=UTF-8", Bytes::from(body)),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot encode the answer: {e}\n")),
    }
}

fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn header_text(headers: &HeaderMap, name: &http::HeaderName) -> Option<String> {
    headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}
