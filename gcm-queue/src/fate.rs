//! What a job's attempt ends with: one final fate per recipient that will not be sent
//! again, and the retry that carries the others.

use serde::{Deserialize, Serialize};

use crate::job::Job;

/// The last word on one recipient of a job: nothing about it will change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Not sent: the job was cancelled (`DELETE /jobs/<id>`) before this recipient's attempt.
    Cancelled,
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
            Self::Cancelled => "cancelled",
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
    /// The job's campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// The job's project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
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
    /// The audience the job's tokens came from: the records' changes are applied to it
    /// with the settlement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The job's webhook: the settlement's records are posted to it (see [`crate::webhook`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

impl Settlement {
    /// The settlement of `job`'s attempt when the job is cancelled: each recipient
    /// [`Final::Cancelled`], no retry.
    pub fn cancelled(job: &Job) -> Self {
        let records = job.payload.recipients().into_iter().map(|recipient| Record {
            job_id: job.id.clone(),
            attempt: job.attempt,
            recipient,
            correlation_id: job.correlation_id.clone(),
            campaign_id: job.campaign_id.clone(),
            project: job.project.clone(),
            fate: Final::Cancelled,
        });
        let (records, audience, webhook) = (records.collect(), job.audience.clone(), job.webhook.clone());
        Self { job_id: job.id.clone(), attempt: job.attempt, records, retry: None, audience, webhook }
    }

    /// How many recipients the retry carries.
    pub fn pending(&self) -> usize {
        self.retry.as_ref().map_or(0, |retry| retry.job.payload.len())
    }
}

/// Where a job stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Enqueued with a `send_at` still in the future; nothing sent yet.
    Scheduled,
    /// Due, waiting for a worker; nothing sent yet.
    #[default]
    Queued,
    /// A worker holds a live claim on its current attempt and is sending it.
    Sending,
    /// Some recipients wait for a later attempt.
    Retrying,
    /// Cancelled: what was not sent is recorded `cancelled` (at once, or when its attempt
    /// comes due on a queue that keeps the first attempt's payload only in its job).
    Cancelled,
    /// Every recipient has its final fate, none given up.
    Done,
    /// Every recipient has its final fate, and some were given up after the last attempt.
    GivenUp,
}

impl JobStatus {
    /// The status as the API spells it: `queued`, `sending`, `done`…
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Retrying => "retrying",
            Self::Cancelled => "cancelled",
            Self::Done => "done",
            Self::GivenUp => "given_up",
        }
    }
}

impl PartialEq<&str> for JobStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the queue records of a job when its first attempt is enqueued: what makes the job
/// known before anything is sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enqueued {
    /// The job's id.
    pub job_id: String,
    /// How many recipients it has.
    pub recipients: u64,
    /// Its campaign, if the API split a request into jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// The caller's correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Its project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Where its settlements are posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// When it was enqueued, in milliseconds since the Unix epoch.
    pub enqueued_ms: u64,
    /// When its first attempt is due, if not at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at_ms: Option<u64>,
    /// When it was cancelled, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_ms: Option<u64>,
}

impl Enqueued {
    /// What `job`'s first attempt records, due at `send_at_ms` (or at once).
    pub fn of(job: &Job, send_at_ms: Option<u64>) -> Self {
        Self {
            job_id: job.id.clone(),
            recipients: job.payload.len() as u64,
            campaign_id: job.campaign_id.clone(),
            correlation_id: job.correlation_id.clone(),
            project: job.project.clone(),
            webhook: job.webhook.clone(),
            enqueued_ms: job.first_enqueued_ms,
            send_at_ms,
            cancelled_ms: None,
        }
    }
}

/// Where a job stands: what was enqueued and what its settled attempts recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Summary {
    /// Where the job stands.
    pub status: JobStatus,
    /// The job's id.
    pub job_id: String,
    /// Its campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// The caller's correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Its project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Where its settlements are posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Recipients the job was enqueued with (0 for a job enqueued by a release before 0.2).
    pub recipients: u64,
    /// When its first attempt is due, if it was enqueued for later (ms since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at_ms: Option<u64>,
    /// When it was cancelled, if it was (ms since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_ms: Option<u64>,
    /// Attempts settled so far: the records of a job carry attempt numbers 1 to `attempts`.
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
    /// Recipients not sent because the job was cancelled.
    pub cancelled: u64,
    /// Recipients without a final fate yet: all of them before the first attempt settles,
    /// then those the latest settled attempt left for a retry.
    pub pending: u64,
    /// When the retry of the `pending` recipients is due (ms since the Unix epoch), once an
    /// attempt has left some for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at_ms: Option<u64>,
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
            Final::Cancelled => &mut self.cancelled,
        };
        *counter = counter.saturating_add(1);
    }

    /// The summary of a job from what its store holds: what was `enqueued` (unless an
    /// older release enqueued it), the counts of its settled attempts (`self`, with
    /// `attempts` and the latest `pending`), and whether a worker is `sending` its next
    /// attempt. `None` for a job the store does not know.
    pub fn finish(mut self, job_id: &str, enqueued: Option<Enqueued>, sending: bool, now_ms: u64) -> Option<Self> {
        if enqueued.is_none() && self.attempts == 0 {
            return None;
        }
        self.job_id = job_id.to_owned();
        if let Some(enqueued) = enqueued {
            self.recipients = enqueued.recipients;
            self.campaign_id = enqueued.campaign_id;
            self.correlation_id = enqueued.correlation_id;
            self.project = enqueued.project;
            self.webhook = enqueued.webhook;
            self.send_at_ms = enqueued.send_at_ms;
            self.cancelled_ms = enqueued.cancelled_ms;
        }
        if self.attempts == 0 {
            self.pending = self.recipients;
        }
        if self.pending == 0 {
            self.retry_at_ms = None;
        }
        self.status = match () {
            () if sending && self.pending > 0 => JobStatus::Sending,
            () if self.cancelled_ms.is_some() => JobStatus::Cancelled,
            () if self.attempts == 0 && self.send_at_ms.is_some_and(|at| at > now_ms) => JobStatus::Scheduled,
            () if self.attempts == 0 => JobStatus::Queued,
            () if self.pending > 0 => JobStatus::Retrying,
            () if self.given_up > 0 => JobStatus::GivenUp,
            () => JobStatus::Done,
        };
        Some(self)
    }
}
