//! Decoding: the answer to one v1 request becomes a [`Reply`]; the replies to a fan-out
//! become one [`Outcome`].

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use http::header::RETRY_AFTER;
use http::{HeaderMap, Response, StatusCode};
use serde::Deserialize;

use super::request::Fcm;
use crate::backoff::parse_retry_after;
use crate::error::{ErrorCode, ErrorKind, RawBody, ResponseError};
use crate::fate::{Fate, RetryCause};
use crate::json;
use crate::outcome::Outcome;
use crate::retryable::Retryable;

/// What the server answered to one v1 request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The recipient's fate. A success's message id is the `name` the server returned,
    /// `projects/<project>/messages/<id>`.
    pub fate: Fate,
    /// The server's `Retry-After`, relative to the `now` the reply was decoded with.
    pub retry_after: Option<Duration>,
    /// The error's human-readable `message`, and the field a `google.rpc.BadRequest`
    /// detail blames, if any: `"…; field message.token: …"`.
    pub detail: Option<String>,
}

impl Reply {
    /// A reply for a request that got no answer (the adapter's transport failed).
    pub fn unanswered() -> Self {
        Self { fate: Fate::Retry(RetryCause::Unanswered), retry_after: None, detail: None }
    }
}

/// `google.rpc.Status` as the error body carries it.
#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(borrow)]
    error: Status<'a>,
}

#[derive(Deserialize)]
struct Status<'a> {
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    details: Vec<Detail<'a>>,
}

#[derive(Deserialize)]
struct Detail<'a> {
    #[serde(default, borrow, rename = "@type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "errorCode")]
    error_code: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "fieldViolations")]
    field_violations: Vec<FieldViolation<'a>>,
    /// `google.rpc.QuotaFailure`: which quota was exceeded.
    #[serde(default, borrow)]
    violations: Vec<QuotaViolation<'a>>,
}

#[derive(Deserialize)]
struct QuotaViolation<'a> {
    #[serde(default, borrow)]
    subject: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    description: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct FieldViolation<'a> {
    #[serde(default, borrow)]
    field: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    description: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Success<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

impl Fcm {
    /// Reads the server's answer to one v1 request. `now` is when it arrived (for a
    /// `Retry-After` date).
    ///
    /// * 200 `{"name": …}`: delivered;
    /// * an error body (`google.rpc.Status`): the FCM `errorCode` of its details, else its
    ///   `status`, decides: `UNREGISTERED` → not registered; `UNAVAILABLE`, `INTERNAL`,
    ///   `QUOTA_EXCEEDED`, `RESOURCE_EXHAUSTED` and any 5xx or 429 → retry; anything else
    ///   → failed, with the code kept;
    /// * a 5xx or 429 without a JSON body (a proxy's HTML page): retry;
    /// * 401 without an FCM code: the access token was refused
    ///   ([`ResponseError::Authentication`]: refresh it and resend). `THIRD_PARTY_AUTH_ERROR`,
    ///   also a 401, is the recipient's failure instead;
    /// * any other status without a JSON error, or a 200 without `name`: an error that
    ///   keeps the body.
    pub fn decode<B: AsRef<[u8]>>(&self, response: &Response<B>, now: SystemTime) -> Result<Reply, ResponseError> {
        decode_parts(response.status(), response.headers(), response.body().as_ref(), now)
    }

    /// [`decode`](Fcm::decode) for callers whose HTTP stack does not hand out an
    /// `http::Response`.
    pub fn decode_parts(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Reply, ResponseError> {
        decode_parts(status, headers, body, now)
    }

    /// One [`Outcome`] for a [`Multicast`](super::Multicast) or [`Messages`](super::Messages):
    /// `replies[i]` answers its `i`-th recipient; missing replies count as unanswered. The
    /// outcome's `Retry-After` is the longest any reply asked for, and [`Outcome::retry`]
    /// gives what to resend.
    pub fn outcome<P: Retryable>(&self, payload: &P, replies: impl IntoIterator<Item = Reply>) -> Outcome<P> {
        let count = payload.recipients().len();
        let mut retry_after = None;
        let mut fates = Vec::with_capacity(count);
        for reply in replies.into_iter().take(count) {
            retry_after = retry_after.max(reply.retry_after);
            fates.push(reply.fate);
        }
        fates.resize(count, Fate::Retry(RetryCause::Unanswered));
        let mut outcome = Outcome::from_fates(payload, fates, self.backoff);
        outcome.set_retry_after(retry_after);
        outcome
    }
}

fn decode_parts(status: StatusCode, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<Reply, ResponseError> {
    let raw = || RawBody(body.to_vec());
    let code = status.as_u16();
    let retry_after = headers.get(RETRY_AFTER).and_then(|value| parse_retry_after(value, now));
    let reply = |fate, detail| Ok(Reply { fate, retry_after, detail });
    if status == StatusCode::OK {
        return match json::from_body::<Success<'_>>(body) {
            Ok(success) => reply(Fate::Delivered { message_id: success.name.into_owned(), canonical: None }, None),
            Err(error) => Err(ResponseError::Malformed { reason: error.to_string(), body: raw() }),
        };
    }
    let transient = code == 429 || status.is_server_error();
    let Ok(ErrorBody { error }) = json::from_body::<ErrorBody<'_>>(body) else {
        return match code {
            _ if transient => reply(Fate::Retry(RetryCause::Status(code)), None),
            400 => Err(ResponseError::BadRequest { body: raw() }),
            401 => Err(ResponseError::Authentication { body: raw() }),
            _ => Err(ResponseError::UnexpectedStatus { status: code, body: raw() }),
        };
    };
    let fcm_code = error.details.iter().find_map(|detail| {
        let is_fcm = detail.kind.as_deref().is_some_and(|kind| kind.contains("google.firebase.fcm."));
        detail.error_code.as_deref().filter(|_| is_fcm)
    });
    if code == 401 && fcm_code.is_none() {
        return Err(ResponseError::Authentication { body: raw() });
    }
    let Some(name) = fcm_code.or(error.status.as_deref()).filter(|name| !name.is_empty()) else {
        return Err(ResponseError::UnexpectedStatus { status: code, body: raw() });
    };
    let code_value = ErrorCode::parse(name);
    let fate = match code_value.kind() {
        ErrorKind::NotRegistered => Fate::NotRegistered,
        ErrorKind::Retry | ErrorKind::RateLimited => Fate::Retry(RetryCause::Error(code_value)),
        ErrorKind::Fatal if transient => Fate::Retry(RetryCause::Error(code_value)),
        ErrorKind::Fatal => Fate::Failed(code_value),
    };
    reply(fate, detail(&error))
}

/// The status's message, the fields its `BadRequest` detail names and the quotas its
/// `QuotaFailure` detail names.
fn detail(status: &Status<'_>) -> Option<String> {
    let mut text = status.message.as_deref().unwrap_or_default().to_owned();
    let mut add = |kind: &str, name: Option<&str>, description: Option<&str>| {
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(kind);
        text.push_str(name.unwrap_or("?"));
        text.push_str(": ");
        text.push_str(description.unwrap_or_default());
    };
    for detail in &status.details {
        for violation in &detail.field_violations {
            add("field ", violation.field.as_deref(), violation.description.as_deref());
        }
        for violation in &detail.violations {
            add("quota ", violation.subject.as_deref(), violation.description.as_deref());
        }
    }
    (!text.is_empty()).then_some(text)
}
