//! FCM HTTP v1 from the server's side: the OAuth2 token endpoint, which verifies the
//! service account's signed JWT and issues expiring access tokens, and the send endpoint,
//! which checks the access token and applies the scenario's per-token rules with the real
//! v1 error bodies.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use gcm_proto::MAX_TIME_TO_LIVE;
use gcm_proto::oauth::{Claims, FIREBASE_MESSAGING_SCOPE, GOOGLE_TOKEN_URI, JWT_BEARER_GRANT_TYPE, ServiceAccountKey};
use http::header::{AUTHORIZATION, HOST};
use http::{Request, Response, StatusCode};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::http::{response, with_retry_after};
use super::{Context, DataLimits, Engine, TokenResult, message_error, splitmix64};

/// Where the mock's token endpoint listens.
pub(super) const TOKEN_PATH: &str = "/token";
/// How long the mock's access tokens live by default (Google says `"expires_in": 3599`).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);
/// The mock's own service account: a key made for these tests only, of project
/// `mock-project`. `MockServer::service_account_json` hands it out with the mock's token URL.
pub const MOCK_SERVICE_ACCOUNT_JSON: &str = include_str!("../mock-service-account.json");
/// The project of a key file that names none.
const DEFAULT_PROJECT: &str = "mock-project";
/// How far in the future a JWT's `iat` may be (clock skew).
const CLOCK_SKEW: u64 = 60;
const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
const UNAUTHENTICATED: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
const BAD_JWT_TIME: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";

/// The service account whose assertions the mock accepts.
#[derive(Clone, Debug)]
pub(super) struct Account {
    client_email: String,
    project_id: String,
    public_key: Arc<[u8]>,
}

impl Account {
    fn of(key: &ServiceAccountKey) -> Self {
        Self {
            client_email: key.client_email().to_owned(),
            project_id: key.project_id().unwrap_or(DEFAULT_PROJECT).to_owned(),
            public_key: key.public_key_der().into(),
        }
    }

    fn builtin() -> Option<&'static Account> {
        static BUILTIN: OnceLock<Option<Account>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| ServiceAccountKey::from_json(MOCK_SERVICE_ACCOUNT_JSON).ok().map(|k| Account::of(&k)))
            .as_ref()
    }
}

/// The v1 part of the engine's state. `Debug` counts the issued tokens, never shows them.
pub(super) struct State {
    /// `None`: the built-in account.
    account: Option<Account>,
    token_lifetime: Duration,
    /// Issued access tokens and when each expires.
    tokens: HashMap<String, SystemTime>,
    issued: u64,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("account", &self.account.as_ref().map(|account| &account.client_email))
            .field("token_lifetime", &self.token_lifetime)
            .field("live_tokens", &self.tokens.len())
            .field("issued", &self.issued)
            .finish()
    }
}

impl Default for State {
    fn default() -> Self {
        Self { account: None, token_lifetime: DEFAULT_TOKEN_LIFETIME, tokens: HashMap::new(), issued: 0 }
    }
}

impl State {
    /// The configuration without the issued tokens.
    pub(super) fn fresh(&self) -> Self {
        Self { account: self.account.clone(), token_lifetime: self.token_lifetime, ..Self::default() }
    }

    fn account(&self) -> Option<&Account> {
        self.account.as_ref().or_else(|| Account::builtin())
    }
}

/// The project of a v1 send path, `/v1/projects/{project}/messages:send`.
pub(super) fn project_of(path: &str) -> Option<&str> {
    let project = path.strip_prefix("/v1/projects/")?.strip_suffix("/messages:send")?;
    (!project.is_empty() && !project.contains('/')).then_some(project)
}

impl Engine {
    /// Accepts assertions signed by this service account (instead of the built-in
    /// [`MOCK_SERVICE_ACCOUNT_JSON`]) and sends for its project only.
    pub fn set_service_account(&mut self, key: &ServiceAccountKey) {
        self.v1.account = Some(Account::of(key));
    }

    /// How long the access tokens issued from now on live.
    pub fn set_token_lifetime(&mut self, lifetime: Duration) {
        self.v1.token_lifetime = lifetime;
    }

