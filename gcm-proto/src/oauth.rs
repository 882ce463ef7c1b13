//! Service-account OAuth2 for FCM HTTP v1, without IO: read the key, sign the JWT, build
//! the token request, read the token response, and know when to refresh — given `now`.
//!
//! Signing uses ring's RSASSA-PKCS1-v1_5 with SHA-256 (RS256). ring draws the RSA
//! blinding value from the operating system; that is the one randomness in this crate,
//! and it does not change the output (PKCS#1 v1.5 signatures are deterministic), so the
//! same key and `now` give the same request bytes.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use gcm_proto::oauth::{ServiceAccountKey, TokenCache, decode_token_response};
//!
//! # let json = include_str!("../tests/fixtures/service-account.json");
//! let key = ServiceAccountKey::from_json(json)?; // the file Firebase lets you download
//! let mut cache = TokenCache::new();
//! let now = SystemTime::now();
//! if cache.needs_refresh(now) {
//!     let request = key.token_request(now)?; // POST https://oauth2.googleapis.com/token
//!     # assert_eq!(request.uri(), "https://oauth2.googleapis.com/token");
//!     // … send it with any HTTP client; Google answers:
//!     let response = http::Response::new(r#"{"access_token":"ya29.c.x","expires_in":3599,"token_type":"Bearer"}"#);
//!     cache.store(decode_token_response(&response, now)?, now);
//! }
//! let token = cache.current(now).expect("fresh");
//! assert_eq!(token.secret(), "ya29.c.x");
//! assert!(cache.needs_refresh(now + Duration::from_secs(3400))); // 5 minutes before expiry
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, Uri};
use ring::rand::SystemRandom;
use ring::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde::{Deserialize, Serialize};

use crate::error::RawBody;
use crate::request::{CONTENT_TYPE_PLAIN_TEXT, absolute_url};

mod sources;

pub use sources::{
    AuthorizedUser, KeyFile, METADATA_HOST, METADATA_PROJECT_ID_PATH, METADATA_TOKEN_PATH, MetadataServer,
};

/// The scope FCM HTTP v1 needs.
pub const FIREBASE_MESSAGING_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Google's token endpoint, used when the key file names none.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The OAuth2 grant type of a signed JWT (RFC 7523).
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long a signed assertion is valid: Google's maximum, one hour.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);
/// How long before its expiry a token is refreshed by default.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// What went wrong with a key, an assertion or a token response. Never contains the
/// private key; `Debug` and `Display` never show a token response's body (it may hold an
/// access token), only its length.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// The service-account JSON is not valid JSON or lacks a field.
    InvalidKeyFile(String),
    /// `private_key` is not a PEM PKCS#8 RSA key ring accepts (2048 to 8192 bits).
    InvalidPrivateKey,
    /// `token_uri` is not an absolute `http` or `https` URL.
    InvalidTokenUri(String),
    /// ring could not sign (out of memory or randomness).
    Signing,
    /// The token endpoint refused: `error` and `error_description` as it sent them
    /// (e.g. `invalid_grant`, `Invalid JWT Signature.`).
    TokenRefused {
        /// The HTTP status.
        status: u16,
        /// The OAuth2 `error` code, empty when the body had none.
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
        /// The body as sent.
        body: RawBody,
    },
    /// A 200 from the token endpoint without a bearer token and its lifetime.
    MalformedTokenResponse {
        /// What is wrong with it.
        reason: String,
        /// The body as sent (it may hold a token: do not log it).
        body: RawBody,
    },
}

impl AuthError {
    /// True when asking again later may work: the token endpoint failed with a 5xx or 429.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::TokenRefused { status, .. } if *status == 429 || *status >= 500)
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidKeyFile(reason) => write!(f, "invalid credential file: {reason}"),
            Self::InvalidPrivateKey => f.write_str("the service account's private_key is not a PEM PKCS#8 RSA key"),
            Self::InvalidTokenUri(uri) => write!(f, "invalid token_uri {uri:?}"),
            Self::Signing => f.write_str("signing the JWT failed"),
            Self::TokenRefused { status, error, description, .. } => {
                write!(f, "the token endpoint refused ({status}): {error}")?;
                if let Some(description) = description {
                    write!(f, ": {description}")?;
                }
                Ok(())
            }
            Self::MalformedTokenResponse { reason, .. } => write!(f, "malformed token response: {reason}"),
        }
    }
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidKeyFile(reason) => f.debug_tuple("InvalidKeyFile").field(reason).finish(),
            Self::InvalidPrivateKey => f.write_str("InvalidPrivateKey"),
            Self::InvalidTokenUri(uri) => f.debug_tuple("InvalidTokenUri").field(uri).finish(),
            Self::Signing => f.write_str("Signing"),
            Self::TokenRefused { status, error, description, body } => f
                .debug_struct("TokenRefused")
                .field("status", status)
                .field("error", error)
                .field("description", description)
                .field("body", body)
                .finish(),
            Self::MalformedTokenResponse { reason, body } => f
                .debug_struct("MalformedTokenResponse")
                .field("reason", reason)
                .field("body", &format_args!("<{} bytes, redacted>", body.as_bytes().len()))
                .finish(),
        }
    }
}

