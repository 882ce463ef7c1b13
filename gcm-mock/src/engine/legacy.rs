//! The legacy GCM / FCM HTTP protocol from the server's side: JSON and plain-text sends,
//! answered with the service's bodies, per-token results and status codes.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use gcm_proto::{MAX_REGISTRATION_IDS, MAX_TIME_TO_LIVE};
use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::Engine;
use super::answer::{Answer, Multicast};
use super::http::{MessageId, bad_request, json, json_string, response, text, unauthorized, with_retry_after};
use super::recipient::{Context, DataLimits, TokenResult, message_error};

/// The fields of a JSON send that drive the mock's behaviour. Strings are borrowed from
/// the body; `null` counts as absent. Anything this does not accept is looked at again by
/// [`json_rejection`] for the service's 400 reason.
#[derive(Deserialize)]
pub(super) struct JsonSend<'a> {
    #[serde(default, borrow)]
    registration_ids: Option<Vec<Token<'a>>>,
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
    /// Read when the answer is decided: into a map to record, or only for its limits.
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default, rename = "notification")]
    _notification: Option<serde::de::IgnoredAny>,
}

/// A JSON send as read before the engine's lock: its fields, and its data's limits (or why
/// the data is refused).
pub(super) struct ParsedSend<'a> {
    send: JsonSend<'a>,
    data_limits: Result<DataLimits, serde_json::Error>,
}

/// Reads a JSON send's `body`, checked as UTF-8 once rather than string by string (an
/// invalid body goes to the parser as bytes, for the parser's own error).
pub(super) fn parse_json_send(body: &[u8]) -> Result<ParsedSend<'_>, serde_json::Error> {
    let send: JsonSend<'_> = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text)?,
        Err(_) => serde_json::from_slice(body)?,
    };
    let data_limits = send.data.map_or(Ok(DataLimits::default()), data_limits);
    Ok(ParsedSend { send, data_limits })
}

/// `POST /gcm/send` and `POST /fcm/send`: the paths of the legacy protocol.
pub(super) fn is_send_path(path: &str) -> bool {
    matches!(path, "/gcm/send" | "/fcm/send")
}

/// A registration token (or a `data` key) borrowed from the body unless it has escapes.
/// (serde borrows a `Cow` field, but not the `Cow`s inside a `Vec`: those would be 1000
/// copies.)
#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Token<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Token<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TokenVisitor;

        impl<'de> serde::de::Visitor<'de> for TokenVisitor {
            type Value = Token<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Token(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Token(Cow::Owned(v.to_owned())))
            }
        }

        deserializer.deserialize_str(TokenVisitor)
    }
}

impl Engine {
    /// A legacy send; `json` is its body as parsed before the lock, for a JSON send.
    pub(super) fn legacy_send(
        &mut self,
        body: &[u8],
        json: Option<Result<ParsedSend<'_>, serde_json::Error>>,
        authorized: bool,
        seq: u64,
        now: SystemTime,
    ) -> Answer {
        if let Some(reply) = self.next_reply(now) {
            return reply.into();
        }
        if !authorized {
            return unauthorized().into();
        }
        if let Some(fault) = self.injected_server_error() {
            return fault.into();
        }
        match json {
            Some(json) => self.send_json(body, json, seq, now),
            None => self.send_plain_text(body, seq, now).into(),
        }
    }

