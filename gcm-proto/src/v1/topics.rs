//! Topic management, the Instance ID server API that Firebase Admin calls
//! `subscribeToTopic` / `unsubscribeFromTopic`: `POST {iid}/iid/v1:batchAdd` (or
//! `:batchRemove`) with `{"to": "/topics/<name>", "registration_tokens": […]}`, at most 1000
//! tokens a call, answered with one result per token. A [`Subscription`] is plain data
//! like a message: its [`Outcome`] has the same buckets (a success is `Delivered` with the
//! topic as its id, `NOT_FOUND` is not registered, `INTERNAL` and the rate codes retry,
//! `INVALID_ARGUMENT` and `TOO_MANY_TOPICS` fail) and its retry is a subscription again.

use std::sync::Arc;
use std::time::SystemTime;

use http::header::RETRY_AFTER;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use serde::{Deserialize, Serialize};

use super::condition::is_valid_topic;
use super::request::{Fcm, post_json};
use crate::backoff::parse_retry_after;
use crate::error::{BuildError, ErrorCode, RawBody, ResponseError};
use crate::fate::{Fate, RetryCause};
use crate::outcome::Outcome;
use crate::request::absolute_url;
use crate::retryable::{Retryable, sealed::Sealed};

/// The most tokens one topic management call takes.
pub const MAX_SUBSCRIPTION_TOKENS: usize = 1000;

/// Subscribe or unsubscribe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicAction {
    /// `:batchAdd`.
    Subscribe,
    /// `:batchRemove`.
    Unsubscribe,
}

impl TopicAction {
    /// The method's path, `/iid/v1:batchAdd` or `/iid/v1:batchRemove`.
    pub fn path(self) -> &'static str {
        match self {
            Self::Subscribe => "/iid/v1:batchAdd",
            Self::Unsubscribe => "/iid/v1:batchRemove",
        }
    }
}

/// Tokens to subscribe to a topic, or to unsubscribe from it.
///
/// ```
/// use std::time::SystemTime;
/// use gcm_proto::v1::{Fcm, Subscription};
///
/// let fcm = Fcm::new("my-project")?;
/// let subscription = Subscription::subscribe("news", ["tokA", "tokB"]);
/// let request = fcm.encode_subscription(&subscription, "ya29.access-token")?;
/// assert_eq!(request.uri(), "https://iid.googleapis.com/iid/v1:batchAdd");
/// assert_eq!(request.body().as_slice(), br#"{"to":"/topics/news","registration_tokens":["tokA","tokB"]}"#);
///
/// let answer = http::Response::new(r#"{"results":[{},{"error":"NOT_FOUND"}]}"#);
/// let outcome = fcm.decode_subscription(&subscription, &answer, SystemTime::now())?;
/// assert_eq!(outcome.success().map(|(token, _)| token).collect::<Vec<_>>(), ["tokA"]);
/// assert_eq!(outcome.not_registered().collect::<Vec<_>>(), ["tokB"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    action: TopicAction,
    /// The topic's name, without `/topics/`.
    topic: String,
    tokens: Arc<[String]>,
}

impl Subscription {
    /// Subscribes `tokens` to `topic` (a `/topics/` prefix is removed).
    pub fn subscribe<I, S>(topic: &str, tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(TopicAction::Subscribe, topic, tokens)
    }

    /// Unsubscribes `tokens` from `topic`.
    pub fn unsubscribe<I, S>(topic: &str, tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(TopicAction::Unsubscribe, topic, tokens)
    }

    /// `action` for `tokens` on `topic`.
    pub fn new<I, S>(action: TopicAction, topic: &str, tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let topic = topic.strip_prefix("/topics/").unwrap_or(topic).to_owned();
        Self { action, topic, tokens: tokens.into_iter().map(Into::into).collect() }
    }

    /// Subscribe or unsubscribe.
    pub fn action(&self) -> TopicAction {
        self.action
    }

    /// The topic's name, without `/topics/`.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The tokens, in order.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The same change in calls of at most [`MAX_SUBSCRIPTION_TOKENS`] tokens, in order.
    pub fn chunks(&self) -> impl Iterator<Item = Subscription> + '_ {
        self.tokens.chunks(MAX_SUBSCRIPTION_TOKENS).map(|tokens| self.with_recipients(tokens.to_vec()))
    }
}

impl Sealed for Subscription {}

impl Retryable for Subscription {
    fn recipients(&self) -> Arc<[String]> {
        Arc::clone(&self.tokens)
    }