impl std::error::Error for AuthError {}

/// A service account's key, read from the JSON file Firebase and Google Cloud hand out.
/// Clones share the parsed key. `Debug` shows the account, never the key.
#[derive(Clone)]
pub struct ServiceAccountKey {
    client_email: String,
    private_key_id: Option<String>,
    project_id: Option<String>,
    token_uri: Uri,
    key: Arc<RsaKeyPair>,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("project_id", &self.project_id)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct ServiceAccountFile {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

/// The claims of the assertion, as Google's token endpoint reads them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The service account's e-mail.
    pub iss: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The token endpoint.
    pub aud: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
}

impl ServiceAccountKey {
    /// Reads the key file's JSON (a value, so it may come from a file, an environment
    /// variable or a secret store). Needs `client_email` and `private_key`; `token_uri`
    /// defaults to [`GOOGLE_TOKEN_URI`].
    pub fn from_json(json: &str) -> Result<Self, AuthError> {
        let file: ServiceAccountFile = serde_json::from_str(json).map_err(|e| sources::invalid_json(json, &e))?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(file.private_key.as_bytes())
            .map_err(|_| AuthError::InvalidPrivateKey)?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|_| AuthError::InvalidPrivateKey)?;
        let key = Self {
            client_email: file.client_email,
            private_key_id: file.private_key_id,
            project_id: file.project_id,
            token_uri: Uri::from_static(GOOGLE_TOKEN_URI),
            key: Arc::new(key),
        };
        match file.token_uri {
            Some(uri) => key.with_token_uri(&uri),
            None => Ok(key),
        }
    }

    /// Asks another token endpoint (a mock's).
    pub fn with_token_uri(mut self, uri: &str) -> Result<Self, AuthError> {
        self.token_uri = absolute_url(uri, uri).map_err(|_| AuthError::InvalidTokenUri(uri.to_owned()))?;
        Ok(self)
    }

    /// The service account's e-mail, the assertion's issuer.
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// The project the key belongs to, if the file names it.
    pub fn project_id(&self) -> Option<&str> {
        self.project_id.as_deref()
    }

    /// The token endpoint.
    pub fn token_uri(&self) -> &Uri {
        &self.token_uri
    }

    /// The RSA public key (PKCS#1 `RSAPublicKey`, DER), for a server that verifies the
    /// assertions, such as gcm-mock.
    pub fn public_key_der(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// The claims of an assertion made at `now`: issuer, the FCM scope, the token endpoint
    /// as audience, and one hour of validity.
    pub fn claims(&self, now: SystemTime) -> Claims {
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
        Claims {
            iss: self.client_email.clone(),
            scope: FIREBASE_MESSAGING_SCOPE.to_owned(),
            aud: self.token_uri.to_string(),
            iat,
            exp: iat + ASSERTION_LIFETIME.as_secs(),
        }
    }

    /// The signed JWT (RS256) made at `now`: `header.claims.signature`, base64url without
    /// padding. The header names the key by `kid` when the file has a `private_key_id`.
    pub fn assertion(&self, now: SystemTime) -> Result<String, AuthError> {
        let header = Header { alg: "RS256", typ: "JWT", kid: self.private_key_id.as_deref() };
        let mut jwt = encode_json(&header);
        jwt.push('.');
        jwt.push_str(&encode_json(&self.claims(now)));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), jwt.as_bytes(), &mut signature)
            .map_err(|_| AuthError::Signing)?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
        Ok(jwt)
    }

    /// The token request made at `now`: `POST` to the token endpoint, a form with
    /// `grant_type` (JWT bearer) and the signed `assertion`.
    pub fn token_request(&self, now: SystemTime) -> Result<Request<Vec<u8>>, AuthError> {
        let assertion = self.assertion(now)?;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER_GRANT_TYPE)
            .append_pair("assertion", &assertion)
            .finish()
            .into_bytes();
        Ok(form_post(self.token_uri.clone(), body))
    }
}

/// `POST uri` with a form body: what every token endpoint takes.
fn form_post(uri: Uri, body: Vec<u8>) -> Request<Vec<u8>> {
    let mut request = Request::new(Vec::new());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_PLAIN_TEXT));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    *request.body_mut() = body;
    request
}

fn encode_json<T: Serialize>(value: &T) -> String {
    // Serializing strings and integers into memory cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// An OAuth2 access token and when it expires. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    secret: Arc<str>,
    expires_at: SystemTime,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken").field("secret", &"<redacted>").field("expires_at", &self.expires_at).finish()
    }
}

impl AccessToken {
    /// A token valid until `expires_at`.
    pub fn new(secret: impl Into<Arc<str>>, expires_at: SystemTime) -> Self {
        Self { secret: secret.into(), expires_at }
    }

