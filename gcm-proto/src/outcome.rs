//! The outcome of a send: one [`Fate`] per recipient, and what to do next.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand_core::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::backoff::Backoff;
use crate::error::{ErrorCode, ErrorKind};
use crate::fate::{Fate, RetryCause};
use crate::message::Message;
use crate::retryable::Retryable;

/// The outcome of a send, modelled on the Python gcm-client's `Result`: one [`Fate`] per
/// recipient of the request, in request order, the server's `Retry-After`, and the
/// message it answers, so that [`retry`](Outcome::retry) needs no argument.
///
/// Outcomes of several attempts [`merge`](Outcome::merge) into one report in which nothing
/// learned earlier (a success, a canonical id, a failure) is lost. A token listed twice in
/// a request has two entries, as the server answers each position.
#[derive(Clone)]
pub struct Outcome<P: Retryable = Message> {
    multicast_id: Option<i64>,
    /// What was sent, without its recipients (they are below): what a retry resends.
    message: P,
    /// The request's recipients, shared with its message: `fates[i]` belongs to `recipients[i]`.
    recipients: Arc<[String]>,
    /// Recipients recorded or merged in later; their fates follow those of `recipients`.
    added: Vec<String>,
    fates: Vec<Fate>,
    retry_after: Option<Duration>,
    backoff: Backoff,
}

impl<P: Retryable> Outcome<P> {
    /// An outcome for `message` with no recipient yet (see [`record`](Outcome::record)),
    /// whose delays follow `backoff`.
    pub fn new(message: &P, backoff: Backoff) -> Self {
        Self {
            multicast_id: None,
            message: message.kept(),
            recipients: Arc::from([]),
            added: Vec::new(),
            fates: Vec::new(),
            retry_after: None,
            backoff,
        }
    }

    /// The same fate for every recipient of `message` (a 5xx, or a request that got no
    /// answer).
    pub fn for_all(message: &P, fate: Fate, backoff: Backoff) -> Self {
        let recipients = message.recipients();
        let fates = vec![fate; recipients.len()];
        Self::from_fates(message, fates, backoff)
    }

    /// One fate per recipient of `message`, in order. The caller guarantees the lengths match.
    pub(crate) fn from_fates(message: &P, fates: Vec<Fate>, backoff: Backoff) -> Self {
        let recipients = message.recipients();
        debug_assert_eq!(fates.len(), recipients.len());
        Self { recipients, fates, ..Self::new(message, backoff) }
    }

    /// Appends a recipient's fate.
    pub fn record(&mut self, token: impl Into<String>, fate: Fate) {
        self.added.push(token.into());
        self.fates.push(fate);
    }

    /// Sets the server's `Retry-After`.
    pub fn set_retry_after(&mut self, retry_after: Option<Duration>) {
        self.retry_after = retry_after;
    }

    /// Sets the `multicast_id`.
    pub fn set_multicast_id(&mut self, multicast_id: Option<i64>) {
        self.multicast_id = multicast_id;
    }

    /// Folds a later attempt's outcome (of [`retry`](Outcome::retry)) into this one: each
    /// recipient waiting for a retry takes its new fate (matched by token, in order); final
    /// fates (successes with their canonical ids, not registered, failures) stay as they
    /// are; recipients this outcome never named are appended. `Retry-After` becomes the
    /// later one's; the first `multicast_id` is kept.
    pub fn merge(&mut self, later: Outcome<P>) {
        let mut appended = Vec::new();
        {
            let mut pending: HashMap<&str, VecDeque<usize>> = HashMap::new();
            let tokens = self.recipients.iter().chain(&self.added);
            for (index, (token, fate)) in tokens.zip(&self.fates).enumerate() {
                if !fate.is_final() {
                    pending.entry(token.as_str()).or_default().push_back(index);
                }
            }
            let Outcome { recipients, added, fates, .. } = later;
            for (token, fate) in recipients.iter().chain(&added).zip(fates) {
                match pending.get_mut(token.as_str()).and_then(VecDeque::pop_front) {
                    Some(index) => {
                        if let Some(slot) = self.fates.get_mut(index) {
                            *slot = fate;
                        }
                    }
                    // Already final here: the first word stands.
                    None if self.fate(token).is_some() => {}
                    None => appended.push((token.clone(), fate)),
                }
            }
        }
        for (token, fate) in appended {
            self.record(token, fate);
        }
        self.retry_after = later.retry_after;
        self.multicast_id = self.multicast_id.or(later.multicast_id);
    }

    /// Appends the outcome of the next part of a [split](crate::Message::split) message:
    /// its recipients follow this outcome's, position by position (a token in two parts
    /// keeps both fates). The longer `Retry-After` and the first `multicast_id` are kept.
    pub fn append(&mut self, next: Outcome<P>) {
        let Outcome { multicast_id, recipients, added, fates, retry_after, .. } = next;
        self.added.extend(recipients.iter().cloned().chain(added));
        self.fates.extend(fates);
        self.retry_after = self.retry_after.max(retry_after);
        self.multicast_id = self.multicast_id.or(multicast_id);
    }