    fn with_recipients(&self, recipients: Vec<String>) -> Self {
        Self { action: self.action, topic: self.topic.clone(), tokens: recipients.into() }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    to: String,
    registration_tokens: &'a [String],
}

#[derive(Deserialize)]
struct Answer {
    results: Vec<TokenResult>,
}

#[derive(Deserialize)]
struct TokenResult {
    #[serde(default)]
    error: Option<String>,
}

/// The header the Instance ID API needs to take an OAuth2 access token.
const ACCESS_TOKEN_AUTH: HeaderName = HeaderName::from_static("access_token_auth");

impl Fcm {
    /// Sends topic management calls to another server: a mock such as
    /// `http://127.0.0.1:PORT` (the paths `/iid/v1:batchAdd` and `…:batchRemove` are
    /// appended).
    pub fn with_iid_base_url(mut self, base: &str) -> Result<Self, BuildError> {
        self.iid_base = iid_url(base, TopicAction::Subscribe).map(|_| base.trim_end_matches('/').to_owned())?;
        Ok(self)
    }

    /// The URL of a topic management call.
    pub fn iid_url(&self, action: TopicAction) -> Result<Uri, BuildError> {
        iid_url(&self.iid_base, action)
    }

    /// The request for one topic management call, authorized by this OAuth2 access token
    /// (with the `access_token_auth: true` header the API needs). At most
    /// [`MAX_SUBSCRIPTION_TOKENS`] tokens (see [`Subscription::chunks`]), at least one, and
    /// a valid topic name.
    pub fn encode_subscription(
        &self,
        subscription: &Subscription,
        access_token: &str,
    ) -> Result<Request<Vec<u8>>, BuildError> {
        let count = subscription.tokens.len();
        if count == 0 {
            return Err(BuildError::NoRecipients);
        }
        if count > MAX_SUBSCRIPTION_TOKENS {
            return Err(BuildError::TooManyTokens { count, max: MAX_SUBSCRIPTION_TOKENS });
        }
        if !is_valid_topic(&subscription.topic) {
            return Err(BuildError::InvalidTopic { topic: subscription.topic.clone() });
        }
        let body = Body { to: format!("/topics/{}", subscription.topic), registration_tokens: &subscription.tokens };
        // Strings into memory: serializing cannot fail.
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let mut request = post_json(self.iid_url(subscription.action)?, body, access_token)?;
        request.headers_mut().insert(ACCESS_TOKEN_AUTH, HeaderValue::from_static("true"));
        Ok(request)
    }

    /// Reads the answer to a topic management call for `subscription`:
    ///
    /// * 200 with one result per token: `{}` is a success (`Delivered`, its id the topic
    ///   `/topics/<name>`), `{"error": code}` the fate of that code;
    /// * 429 or 5xx: every token retries (with the `Retry-After`, if any);
    /// * 400: [`ResponseError::BadRequest`]; 401: [`ResponseError::Authentication`];
    ///   another status, or a 200 whose results do not match the tokens: an error that
    ///   keeps the body.
    pub fn decode_subscription<B: AsRef<[u8]>>(
        &self,
        subscription: &Subscription,
        response: &Response<B>,
        now: SystemTime,
    ) -> Result<Outcome<Subscription>, ResponseError> {
        let body = response.body().as_ref();
        let raw = || RawBody(body.to_vec());
        let status = response.status();
        let code = status.as_u16();
        if code == 429 || status.is_server_error() {
            let mut outcome = Outcome::for_all(subscription, Fate::Retry(RetryCause::Status(code)), self.backoff);
            outcome.set_retry_after(response.headers().get(RETRY_AFTER).and_then(|v| parse_retry_after(v, now)));
            return Ok(outcome);
        }
        match status {
            StatusCode::OK => {}
            StatusCode::BAD_REQUEST => return Err(ResponseError::BadRequest { body: raw() }),
            StatusCode::UNAUTHORIZED => return Err(ResponseError::Authentication { body: raw() }),
            _ => return Err(ResponseError::UnexpectedStatus { status: code, body: raw() }),
        }
        let answer: Answer = crate::json::from_body(body)
            .map_err(|error| ResponseError::Malformed { reason: error.to_string(), body: raw() })?;
        if answer.results.len() != subscription.tokens.len() {
            let reason = format!("{} results for {} tokens", answer.results.len(), subscription.tokens.len());
            return Err(ResponseError::Malformed { reason, body: raw() });
        }
        let topic = format!("/topics/{}", subscription.topic);
        let fates = answer
            .results
            .into_iter()
            .map(|result| match result.error {
                None => Fate::Delivered { message_id: topic.clone(), canonical: None },
                // The Instance ID API's word for a token that is not registered (a v1
                // NOT_FOUND status without an FCM code stays a failure: a wrong project).
                Some(code) if code == "NOT_FOUND" => Fate::NotRegistered,
                Some(code) => Fate::from_error(ErrorCode::parse(&code)),
            })
            .collect();
        Ok(Outcome::from_fates(subscription, fates, self.backoff))
    }
}

fn iid_url(base: &str, action: TopicAction) -> Result<Uri, BuildError> {
    absolute_url(&format!("{}{}", base.trim_end_matches('/'), action.path()), base)
}