    /// The token, for `Authorization: Bearer …`. Keep it out of logs.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// When the token stops working.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    expires_in: u64,
    #[serde(default)]
    token_type: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// The longest lifetime taken from a token response: a larger `expires_in` counts as this.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Reads the token endpoint's (or the metadata server's) answer, received at `now`: a 200
/// with a `Bearer` `access_token` and `expires_in` seconds, or an OAuth2 error.
///
/// `expires_in` must be a positive whole number: 0 is an error (the token would be
/// expired on arrival), as are negative, fractional or string values; more than a day
/// ([`MAX_TOKEN_LIFETIME`]) counts as a day.
pub fn decode_token_response<B: AsRef<[u8]>>(
    response: &Response<B>,
    now: SystemTime,
) -> Result<AccessToken, AuthError> {
    let body = response.body().as_ref();
    let raw = || RawBody(body.to_vec());
    if !response.status().is_success() {
        let refusal = serde_json::from_slice::<TokenErrorBody>(body).ok();
        let (error, description) = refusal.map_or_else(|| (String::new(), None), |r| (r.error, r.error_description));
        return Err(AuthError::TokenRefused { status: response.status().as_u16(), error, description, body: raw() });
    }
    let malformed = |reason: String| AuthError::MalformedTokenResponse { reason, body: raw() };
    let token: TokenBody = serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    if token.token_type.as_deref().is_some_and(|kind| !kind.eq_ignore_ascii_case("bearer")) {
        return Err(malformed("token_type is not Bearer".to_owned()));
    }
    if token.access_token.is_empty() || HeaderValue::try_from(format!("Bearer {}", token.access_token)).is_err() {
        return Err(malformed("access_token is empty or not header-safe".to_owned()));
    }
    if token.expires_in == 0 {
        return Err(malformed("expires_in is 0: the token would be expired on arrival".to_owned()));
    }
    // A lifetime beyond a day is taken as a day: refreshed at least daily, never overflowing.
    let lifetime = Duration::from_secs(token.expires_in).min(MAX_TOKEN_LIFETIME);
    let expires_at = now.checked_add(lifetime).unwrap_or(now);
    Ok(AccessToken::new(token.access_token, expires_at))
}

/// Holds the current access token and says when to get a new one, given `now`: a token
/// is refreshed [`DEFAULT_REFRESH_MARGIN`] before it expires, so that no request is sent
/// with a token about to die. For a short-lived token the margin shrinks to half its
/// lifetime (a 60 s token is used for 30 s), so a token is never expired on arrival.
///
/// A failed refresh is remembered: [`may_refresh`](TokenCache::may_refresh) is false for
/// 1 s after the first failure, doubling up to [`MAX_REFRESH_BACKOFF`], so that a fan-out
/// does not ask a failing token endpoint once per message.
#[derive(Clone, Debug)]
pub struct TokenCache {
    token: Option<AccessToken>,
    /// When the held token is to be replaced.
    refresh_at: Option<SystemTime>,
    margin: Duration,
    failures: u32,
    retry_at: Option<SystemTime>,
}

/// The longest wait between two token requests after failures.
pub const MAX_REFRESH_BACKOFF: Duration = Duration::from_secs(60);

impl Default for TokenCache {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenCache {
    /// An empty cache with the default refresh margin.
    pub fn new() -> Self {
        Self { token: None, refresh_at: None, margin: DEFAULT_REFRESH_MARGIN, failures: 0, retry_at: None }
    }

    /// Refreshes this long before expiry instead (at most half the token's lifetime).
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The token, if it is still good at `now` (before its refresh time).
    pub fn current(&self, now: SystemTime) -> Option<&AccessToken> {
        self.token.as_ref().filter(|_| self.refresh_at.is_some_and(|refresh_at| now < refresh_at))
    }

    /// True when there is no token good at `now`.
    pub fn needs_refresh(&self, now: SystemTime) -> bool {
        self.current(now).is_none()
    }

    /// Keeps a new token, received at `now`, and forgets earlier failures.
    pub fn store(&mut self, token: AccessToken, now: SystemTime) {
        let lifetime = token.expires_at.duration_since(now).unwrap_or_default();
        let margin = self.margin.min(lifetime / 2);
        self.refresh_at = token.expires_at.checked_sub(margin).or(Some(token.expires_at));
        self.token = Some(token);
        self.failures = 0;
        self.retry_at = None;
    }

    /// Forgets the token (the server refused it: get a new one).
    pub fn clear(&mut self) {
        self.token = None;
        self.refresh_at = None;
    }

    /// Records a failed refresh at `now`; returns when the next one may be tried.
    pub fn refresh_failed(&mut self, now: SystemTime) -> SystemTime {
        self.failures = self.failures.saturating_add(1);
        let doublings = self.failures.saturating_sub(1).min(6);
        let backoff = Duration::from_secs(1u64 << doublings).min(MAX_REFRESH_BACKOFF);
        let retry_at = now.checked_add(backoff).unwrap_or(now);
        self.retry_at = Some(retry_at);
        retry_at
    }

    /// False while a failed refresh is backing off: answer with that failure instead of
    /// asking the token endpoint again.
    pub fn may_refresh(&self, now: SystemTime) -> bool {
        self.retry_at.is_none_or(|retry_at| now >= retry_at)
    }
}
