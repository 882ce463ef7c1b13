//! Decoding: an `http::Response` (and the time it arrived) becomes an [`Outcome`].

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use http::header::RETRY_AFTER;
use http::{HeaderMap, Response, StatusCode};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::backoff::parse_retry_after;
use crate::error::{ErrorCode, RawBody, ResponseError};
use crate::fate::{Fate, RetryCause};
use crate::json;
use crate::message::{Format, Message};
use crate::outcome::Outcome;
use crate::request::Gcm;

impl Gcm {
    /// Reads the server's response to `message`. `now` is when the response arrived; it
    /// turns a `Retry-After` date into a delay.
    ///
    /// * 200: one [`Fate`] per recipient, matched by position for JSON, from the `id=` /
    ///   `Error=` lines for plain text;
    /// * 500..=599: every recipient must be retried;
    /// * 400, 401 and any other status, or a 200 body without the protocol's shape: an error
    ///   that keeps the body.
    ///
    /// `Retry-After` is read on 200 and 5xx responses alike.
    pub fn decode<B: AsRef<[u8]>>(
        &self,
        message: &Message,
        response: &Response<B>,
        now: SystemTime,
    ) -> Result<Outcome, ResponseError> {
        self.decode_parts(message, response.status(), response.headers(), response.body().as_ref(), now)
    }

    /// [`decode`](Gcm::decode) for callers whose HTTP stack does not hand out an
    /// `http::Response`.
    pub fn decode_parts(
        &self,
        message: &Message,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Outcome, ResponseError> {
        let raw = || RawBody(body.to_vec());
        let mut outcome = match status.as_u16() {
            200 => {
                let (multicast_id, fates) = match message.format {
                    Format::Json => read_json(message, body)?,
                    Format::PlainText => (None, vec![read_plain_text(message, body)?]),
                };
                let mut outcome = Outcome::from_fates(message, fates, self.backoff);
                outcome.set_multicast_id(multicast_id);
                outcome
            }
            400 => return Err(ResponseError::BadRequest { body: raw() }),
            401 => return Err(ResponseError::Authentication { body: raw() }),
            code @ 500..=599 => Outcome::for_all(message, Fate::Retry(RetryCause::Status(code)), self.backoff),
            code => return Err(ResponseError::UnexpectedStatus { status: code, body: raw() }),
        };
        let retry_after = headers.get(RETRY_AFTER).and_then(|value| parse_retry_after(value, now));
        outcome.set_retry_after(retry_after);
        Ok(outcome)
    }
}

fn malformed(reason: impl Into<String>, body: &[u8]) -> ResponseError {
    ResponseError::Malformed { reason: reason.into(), body: RawBody(body.to_vec()) }
}

/// The JSON body of a 200: a multicast (`results`) or a topic/condition (`message_id` or
/// `error` at the top level). Counters (`success`, `failure`, `canonical_ids`) are not
/// trusted over `results` and are not read.
#[derive(Deserialize)]
struct JsonBody<'a> {
    #[serde(default)]
    multicast_id: Option<i64>,
    #[serde(default)]
    results: Option<Results>,
    #[serde(default, borrow)]
    message_id: Option<MessageId<'a>>,
    #[serde(default, borrow)]
    error: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct JsonResult<'a> {
    #[serde(default, borrow)]
    message_id: Option<MessageId<'a>>,
    #[serde(default, borrow)]
    registration_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    error: Option<Cow<'a, str>>,
}

/// The `results` array, each entry turned into its [`Fate`] as it is parsed (no
/// intermediate tree of values).
struct Results(Vec<Fate>);

impl<'de> Deserialize<'de> for Results {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ResultsVisitor;

        impl<'de> Visitor<'de> for ResultsVisitor {
            type Value = Results;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of results")
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Results, A::Error> {
                let mut fates = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOCATED));
                while let Some(result) = seq.next_element::<JsonResult<'de>>()? {
                    let fate = result.into_fate().ok_or_else(|| {
                        de::Error::custom(format_args!("result {} has neither `message_id` nor `error`", fates.len()))
                    })?;
                    fates.push(fate);
                }
                Ok(Results(fates))
            }
        }

        deserializer.deserialize_seq(ResultsVisitor)
    }
}

