//! What an FCM v1 multicast (or a send of several messages) ends with, one send or a whole
//! retry loop: the merged outcome,
//! and what it cannot hold (errors, the server's detail per message, the delay the loop did
//! not wait).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use gcm_proto::v1::Multicast;
use gcm_proto::{Outcome, Retryable};

use crate::error::Error;

/// What one message of a multicast has to say beyond its [`Fate`](gcm_proto::Fate).
#[derive(Debug)]
#[non_exhaustive]
pub enum Problem {
    /// The server answered with an error: its message, and the fields (`BadRequest`) or
    /// quotas (`QuotaFailure`) its details name.
    Detail(String),
    /// No usable answer: the request failed, timed out, or its answer could not be read.
    /// The message is pending as [`RetryCause::Unanswered`](gcm_proto::RetryCause::Unanswered).
    Error(Error),
}

impl std::fmt::Display for Problem {
    /// The server's detail, or the error.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Detail(detail) => f.write_str(detail),
            Self::Error(error) => error.fmt(f),
        }
    }
}

impl Problem {
    /// True when the message's request failed after it may have reached the server:
    /// resending it may deliver it twice.
    pub fn may_have_reached_server(&self) -> bool {
        matches!(self, Self::Error(error) if error.may_have_reached_server())
    }

    /// The error that left the message unanswered, if that is the problem.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Self::Error(error) => Some(error),
            Self::Detail(_) => None,
        }
    }
}

/// What an FCM v1 multicast ended with, one send or a whole retry loop.
pub type MulticastReport = V1Report<Multicast>;

/// What [`FcmClient::send_each`](crate::FcmClient::send_each) ended with.
pub type MessagesReport = V1Report<gcm_proto::v1::Messages>;

/// What a send of several FCM v1 messages ended with: a [`MulticastReport`] or a
/// [`MessagesReport`].
#[derive(Debug)]
pub struct V1Report<P: Retryable = Multicast> {
    /// Every message's fate, in order; [`Outcome::retry`] is what to schedule for the
    /// messages still pending.
    pub outcome: Outcome<P>,
    /// How many rounds of requests were sent.
    pub attempts: u32,
    /// What some messages have to say beyond their fate, by position in
    /// `outcome.fates()`: the server's detail, or the error that left them unanswered.
    pub problems: BTreeMap<usize, Problem>,
    /// When a retry loop stopped with messages pending because of its limits: the delay it
    /// would have waited before the next round (the server's `Retry-After` if that was
    /// the longer). Schedule `outcome.retry()` after it.
    pub next_delay: Option<Duration>,
}

impl<P: Retryable> V1Report<P> {
    pub(crate) fn new(outcome: Outcome<P>, problems: BTreeMap<usize, Problem>) -> Self {
        Self { outcome, attempts: 1, problems, next_delay: None }
    }

    /// True when some message still pending may have reached the server: resending it
    /// may deliver it twice.
    pub fn may_have_reached_server(&self) -> bool {
        self.outcome.fates().enumerate().any(|(position, (_, fate))| {
            !fate.is_final() && self.problems.get(&position).is_some_and(Problem::may_have_reached_server)
        })
    }

    /// The errors that left messages unanswered: position, token, error.
    pub fn errors(&self) -> impl Iterator<Item = (usize, &str, &Error)> {
        self.outcome.fates().enumerate().filter_map(|(position, (token, _))| {
            let error = self.problems.get(&position)?.error()?;
            Some((position, token, error))
        })
    }

    /// Folds in the report of a retry whose `i`-th token was at `positions[i]` here.
    pub(crate) fn absorb(&mut self, positions: &[usize], mut later: V1Report<P>) {
        for (index, &position) in positions.iter().enumerate() {
            self.problems.remove(&position);
            if let Some(problem) = later.problems.remove(&index) {
                self.problems.insert(position, problem);
            }
        }
        self.outcome.merge_at(positions, later.outcome);
    }

    /// `Err(Stopped)` when every message has an error (so none got an answer) and every
    /// error concerns them all (no access token, credentials refused, no connection); else
    /// the report, also when it has no message.
    pub(crate) fn into_stopped_if_systemic(mut self) -> Result<Self, Stopped<P>> {
        let all_systemic = !self.problems.is_empty()
            && self.problems.len() == self.outcome.len()
            && self.problems.values().all(|problem| problem.error().is_some_and(Error::is_systemic));
        if !all_systemic {
            return Ok(self);
        }
        let Some(Problem::Error(error)) = self.problems.remove(&0) else { return Ok(self) };
        Err(Stopped::new(error, self))
    }
}

/// A failure that concerns every message of a send: no access token, the
/// credentials refused, or no connection to the endpoint. Retrying message by message
/// cannot help: fix the cause, or pause sending and try again later
/// ([`Error::is_retryable`] says which). The report inside keeps what is known: every
/// message is pending, or has what earlier rounds of a retry loop learned.
#[derive(Debug)]
pub struct Stopped<P: Retryable = Multicast> {
    error: Error,
    report: Box<V1Report<P>>,
}

impl<P: Retryable> Stopped<P> {
    pub(crate) fn new(error: Error, report: V1Report<P>) -> Self {
        Self { error, report: Box::new(report) }
    }

    /// What stopped the multicast.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// What is known of each message.
    pub fn report(&self) -> &V1Report<P> {
        &self.report
    }

    /// The error and the report.
    pub fn into_parts(self) -> (Error, V1Report<P>) {
        (self.error, *self.report)
    }
}

impl<P: Retryable> fmt::Display for Stopped<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pending = self.report.outcome.to_retry().count();
        write!(f, "the send stopped with {pending} of {} messages pending: {}", self.report.outcome.len(), self.error)
    }
}

impl<P: Retryable + fmt::Debug> std::error::Error for Stopped<P> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
