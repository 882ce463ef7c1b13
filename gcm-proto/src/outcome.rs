//! The outcome of a send: one [`Fate`] per recipient, and what to do next.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand_core::Rng;
use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::error::{ErrorCode, ErrorKind};
use crate::message::Message;

/// What happened to one recipient. Every recipient of a request has exactly one fate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Accepted for delivery.
    Delivered {
        /// The server's id for the message (a topic's numeric id as decimal text).
        message_id: String,
        /// The token to store instead of this one from now on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        canonical: Option<String>,
    },
    /// The token is no longer valid: remove it from your database.
    NotRegistered,
    /// Unrecoverable for this request (bad token, wrong sender, payload too big…).
    Failed(ErrorCode),
    /// Not delivered yet; resend after [`Outcome::delay`].
    Retry(RetryCause),
}

impl Fate {
    /// The fate an error code gives a recipient.
    pub fn from_error(code: ErrorCode) -> Self {
        match code.kind() {
            ErrorKind::NotRegistered => Self::NotRegistered,
            ErrorKind::Retry | ErrorKind::RateLimited => Self::Retry(RetryCause::Error(code)),
            ErrorKind::Fatal => Self::Failed(code),
        }
    }

    /// True for every fate but [`Fate::Retry`]: nothing about this recipient will change.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Retry(_))
    }
}

/// Why a recipient must be retried.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryCause {
    /// The server reported a recoverable code for this recipient (`Unavailable`,
    /// `InternalServerError`) or a rate limit (`DeviceMessageRateExceeded`,
    /// `TopicsMessageRateExceeded`).
    Error(ErrorCode),
    /// The whole request failed with this 5xx status.
    Status(u16),
    /// No answer for this recipient: the request failed in transit or timed out, or was
    /// refused as a whole (the error that came with it says which).
    Unanswered,
}

/// The outcome of a send, modelled on the Python gcm-client's `Result`: every recipient's
/// [`Fate`], the server's `Retry-After`, and what a retry needs.
///
/// Outcomes of several attempts [`merge`](Outcome::merge) into one report in which nothing
/// learned earlier (a success, a canonical id, a failure) is lost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    multicast_id: Option<i64>,
    fates: BTreeMap<String, Fate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after: Option<Duration>,
    #[serde(default)]
    backoff: Backoff,
}

impl Outcome {
    /// An outcome with no recipient yet, whose delays follow `backoff`.
    pub fn new(backoff: Backoff) -> Self {
        Self { backoff, ..Self::default() }
    }

    /// Records a recipient's fate. A final fate is never replaced: if the same token appears
    /// twice in a request, a delivery (or any final fate) wins over a retry, and the first
    /// final fate wins over later ones, so no token is both delivered and retried.
    pub fn record(&mut self, token: impl Into<String>, fate: Fate) {
        use std::collections::btree_map::Entry;
        match self.fates.entry(token.into()) {
            Entry::Vacant(slot) => {
                slot.insert(fate);
            }
            Entry::Occupied(mut slot) => {
                if !slot.get().is_final() {
                    slot.insert(fate);
                }
            }
        }
    }

    /// Sets the server's `Retry-After`.
    pub fn set_retry_after(&mut self, retry_after: Option<Duration>) {
        self.retry_after = retry_after;
    }

    /// Sets the `multicast_id`.
    pub fn set_multicast_id(&mut self, multicast_id: Option<i64>) {
        self.multicast_id = multicast_id;
    }

    /// Folds a later attempt's outcome into this one: recipients waiting for a retry take
    /// their new fate; final fates (successes with their canonical ids, not registered,
    /// failures) stay as they are. `Retry-After` becomes the later one's; the first
    /// `multicast_id` is kept.
    pub fn merge(&mut self, later: Outcome) {
        for (token, fate) in later.fates {
            self.record(token, fate);
        }
        self.retry_after = later.retry_after;
        self.multicast_id = self.multicast_id.or(later.multicast_id);
    }

    /// The `multicast_id` of the (first) response, if it had one.
    pub fn multicast_id(&self) -> Option<i64> {
        self.multicast_id
    }

    /// Every recipient's fate, by token.
    pub fn fates(&self) -> &BTreeMap<String, Fate> {
        &self.fates
    }

    /// One recipient's fate.
    pub fn fate(&self, token: &str) -> Option<&Fate> {
        self.fates.get(token)
    }

    /// Delivered recipients: token → message id.
    pub fn success(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fates.iter().filter_map(|(token, fate)| match fate {
            Fate::Delivered { message_id, .. } => Some((token.as_str(), message_id.as_str())),
            _ => None,
        })
    }

    /// Delivered recipients with a new token: old token → canonical token. Replace the old
    /// token in your database.
    pub fn canonical(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fates.iter().filter_map(|(token, fate)| match fate {
            Fate::Delivered { canonical: Some(canonical), .. } => Some((token.as_str(), canonical.as_str())),
            _ => None,
        })
    }

