//! One v1 request: encoded with the access token, sent on the client's HTTP path (its own
//! HTTP/2 connections, or a caller's hyper-util client), decoded; a refused access token is
//! refreshed once and the request sent again.

use gcm_proto::ResponseError;
use gcm_proto::oauth::AccessToken;
use gcm_proto::v1::{Message, Reply, Template};
use hyper_util::client::legacy::connect::Connect;
use tracing::Instrument;

use super::FcmClient;
use super::http2::Http2;
use crate::error::Error;
use crate::transport::{HttpClient, Limits, exchange};

/// What one request carries: a whole message, or one token of a multicast's template.
#[derive(Clone, Copy)]
pub(super) enum Body<'a> {
    Message(&'a Message),
    Token(&'a Template, &'a str),
}

/// How requests reach the server: gcm-hyper's own HTTP/2 connections, or the hyper-util
/// client a caller brought.
#[derive(Clone)]
pub(super) enum Http<C> {
    Direct(Http2),
    Pooled(HttpClient<C>),
}

impl<C: Connect + Clone + Send + Sync + 'static> Http<C> {
    pub(super) async fn exchange(
        &self,
        request: http::Request<Vec<u8>>,
        limits: Limits,
    ) -> Result<(http::response::Parts, bytes::Bytes), Error> {
        match self {
            Self::Direct(http) => http.exchange(request, limits).await,
            Self::Pooled(http) => exchange(http, request, limits).await,
        }
    }
}

impl<C> FcmClient<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// Sends one message and decodes the answer. A refused access token is refreshed and
    /// the message sent once more. Never sleeps, never retries otherwise.
    pub async fn send(&self, message: &Message) -> Result<Reply, Error> {
        let span = tracing::debug_span!("fcm.send", url = %self.inner.fcm.send_url());
        self.send_one(Body::Message(message)).instrument(span).await
    }

    pub(super) async fn send_one(&self, body: Body<'_>) -> Result<Reply, Error> {
        let token = self.access_token(None).await?;
        match self.exchange_one(body, &token).await {
            Err(Error::Response(ResponseError::Authentication { .. })) => {
                // Revoked or expired early: a new token, and one more try (boxed: rare, and
                // a second exchange's state in every message's future would double it).
                Box::pin(async {
                    let token = self.access_token(Some(&token)).await?;
                    self.exchange_one(body, &token).await
                })
                .await
            }
            other => other,
        }
    }

    async fn exchange_one(&self, body: Body<'_>, token: &AccessToken) -> Result<Reply, Error> {
        let request = match body {
            Body::Message(message) => self.inner.fcm.encode(message, token.secret())?,
            Body::Token(template, to) => self.inner.fcm.encode_token(template, to, token.secret())?,
        };
        let (parts, body) = self.inner.http.exchange(request, self.inner.limits).await?;
        let reply = self.inner.fcm.decode_parts(parts.status, &parts.headers, &body, (self.inner.clock)());
        if let Ok(Reply { detail: Some(detail), .. }) = &reply {
            tracing::debug!(status = parts.status.as_u16(), detail, "fcm error reply");
        }
        Ok(reply?)
    }
}