    /// Folds in the outcome of a retry built by [`retry_where`](Outcome::retry_where):
    /// its `i`-th recipient answers position `positions[i]` here. A position whose fate is
    /// already final keeps it. `Retry-After` becomes the later one's.
    pub fn merge_at(&mut self, positions: &[usize], later: Outcome<P>) {
        for (&position, fate) in positions.iter().zip(later.fates) {
            if let Some(slot) = self.fates.get_mut(position).filter(|slot| !slot.is_final()) {
                *slot = fate;
            }
        }
        self.retry_after = later.retry_after;
        self.multicast_id = self.multicast_id.or(later.multicast_id);
    }

    /// The `multicast_id` of the (first) response, if it had one.
    pub fn multicast_id(&self) -> Option<i64> {
        self.multicast_id
    }

    /// Every recipient's fate, in request order; the position in this order is the one
    /// [`retry_where`](Outcome::retry_where) and [`merge_at`](Outcome::merge_at) use.
    pub fn fates(&self) -> impl Iterator<Item = (&str, &Fate)> {
        self.recipients.iter().chain(&self.added).map(String::as_str).zip(&self.fates)
    }

    /// How many recipients the outcome accounts for.
    pub fn len(&self) -> usize {
        self.fates.len()
    }

    /// True when the outcome names no recipient.
    pub fn is_empty(&self) -> bool {
        self.fates.is_empty()
    }

    /// The fate of a recipient (the first, if the request listed it twice).
    pub fn fate(&self, token: &str) -> Option<&Fate> {
        self.fates().find(|(t, _)| *t == token).map(|(_, fate)| fate)
    }

    /// Delivered recipients: token → message id.
    pub fn success(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fates().filter_map(|(token, fate)| match fate {
            Fate::Delivered { message_id, .. } => Some((token, message_id.as_str())),
            _ => None,
        })
    }

    /// Delivered recipients with a new token: old token → canonical token. Replace the old
    /// token in your database.
    pub fn canonical(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fates().filter_map(|(token, fate)| match fate {
            Fate::Delivered { canonical: Some(canonical), .. } => Some((token, canonical.as_str())),
            _ => None,
        })
    }

    /// Tokens that are no longer registered: remove them from your database.
    pub fn not_registered(&self) -> impl Iterator<Item = &str> {
        self.fates().filter_map(|(token, fate)| match fate {
            Fate::NotRegistered => Some(token),
            _ => None,
        })
    }

    /// Unrecoverable failures: token → error code.
    pub fn failed(&self) -> impl Iterator<Item = (&str, &ErrorCode)> {
        self.fates().filter_map(|(token, fate)| match fate {
            Fate::Failed(code) => Some((token, code)),
            _ => None,
        })
    }

    /// Recipients to resend to, with the reason.
    pub fn to_retry(&self) -> impl Iterator<Item = (&str, &RetryCause)> {
        self.fates().filter_map(|(token, fate)| match fate {
            Fate::Retry(cause) => Some((token, cause)),
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
        self.fates.iter().any(|fate| !fate.is_final())
    }

    /// What to resend: the message this outcome answers (payload, options, format), to the
    /// recipients that need a retry, in request order. `None` when nothing needs one.
    pub fn retry(&self) -> Option<P> {
        self.retry_where(|_, _| true).map(|(message, _)| message)
    }

    /// Like [`retry`](Outcome::retry), to the pending recipients that `keep` selects (by
    /// position and fate), with their positions: hand both to
    /// [`merge_at`](Outcome::merge_at) with the retry's outcome.
    pub fn retry_where(&self, mut keep: impl FnMut(usize, &Fate) -> bool) -> Option<(P, Vec<usize>)> {
        let (positions, tokens): (Vec<usize>, Vec<String>) = self
            .fates()
            .enumerate()
            .filter(|(position, (_, fate))| !fate.is_final() && keep(*position, fate))
            .map(|(position, (token, _))| (position, token.to_owned()))
            .unzip();
        (!tokens.is_empty()).then(|| (self.message.resend(&positions, tokens), positions))
    }

    /// The server's `Retry-After`, relative to the `now` the response was decoded with.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// How long to wait before retry number `attempt` (0 for the first retry).
    ///
    /// * With a `Retry-After`, the server's delay is a lower bound: the longer of it and
    ///   the [`backoff`](Outcome::backoff) window, so that `Retry-After: 0` (or a date in
    ///   the past) still backs off exponentially instead of retrying in a hot loop.
    /// * Without one, the backoff window plus the largest floor among the pending
    ///   recipients' causes ([`Backoff::floor`]): with FCM v1's defaults at least 60 s
    ///   after a quota error, 10 s after a server error.
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let backoff = self.backoff(attempt, rng);
        match self.retry_after {
            Some(retry_after) => retry_after.max(backoff),
            None => {
                let floor = self.to_retry().map(|(_, cause)| self.backoff.floor(cause)).max().unwrap_or_default();
                floor.saturating_add(backoff)
            }
        }
    }

    /// Exponential backoff with jitter for retry number `attempt`, without the floors;
    /// see [`Backoff`].
    pub fn backoff<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        self.backoff.delay(attempt, rng)
    }
}