    /// How many access tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> u64 {
        self.v1.issued
    }

    /// `GET /_mock/service-account`: the built-in key file, its `token_uri` on the host the
    /// request named, for clients in other languages. 404 when another account is set
    /// (the mock does not keep its private key).
    pub(super) fn v1_key_file<B>(&self, request: &Request<B>) -> Response<Bytes> {
        match (&self.v1.account, host(request)) {
            (None, Some(host)) => {
                let file = key_file_with_token_uri(MOCK_SERVICE_ACCOUNT_JSON, &format!("http://{host}{TOKEN_PATH}"));
                response(StatusCode::OK, "application/json; charset=UTF-8", Bytes::from(file))
            }
            _ => super::text(StatusCode::NOT_FOUND, "Not Found\n"),
        }
    }

    /// `POST /token`: a JWT-bearer grant. The assertion must be signed by the service
    /// account's key, name it as issuer and this endpoint (or Google's) as audience, ask
    /// for the FCM scope, and be valid at `now` for at most an hour.
    pub(super) fn v1_token<B: AsRef<[u8]>>(
        &mut self,
        request: &Request<B>,
        now: SystemTime,
    ) -> (Response<Bytes>, bool) {
        let mut grant_type = None;
        let mut assertion = None;
        let mut refresh_token = None;
        for (key, value) in form_urlencoded::parse(request.body().as_ref()) {
            match &*key {
                "grant_type" => grant_type = Some(value.into_owned()),
                "assertion" => assertion = Some(value.into_owned()),
                "refresh_token" => refresh_token = Some(value.into_owned()),
                _ => {}
            }
        }
        // gcloud's user credentials: any refresh token the mock's test user holds.
        if grant_type.as_deref() == Some("refresh_token") {
            if refresh_token.as_deref() != Some(MOCK_REFRESH_TOKEN) {
                return (oauth_error("invalid_grant", "Bad Request"), false);
            }
            return self.issue_token(now);
        }
        if grant_type.as_deref() != Some(JWT_BEARER_GRANT_TYPE) {
            let description = format!("Invalid grant_type: {}", grant_type.unwrap_or_default());
            return (oauth_error("unsupported_grant_type", &description), false);
        }
        let Some(assertion) = assertion else {
            return (oauth_error("invalid_request", "Missing required parameter: assertion"), false);
        };
        let Some(account) = self.v1.account() else {
            return (oauth_error("invalid_grant", "Invalid grant: account not found"), false);
        };
        let audience = format!("http://{}{TOKEN_PATH}", host(request).unwrap_or_default());
        if let Err((error, description)) = verify(&assertion, account, &audience, now) {
            return (oauth_error(error, description), false);
        }
        self.issue_token(now)
    }

    /// `GET /computeMetadata/v1/instance/service-accounts/default/token`: the metadata
    /// server's token for the built-in account, only with `Metadata-Flavor: Google`.
    pub(super) fn metadata_token<B>(&mut self, request: &Request<B>, now: SystemTime) -> (Response<Bytes>, bool) {
        if let Some(refusal) = metadata_flavor_missing(request) {
            return (refusal, false);
        }
        self.issue_token(now)
    }

    /// `GET /computeMetadata/v1/project/project-id`.
    pub(super) fn metadata_project_id<B>(&self, request: &Request<B>) -> Response<Bytes> {
        if let Some(refusal) = metadata_flavor_missing(request) {
            return refusal;
        }
        let project = self.v1.account().map(|account| account.project_id.clone()).unwrap_or_default();
        let mut answer = response(StatusCode::OK, "application/text", Bytes::from(project));
        answer.headers_mut().insert("metadata-flavor", http::HeaderValue::from_static("Google"));
        answer
    }

    /// A new access token, unless a scripted token reply says otherwise.
    fn issue_token(&mut self, now: SystemTime) -> (Response<Bytes>, bool) {
        let scripted = self.next_token_reply();
        if let Some(reply) = &scripted {
            if reply.hang {
                let mut hang = response(StatusCode::OK, "text/plain", Bytes::new());
                hang.extensions_mut().insert(super::Hang);
                return (hang, false);
            }
            if let Some(status) = reply.status {
                let error = if status >= 500 { "internal_failure" } else { "invalid_grant" };
                let mut refusal = oauth_error(error, "Scripted by the scenario.");
                *refusal.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return (refusal, false);
            }
        }
        let sent_expires_in = scripted.and_then(|reply| reply.expires_in);
        // A huge scripted lifetime lives a century here: no overflow, no instant expiry.
        let lifetime = match sent_expires_in.as_ref().and_then(Value::as_u64) {
            Some(seconds) if seconds > 0 => Duration::from_secs(seconds.min(100 * 365 * 24 * 3600)),
            _ => self.v1.token_lifetime,
        };
        self.v1.issued += 1;
        let token = format!("ya29.mock.{}.{:016x}", self.v1.issued, splitmix64(self.id_base ^ self.v1.issued));
        let expires_at = now.checked_add(lifetime).unwrap_or(now);
        self.v1.tokens.retain(|_, expiry| *expiry > now);
        self.v1.tokens.insert(token.clone(), expires_at);
        let body = serde_json::json!({
            "access_token": token,
            "expires_in": sent_expires_in.unwrap_or_else(|| Value::from(lifetime.as_secs())),
            "token_type": "Bearer",
        });
        (response(StatusCode::OK, "application/json; charset=utf-8", Bytes::from(body.to_string())), true)
    }

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
        let bearer = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
        let authorized = bearer.and_then(|token| self.v1.tokens.get(token)).is_some_and(|expiry| now < *expiry);
        if let Some(reply) = self.next_reply(now) {
            return (reply, authorized);
        }
        if !authorized {
            return (status_body(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", UNAUTHENTICATED, &[]), false);
        }
        if self.v1.account().is_none_or(|account| account.project_id != project) {
            let message = format!(
                "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/{project}' (or it may not exist)."
            );
            return (status_body(StatusCode::FORBIDDEN, "PERMISSION_DENIED", &message, &[]), true);
        }
        if let Some(fault) = self.injected_server_error() {
            return (fault, true);
        }
        let send = match send {
            Ok(send) => send,
            Err(rejection) => return (rejection, true),
        };
        let options = Arc::new(if self.recording.is_some() { send.options } else { Map::new() });
        let data = Arc::new(send.data);
        let ctx = Context {
            message_error: message_error(send.ttl_ok, DataLimits::of(&data)),
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

/// A key file with another `token_uri`.
pub(crate) fn key_file_with_token_uri(json: &str, token_uri: &str) -> String {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(mut file)) => {
            file.insert("token_uri".into(), token_uri.into());
            serde_json::to_string_pretty(&file).unwrap_or_default()
        }
        _ => json.to_owned(),
    }
}

/// A token request's form as the request log keeps it: the assertion replaced.
pub(super) fn redacted_token_form(body: &[u8]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(body) {
        let secret = matches!(&*key, "assertion" | "refresh_token" | "client_secret");
        form.append_pair(&key, if secret { "<redacted>" } else { &value });
    }
    form.finish()
}

fn host<B>(request: &Request<B>) -> Option<String> {
    let header = request.headers().get(HOST).and_then(|v| v.to_str().ok());
    header.map(str::to_owned).or_else(|| request.uri().authority().map(|a| a.to_string()))
}

type Refusal = (&'static str, &'static str);

/// Checks an assertion like Google's token endpoint: signature, issuer, audience, scope, time.
fn verify(assertion: &str, account: &Account, audience: &str, now: SystemTime) -> Result<Claims, Refusal> {
    const BAD_SIGNATURE: Refusal = ("invalid_grant", "Invalid JWT Signature.");
    let mut parts = assertion.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BAD_SIGNATURE);
    };
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| BAD_SIGNATURE);
    let header: Header = serde_json::from_slice(&decode(header)?).map_err(|_| BAD_SIGNATURE)?;
    if header.alg != "RS256" {
        return Err(BAD_SIGNATURE);
    }
    let signed_len = assertion.len() - signature.len() - 1;
    let signed = assertion.get(..signed_len).ok_or(BAD_SIGNATURE)?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &account.public_key)
        .verify(signed.as_bytes(), &decode(signature)?)
        .map_err(|_| BAD_SIGNATURE)?;
    let claims: Claims = serde_json::from_slice(&decode(claims)?).map_err(|_| BAD_SIGNATURE)?;
    if claims.iss != account.client_email {
        return Err(("invalid_grant", "Invalid grant: account not found"));
    }
    // Google's endpoint; Google's own libraries (google-auth) always name it, whatever
    // the key file's token_uri says.
    if claims.aud != audience && claims.aud != GOOGLE_TOKEN_URI {
        return Err(("invalid_grant", "Invalid JWT: Failed audience check."));
    }
    let scopes = claims.scope.split_whitespace();
    if !scopes.clone().any(|s| s == FIREBASE_MESSAGING_SCOPE || s == "https://www.googleapis.com/auth/cloud-platform") {
        return Err(("invalid_scope", "Invalid OAuth scope or ID token audience provided."));
    }
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let timely = claims.iat <= now + CLOCK_SKEW && now < claims.exp && claims.exp.saturating_sub(claims.iat) <= 3600;
    if !timely {
        return Err(("invalid_grant", BAD_JWT_TIME));
    }
    Ok(claims)
}