/// Enough for a full multicast; a longer array grows as it is read.
const MAX_PREALLOCATED: usize = 1024;

impl JsonResult<'_> {
    fn into_fate(self) -> Option<Fate> {
        match (self.message_id, self.error) {
            (Some(MessageId(id)), _) => Some(Fate::Delivered {
                message_id: id.into_owned(),
                canonical: self.registration_id.map(Cow::into_owned),
            }),
            (None, Some(code)) => Some(Fate::from_error(ErrorCode::parse(&code))),
            (None, None) => None,
        }
    }
}

/// The `multicast_id` and one fate per recipient, in request order.
fn read_json(message: &Message, body: &[u8]) -> Result<(Option<i64>, Vec<Fate>), ResponseError> {
    let parsed: JsonBody<'_> =
        json::from_body(body).map_err(|e| malformed(format!("not a GCM JSON response: {e}"), body))?;
    let tokens = message.tokens();
    let fates = match parsed.results {
        Some(Results(fates)) => fates,
        // A topic or condition response: one result for the single recipient.
        None => {
            if tokens.len() != 1 {
                return Err(malformed(format!("expected `results` for {} recipients", tokens.len()), body));
            }
            let single = JsonResult { message_id: parsed.message_id, registration_id: None, error: parsed.error };
            let fate =
                single.into_fate().ok_or_else(|| malformed("neither `results`, `message_id` nor `error`", body))?;
            vec![fate]
        }
    };
    if fates.len() != tokens.len() {
        return Err(malformed(format!("{} results for {} recipients", fates.len(), tokens.len()), body));
    }
    Ok((parsed.multicast_id, fates))
}

/// The plain-text body of a 200: `id=…` (optionally followed by `registration_id=…`) or
/// `Error=…`. Lines split on the first `=`.
fn read_plain_text(message: &Message, body: &[u8]) -> Result<Fate, ResponseError> {
    let text = std::str::from_utf8(body).map_err(|_| malformed("the body is not UTF-8", body))?;
    if message.tokens().len() != 1 {
        return Err(malformed("a plain-text response for several recipients", body));
    }
    let mut lines = text.trim().lines().map(|line| line.trim_end_matches('\r'));
    let first = lines.next().filter(|line| !line.is_empty());
    let fate = match first.and_then(|line| line.split_once('=')) {
        // An empty id, canonical id or code is not an answer the service gives.
        Some(("id" | "Error", "")) => return Err(malformed("an empty value on the first line", body)),
        Some(("id", id)) => {
            let canonical = match lines.next() {
                None => None,
                Some(line) => match line.split_once('=') {
                    Some(("registration_id", "")) => return Err(malformed("an empty canonical id", body)),
                    Some(("registration_id", canonical)) => Some(canonical.to_owned()),
                    _ => return Err(malformed(format!("unexpected second line {line:?}"), body)),
                },
            };
            Fate::Delivered { message_id: id.to_owned(), canonical }
        }
        Some(("Error", code)) => Fate::from_error(ErrorCode::parse(code)),
        _ if first.is_none() => return Err(malformed("empty body", body)),
        _ => return Err(malformed("expected `id=` or `Error=` on the first line", body)),
    };
    if let Some(line) = lines.next() {
        return Err(malformed(format!("unexpected line {line:?}"), body));
    }
    Ok(fate)
}

/// A message id: a string in results, a JSON number in topic responses. Numbers are kept
/// as their decimal text, never through a float.
struct MessageId<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for MessageId<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;

        impl<'de> Visitor<'de> for IdVisitor {
            type Value = MessageId<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a message id (string or integer)")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(MessageId(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MessageId(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(MessageId(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(MessageId(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(MessageId(Cow::Owned(v.to_string())))
            }
        }

        deserializer.deserialize_any(IdVisitor)
    }
}
