//! What one send learned, and the settlement the [`Policy`] makes of it: a final fate for
//! each recipient that will not be sent again, and the retry that carries the others, picked
//! by position from the outcome and due after the outcome's own delay.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use gcm_hyper::gcm_proto::v1::{Messages, Multicast, Subscription};
use gcm_hyper::gcm_proto::{Backoff, ErrorCode, Fate, Message, Outcome, RetryCause, Retryable};
use gcm_hyper::{Problem, V1Report};
use serde::{Deserialize, Serialize};

use crate::fate::{Final, Record, Scheduled, Settlement};
use crate::job::{Job, Payload, millis};

/// What to do with a message whose request failed after it may have reached the server
/// (a timeout, a connection reset mid-request): the server may have delivered it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unsure {
    /// Send it again with the others (at-least-once: a device may get it twice).
    #[default]
    Resend,
    /// Record it as [`Final::Parked`](crate::Final::Parked) for review, never resend it (at-most-once).
    Park,
}

/// How a worker retries.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Attempts per job, the first included; after the last, pending recipients are
    /// recorded as [`Final::GivenUp`](crate::Final::GivenUp).
    pub max_attempts: u32,
    /// What to do with messages that may have reached the server.
    pub unsure: Unsure,
}

impl Default for Policy {
    fn default() -> Self {
        Self { max_attempts: 10, unsure: Unsure::Resend }
    }
}

/// A failure that concerns every message: sending pauses instead of retrying each job.
pub(crate) struct Stopped(pub(crate) gcm_hyper::Error);

/// What one send learned, by payload: a fate per recipient and, by position, what some
/// recipients have to say beyond it. (A legacy outcome, which keeps its message's options,
/// is boxed: the round moves once per attempt.)
pub(crate) enum Round {
    Multicast(Outcome<Multicast>, Notes),
    Legacy(Box<Outcome<Message>>, Notes),
    Messages(Outcome<Messages>, Notes),
    Subscription(Outcome<Subscription>, Notes),
}

/// What recipients have to say beyond their fate, by position.
pub(crate) type Notes = BTreeMap<usize, Note>;

/// The server's detail, or the error that left a recipient unanswered; and whether its
/// request may have reached the server (a resend may deliver it twice).
pub(crate) struct Note {
    text: String,
    unsure: bool,
}

impl Note {
    /// The same note for every one of `count` recipients: an error that left a whole
    /// request unanswered.
    pub(crate) fn for_all(count: usize, error: &gcm_hyper::Error) -> Notes {
        let note = || Note { text: error.to_string(), unsure: error.may_have_reached_server() };
        (0..count).map(|position| (position, note())).collect()
    }

    /// The notes of a v1 report's problems.
    pub(crate) fn of<P: Retryable>(report: &V1Report<P>) -> Notes {
        let note = |problem: &Problem| Note { text: problem.to_string(), unsure: problem.may_have_reached_server() };
        report.problems.iter().map(|(&position, problem)| (position, note(problem))).collect()
    }
}

impl Round {
    /// The round of a v1 send, made by `kind`: its outcome and notes, or the failure that
    /// concerns every message.
    pub(crate) fn of_v1<P: Retryable>(
        sent: Result<V1Report<P>, gcm_hyper::Stopped<P>>,
        kind: fn(Outcome<P>, Notes) -> Round,
    ) -> Result<Round, Stopped> {
        match sent {
            Ok(report) => {
                let notes = Note::of(&report);
                Ok(kind(report.outcome, notes))
            }
            Err(stopped) => Err(Stopped(stopped.into_parts().0)),
        }
    }

    /// Applies `policy` to what was learned: unsure messages parked (if so), pending ones
    /// given up after the last attempt, the rest scheduled as the job's next attempt,
    /// `now` plus the outcome's delay (its `Retry-After`, else backoff and floors).
    /// When FCM said the project's quota is spent (`QUOTA_EXCEEDED`): how long to hold
    /// the fleet's bucket empty — the `Retry-After`, else the quota's own floor.
    pub(crate) fn quota_exceeded(&self) -> Option<Duration> {
        fn of<P: Retryable>(outcome: &Outcome<P>) -> Option<Duration> {
            let quota = |cause: &RetryCause| matches!(cause, RetryCause::Error(ErrorCode::QuotaExceeded));
            outcome.to_retry().any(|(_, cause)| quota(cause)).then(|| {
                let floor = Backoff::fcm_v1().floor(&RetryCause::Error(ErrorCode::QuotaExceeded));
                outcome.retry_after().unwrap_or(floor)
            })
        }
        match self {
            Self::Multicast(outcome, _) => of(outcome),
            Self::Legacy(outcome, _) => of(outcome),
            Self::Messages(outcome, _) => of(outcome),
            Self::Subscription(outcome, _) => of(outcome),
        }
    }