/// The refresh token of the mock's gcloud user (`refresh_token` grant).
pub const MOCK_REFRESH_TOKEN: &str = "1//mock-refresh-token";

/// The metadata server's 403 for a request without `Metadata-Flavor: Google`.
fn metadata_flavor_missing<B>(request: &Request<B>) -> Option<Response<Bytes>> {
    let flavored = request.headers().get("metadata-flavor").is_some_and(|value| value == "Google");
    (!flavored).then(|| response(StatusCode::FORBIDDEN, "text/html; charset=UTF-8", Bytes::from_static(METADATA_403)))
}

/// What Google's metadata server says to a request without the header.
const METADATA_403: &[u8] = b"Missing Metadata-Flavor:Google header.\n";

fn oauth_error(error: &str, description: &str) -> Response<Bytes> {
    let body = serde_json::json!({ "error": error, "error_description": description });
    response(StatusCode::BAD_REQUEST, "application/json; charset=utf-8", Bytes::from(body.to_string()))
}

/// A v1 send, as far as the mock's behaviour needs it.
pub(super) struct Send {
    recipient: String,
    topic: bool,
    data: Map<String, Value>,
    /// The message's other fields, for the inbox.
    options: Map<String, Value>,
    ttl_ok: bool,
    restricted_package: Option<String>,
    validate_only: bool,
}

