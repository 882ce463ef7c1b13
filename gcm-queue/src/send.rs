//! One job, one step: send it, decide every recipient's fate, settle, schedule the retry.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rand::SeedableRng as _;
use rand::rngs::StdRng;

use gcm_hyper::gcm_proto::{Backoff, Fate, RetryCause, Retryable, v1};
use gcm_hyper::{Client, FcmClient, MulticastReport, Outcome, Problem};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fate::{Final, Record, Scheduled, Settlement};
use crate::gate::{Gate, RateLimit};
use crate::job::{Job, Payload, millis};
use crate::metrics::Metrics;
use crate::store::{BoxFuture, Claim, ResultStore, Settled};

/// Where a worker pushes the retries it schedules: an apalis backend (see
/// [`Queue`](crate::Queue)), or a test's list.
pub trait Enqueue: Send + Sync + 'static {
    /// Pushes `job`, due at `run_at_ms` (milliseconds since the Unix epoch). Pushing the
    /// same [`Job::idempotency_key`] twice must enqueue it once.
    fn enqueue<'a>(&'a self, job: &'a Job, run_at_ms: u64) -> BoxFuture<'a, Result<(), Error>>;
}

/// What to do with a message whose request failed after it may have reached the server
/// (a timeout, a connection reset mid-request): the server may have delivered it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unsure {
    /// Send it again with the others (at-least-once: a device may get it twice).
    #[default]
    Resend,
    /// Record it as [`Final::Parked`] for review, never resend it (at-most-once).
    Park,
}

/// How a worker retries.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Attempts per job, the first included; after the last, pending recipients are
    /// recorded as [`Final::GivenUp`].
    pub max_attempts: u32,
    /// What to do with messages that may have reached the server.
    pub unsure: Unsure,
}

impl Default for Policy {
    fn default() -> Self {
        Self { max_attempts: 10, unsure: Unsure::Resend }
    }
}

/// The clients a worker sends with, one per protocol, shared by all its jobs.
#[derive(Clone, Debug, Default)]
pub struct Senders {
    /// For v1 jobs.
    pub fcm: Option<FcmClient>,
    /// For legacy jobs.
    pub legacy: Option<Client>,
}

/// Processes jobs: the per-job step every worker runs, whatever the backend.
#[derive(Clone)]
pub struct Processor {
    senders: Senders,
    store: Arc<dyn ResultStore>,
    queue: Arc<dyn Enqueue>,
    policy: Policy,
    gate: Arc<Gate>,
    rate: Option<Arc<RateLimit>>,
    metrics: Arc<Metrics>,
    owner: String,
    lease: Duration,
    clock: Clock,
    rng: Arc<Mutex<StdRng>>,
}

/// Where a processor reads the time that retries are scheduled from: the system clock by
/// default, or a test's.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// How long a claim on an attempt lasts unless renewed (a third of it between renewals):
/// long enough to ride out a backend outage of 20 s, so that a live worker keeps its
/// attempts, short enough that a dead worker's are sent within a minute.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How often a run whose attempt another worker holds asks again.
const HELD_POLL: Duration = Duration::from_millis(200);

/// The longest wait between two tries of a backend that fails.
const LONGEST_BACKEND_WAIT: Duration = Duration::from_secs(5);

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("senders", &self.senders)
            .field("policy", &self.policy)
            .field("owner", &self.owner)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// A recipient's state after one attempt, before the policy decides what is final.
enum Slot {
    Final(Final),
    Pending { cause: String, unsure: bool },
}

/// What one send decided: a slot per recipient, and the delay before a retry.
struct Round {
    slots: Vec<Slot>,
    delay: Duration,
}

/// A failure that concerns every message: sending pauses instead of retrying each job.
struct Stopped(gcm_hyper::Error);

impl Processor {
    /// A processor that sends with `senders`, records into `store` and pushes retries
    /// into `queue`.
    pub fn new(senders: Senders, store: Arc<dyn ResultStore>, queue: Arc<dyn Enqueue>) -> Self {
        Self {
            senders,
            store,
            queue,
            policy: Policy::default(),
            gate: Arc::new(Gate::default()),
            rate: None,
            metrics: Arc::new(Metrics::default()),
            owner: format!("gcm-worker-{}", std::process::id()),
            lease: DEFAULT_LEASE,
            clock: Arc::new(SystemTime::now),
            rng: Arc::new(Mutex::new(StdRng::from_rng(&mut rand::rng()))),
        }
    }

    /// The same processor, scheduling retries from `clock`'s time.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same processor, drawing the backoff's jitter from a generator seeded with
    /// `seed`: the same seed and sends give the same delays.
    pub fn seed(mut self, seed: u64) -> Self {
        self.rng = Arc::new(Mutex::new(StdRng::seed_from_u64(seed)));
        self
    }

