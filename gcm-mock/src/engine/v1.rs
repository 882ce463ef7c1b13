//! FCM v1 sends from the server's side: the send path, the body read like the service's
//! parser (400 `INVALID_ARGUMENT` with its details), the access token checked, and the
//! scenario's per-token rules answered with the real v1 bodies.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use gcm_proto::v1::{Content, Message, Problem, Target, Violation, check};
use http::{Request, Response, StatusCode};
use serde_json::{Map, Value};

use super::Engine;
use super::http::{response, with_retry_after};
use super::recipient::{Context, TokenResult};
use super::rpc::{
    UNAUTHENTICATED, error_response, fcm_invalid, invalid_fields, invalid_payload, invalid_value, status_body,
};

/// The project of a v1 send path, `/v1/projects/{project}/messages:send`.
pub(super) fn project_of(path: &str) -> Option<&str> {
    let project = path.strip_prefix("/v1/projects/")?.strip_suffix("/messages:send")?;
    (!project.is_empty() && !project.contains('/')).then_some(project)
}

impl Engine {
    /// `POST /v1/projects/{project}/messages:send`.
    #[allow(clippy::result_large_err)] // the error is the response itself, built once per request
    pub(super) fn v1_send<B: AsRef<[u8]>>(
        &mut self,
        request: &Request<B>,
        send: Result<Send, Response<Bytes>>,
        project: &str,
        seq: u64,
        now: SystemTime,
    ) -> (Response<Bytes>, bool) {
        let denied = format!(
            "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/{project}' (or it may not exist)."
        );
        if let Err(refused) = self.v1_admission(request, project, &denied, now) {
            return refused;
        }
        let send = match send {
            Ok(send) => send,
            Err(rejection) => return (rejection, true),
        };
        let options = Arc::new(if self.recording.is_some() { send.options } else { Map::new() });
        let data = Arc::new(send.data);
        let ctx = Context {
            // Read and checked before: see `read_content`.
            message_error: None,
            restricted_package: send.restricted_package.as_deref(),
            dry_run: send.validate_only,
            seq,
            now,
            data: &data,
            options: &options,
            payload_share: request.body().as_ref().len(),
        };
        let response = match self.token_result(&send.recipient, send.topic, &ctx) {
            TokenResult::Delivered { id, .. } => {
                let name = format!("projects/{project}/messages/{}", id.text(self.id_base));
                response(
                    StatusCode::OK,
                    "application/json; charset=UTF-8",
                    Bytes::from(serde_json::json!({ "name": name }).to_string()),
                )
            }
            TokenResult::Error { code, retry_after } => {
                with_retry_after(error_response(&code, send.topic), retry_after.as_deref())
            }
        };
        (response, true)
    }
}

