//! The access token: cached until shortly before it expires, refreshed one request at a
//! time (the others wait for its token, or share its failure while the refresh backs off).

use std::sync::Arc;
use std::time::SystemTime;

use gcm_proto::oauth::{AccessToken, TokenCache, decode_token_response};
use http::Response;
use hyper_util::client::legacy::connect::Connect;

use super::FcmClient;
use super::credentials::Credentials;
use crate::error::Error;
use crate::transport::exchange;

/// The cache, and the last failed refresh while the cache backs off.
pub(super) struct Tokens {
    cache: TokenCache,
    failure: Option<Arc<Error>>,
}

impl Tokens {
    pub(super) fn new(cache: TokenCache) -> Self {
        Self { cache, failure: None }
    }
}

impl<C> FcmClient<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// A token good now: the cached one, or a new one. `refused` is a token the server
    /// just turned down; it is dropped unless another task already replaced it. While a
    /// failed refresh backs off, every caller gets that failure at once.
    pub(super) async fn access_token(&self, refused: Option<&AccessToken>) -> Result<AccessToken, Error> {
        let mut tokens = self.inner.tokens.lock().await;
        let now = (self.inner.clock)();
        if let Some(refused) = refused {
            if tokens.cache.current(now) == Some(refused) {
                tokens.cache.clear();
            }
        }
        if let Some(token) = tokens.cache.current(now) {
            return Ok(token.clone());
        }
        if let Some(failure) = tokens.failure.as_ref().filter(|_| !tokens.cache.may_refresh(now)) {
            return Err(self.token_error(Arc::clone(failure)));
        }
        // Boxed: a refresh is rare, and its state would make every message's future larger.
        match Box::pin(self.fetch_token(now)).await {
            Ok(token) => {
                tracing::debug!(expires_at = ?token.expires_at(), "fcm access token refreshed");
                tokens.cache.store(token.clone(), (self.inner.clock)());
                tokens.failure = None;
                Ok(token)
            }
            Err(error) => {
                let retry_at = tokens.cache.refresh_failed((self.inner.clock)());
                let source = self.inner.credentials.describe();
                if error.is_authentication() {
                    tracing::warn!(%error, source, "fcm credentials refused: fix them, sending cannot succeed");
                } else {
                    tracing::warn!(%error, source, ?retry_at, "fcm access token refresh failed");
                }
                let failure = Arc::new(error);
                tokens.failure = Some(Arc::clone(&failure));
                Err(self.token_error(failure))
            }
        }
    }

    fn token_error(&self, cause: Arc<Error>) -> Error {
        Error::Credentials { source: self.inner.credentials.describe(), cause }
    }

    /// Asks the credentials for a new token.
    async fn fetch_token(&self, now: SystemTime) -> Result<AccessToken, Error> {
        let limits = self.inner.limits;
        let (request, http) = match &self.inner.credentials {
            Credentials::ServiceAccount(key) => (key.token_request(now).map_err(Error::Auth)?, None),
            Credentials::AuthorizedUser(user) => (user.token_request(), None),
            Credentials::Metadata(server) => (server.token_request(), self.inner.metadata_http.as_ref()),
            Credentials::Custom(source) => return source.fetch().await,
        };
        let (parts, body) = match http {
            Some(http) => exchange(http, request, limits).await?,
            None => self.inner.http.exchange(request, limits).await?,
        };
        decode_token_response(&Response::from_parts(parts, body), (self.inner.clock)()).map_err(Error::Auth)
    }
}
