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
//! # let json = include_str!("../../tests/fixtures/service-account.json");
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
//!
//! By job: `service_account` (the key file, the signed JWT, the token request), `token` (an
//! access token, the token response, the cache that says when to refresh), `sources` (the
//! other credentials: a gcloud user, the metadata server).

use std::fmt;
use std::time::Duration;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Uri};

use crate::error::RawBody;
use crate::request::CONTENT_TYPE_PLAIN_TEXT;

mod service_account;
mod sources;
mod token;

pub use service_account::{Claims, ServiceAccountKey};
pub use sources::{
    AuthorizedUser, KeyFile, METADATA_HOST, METADATA_PROJECT_ID_PATH, METADATA_TOKEN_PATH, MetadataServer,
};
pub use token::{AccessToken, MAX_REFRESH_BACKOFF, MAX_TOKEN_LIFETIME, TokenCache, decode_token_response};

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

/// `POST uri` with a form body: what every token endpoint takes.
pub(super) fn form_post(uri: Uri, body: Vec<u8>) -> Request<Vec<u8>> {
    let mut request = Request::new(Vec::new());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_PLAIN_TEXT));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    *request.body_mut() = body;
    request
}

/// The error for a text that is not valid JSON, with a hint when it looks like a path.
pub(super) fn invalid_json(text: &str, error: &serde_json::Error) -> AuthError {
    let trimmed = text.trim();
    let looks_like_path = !trimmed.starts_with('{')
        && !trimmed.is_empty()
        && (trimmed.contains('/') || trimmed.contains('\\') || trimmed.ends_with(".json"));
    if looks_like_path {
        AuthError::InvalidKeyFile(format!(
            "{error}: this looks like a file path, not the file's JSON text; read the file (or use a from-file constructor)"
        ))
    } else {
        AuthError::InvalidKeyFile(error.to_string())
    }
}
