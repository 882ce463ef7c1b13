//! One job, one step: claim the attempt, send it, settle what it learned (the policy applied
//! in `round`), push the retry; a backend that fails is tried again meanwhile.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rand::SeedableRng as _;
use rand::rngs::StdRng;

use gcm_hyper::gcm_proto::{ErrorCode, Fate, RetryCause};
use gcm_hyper::{Client, Clock, FcmClient, Outcome};

use crate::error::Error;
use crate::fate::{Scheduled, Settlement};
use crate::gate::{Gate, RateLimit};
use crate::job::{Job, Payload};
use crate::metrics::Metrics;
use crate::round::{Note, Notes, Policy, Round, Stopped};
use crate::store::{BoxFuture, Claim, Quota, Rate, ResultStore, Settled};

/// Where a worker pushes the retries it schedules: an apalis backend (see
/// [`Queue`](crate::Queue)), or a test's list.
pub trait Enqueue: Send + Sync + 'static {
    /// Pushes `job`, due at `run_at_ms` (milliseconds since the Unix epoch). Pushing the
    /// same [`Job::idempotency_key`] twice must enqueue it once.
    fn enqueue<'a>(&'a self, job: &'a Job, run_at_ms: u64) -> BoxFuture<'a, Result<(), Error>>;
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
    /// What jobs of no project are sent with.
    senders: Lane,
    /// What each named project's jobs are sent with.
    projects: Arc<BTreeMap<String, Lane>>,
    store: Arc<dyn ResultStore>,
    queue: Arc<dyn Enqueue>,
    policy: Policy,
    gate: Arc<Gate>,
    rate: Option<Arc<RateLimit>>,
    quota: Option<Arc<dyn Quota>>,
    metrics: Arc<Metrics>,
    owner: String,
    lease: Duration,
    clock: Clock,
    rng: Arc<Mutex<StdRng>>,
}