    fn send_json(
        &mut self,
        body: &[u8],
        parsed: Result<ParsedSend<'_>, serde_json::Error>,
        seq: u64,
        now: SystemTime,
    ) -> Answer {
        // A `data` that is not an object is the parser's refusal too: before the other checks.
        let (request, limits) = match parsed.and_then(|parsed| Ok((parsed.send, parsed.data_limits?))) {
            Ok(parsed) => parsed,
            Err(error) => return bad_request(&json_rejection(body, &error)).into(),
        };
        if let Some(ids) = &request.registration_ids {
            if request.to.is_some() {
                return bad_request("Must use either \"registration_ids\" field or \"to\", not both").into();
            }
            if ids.is_empty() {
                return bad_request("\"registration_ids\" field cannot be empty").into();
            }
            if ids.len() > MAX_REGISTRATION_IDS {
                return bad_request(&format!(
                    "Number of messages on bulk ({}) exceeds maximum allowed ({MAX_REGISTRATION_IDS})",
                    ids.len()
                ))
                .into();
            }
        }
        // Only the inbox needs the data and the other fields as values: read them again
        // only when recording.
        let (data, options) = match self.recording {
            Some(_) => {
                let data = match request.data.map(|raw| serde_json::from_str(raw.get())).transpose() {
                    Ok(data) => data.unwrap_or_default(),
                    Err(error) => return bad_request(&json_rejection(body, &error)).into(),
                };
                match json_options(body) {
                    Ok(options) => (Arc::new(data), Arc::new(options)),
                    // Never a delivery recorded without what it carried.
                    Err(reason) => return bad_request(&reason).into(),
                }
            }
            None => (Arc::clone(&self.nothing), Arc::clone(&self.nothing)),
        };
        let recipients = request.registration_ids.as_ref().map_or(1, Vec::len).max(1);
        let ttl_ok =
            request.time_to_live.is_none_or(|ttl| ttl.as_u64().is_some_and(|t| t <= u64::from(MAX_TIME_TO_LIVE)));
        let dry_run = request.dry_run.unwrap_or(false);
        let ctx = Context {
            message_error: message_error(ttl_ok, limits),
            restricted_package: request.restricted_package_name.as_deref(),
            dry_run,
            seq,
            now,
            data: &data,
            options: &options,
            payload_share: body.len() / recipients,
        };
        let to = request.to.as_deref().filter(|to| !to.is_empty());
        let condition = request.condition.as_deref().filter(|c| !c.is_empty());
        let topic = to.filter(|to| to.starts_with("/topics/")).or(if to.is_none() { condition } else { None });
        if let Some(topic) = topic {
            let result = self.token_result(topic, true, &ctx);
            return topic_response(result, self.id_base).into();
        }
        let results: Vec<TokenResult> = match (&request.registration_ids, to) {
            (Some(ids), _) => ids
                .iter()
                .map(|Token(token)| match token.is_empty() {
                    // As `to: ""` and a plain-text empty `registration_id` get.
                    true => TokenResult::error("MissingRegistration", None),
                    false => self.token_result(token, false, &ctx),
                })
                .collect(),
            (None, Some(to)) => vec![self.token_result(to, false, &ctx)],
            (None, None) => vec![TokenResult::error("MissingRegistration", None)],
        };
        let multicast_id = if dry_run { -1 } else { self.multicast_id(seq) };
        Answer::multicast(Multicast { multicast_id, results, id_base: self.id_base })
    }

    fn send_plain_text(&mut self, body: &[u8], seq: u64, now: SystemTime) -> Response<Bytes> {
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
        let restricted_package = option("restricted_package_name").map(str::to_owned);
        let dry_run = option("dry_run").is_some_and(|v| v == "1" || v == "true");
        let (data, options) = (Arc::new(data), Arc::new(options));
        let ctx = Context {
            message_error: message_error(ttl_ok, DataLimits::of(&data)),
            restricted_package: restricted_package.as_deref(),
            dry_run,
            seq,
            now,
            data: &data,
            options: &options,
            payload_share: body.len(),
        };
        let result = self.token_result(&token, false, &ctx);
        plain_text_response(result, self.id_base)
    }
}

/// What [`DataLimits::of`] reads from a map of values, read from the raw object: one
/// allocation (the key index) where the map takes two per entry. Duplicate keys count
/// once, with their last value, as in the map.
fn data_limits(raw: &RawValue) -> Result<DataLimits, serde_json::Error> {
    let entries: std::collections::BTreeMap<Token<'_>, &RawValue> = serde_json::from_str(raw.get())?;
    let mut limits = DataLimits::default();
    for (Token(key), value) in &entries {
        let value = value.get();
        let length = match value.starts_with('"') {
            true => serde_json::from_str::<Token<'_>>(value)?.0.len(),
            // As the map counts a value that is not a string: its compact JSON.
            false => serde_json::from_str::<Value>(value)?.to_string().len(),
        };
        limits.add(key, length);
    }
    Ok(limits)
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

/// Every field but the target and the data, as the inbox records them; the parser's error
/// when the body cannot be held as a value (nested deeper than its limit of 128).
fn json_options(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut fields)) => {
            for name in ["registration_ids", "to", "condition", "data"] {
                fields.remove(name);
            }
            Ok(fields)
        }
        Ok(_) => Ok(Map::new()),
        Err(error) => Err(format!("JSON_PARSING_ERROR: {error}")),
    }
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