    /// Tokens that are no longer registered: remove them from your database.
    pub fn not_registered(&self) -> impl Iterator<Item = &str> {
        self.fates.iter().filter_map(|(token, fate)| match fate {
            Fate::NotRegistered => Some(token.as_str()),
            _ => None,
        })
    }

    /// Unrecoverable failures: token → error code.
    pub fn failed(&self) -> impl Iterator<Item = (&str, &ErrorCode)> {
        self.fates.iter().filter_map(|(token, fate)| match fate {
            Fate::Failed(code) => Some((token.as_str(), code)),
            _ => None,
        })
    }

    /// Recipients to resend to, with the reason.
    pub fn to_retry(&self) -> impl Iterator<Item = (&str, &RetryCause)> {
        self.fates.iter().filter_map(|(token, fate)| match fate {
            Fate::Retry(cause) => Some((token.as_str(), cause)),
            _ => None,
        })
    }

    /// The recipients among [`to_retry`](Outcome::to_retry) that hit a rate limit: slow
    /// down for them rather than resending at once.
    pub fn rate_limited(&self) -> impl Iterator<Item = (&str, &ErrorCode)> {
        self.to_retry().filter_map(|(token, cause)| match cause {
            RetryCause::Error(code) if code.kind() == ErrorKind::RateLimited => Some((token, code)),
            _ => None,
        })
    }

    /// True when some recipient must be resent to.
    pub fn needs_retry(&self) -> bool {
        self.fates.values().any(|fate| !fate.is_final())
    }

    /// The message to resend: `original` with only the recipients that need a retry, in
    /// their original order, with the same payload and options. `None` when nothing needs one.
    pub fn retry(&self, original: &Message) -> Option<Message> {
        let mut seen = BTreeSet::new();
        let tokens: Vec<String> = original
            .tokens()
            .iter()
            .filter(|token| matches!(self.fates.get(token.as_str()), Some(Fate::Retry(_))))
            .filter(|token| seen.insert(token.as_str()))
            .cloned()
            .collect();
        (!tokens.is_empty()).then(|| original.with_tokens(tokens))
    }

    /// The server's `Retry-After`, relative to the `now` the response was decoded with.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// How long to wait before retry number `attempt` (0 for the first retry): the server's
    /// `Retry-After` if it sent one, else [`backoff`](Outcome::backoff).
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        match self.retry_after {
            Some(retry_after) => retry_after,
            None => self.backoff(attempt, rng),
        }
    }

    /// Exponential backoff with jitter for retry number `attempt`; see [`Backoff`].
    pub fn backoff<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        self.backoff.delay(attempt, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(id: &str, canonical: Option<&str>) -> Fate {
        Fate::Delivered { message_id: id.into(), canonical: canonical.map(Into::into) }
    }

    #[test]
    fn a_final_fate_is_never_replaced() {
        let mut outcome = Outcome::default();
        outcome.record("a", Fate::from_error(ErrorCode::Unavailable));
        outcome.record("a", delivered("1", Some("a2")));
        outcome.record("a", Fate::NotRegistered);
        outcome.record("a", Fate::Retry(RetryCause::Status(503)));
        assert_eq!(outcome.fate("a"), Some(&delivered("1", Some("a2"))));
    }

    #[test]
    fn merge_keeps_earlier_facts_and_fills_retries() {
        let mut first = Outcome::default();
        first.set_multicast_id(Some(7));
        first.record("a", delivered("1", Some("a2")));
        first.record("b", Fate::from_error(ErrorCode::Unavailable));
        first.record("c", Fate::NotRegistered);
        let mut second = Outcome::default();
        second.set_multicast_id(Some(8));
        second.record("b", delivered("2", None));
        second.set_retry_after(Some(Duration::from_secs(3)));
        first.merge(second);
        assert_eq!(first.multicast_id(), Some(7));
        assert_eq!(first.success().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
        assert_eq!(first.canonical().collect::<Vec<_>>(), [("a", "a2")]);
        assert_eq!(first.not_registered().collect::<Vec<_>>(), ["c"]);
        assert!(!first.needs_retry());
        assert_eq!(first.retry_after(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn retry_keeps_original_order_once_per_token() {
        let message = Message::multicast(["c", "a", "b", "a"]).data("k", "v");
        let mut outcome = Outcome::default();
        outcome.record("a", Fate::from_error(ErrorCode::InternalServerError));
        outcome.record("b", delivered("1", None));
        outcome.record("c", Fate::from_error(ErrorCode::DeviceMessageRateExceeded));
        let retry = outcome.retry(&message).expect("a retry");
        assert_eq!(retry.tokens(), ["c", "a"]);
        assert_eq!(retry.data, message.data);
        assert_eq!(outcome.rate_limited().collect::<Vec<_>>(), [("c", &ErrorCode::DeviceMessageRateExceeded)]);
        outcome.record("a", delivered("2", None));
        outcome.record("c", delivered("3", None));
        assert_eq!(outcome.retry(&message), None);
    }
}