    /// The jitter's generator (shared by the processor's clones).
    fn rng(&self) -> std::sync::MutexGuard<'_, StdRng> {
        self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The same processor, claiming attempts as `owner` (unique among running workers;
    /// [`Queue::work`](crate::Queue::work) sets the worker's name).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    /// The name this processor claims attempts under.
    pub fn owner_name(&self) -> &str {
        &self.owner
    }

    /// The same processor, claiming attempts for `lease` (default [`DEFAULT_LEASE`]).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// The same processor with this retry policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The same processor, sending at most `messages_per_minute` (FCM's default project
    /// quota is 600 000 a minute). The limit is per process: give each of `n` workers
    /// a share of the project's quota.
    pub fn rate_limit(mut self, messages_per_minute: u32) -> Self {
        self.rate = RateLimit::per_minute(messages_per_minute).map(Arc::new);
        self
    }

    /// The same processor, pausing with `gate` (shared with other processors, or with
    /// a test's clock).
    pub fn gate(mut self, gate: Arc<Gate>) -> Self {
        self.gate = gate;
        self
    }

    /// The counters this processor updates.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The same processor, counting into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs one job: unless this attempt is settled already (a run that died after its
    /// settlement), claims it, sends it, records every final fate and the retry at once,
    /// then pushes the retry. Returns the settlement's retry, if any.
    ///
    /// While another worker's claim on the attempt is live, waits for it to settle or run
    /// out. A backend that fails is tried again (with a WARN and the `backend_down` gauge)
    /// until it answers: what FCM answered is kept in memory, never sent again. An `Err`
    /// (a job this worker cannot send) leaves the attempt unsettled.
    pub async fn process(&self, job: &Job) -> Result<Option<Scheduled>, Error> {
        if let Some(settled) = self.claim(job).await {
            tracing::info!(job = %job.id, attempt = job.attempt, "attempt settled already; pushing its retry again");
            self.push(settled.retry.as_ref()).await;
            return Ok(settled.retry);
        }
        let settled = tokio::select! {
            biased;
            settled = self.send_and_record(job) => settled?,
            never = self.renew(job) => match never {},
        };
        self.push(settled.retry.as_ref()).await;
        Ok(settled.retry)
    }

    /// Claims the attempt, waiting while another worker's lease is live; returns its
    /// settlement instead when it is settled.
    async fn claim(&self, job: &Job) -> Option<Settled> {
        loop {
            let settled = self.persist("read a settlement", || self.store.settled(&job.id, job.attempt)).await;
            if settled.is_some() {
                return settled;
            }
            let claim = || self.store.claim(&job.id, job.attempt, &self.owner, self.lease);
            match self.persist("claim an attempt", claim).await {
                Claim::Granted { taken_over_from: Some(previous) } => {
                    self.metrics.takeovers.inc();
                    tracing::warn!(job = %job.id, attempt = job.attempt, %previous, "took over an attempt whose lease ran out: its worker died or stalled, and may have sent some of it");
                    return None;
                }
                Claim::Granted { taken_over_from: None } => return None,
                Claim::Held { owner } => {
                    tracing::debug!(job = %job.id, attempt = job.attempt, %owner, "attempt held by another worker; waiting");
                    tokio::time::sleep(HELD_POLL).await;
                }
            }
        }
    }

    /// Renews the claim while the attempt is sent and recorded; never returns.
    async fn renew(&self, job: &Job) -> std::convert::Infallible {
        loop {
            tokio::time::sleep(self.lease / 3).await;
            match self.store.claim(&job.id, job.attempt, &self.owner, self.lease).await {
                Ok(Claim::Granted { .. }) => {}
                Ok(Claim::Held { owner }) => {
                    tracing::warn!(job = %job.id, attempt = job.attempt, %owner, "lost the lease of an attempt being sent (this worker stalled): the first settlement recorded stands");
                }
                Err(error) => {
                    tracing::warn!(job = %job.id, attempt = job.attempt, %error, cause = %error.root_cause(), "cannot renew a lease");
                }
            }
        }
    }

    async fn send_and_record(&self, job: &Job) -> Result<Settled, Error> {
        if let Some(rate) = &self.rate {
            rate.wait_for(job.payload.len()).await;
        }
        let round = loop {
            self.gate.wait().await;
            match self.send(job).await? {
                Ok(round) => {
                    self.gate.clear();
                    break round;
                }
                Err(Stopped(error)) => {
                    self.metrics.paused.inc();
                    self.gate.pause(&error);
                }
            }
        };
        let settlement = self.settle(job, round);
        let unrecorded = Unrecorded { settlement: &settlement, metrics: &self.metrics };
        let settled = self.persist("record a settlement", || self.store.settle(&settlement)).await;
        std::mem::forget(unrecorded);
        self.metrics.count(job.payload.len(), &settlement);
        Ok(settled)
    }

    /// Runs `operation` until the backend answers: a failing backend is tried again after
    /// a wait that doubles up to [`LONGEST_BACKEND_WAIT`].
    async fn persist<'a, T>(&self, what: &str, operation: impl Fn() -> BoxFuture<'a, Result<T, Error>>) -> T {
        let mut wait = Duration::from_millis(100);
        loop {
            match operation().await {
                Ok(value) => {
                    self.metrics.backend_down.set(0);
                    return value;
                }
                Err(error) => {
                    self.metrics.backend_down.set(1);
                    tracing::warn!(%error, cause = %error.root_cause(), retry_in_ms = wait.as_millis() as u64, "cannot {what}; trying again");
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2).min(LONGEST_BACKEND_WAIT);
                }
            }
        }
    }

    /// Pushes the retry a settlement scheduled. Dropped before it is pushed, the retry is
    /// still in the settlement: the job's next run finds it and pushes it.
    async fn push(&self, retry: Option<&Scheduled>) {
        if let Some(retry) = retry {
            self.persist("push a retry", || self.queue.enqueue(&retry.job, retry.run_at_ms)).await;
        }
    }

    async fn send(&self, job: &Job) -> Result<Result<Round, Stopped>, Error> {
        // The generator's lock is taken after the awaits, never across one.
        let missing =
            |kind: &str| Error::Config(format!("job {} is a {kind} job, and this worker has no {kind} client", job.id));
        Ok(match &job.payload {
            Payload::V1Multicast { multicast } => {
                let fcm = self.senders.fcm.as_ref().ok_or_else(|| missing("v1"))?;
                match fcm.send_multicast(multicast).await {
                    Ok(report) => Ok(multicast_round(&report, job.attempt, &mut *self.rng())),
                    Err(stopped) => Err(Stopped(stopped.into_parts().0)),
                }
            }
            Payload::Legacy { message } => {
                let client = self.senders.legacy.as_ref().ok_or_else(|| missing("legacy"))?;
                match client.send(message).await {
                    Ok(outcome) => Ok(outcome_round(&outcome, job.attempt, &mut *self.rng(), |_| None)),
                    Err(error) if error.is_systemic() => Err(Stopped(error)),
                    Err(error) => {
                        let backoff = client.gcm().backoff();
                        let delay = backoff.delay(job.attempt, &mut *self.rng());
                        Ok(Round { slots: message.tokens().iter().map(|_| unanswered(&error)).collect(), delay })
                    }
                }
            }
            Payload::V1Messages { messages } => {
                let fcm = self.senders.fcm.as_ref().ok_or_else(|| missing("v1"))?;
                let replies = futures_util::future::join_all(messages.iter().map(|message| fcm.send(message))).await;
                if !replies.is_empty()
                    && replies.iter().all(|reply| reply.as_ref().is_err_and(gcm_hyper::Error::is_systemic))
                {
                    let Some(Err(error)) = replies.into_iter().next() else { unreachable!("checked above") };
                    return Ok(Err(Stopped(error)));
                }
                Ok(messages_round(replies, fcm.fcm().backoff(), job.attempt, &mut *self.rng()))
            }
        })
    }

    /// Applies the policy to a round: unsure messages parked (if so), pending ones given
    /// up after the last attempt, the rest scheduled as the next attempt.
    fn settle(&self, job: &Job, round: Round) -> Settlement {
        let recipients = recipients(&job.payload);
        let last = job.attempt.saturating_add(1) >= self.policy.max_attempts;
        let mut records = Vec::with_capacity(round.slots.len());
        let mut pending = Vec::new();
        for (position, (slot, recipient)) in round.slots.into_iter().zip(recipients).enumerate() {
            let fate = match slot {
                Slot::Final(fate) => fate,
                Slot::Pending { cause, unsure: true } if self.policy.unsure == Unsure::Park => Final::Parked { cause },
                Slot::Pending { cause, .. } if last => Final::GivenUp { cause },
                Slot::Pending { .. } => {
                    pending.push(position);
                    continue;
                }
            };
            records.push(Record {
                job_id: job.id.clone(),
                attempt: job.attempt,
                recipient,
                correlation_id: job.correlation_id.clone(),
                fate,
            });
        }
        let retry = (!pending.is_empty()).then(|| Scheduled {
            job: job.retry(subset(&job.payload, &pending)),
            run_at_ms: millis((self.clock)()).saturating_add(ceil_millis(round.delay)),
        });
        Settlement { job_id: job.id.clone(), attempt: job.attempt, records, retry }
    }
}

