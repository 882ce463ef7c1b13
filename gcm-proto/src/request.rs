//! Encoding: a [`Message`] becomes an `http::Request` with the exact body bytes.

use std::fmt;

use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Uri};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use crate::backoff::Backoff;
use crate::error::BuildError;
use crate::json;
use crate::message::{Format, Message, Options, Target};

/// The original GCM endpoint (same protocol), the default of the Python library this crate
/// is modelled on. Google shut it down in 2019.
pub const GCM_URL: &str = "https://android.googleapis.com/gcm/send";
/// The GCM endpoint Google introduced in 2015 (same protocol), shut down with [`GCM_URL`].
pub const GCM_HTTP_URL: &str = "https://gcm-http.googleapis.com/gcm/send";
/// The FCM "legacy HTTP" endpoint, the last one Google served for this protocol and the
/// default of [`Gcm::new`]. Google began shutting it down on 2024-07-22: new projects use
/// FCM HTTP v1 ([`crate::v1`]); this protocol lives on in compatible servers and mocks.
pub const FCM_URL: &str = "https://fcm.googleapis.com/fcm/send";

/// `Content-Type` of JSON requests.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// `Content-Type` of plain-text requests.
pub const CONTENT_TYPE_PLAIN_TEXT: &str = "application/x-www-form-urlencoded;charset=UTF-8";

/// The sender's configuration: API key, endpoint and backoff. It turns messages into
/// requests ([`Gcm::encode`]) and responses into outcomes ([`Gcm::decode`](crate::Gcm::decode)),
/// and does nothing else: no IO, no clock, no randomness of its own.
///
/// `Debug` never shows the API key.
#[derive(Clone)]
pub struct Gcm {
    endpoint: Uri,
    authorization: HeaderValue,
    pub(crate) backoff: Backoff,
}

impl fmt::Debug for Gcm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gcm")
            .field("endpoint", &self.endpoint)
            .field("api_key", &"<redacted>")
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl Gcm {
    /// A sender for this API key, on the [`FCM_URL`] endpoint with the default [`Backoff`].
    /// An empty key, or one that cannot be an HTTP header, is refused.
    pub fn new(api_key: &str) -> Result<Self, BuildError> {
        if api_key.trim().is_empty() {
            return Err(BuildError::InvalidApiKey);
        }
        let mut authorization =
            HeaderValue::try_from(format!("key={api_key}")).map_err(|_| BuildError::InvalidApiKey)?;
        authorization.set_sensitive(true);
        Ok(Self { endpoint: Uri::from_static(FCM_URL), authorization, backoff: Backoff::default() })
    }

    /// Sends to another endpoint: a compatible server, or a mock such as
    /// `http://127.0.0.1:PORT/gcm/send`.
    pub fn with_endpoint(mut self, url: &str) -> Result<Self, BuildError> {
        self.endpoint = absolute_url(url, url)?;
        Ok(self)
    }

    /// Uses another backoff for the outcomes this sender decodes.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &Uri {
        &self.endpoint
    }

    /// The backoff of the outcomes this sender decodes.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// Builds the HTTP request for `message`: `POST` to the endpoint with
    /// `Authorization: key=…`, the format's `Content-Type`, `Content-Length` and the body.
    ///
    /// Fails only on what the wire cannot represent; see [`BuildError`].
    pub fn encode(&self, message: &Message) -> Result<Request<Vec<u8>>, BuildError> {
        let (body, content_type) = match message.format {
            Format::Json => (json_body(message)?, CONTENT_TYPE_JSON),
            Format::PlainText => (plain_text_body(message)?.into_bytes(), CONTENT_TYPE_PLAIN_TEXT),
        };
        let mut request = Request::new(Vec::new());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.endpoint.clone();
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, self.authorization.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        *request.body_mut() = body;
        Ok(request)
    }
}

/// `url` parsed, if it is an absolute `http` or `https` URL; errors name `given`, the URL
/// as the caller wrote it.
pub(crate) fn absolute_url(url: &str, given: &str) -> Result<Uri, BuildError> {
    let invalid = |reason: &str| BuildError::InvalidEndpoint { url: given.to_owned(), reason: reason.to_owned() };
    let uri: Uri = url.parse().map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err(invalid("expected an absolute http:// or https:// URL")),
    }
}