/// What one project's jobs are sent with, and its rate shared by every worker (its bucket
/// in the [`Quota`] store).
#[derive(Clone, Debug, Default)]
struct Lane {
    senders: Senders,
    fleet: Option<(String, Rate)>,
}

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
            .field("projects", &self.projects)
            .field("policy", &self.policy)
            .field("owner", &self.owner)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Processor {
    /// A processor that sends with `senders`, records into `store` and pushes retries
    /// into `queue`.
    pub fn new(senders: Senders, store: Arc<dyn ResultStore>, queue: Arc<dyn Enqueue>) -> Self {
        Self {
            senders: Lane { senders, fleet: None },
            projects: Arc::default(),
            store,
            queue,
            policy: Policy::default(),
            gate: Arc::new(Gate::default()),
            rate: None,
            quota: None,
            metrics: Arc::new(Metrics::default()),
            owner: format!("gcm-worker-{}", std::process::id()),
            lease: DEFAULT_LEASE,
            clock: Arc::new(SystemTime::now),
            rng: Arc::new(Mutex::new(StdRng::from_rng(&mut rand::rng()))),
        }
    }

    /// The same processor, scheduling retries from `clock`'s time (the system clock by
    /// default).
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
    /// [`Queue::work`](crate::Queue::work) sets the worker's name). Each run of a job claims
    /// under `owner/<a new ULID>`.
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

    /// The same processor, keeping the fleet's rates ([`fleet_rate`](Self::fleet_rate),
    /// [`project`](Self::project)) in `quota`: the queue's backend ([`Queue`](crate::Queue)
    /// is one), which every worker shares. Without it, fleet rates are not applied.
    pub fn quota(mut self, quota: Arc<dyn Quota>) -> Self {
        self.quota = Some(quota);
        self
    }

    /// The same processor, sending the jobs of no project at most `messages_per_minute`
    /// together with every other worker that takes from `bucket` (an FCM project's id) in
    /// the [`quota`](Self::quota) store. A job's messages are taken at once, in one round
    /// trip; a `QUOTA_EXCEEDED` from FCM holds the bucket empty until its `Retry-After`. 0 is
    /// no limit.
    pub fn fleet_rate(mut self, bucket: impl Into<String>, messages_per_minute: u32) -> Self {
        self.senders.fleet = Rate::per_minute(messages_per_minute).map(|rate| (bucket.into(), rate));
        self
    }

    /// The same processor, sending the jobs that name project `name` with `senders`, at
    /// most `messages_per_minute` together with every other worker (0: no limit), from the
    /// bucket of its FCM project id (or of `name`, for legacy senders alone).
    pub fn project(mut self, name: impl Into<String>, senders: Senders, messages_per_minute: u32) -> Self {
        let name = name.into();
        let bucket = senders.fcm.as_ref().map_or_else(|| name.clone(), |fcm| fcm.fcm().project_id().to_owned());
        let fleet = Rate::per_minute(messages_per_minute).map(|rate| (bucket, rate));
        Arc::make_mut(&mut self.projects).insert(name, Lane { senders, fleet });
        self
    }

    /// What `job` is sent with: its project's senders, or the worker's own.
    fn lane(&self, job: &Job) -> Result<&Lane, Error> {
        match &job.project {
            None => Ok(&self.senders),
            Some(name) => self.projects.get(name).ok_or_else(|| {
                Error::Config(format!("job {} names project {name:?}, which this worker is not configured for", job.id))
            }),
        }
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
        // Each run claims under its own name: two runs of one attempt in one worker (apalis
        // hands a restarted worker its own jobs back) fence each other off like any two.
        let run = format!("{}/{}", self.owner, ulid::Ulid::generate());
        match self.claim(job, &run).await {
            Start::Send => {}
            Start::Settled(settled) => {
                tracing::info!(job = %job.id, attempt = job.attempt, "attempt settled already; pushing its retry again");
                self.push(settled.retry.as_ref()).await;
                return Ok(settled.retry);
            }
            Start::Cancelled => {
                let settled = self.record_cancelled(job).await;
                self.push(settled.retry.as_ref()).await;
                return Ok(settled.retry);
            }
        }
        let settled = tokio::select! {
            biased;
            settled = self.send_and_record(job) => settled?,
            never = self.renew(job, &run) => match never {},
        };
        self.push(settled.retry.as_ref()).await;
        Ok(settled.retry)
    }

    /// Records every recipient of this attempt as cancelled, unless another run settled
    /// it first (its settlement stands); returns what is recorded.
    async fn record_cancelled(&self, job: &Job) -> Settled {
        let settlement = Settlement::cancelled(job);
        let settled = self.persist("record a cancellation", || self.store.settle(&settlement)).await;
        tracing::info!(job = %job.id, attempt = job.attempt, recipients = settlement.records.len(), "job cancelled; its recipients are recorded as cancelled");
        self.metrics.count(0, &settlement);
        settled
    }

    /// Claims the attempt, waiting while another worker's lease is live; says instead when
    /// it is settled, or cancelled.
    async fn claim(&self, job: &Job, run: &str) -> Start {
        loop {
            // A store never grants a settled attempt: the settlement is read only when held.
            let claim = || self.store.claim(&job.id, job.attempt, run, self.lease);
            match self.persist("claim an attempt", claim).await {
                Claim::Granted { taken_over_from: Some(previous) } => {
                    self.metrics.takeovers.inc();
                    tracing::warn!(job = %job.id, attempt = job.attempt, %previous, "took over an attempt whose lease ran out: its worker died or stalled, and may have sent some of it");
                    return Start::Send;
                }
                Claim::Granted { taken_over_from: None } => return Start::Send,
                Claim::Cancelled => return Start::Cancelled,
                Claim::Held { owner } => {
                    let settled = self.persist("read a settlement", || self.store.settled(&job.id, job.attempt)).await;
                    if let Some(settled) = settled {
                        return Start::Settled(Box::new(settled));
                    }
                    tracing::debug!(job = %job.id, attempt = job.attempt, %owner, "attempt held by another worker; waiting");
                    tokio::time::sleep(HELD_POLL).await;
                }
            }
        }
    }

    /// Renews the claim while the attempt is sent and recorded; never returns.
    async fn renew(&self, job: &Job, run: &str) -> std::convert::Infallible {
        loop {
            tokio::time::sleep(self.lease / 3).await;
            match self.store.claim(&job.id, job.attempt, run, self.lease).await {
                Ok(Claim::Granted { .. }) => {}
                Ok(Claim::Cancelled) => {
                    tracing::warn!(job = %job.id, attempt = job.attempt, "lost the lease of an attempt being sent (this worker stalled), and the job is cancelled: the first settlement recorded stands");
                }
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
        let lane = self.lane(job)?;
        if let Some(rate) = &self.rate {
            rate.wait_for(job.payload.len()).await;
        }
        let fleet = self.quota.as_ref().zip(lane.fleet.as_ref());
        if let Some((quota, (bucket, rate))) = fleet {
            let messages = job.payload.len() as u64;
            let wait = self.persist("take from the fleet's quota", || quota.take(bucket, rate, messages)).await;
            tracing::debug!(%bucket, messages, wait_ms = wait.as_millis() as u64, "fleet quota taken");
            tokio::time::sleep(wait).await;
        }
        let round = loop {
            self.gate.wait().await;
            let started = std::time::Instant::now();
            let sent = self.send(job, &lane.senders).await?;
            self.metrics.send_seconds.observe(started.elapsed().as_secs_f64());
            match sent {
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
        if let (Some((quota, (bucket, _))), Some(pause)) = (fleet, round.quota_exceeded()) {
            tracing::warn!(%bucket, pause_ms = pause.as_millis() as u64, "FCM says the project's quota is spent: the fleet's bucket is held empty");
            if let Err(error) = quota.pause(bucket, pause).await {
                tracing::warn!(%error, cause = %error.root_cause(), "cannot hold the fleet's bucket empty");
            }
        }
        let settlement = round.settle(job, &self.policy, (self.clock)(), &mut *self.rng());
        let unrecorded = Unrecorded { settlement: &settlement, metrics: &self.metrics };
        let started = std::time::Instant::now();
        let settled = self.persist("record a settlement", || self.store.settle(&settlement)).await;
        self.metrics.settle_seconds.observe(started.elapsed().as_secs_f64());
        std::mem::forget(unrecorded);
        self.metrics.count(job.payload.len(), &settlement);
        tracing::info!(records = settlement.records.len(), pending = settlement.pending(), "attempt settled");
        Ok(settled)
    }

    /// Runs `operation` until the backend answers: a failing backend is tried again after
    /// a wait that doubles up to [`LONGEST_BACKEND_WAIT`].
    pub(crate) async fn persist<'a, T>(
        &self,
        what: &str,
        operation: impl Fn() -> BoxFuture<'a, Result<T, Error>>,
    ) -> T {
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

    async fn send(&self, job: &Job, senders: &Senders) -> Result<Result<Round, Stopped>, Error> {
        let missing =
            |kind: &str| Error::Config(format!("job {} is a {kind} job, and this worker has no {kind} client", job.id));
        let fcm = || senders.fcm.as_ref().ok_or_else(|| missing("v1"));
        Ok(match &job.payload {
            Payload::V1Multicast { multicast } => {
                Round::of_v1(fcm()?.send_multicast(multicast).await, Round::Multicast)
            }
            Payload::V1Messages { messages } => Round::of_v1(fcm()?.send_each(messages).await, Round::Messages),
            Payload::V1Subscription { subscription } => {
                Round::of_v1(fcm()?.manage_topic(subscription).await, Round::Subscription)
            }
            Payload::Legacy { message } => {
                let client = senders.legacy.as_ref().ok_or_else(|| missing("legacy"))?;
                let backoff = client.gcm().backoff();
                match client.send(message).await {
                    Ok(outcome) => Ok(Round::Legacy(Box::new(outcome), Notes::new())),
                    Err(error) if error.is_systemic() => Err(Stopped(error)),
                    Err(error) if error.is_retryable() => {
                        let unanswered = Fate::Retry(RetryCause::Unanswered);
                        let notes = Note::for_all(message.tokens().len(), &error);
                        Ok(Round::Legacy(Box::new(Outcome::for_all(message, unanswered, backoff)), notes))
                    }
                    Err(error) => {
                        let refused = Fate::Failed(ErrorCode::Other(error.to_string()));
                        Ok(Round::Legacy(Box::new(Outcome::for_all(message, refused, backoff)), Notes::new()))
                    }
                }
            }
        })
    }
}

/// How a run of an attempt starts.
enum Start {
    /// The lease is this run's: send.
    Send,
    /// Another run settled the attempt: push its retry.
    Settled(Box<Settled>),
    /// The job is cancelled: record its recipients so.
    Cancelled,
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