/// A settlement being recorded: dropped before it is (the worker stopped after its grace
/// period), it says what was lost.
struct Unrecorded<'a> {
    settlement: &'a Settlement,
    metrics: &'a Metrics,
}

impl Drop for Unrecorded<'_> {
    fn drop(&mut self) {
        self.metrics.unrecorded.inc();
        let settlement = self.settlement;
        tracing::error!(job = %settlement.job_id, attempt = settlement.attempt, records = settlement.records.len(), pending = settlement.pending(), "settlement not recorded before the worker stopped: the queue will send this attempt again");
    }
}

fn unanswered(error: &gcm_hyper::Error) -> Slot {
    if error.is_retryable() {
        Slot::Pending { cause: error.to_string(), unsure: error.may_have_reached_server() }
    } else {
        Slot::Final(Final::Failed { code: error.to_string(), detail: None })
    }
}

fn ceil_millis(delay: Duration) -> u64 {
    let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    millis.saturating_add(u64::from(!delay.subsec_nanos().is_multiple_of(1_000_000)))
}

fn slot(fate: &Fate, problem: impl FnOnce() -> Option<String>) -> Slot {
    match fate {
        Fate::Delivered { message_id, canonical } => {
            Slot::Final(Final::Delivered { message_id: message_id.clone(), canonical: canonical.clone() })
        }
        Fate::NotRegistered => Slot::Final(Final::NotRegistered),
        Fate::Failed(code) => Slot::Final(Final::Failed { code: code.to_string(), detail: problem() }),
        Fate::Retry(cause) => {
            let cause = match cause {
                RetryCause::Error(code) => code.to_string(),
                RetryCause::Status(status) => format!("HTTP {status}"),
                RetryCause::Unanswered => problem().unwrap_or_else(|| "unanswered".to_owned()),
            };
            Slot::Pending { cause, unsure: false }
        }
    }
}