impl Engine {
    /// What comes before any v1 call's own answer, in the service's order: a scripted
    /// reply, a refused access token (401), another project (403 with `denied`), an
    /// injected server error. `Err` holds that answer and whether the token was accepted.
    #[allow(clippy::result_large_err)] // the error is the response itself, built once per request
    pub(super) fn v1_admission<B>(
        &mut self,
        request: &Request<B>,
        project: &str,
        denied: &str,
        now: SystemTime,
    ) -> Result<(), (Response<Bytes>, bool)> {
        let authorized = self.bearer_accepted(request, now);
        if let Some(reply) = self.next_reply(now) {
            return Err((reply, authorized));
        }
        if !authorized {
            return Err((status_body(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", UNAUTHENTICATED, &[]), false));
        }
        if self.oauth.project_id() != Some(project) {
            return Err((status_body(StatusCode::FORBIDDEN, "PERMISSION_DENIED", denied, &[]), true));
        }
        match self.injected_server_error() {
            Some(fault) => Err((fault, true)),
            None => Ok(()),
        }
    }
}

/// A v1 send, as far as the mock's behaviour needs it.
pub(super) struct Send {
    recipient: String,
    topic: bool,
    data: Map<String, Value>,
    /// The message's other fields, for the inbox.
    options: Map<String, Value>,
    restricted_package: Option<String>,
    validate_only: bool,
}

/// A field name as the proto has it: Google's JSON parser takes a field by its proto name
/// (`fcm_options`) or its JSON name (`fcmOptions`), as the proto3 JSON mapping says.
fn proto_name(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return name.into();
    }
    let mut snake = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake.into()
}

/// Renames every field to its proto name, down the message's structure, but not the keys
/// of free-form maps (`data`, `headers`, APNs' `payload`, Web Push's `notification`).
/// `renamed` keeps each renamed field's spelling as sent, by its path (`message.fcm_option`),
/// for the errors that name it.
fn proto_names(fields: Map<String, Value>, path: &str, renamed: &mut Vec<(String, String)>) -> Map<String, Value> {
    fields
        .into_iter()
        .map(|(sent, value)| {
            let name = proto_name(&sent).into_owned();
            let field = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
            if name != sent {
                renamed.push((field.clone(), sent));
            }
            let free =
                matches!(name.as_str(), "data" | "headers" | "payload") || field == "message.webpush.notification";
            let value = match value {
                Value::Object(inner) if !free => Value::Object(proto_names(inner, &field, renamed)),
                other => other,
            };
            (name, value)
        })
        .collect()
}

/// Reads the body like the service: unknown fields, non-string data and a missing or
/// doubled target are 400 `INVALID_ARGUMENT` with a `BadRequest` detail.
#[allow(clippy::result_large_err)] // the error is the response itself, built once per request
pub(super) fn parse_send(body: &[u8]) -> Result<Send, Response<Bytes>> {
    let top = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(top)) => top,
        Ok(_) => return Err(invalid_payload("", "Invalid JSON payload received. Expected an object.")),
        Err(e) => return Err(invalid_payload("", &format!("Invalid JSON payload received. {e}"))),
    };
    if let Some(name) = top.keys().find(|k| !matches!(&*proto_name(k), "message" | "validate_only")) {
        return Err(invalid_payload(
            "",
            &format!("Invalid JSON payload received. Unknown name \"{name}\": Cannot find field."),
        ));
    }
    let mut renamed = Vec::new();
    let top = proto_names(top, "", &mut renamed);
    let validate_only = match top.get("validate_only") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(on)) => *on,
        Some(other) => return Err(invalid_value("validate_only", "TYPE_BOOL", other)),
    };
    let mut top = top;
    let Some(Value::Object(mut message)) = top.remove("message") else {
        return Err(status_body(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
            &[],
        ));
    };
    let mut targets =
        ["token", "topic", "condition", "fid"].into_iter().filter_map(|field| match message.remove(field) {
            Some(Value::String(value)) if !value.is_empty() => Some(Ok((field, value))),
            Some(Value::Null | Value::String(_)) | None => None,
            Some(other) => Some(Err(invalid_value(&format!("message.{field}"), "TYPE_STRING", &other))),
        });
    let (field, value) = match (targets.next(), targets.next()) {
        (None, _) => return Err(fcm_invalid("message", "Recipient of the message is not set.")),
        (Some(Err(rejection)), _) | (_, Some(Err(rejection))) => return Err(rejection),
        (Some(Ok(_)), Some(Ok((second, _)))) => {
            let text = format!(
                "Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set '{second}'"
            );
            return Err(invalid_payload("message", &text));
        }
        (Some(Ok(target)), None) => target,
    };
    let data = match message.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => {
            if let Some((i, (_, value))) = data.iter().enumerate().find(|(_, (_, v))| !v.is_string()) {
                return Err(invalid_value(&format!("message.data[{i}].value"), "TYPE_STRING", value));
            }
            data
        }
        Some(other) => return Err(invalid_value("message.data", "TYPE_MESSAGE", &other)),
    };
    // `name` is output only: FCM ignores it in a request.
    message.remove("name");
    let target = match field {
        "topic" => Target::Topic(value.clone()),
        "condition" => Target::Condition(value.clone()),
        "fid" => Target::Fid(value.clone()),
        _ => Target::Token(value.clone()),
    };
    let content = read_content(&message, &data, target, &renamed)?;
    let restricted_package = content.android.and_then(|android| android.restricted_package_name);
    let (recipient, topic) = match field {
        "topic" => (format!("/topics/{}", value.strip_prefix("/topics/").unwrap_or(&value)), true),
        "condition" => (value, true),
        _ => (value, false),
    };
    Ok(Send { recipient, topic, data, options: message, restricted_package, validate_only })
}

/// The message's fields (but `data`, already read, and the target) as gcm-proto types
/// them, then [`check`]ed as FCM checks them: a value of the wrong type, an unknown field
/// at any level FCM types, and every limit FCM enforces are refused with FCM's body. All
/// unknown names and enum values are listed, as Google's parser lists them; of the other
/// problems, the first, with the FCM code `INVALID_ARGUMENT`.
#[allow(clippy::result_large_err)] // the error is the response itself, built once per request
fn read_content(
    message: &Map<String, Value>,
    data: &Map<String, Value>,
    target: Target,
    renamed: &[(String, String)],
) -> Result<Content, Response<Bytes>> {
    let mut content: Content = match serde_path_to_error::deserialize(message) {
        Ok(content) => content,
        Err(error) => {
            let field = format!("message.{}", error.path());
            return Err(invalid_payload(&field, &format!("Invalid value at '{field}': {}", error.inner())));
        }
    };
    content.data =
        data.iter().map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_owned())).collect();
    let message = Message::new(target, content);
    let violations = check(&message);
    // Unknown names and enum values are the parser's refusals (no FCM code), all listed.
    let (unknown, other): (Vec<_>, Vec<_>) = violations.iter().partition(|violation| {
        matches!(violation.problem, Problem::UnknownField { .. } | Problem::UnknownValue { .. })
    });
    if !unknown.is_empty() {
        // Unknown names are reported as sent, before renaming.
        let as_sent = |violation: &&Violation| {
            let Problem::UnknownField { name } = &violation.problem else { return violation.to_string() };
            let path = format!("{}.{name}", violation.field);
            let sent = renamed.iter().find(|(field, _)| *field == path).map_or(name.as_str(), |(_, sent)| sent);
            Violation { field: violation.field.clone(), problem: Problem::UnknownField { name: sent.to_owned() } }
                .to_string()
        };
        let texts: Vec<String> = unknown.iter().map(as_sent).collect();
        let fields = unknown.iter().zip(&texts).map(|(violation, text)| (violation.field.as_str(), text.as_str()));
        return Err(invalid_fields(&texts.join("\n"), fields));
    }
    if let Some(first) = other.first() {
        return Err(fcm_invalid(&first.field, &first.to_string()));
    }
    Ok(message.content)
}