/// The JSON body: target, options in the protocol's order, extra options by key, `data`,
/// `notification`.
fn json_body(message: &Message) -> Result<Vec<u8>, BuildError> {
    if let Target::RegistrationIds(tokens) = &message.target {
        if tokens.is_empty() {
            return Err(BuildError::NoRecipients);
        }
    }
    let target_field = target_field(&message.target);
    for field in message.options.extra.keys() {
        if is_named_field(field) || field == target_field {
            return Err(BuildError::DuplicateField { field: field.clone() });
        }
    }
    let mut body = Vec::with_capacity(estimated_json_len(message));
    let Target::RegistrationIds(tokens) = &message.target else {
        serialize_into(&mut body, &JsonWire { message, with_target: true });
        return Ok(body);
    };
    // The token list by hand (see `json`), then the other fields as serde writes them:
    // `{…}` with its `{` turned into the `,` after the list, or `}` alone when empty.
    body.extend_from_slice(br#"{"registration_ids":["#);
    for (index, token) in tokens.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        json::push_str(&mut body, token);
    }
    body.push(b']');
    let rest = body.len();
    serialize_into(&mut body, &JsonWire { message, with_target: false });
    if body.len() == rest + 2 {
        body.remove(rest);
    } else if let Some(open) = body.get_mut(rest) {
        *open = b',';
    }
    Ok(body)
}

fn serialize_into(body: &mut Vec<u8>, wire: &JsonWire<'_>) {
    // Serializing strings, numbers and maps into a Vec cannot fail.
    if let Err(e) = wire.serialize(&mut serde_json::Serializer::new(body)) {
        unreachable!("serializing JSON values into memory failed: {e}");
    }
}

fn target_field(target: &Target) -> &'static str {
    match target {
        Target::RegistrationIds(_) => "registration_ids",
        Target::To(_) => "to",
        Target::Condition(_) => "condition",
    }
}

/// Fields the encoder writes itself; an extra option must not repeat one.
fn is_named_field(field: &str) -> bool {
    matches!(
        field,
        "registration_ids"
            | "registration_id"
            | "to"
            | "condition"
            | "data"
            | "notification"
            | "collapse_key"
            | "priority"
            | "content_available"
            | "mutable_content"
            | "delay_while_idle"
            | "time_to_live"
            | "restricted_package_name"
            | "dry_run"
    )
}

fn estimated_json_len(message: &Message) -> usize {
    let tokens: usize = message.tokens().iter().map(|t| t.len() + 3).sum();
    let data: usize = message.data.iter().map(|(k, v)| k.len() + 6 + value_len_hint(v)).sum();
    64 + tokens + data
}

fn value_len_hint(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len(),
        _ => 16,
    }
}

/// The JSON body's fields; without the target when the caller writes it.
struct JsonWire<'a> {
    message: &'a Message,
    with_target: bool,
}

impl Serialize for JsonWire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let message = self.message;
        let options = &message.options;
        let mut map = serializer.serialize_map(None)?;
        match &message.target {
            _ if !self.with_target => {}
            Target::RegistrationIds(tokens) => map.serialize_entry("registration_ids", tokens)?,
            Target::To(to) => map.serialize_entry("to", to)?,
            Target::Condition(condition) => map.serialize_entry("condition", condition)?,
        }
        option_entry(&mut map, "collapse_key", &options.collapse_key)?;
        option_entry(&mut map, "priority", &options.priority.map(|p| p.as_str()))?;
        option_entry(&mut map, "content_available", &options.content_available)?;
        option_entry(&mut map, "mutable_content", &options.mutable_content)?;
        option_entry(&mut map, "delay_while_idle", &options.delay_while_idle)?;
        option_entry(&mut map, "time_to_live", &options.time_to_live)?;
        option_entry(&mut map, "restricted_package_name", &options.restricted_package_name)?;
        option_entry(&mut map, "dry_run", &options.dry_run)?;
        for (name, value) in &options.extra {
            map.serialize_entry(name, value)?;
        }
        if !message.data.is_empty() {
            map.serialize_entry("data", &message.data)?;
        }
        option_entry(&mut map, "notification", &message.notification)?;
        map.end()
    }
}