fn outcome_round<P: Retryable>(
    outcome: &Outcome<P>,
    attempt: u32,
    rng: &mut impl rand::Rng,
    problem: impl Fn(usize) -> Option<String>,
) -> Round {
    let slots = outcome.fates().enumerate().map(|(position, (_, fate))| slot(fate, || problem(position))).collect();
    Round { slots, delay: outcome.delay(attempt, rng) }
}

fn multicast_round(report: &MulticastReport, attempt: u32, rng: &mut impl rand::Rng) -> Round {
    let mut round =
        outcome_round(&report.outcome, attempt, rng, |position| report.problems.get(&position).map(Problem::to_string));
    for (position, slot) in round.slots.iter_mut().enumerate() {
        if let Slot::Pending { unsure, .. } = slot {
            *unsure = report.problems.get(&position).is_some_and(|problem| problem.may_have_reached_server());
        }
    }
    round
}

fn messages_round(
    replies: Vec<Result<v1::Reply, gcm_hyper::Error>>,
    backoff: Backoff,
    attempt: u32,
    rng: &mut impl rand::Rng,
) -> Round {
    let window = backoff.delay(attempt, rng);
    let mut delay = window;
    let mut slots = Vec::with_capacity(replies.len());
    for reply in replies {
        slots.push(match reply {
            Ok(reply) => {
                // As Outcome::delay: Retry-After is a lower bound, else the cause's floor plus the window.
                if let Fate::Retry(cause) = &reply.fate {
                    let wait = reply
                        .retry_after
                        .map_or(backoff.floor(cause).saturating_add(window), |after| after.max(window));
                    delay = delay.max(wait);
                }
                let detail = reply.detail;
                slot(&reply.fate, || detail)
            }
            Err(error) => unanswered(&error),
        });
    }
    Round { slots, delay }
}

/// Each recipient of a payload, in order, as its results name it.
fn recipients(payload: &Payload) -> Vec<String> {
    match payload {
        Payload::V1Multicast { multicast } => multicast.tokens().to_vec(),
        Payload::Legacy { message } => message.tokens().to_vec(),
        Payload::V1Messages { messages } => messages.iter().map(|message| message.target.recipient()).collect(),
    }
}

/// The same payload to the recipients at `positions`.
fn subset(payload: &Payload, positions: &[usize]) -> Payload {
    let pick = |all: &[String]| positions.iter().filter_map(|&position| all.get(position).cloned()).collect::<Vec<_>>();
    match payload {
        Payload::V1Multicast { multicast } => {
            Payload::V1Multicast { multicast: multicast.with_recipients(pick(multicast.tokens())) }
        }
        Payload::Legacy { message } => Payload::Legacy { message: message.with_recipients(pick(message.tokens())) },
        Payload::V1Messages { messages } => Payload::V1Messages {
            messages: positions.iter().filter_map(|&position| messages.get(position).cloned()).collect(),
        },
    }
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
