//! The mock's protocol logic, without IO: a request in, a response out, deliveries recorded.
//! Given the same scenario, seed and request sequence it gives the same response bytes.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use gcm_proto::{MAX_PAYLOAD_BYTES, MAX_REGISTRATION_IDS, MAX_TIME_TO_LIVE, is_reserved_data_key, payload_size};
use http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::scenario::{Behaviour, Reply, Scenario, TokenRule};

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
    /// True when the API key was accepted.
    pub authorized: bool,
    /// The body, as (lossy) UTF-8.
    pub body: String,
    /// The status the mock answered with.
    pub status: u16,
}

/// The mock's state: scenario, counters, random generator, inbox and request log.
#[derive(Debug)]
pub struct Engine {
    scenario: Scenario,
    api_keys: Vec<String>,
    rng: Xoshiro256PlusPlus,
    replies: VecDeque<Reply>,
    attempts: HashMap<String, u32>,
    requests_seen: u64,
    messages_sent: u64,
    id_base: u64,
    inbox: Vec<Delivery>,
    log: VecDeque<ReceivedRequest>,
}

/// One recipient's result.
enum TokenResult {
    Delivered { message_id: String, canonical: Option<String> },
    Error { code: String, retry_after: Option<String> },
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
            scenario,
            api_keys,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            attempts: HashMap::new(),
            requests_seen: 0,
            messages_sent: 0,
            id_base: splitmix64(seed),
            inbox: Vec::new(),
            log: VecDeque::new(),
        }
    }

    /// Back to the state right after [`Engine::new`]: inbox, log, counters, attempts,
    /// replies and random generator.
    pub fn reset(&mut self) {
        *self = Self::new(self.scenario.clone(), std::mem::take(&mut self.api_keys));
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

    /// Answers one request that arrived on `connection`.
    pub fn handle<B: AsRef<[u8]>>(&mut self, request: &Request<B>, connection: u64) -> Response<Bytes> {
        let path = request.uri().path();
        let send_path = matches!(path, "/gcm/send" | "/fcm/send");
        match (request.method(), path) {
            (&Method::POST, _) if send_path => self.send(request, connection),
            (_, _) if send_path => {
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
            (&Method::POST, "/_mock/reset") => {
                self.reset();
                json(StatusCode::OK, &self.inbox)
            }
            _ => text(StatusCode::NOT_FOUND, "Not Found\n"),
        }
    }

    fn send<B: AsRef<[u8]>>(&mut self, request: &Request<B>, connection: u64) -> Response<Bytes> {
        self.requests_seen += 1;
        let seq = self.requests_seen;
        let body = request.body().as_ref();
        let authorized = self.authorized(request.headers());
        let response = self.answer(request.headers(), body, authorized, seq);
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
            body: String::from_utf8_lossy(body).into_owned(),
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
        let faults = &self.scenario.faults;
        if faults.server_error > 0.0 && self.rng.random_bool(faults.server_error) {
            let status = StatusCode::from_u16(faults.server_error_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return with_retry_after(text(status, ""), faults.retry_after.as_deref());
        }
        let is_json = header_text(headers, &CONTENT_TYPE)
            .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/json"));
        if is_json { self.send_json(body, seq) } else { self.send_plain_text(body, seq) }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(key) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("key="))
        else {
            return false;
        };
        if self.api_keys.is_empty() { !key.is_empty() } else { self.api_keys.iter().any(|k| k == key) }
    }

    fn send_json(&mut self, body: &[u8], seq: u64) -> Response<Bytes> {
        let fields = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => return bad_request("JSON_PARSING_ERROR: the request body is not a JSON object"),
            Err(e) => return bad_request(&format!("JSON_PARSING_ERROR: {e}")),
        };
        if let Some(reason) = field_type_error(&fields) {
            return bad_request(&reason);
        }
        let registration_ids = fields.get("registration_ids").and_then(Value::as_array);
        if let Some(ids) = registration_ids {
            if fields.contains_key("to") {
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
        let empty = Map::new();
        let data = fields.get("data").and_then(Value::as_object).unwrap_or(&empty);
        let options: Map<String, Value> = fields
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "registration_ids" | "to" | "condition" | "data"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let dry_run = fields.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
        let ctx = Context {
            message_error: json_message_error(&fields, data),
            restricted_package: fields.get("restricted_package_name").and_then(Value::as_str),
            dry_run,
            seq,
            data,
            options: &options,
        };
        let to = fields.get("to").and_then(Value::as_str).filter(|to| !to.is_empty());
        let condition = fields.get("condition").and_then(Value::as_str).filter(|c| !c.is_empty());
        let topic = to.filter(|to| to.starts_with("/topics/")).or(if to.is_none() { condition } else { None });
        if let Some(topic) = topic {
            let result = self.token_result(topic, true, &ctx);
            return topic_response(result);
        }
        let tokens: Vec<&str> = match (registration_ids, to) {
            (Some(ids), _) => ids.iter().filter_map(Value::as_str).collect(),
            (None, Some(to)) => vec![to],
            (None, None) => Vec::new(),
        };
        let results: Vec<TokenResult> = if tokens.is_empty() {
            vec![TokenResult::Error { code: "MissingRegistration".into(), retry_after: None }]
        } else {
            tokens.iter().map(|token| self.token_result(token, false, &ctx)).collect()
        };
        let multicast_id = if dry_run { -1 } else { self.multicast_id(seq) };
        multicast_response(multicast_id, results)
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
            return plain_text_response(TokenResult::Error { code: "MissingRegistration".into(), retry_after: None });
        };
        let option = |name: &str| options.get(name).and_then(Value::as_str);
        let ttl_ok = option("time_to_live").is_none_or(|ttl| ttl.parse::<u32>().is_ok_and(|t| t <= MAX_TIME_TO_LIVE));
        let ctx = Context {
            message_error: if ttl_ok { data_error(&data) } else { Some("InvalidTtl") },
            restricted_package: option("restricted_package_name"),
            dry_run: option("dry_run").is_some_and(|v| v == "1" || v == "true"),
            seq,
            data: &data,
            options: &options,
        };
        let result = self.token_result(&token, false, &ctx);
        plain_text_response(result)
    }

    /// The result for one recipient: message-wide errors first, then the token's package,
    /// injected faults, and the scenario's rule. Records the delivery.
    fn token_result(&mut self, token: &str, topic: bool, ctx: &Context<'_>) -> TokenResult {
        let attempt = {
            let count = self.attempts.entry(token.to_owned()).or_insert(0);
            *count = count.saturating_add(1);
            *count
        };
        let error = |code: &str, retry_after: Option<&String>| TokenResult::Error {
            code: code.to_owned(),
            retry_after: retry_after.cloned(),
        };
        if let Some(code) = ctx.message_error {
            return error(code, None);
        }
        let rule: &TokenRule = self.scenario.tokens.get(token).unwrap_or(&self.scenario.default);
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
            return TokenResult::Delivered { message_id: "fake_message_id".into(), canonical };
        }
        self.messages_sent += 1;
        let message_id = if topic {
            (self.id_base % 1_000_000_000_000 + self.messages_sent).to_string()
        } else {
            format!("0:{:016}%{:016x}", 1_400_000_000_000_000 + self.messages_sent, self.id_base)
        };
        self.inbox.push(Delivery {
            token: token.to_owned(),
            message_id: message_id.clone(),
            data: ctx.data.clone(),
            options: ctx.options.clone(),
            attempt,
            request: ctx.seq,
        });
        TokenResult::Delivered { message_id, canonical }
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
    for (name, value) in fields {
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

/// A per-recipient error that applies to the whole message.
fn json_message_error(fields: &Map<String, Value>, data: &Map<String, Value>) -> Option<&'static str> {
    let ttl_ok =
        fields.get("time_to_live").is_none_or(|ttl| ttl.as_u64().is_some_and(|t| t <= u64::from(MAX_TIME_TO_LIVE)));
    if !ttl_ok {
        return Some("InvalidTtl");
    }
    data_error(data)
}

fn data_error(data: &Map<String, Value>) -> Option<&'static str> {
    if payload_size(data) > MAX_PAYLOAD_BYTES {
        Some("MessageTooBig")
    } else if data.keys().any(|key| is_reserved_data_key(key)) {
        Some("InvalidDataKey")
    } else {
        None
    }
}

#[derive(Serialize)]
struct MulticastBody<'a> {
    multicast_id: i64,
    success: usize,
    failure: usize,
    canonical_ids: usize,
    results: Vec<ResultBody<'a>>,
}