fn option_entry<M: SerializeMap, T: Serialize>(map: &mut M, key: &str, value: &Option<T>) -> Result<(), M::Error> {
    match value {
        Some(value) => map.serialize_entry(key, value),
        None => Ok(()),
    }
}

/// The form body: `registration_id`, options (booleans as `1`/`0`), extra options, then one
/// `data.<key>` field per payload entry. `null` data values are left out.
fn plain_text_body(message: &Message) -> Result<String, BuildError> {
    let token = match (&message.target, message.tokens()) {
        (Target::To(token), _) | (Target::RegistrationIds(_), [token]) => token,
        (Target::RegistrationIds(tokens), _) => {
            return Err(BuildError::PlainTextTarget { reason: format!("the message has {} tokens", tokens.len()) });
        }
        (Target::Condition(_), _) => {
            return Err(BuildError::PlainTextTarget { reason: "the message targets a condition".to_owned() });
        }
    };
    if message.notification.is_some() {
        return Err(BuildError::PlainTextUnsupported { field: "notification".to_owned() });
    }
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("registration_id", token);
    plain_text_options(&mut form, &message.options)?;
    let mut key = String::new();
    for (name, value) in &message.data {
        key.clear();
        key.push_str("data.");
        key.push_str(name);
        if let Some(text) = scalar_text(&key, value)? {
            form.append_pair(&key, &text);
        }
    }
    Ok(form.finish())
}

fn plain_text_options(form: &mut form_urlencoded::Serializer<'_, String>, options: &Options) -> Result<(), BuildError> {
    let flag = |on: bool| if on { "1" } else { "0" };
    let mut pair = |name: &str, value: Option<&str>| {
        if let Some(value) = value {
            form.append_pair(name, value);
        }
    };
    pair("collapse_key", options.collapse_key.as_deref());
    pair("priority", options.priority.map(|p| p.as_str()));
    pair("content_available", options.content_available.map(flag));
    pair("mutable_content", options.mutable_content.map(flag));
    pair("delay_while_idle", options.delay_while_idle.map(flag));
    pair("time_to_live", options.time_to_live.map(|t| t.to_string()).as_deref());
    pair("restricted_package_name", options.restricted_package_name.as_deref());
    pair("dry_run", options.dry_run.map(flag));
    for (name, value) in &options.extra {
        if is_named_field(name) {
            return Err(BuildError::DuplicateField { field: name.clone() });
        }
        let value = match value {
            Value::Bool(on) => Some(flag(*on).to_owned()),
            other => scalar_text(name, other)?,
        };
        pair(name, value.as_deref());
    }
    Ok(())
}

/// The text of a scalar as a device receives it: strings as they are, numbers and booleans
/// as in JSON, `null` left out.
fn scalar_text(field: &str, value: &Value) -> Result<Option<String>, BuildError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Array(_) | Value::Object(_) => Err(BuildError::PlainTextNested { field: field.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::Notification;

    /// The body as serde alone writes it, target included: what `json_body` must equal.
    fn serde_body(message: &Message) -> Vec<u8> {
        let mut body = Vec::new();
        serialize_into(&mut body, &JsonWire { message, with_target: true });
        body
    }

    proptest! {
        #[test]
        fn the_token_list_is_written_as_serde_writes_it(
            tokens in prop::collection::vec(any::<String>(), 1..20),
            data in prop::option::of(any::<String>()),
            collapse_key in prop::option::of("[a-z\"\\\\]{0,8}"),
            notification in any::<bool>(),
        ) {
            let mut message = Message::multicast(tokens);
            if let Some(value) = data {
                message = message.data("k", value);
            }
            if let Some(key) = collapse_key {
                message = message.collapse_key(key);
            }
            if notification {
                message = message.notification(Notification::new("t", "b"));
            }
            prop_assert_eq!(json_body(&message).unwrap(), serde_body(&message));
        }
    }

    #[test]
    fn a_bare_multicast_closes_its_object() {
        let message = Message::multicast(["a\"b", "c"]);
        assert_eq!(json_body(&message).unwrap(), br#"{"registration_ids":["a\"b","c"]}"#);
        assert_eq!(json_body(&message).unwrap(), serde_body(&message));
    }
}
