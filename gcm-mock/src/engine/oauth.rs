//! The OAuth2 token endpoint of FCM v1: verifies a service account's signed JWT (or the
//! mock user's refresh token) and issues expiring access tokens; the accounts and tokens
//! the engine keeps; the built-in key file.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use gcm_proto::oauth::{Claims, FIREBASE_MESSAGING_SCOPE, GOOGLE_TOKEN_URI, JWT_BEARER_GRANT_TYPE, ServiceAccountKey};
use http::header::{AUTHORIZATION, HOST};
use http::{Request, Response, StatusCode};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

use super::http::response;
use super::{Engine, splitmix64};

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

    /// The project the account sends for.
    pub(super) fn project_id(&self) -> Option<&str> {
        self.account().map(|account| account.project_id.as_str())
    }

    /// True for an access token this endpoint issued that is still valid at `now`.
    pub(super) fn accepts(&self, token: &str, now: SystemTime) -> bool {
        self.tokens.get(token).is_some_and(|expiry| now < *expiry)
    }
}

impl Engine {
    /// Accepts assertions signed by this service account (instead of the built-in
    /// [`MOCK_SERVICE_ACCOUNT_JSON`]) and sends for its project only.
    pub fn set_service_account(&mut self, key: &ServiceAccountKey) {
        self.oauth.account = Some(Account::of(key));
    }

    /// How long the access tokens issued from now on live.
    pub fn set_token_lifetime(&mut self, lifetime: Duration) {
        self.oauth.token_lifetime = lifetime;
    }

    /// How many access tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> u64 {
        self.oauth.issued
    }

    /// Whether `request` carries `Authorization: Bearer <an access token this mock issued,
    /// live at now>`.
    pub(super) fn bearer_accepted<B>(&self, request: &Request<B>, now: SystemTime) -> bool {
        let bearer = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
        bearer.is_some_and(|token| self.oauth.accepts(token, now))
    }

    /// `GET /_mock/service-account`: the built-in key file, its `token_uri` on the host the
    /// request named, for clients in other languages. 404 when another account is set
    /// (the mock does not keep its private key).
    pub(super) fn v1_key_file<B>(&self, request: &Request<B>) -> Response<Bytes> {
        match (&self.oauth.account, host(request)) {
            (None, Some(host)) => {
                // HTTP/2 names the scheme (`https` with TLS); HTTP/1.1 does not.
                let scheme = request.uri().scheme_str().unwrap_or("http");
                let token_uri = format!("{scheme}://{host}{TOKEN_PATH}");
                let file = key_file_with_token_uri(MOCK_SERVICE_ACCOUNT_JSON, &token_uri);
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
        let Some(account) = self.oauth.account() else {
            return (oauth_error("invalid_grant", "Invalid grant: account not found"), false);
        };
        // This endpoint's URL, without its scheme: `http` or `https` (with TLS).
        let audience = format!("{}{TOKEN_PATH}", host(request).unwrap_or_default());
        if let Err((error, description)) = verify(&assertion, account, &audience, now) {
            return (oauth_error(error, description), false);
        }
        self.issue_token(now)
    }

    /// A new access token, unless a scripted token reply says otherwise.
    pub(super) fn issue_token(&mut self, now: SystemTime) -> (Response<Bytes>, bool) {
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
            _ => self.oauth.token_lifetime,
        };
        self.oauth.issued += 1;
        let token = format!("ya29.mock.{}.{:016x}", self.oauth.issued, splitmix64(self.id_base ^ self.oauth.issued));
        let expires_at = now.checked_add(lifetime).unwrap_or(now);
        self.oauth.tokens.retain(|_, expiry| *expiry > now);
        self.oauth.tokens.insert(token.clone(), expires_at);
        let body = serde_json::json!({
            "access_token": token,
            "expires_in": sent_expires_in.unwrap_or_else(|| Value::from(lifetime.as_secs())),
            "token_type": "Bearer",
        });
        (response(StatusCode::OK, "application/json; charset=utf-8", Bytes::from(body.to_string())), true)
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
    let this_endpoint = claims.aud.strip_prefix("https://").or_else(|| claims.aud.strip_prefix("http://"));
    if this_endpoint != Some(audience) && claims.aud != GOOGLE_TOKEN_URI {
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

fn oauth_error(error: &str, description: &str) -> Response<Bytes> {
    let body = serde_json::json!({ "error": error, "error_description": description });
    response(StatusCode::BAD_REQUEST, "application/json; charset=utf-8", Bytes::from(body.to_string()))
}