const MESSAGE_FIELDS: [&str; 11] =
    ["name", "data", "notification", "android", "webpush", "apns", "fcm_options", "token", "topic", "condition", "fid"];

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
fn proto_names(fields: Map<String, Value>, parent: &str) -> Map<String, Value> {
    fields
        .into_iter()
        .map(|(name, value)| {
            let name = proto_name(&name).into_owned();
            let free = matches!(name.as_str(), "data" | "headers" | "payload")
                || (parent == "webpush" && name == "notification");
            let value = match value {
                Value::Object(inner) if !free => Value::Object(proto_names(inner, &name)),
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
    // Unknown names are reported as sent, before renaming.
    let raw_message = top.get("message").and_then(Value::as_object);
    if let Some(name) = raw_message.and_then(|m| m.keys().find(|k| !MESSAGE_FIELDS.contains(&&*proto_name(k)))) {
        return Err(invalid_payload(
            "message",
            &format!("Invalid JSON payload received. Unknown name \"{name}\" at 'message': Cannot find field."),
        ));
    }
    let top = proto_names(top, "");
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
    let android = message.get("android").and_then(Value::as_object);
    let ttl_ok = android
        .and_then(|a| a.get("ttl"))
        .is_none_or(|ttl| ttl_seconds(ttl).is_some_and(|s| s <= f64::from(MAX_TIME_TO_LIVE)));
    let restricted_package =
        android.and_then(|a| a.get("restricted_package_name")).and_then(Value::as_str).map(str::to_owned);
    let (recipient, topic) = match field {
        "topic" => (format!("/topics/{}", value.strip_prefix("/topics/").unwrap_or(&value)), true),
        "condition" => (value, true),
        _ => (value, false),
    };
    Ok(Send { recipient, topic, data, options: message, ttl_ok, restricted_package, validate_only })
}

/// A protobuf duration `"3.5s"` in seconds.
fn ttl_seconds(ttl: &Value) -> Option<f64> {
    let seconds = ttl.as_str()?.strip_suffix('s')?;
    seconds.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: Status<'a>,
}

/// `google.rpc.Status`, fields in the service's order.
#[derive(Serialize)]
struct Status<'a> {
    code: u16,
    message: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "<[Detail<'_>]>::is_empty")]
    details: &'a [Detail<'a>],
}

/// The entries of `details` the mock sends, fields in the service's order.
#[derive(Serialize)]
#[serde(untagged)]
enum Detail<'a> {
    Fcm {
        #[serde(rename = "@type")]
        kind: &'static str,
        #[serde(rename = "errorCode")]
        error_code: &'a str,
    },
    BadRequest {
        #[serde(rename = "@type")]
        kind: &'static str,
        #[serde(rename = "fieldViolations")]
        field_violations: [FieldViolation<'a>; 1],
    },
    QuotaFailure {
        #[serde(rename = "@type")]
        kind: &'static str,
        violations: [QuotaViolation<'a>; 1],
    },
}

#[derive(Serialize)]
struct FieldViolation<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    field: &'a str,
    description: &'a str,
}