    pub(crate) fn settle(&self, job: &Job, policy: &Policy, now: SystemTime, rng: &mut impl rand::Rng) -> Settlement {
        let step = Step { job, policy, now };
        match self {
            Self::Multicast(outcome, notes) => {
                step.settle(outcome, notes, rng, |multicast| Payload::V1Multicast { multicast })
            }
            Self::Legacy(outcome, notes) => step.settle(outcome, notes, rng, |message| Payload::Legacy { message }),
            Self::Messages(outcome, notes) => {
                step.settle(outcome, notes, rng, |messages| Payload::V1Messages { messages })
            }
            Self::Subscription(outcome, notes) => {
                step.settle(outcome, notes, rng, |subscription| Payload::V1Subscription { subscription })
            }
        }
    }
}

struct Step<'a> {
    job: &'a Job,
    policy: &'a Policy,
    now: SystemTime,
}

impl Step<'_> {
    fn settle<P: Retryable>(
        &self,
        outcome: &Outcome<P>,
        notes: &Notes,
        rng: &mut impl rand::Rng,
        payload: impl FnOnce(P) -> Payload,
    ) -> Settlement {
        let job = self.job;
        let last = job.attempt.saturating_add(1) >= self.policy.max_attempts;
        let mut records = Vec::with_capacity(outcome.len());
        let mut resend = Vec::new();
        for (position, (recipient, fate)) in outcome.fates().enumerate() {
            let note = notes.get(&position);
            let fate = match fate {
                Fate::Delivered { message_id, canonical } => {
                    Final::Delivered { message_id: message_id.clone(), canonical: canonical.clone() }
                }
                Fate::NotRegistered => Final::NotRegistered,
                Fate::Failed(code) => {
                    Final::Failed { code: code.to_string(), detail: note.map(|note| note.text.clone()) }
                }
                Fate::Retry(cause) => {
                    let cause = match cause {
                        RetryCause::Error(code) => code.to_string(),
                        RetryCause::Status(status) => format!("HTTP {status}"),
                        RetryCause::Unanswered => {
                            note.map_or_else(|| "unanswered".to_owned(), |note| note.text.clone())
                        }
                    };
                    if note.is_some_and(|note| note.unsure) && self.policy.unsure == Unsure::Park {
                        Final::Parked { cause }
                    } else if last {
                        Final::GivenUp { cause }
                    } else {
                        resend.push(position);
                        continue;
                    }
                }
            };
            records.push(Record {
                job_id: job.id.clone(),
                attempt: job.attempt,
                recipient: recipient.to_owned(),
                correlation_id: job.correlation_id.clone(),
                campaign_id: job.campaign_id.clone(),
                project: job.project.clone(),
                fate,
            });
        }
        // `resend` is in ascending order: the positions `fates()` gave.
        let retry = outcome.retry_where(|position, _| resend.binary_search(&position).is_ok()).map(|(pending, _)| {
            let delay = outcome.delay(job.attempt, rng);
            Scheduled {
                job: job.retry(payload(pending)),
                run_at_ms: millis(self.now).saturating_add(ceil_millis(delay)),
            }
        });
        let (audience, webhook) = (job.audience.clone(), job.webhook.clone());
        Settlement { job_id: job.id.clone(), attempt: job.attempt, records, retry, audience, webhook }
    }
}

/// Whole milliseconds at or after `delay`: a retry never runs before its delay.
fn ceil_millis(delay: Duration) -> u64 {
    let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    millis.saturating_add(u64::from(!delay.subsec_nanos().is_multiple_of(1_000_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_to_the_millisecond() {
        assert_eq!(ceil_millis(Duration::from_secs(30)), 30_000);
        assert_eq!(ceil_millis(Duration::from_micros(1_500)), 2);
        assert_eq!(ceil_millis(Duration::MAX), u64::MAX);
    }
}