impl<P: Retryable + PartialEq> PartialEq for Outcome<P> {
    fn eq(&self, other: &Self) -> bool {
        self.multicast_id == other.multicast_id
            && self.retry_after == other.retry_after
            && self.backoff == other.backoff
            && self.message == other.message
            && self.fates().eq(other.fates())
    }
}

impl<P: Retryable + fmt::Debug> fmt::Debug for Outcome<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outcome")
            .field("multicast_id", &self.multicast_id)
            .field("fates", &self.fates().collect::<Vec<_>>())
            .field("retry_after", &self.retry_after)
            .field("backoff", &self.backoff)
            .field("message", &self.message)
            .finish()
    }
}

/// The serialized form: the message without its recipients, and the fates as
/// `[token, fate]` pairs in request order.
#[derive(Serialize, Deserialize)]
struct Stored<M, T> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    multicast_id: Option<i64>,
    message: M,
    fates: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after: Option<Duration>,
    #[serde(default)]
    backoff: Backoff,
}

impl<P: Retryable + Serialize> Serialize for Outcome<P> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Stored {
            multicast_id: self.multicast_id,
            message: &self.message,
            fates: self.fates().collect(),
            retry_after: self.retry_after,
            backoff: self.backoff,
        }
        .serialize(serializer)
    }
}

impl<'de, P: Retryable + Deserialize<'de>> Deserialize<'de> for Outcome<P> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = Stored::<P, (String, Fate)>::deserialize(deserializer)?;
        let (recipients, fates): (Vec<String>, Vec<Fate>) = stored.fates.into_iter().unzip();
        Ok(Self {
            multicast_id: stored.multicast_id,
            message: stored.message.kept(),
            recipients: recipients.into(),
            added: Vec::new(),
            fates,
            retry_after: stored.retry_after,
            backoff: stored.backoff,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(id: &str, canonical: Option<&str>) -> Fate {
        Fate::Delivered { message_id: id.into(), canonical: canonical.map(Into::into) }
    }

    fn empty() -> Outcome {
        Outcome::new(&Message::multicast(Vec::<String>::new()), Backoff::default())
    }

    #[test]
    fn merge_fills_retries_and_never_replaces_a_final_fate() {
        let mut first = empty();
        first.set_multicast_id(Some(7));
        first.record("a", delivered("1", Some("a2")));
        first.record("b", Fate::from_error(ErrorCode::Unavailable));
        first.record("c", Fate::NotRegistered);
        let mut second = empty();
        second.set_multicast_id(Some(8));
        second.record("b", delivered("2", None));
        second.record("a", Fate::from_error(ErrorCode::Unavailable)); // a stray word on a final token
        second.record("d", Fate::NotRegistered); // a recipient the first never named
        second.set_retry_after(Some(Duration::from_secs(3)));
        first.merge(second);
        assert_eq!(first.multicast_id(), Some(7));
        assert_eq!(first.success().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
        assert_eq!(first.canonical().collect::<Vec<_>>(), [("a", "a2")]);
        assert_eq!(first.not_registered().collect::<Vec<_>>(), ["c", "d"]);
        assert!(!first.needs_retry());
        assert_eq!(first.retry_after(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn a_token_listed_twice_is_matched_position_by_position() {
        let mut first = empty();
        first.record("a", Fate::from_error(ErrorCode::Unavailable));
        first.record("a", Fate::from_error(ErrorCode::Unavailable));
        let mut second = empty();
        second.record("a", delivered("1", None));
        first.merge(second);
        assert_eq!(first.fates().map(|(_, f)| f.is_final()).collect::<Vec<_>>(), [true, false]);
        assert_eq!(first.retry().map(|m| m.tokens().len()), Some(1));
        // Stored and read back, it is the same outcome.
        let text = serde_json::to_string(&first).unwrap();
        assert_eq!(serde_json::from_str::<Outcome>(&text).unwrap(), first);
    }

    #[test]
    fn retry_keeps_request_order_and_the_payload() {
        let message = Message::multicast(["c", "a", "b"]).data("k", "v");
        let mut outcome = Outcome::new(&message, Backoff::default());
        outcome.record("c", Fate::from_error(ErrorCode::DeviceMessageRateExceeded));
        outcome.record("a", Fate::from_error(ErrorCode::InternalServerError));
        outcome.record("b", delivered("1", None));
        let retry = outcome.retry().expect("a retry");
        assert_eq!(retry.tokens(), ["c", "a"]);
        assert_eq!(retry.data, message.data);
        assert_eq!(outcome.rate_limited().collect::<Vec<_>>(), [("c", &ErrorCode::DeviceMessageRateExceeded)]);
        let mut later = empty();
        later.record("c", delivered("2", None));
        later.record("a", delivered("3", None));
        outcome.merge(later);
        assert_eq!(outcome.retry(), None);
    }
}