#[derive(Serialize)]
struct QuotaViolation<'a> {
    subject: &'a str,
    description: &'a str,
}

fn status_body(http: StatusCode, status: &str, message: &str, details: &[Detail<'_>]) -> Response<Bytes> {
    let body = ErrorBody { error: Status { code: http.as_u16(), message, status, details } };
    // Strings and numbers always serialize.
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    response(http, "application/json; charset=UTF-8", Bytes::from(bytes))
}

fn fcm_detail(error_code: &str) -> Detail<'_> {
    Detail::Fcm { kind: FCM_ERROR_TYPE, error_code }
}

fn bad_request_detail<'a>(field: &'a str, description: &'a str) -> Detail<'a> {
    let kind = "type.googleapis.com/google.rpc.BadRequest";
    Detail::BadRequest { kind, field_violations: [FieldViolation { field, description }] }
}

/// 400 with only a `BadRequest` detail, as for a body the service cannot map to a message.
fn invalid_payload(field: &str, description: &str) -> Response<Bytes> {
    status_body(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", description, &[bad_request_detail(field, description)])
}

fn invalid_value(field: &str, kind: &str, value: &Value) -> Response<Bytes> {
    invalid_payload(field, &format!("Invalid value at '{field}' ({kind}), {value}"))
}

/// 400 `INVALID_ARGUMENT` with the FCM code and the field it blames.
fn fcm_invalid(field: &str, description: &str) -> Response<Bytes> {
    let details = [fcm_detail("INVALID_ARGUMENT"), bad_request_detail(field, description)];
    status_body(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", description, &details)
}

/// The v1 answer for an error code of the scenario (legacy names map to their v1
/// equivalents; an unknown code is sent as the FCM code of a 400).
fn error_response(code: &str, topic: bool) -> Response<Bytes> {
    let fcm = |http: StatusCode, status: &str, message: &str, fcm_code: &str| {
        status_body(http, status, message, &[fcm_detail(fcm_code)])
    };
    match code {
        "NotRegistered" | "UNREGISTERED" => {
            fcm(StatusCode::NOT_FOUND, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
        }
        "InvalidRegistration" | "INVALID_ARGUMENT" => {
            fcm_invalid("message.token", "The registration token is not a valid FCM registration token")
        }
        "MissingRegistration" => fcm_invalid("message", "Recipient of the message is not set."),
        "InvalidPackageName" => fcm_invalid("message.android.restricted_package_name", "Invalid package name"),
        "MessageTooBig" => fcm_invalid("message", "Message is too big"),
        "InvalidDataKey" => fcm_invalid(
            "message.data",
            "Invalid data key: reserved words and the \"google.\" / \"gcm\" prefixes are not allowed",
        ),
        "InvalidTtl" => fcm_invalid(
            "message.android.ttl",
            "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration)",
        ),
        "MismatchSenderId" | "SENDER_ID_MISMATCH" => {
            fcm(StatusCode::FORBIDDEN, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH")
        }
        "Unavailable" | "UNAVAILABLE" => {
            fcm(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE")
        }
        "InternalServerError" | "INTERNAL" => {
            fcm(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "Internal error encountered.", "INTERNAL")
        }
        "DeviceMessageRateExceeded" | "TopicsMessageRateExceeded" | "QUOTA_EXCEEDED" => {
            let (subject, message) = if topic {
                ("topic", "Topic message rate exceeded.")
            } else {
                ("device", "Message rate exceeded for the device.")
            };
            let kind = "type.googleapis.com/google.rpc.QuotaFailure";
            let quota = Detail::QuotaFailure { kind, violations: [QuotaViolation { subject, description: message }] };
            status_body(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                message,
                &[fcm_detail("QUOTA_EXCEEDED"), quota],
            )
        }
        "InvalidApnsCredential" | "THIRD_PARTY_AUTH_ERROR" => fcm(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Auth error from APNS or Web Push Service",
            "THIRD_PARTY_AUTH_ERROR",
        ),
        other => fcm(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "Request contains an invalid argument.", other),
    }
}
