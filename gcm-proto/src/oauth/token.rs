//! An access token, the token endpoint's answer, and the cache that says when to refresh.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Response};
use serde::Deserialize;

use super::{AuthError, DEFAULT_REFRESH_MARGIN};
use crate::error::RawBody;

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