#[derive(Serialize)]
struct ResultBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn multicast_response(multicast_id: i64, results: Vec<TokenResult>) -> Response<Bytes> {
    let mut retry_after = None;
    let results: Vec<ResultBody<'_>> = results
        .iter()
        .map(|result| match result {
            TokenResult::Delivered { message_id, canonical } => {
                ResultBody { message_id: Some(message_id), registration_id: canonical.as_deref(), error: None }
            }
            TokenResult::Error { code, retry_after: after } => {
                retry_after = retry_after.or(after.as_deref());
                ResultBody { message_id: None, registration_id: None, error: Some(code) }
            }
        })
        .collect();
    let success = results.iter().filter(|r| r.message_id.is_some()).count();
    let body = MulticastBody {
        multicast_id,
        success,
        failure: results.len() - success,
        canonical_ids: results.iter().filter(|r| r.registration_id.is_some()).count(),
        results,
    };
    with_retry_after(json(StatusCode::OK, &body), retry_after)
}

fn topic_response(result: TokenResult) -> Response<Bytes> {
    match result {
        TokenResult::Delivered { message_id, .. } => {
            // Topic message ids are JSON numbers; ours are always decimal digits.
            let number: Value = message_id.parse::<u64>().map_or(Value::String(message_id), Value::from);
            json(StatusCode::OK, &serde_json::json!({ "message_id": number }))
        }
        TokenResult::Error { code, retry_after } => {
            with_retry_after(json(StatusCode::OK, &serde_json::json!({ "error": code })), retry_after.as_deref())
        }
    }
}

fn plain_text_response(result: TokenResult) -> Response<Bytes> {
    match result {
        TokenResult::Delivered { message_id, canonical: None } => text(StatusCode::OK, &format!("id={message_id}\n")),
        TokenResult::Delivered { message_id, canonical: Some(canonical) } => {
            text(StatusCode::OK, &format!("id={message_id}\nregistration_id={canonical}\n"))
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
