//! What a job's attempt ends with: one final fate per recipient that will not be sent
//! again, and the retry that carries the others.

use serde::{Deserialize, Serialize};

use crate::job::Job;

/// The last word on one recipient of a job: nothing about it will change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fate", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Final {
    /// Accepted by the server.
    Delivered {
        /// The server's message id.
        message_id: String,
        /// The token to store instead of this one from now on (legacy canonical id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        canonical: Option<String>,
    },
    /// The token is no longer valid: remove it from your database.
    NotRegistered,
    /// Refused for good (bad token, wrong sender, invalid message…).
    Failed {
        /// The server's error code, or the error that refused the request.
        code: String,
        /// The server's explanation, when it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Still undelivered after the last attempt the policy allows.
    GivenUp {
        /// Why the last attempt left it pending.
        cause: String,
    },
    /// Its request may have reached the server before it failed, and the policy is to
    /// review such messages instead of resending them (which might deliver them twice).
    Parked {
        /// The error that left it unanswered.
        cause: String,
    },
}

impl Final {
    /// The fate's name as the result store and the HTTP API spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Delivered { .. } => "delivered",
            Self::NotRegistered => "not_registered",
            Self::Failed { .. } => "failed",
            Self::GivenUp { .. } => "given_up",
            Self::Parked { .. } => "parked",
        }
    }
}

/// One recipient's final fate, keyed by job, attempt and recipient: recording the same
/// key twice keeps the first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The job's id.
    pub job_id: String,
    /// The attempt that settled this recipient.
    pub attempt: u32,
    /// The token (or topic, or condition) as the job named it.
    pub recipient: String,
    /// The job's correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// What happened to it.
    #[serde(flatten)]
    pub fate: Final,
}

/// The retry an attempt schedules: the job to push, due at `run_at_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scheduled {
    /// The next attempt, with the recipients still pending.
    pub job: Job,
    /// When it is due, in milliseconds since the Unix epoch.
    pub run_at_ms: u64,
}

/// Everything one attempt of a job decided, recorded at once: the final fates and the
/// retry. A worker that runs the attempt again (after a crash) finds it and pushes the
/// same retry instead of sending again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settlement {
    /// The job's id.
    pub job_id: String,
    /// The attempt.
    pub attempt: u32,
    /// The recipients this attempt settled.
    pub records: Vec<Record>,
    /// The next attempt, if some recipients are still pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Scheduled>,
}

impl Settlement {
    /// How many recipients the retry carries.
    pub fn pending(&self) -> usize {
        self.retry.as_ref().map_or(0, |retry| retry.job.payload.len())
    }
}

/// Where a job stands, from its recorded settlements.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// `queued` (no attempt settled yet, or an unknown id), `retrying` or `done`.
    pub status: String,
    /// Attempts settled so far.
    pub attempts: u64,
    /// Recipients delivered, canonical ids among them.
    pub delivered: u64,
    /// Delivered recipients whose token has a canonical replacement.
    pub canonical: u64,
    /// Recipients not registered.
    pub not_registered: u64,
    /// Recipients refused for good.
    pub failed: u64,
    /// Recipients given up after the last attempt.
    pub given_up: u64,
    /// Recipients parked for review.
    pub parked: u64,
    /// Recipients the latest settled attempt left for a retry.
    pub pending: u64,
}

impl Summary {
    /// Counts one recorded fate.
    pub fn count(&mut self, fate: &Final) {
        let counter = match fate {
            Final::Delivered { canonical, .. } => {
                self.canonical += u64::from(canonical.is_some());
                &mut self.delivered
            }
            Final::NotRegistered => &mut self.not_registered,
            Final::Failed { .. } => &mut self.failed,
            Final::GivenUp { .. } => &mut self.given_up,
            Final::Parked { .. } => &mut self.parked,
        };
        *counter = counter.saturating_add(1);
    }

    /// Sets `status` from the attempts and what is pending.
    pub fn finish(mut self) -> Self {
        self.status = match (self.attempts, self.pending) {
            (0, _) => "queued",
            (_, 0) => "done",
            _ => "retrying",
        }
        .to_owned();
        self
    }
}
