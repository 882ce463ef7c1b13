//! Where the fates go: a result store records each attempt's settlement once, and
//! reads them back for the application that keeps the tokens.
//!
//! The built-in stores live in the queue's own backend ([`SqlResults`] beside the SQLite or
//! PostgreSQL jobs, [`RedisResults`] in Redis); [`MemoryResults`] keeps them in the
//! process. Implement [`ResultStore`] to write them to your own store instead.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::error::Error;
use crate::fate::{Enqueued, Record, Scheduled, Settlement, Summary};
use crate::job::millis;

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "redis"))]
mod block;
mod quota;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;

pub use self::quota::{Quota, Rate};
#[cfg(feature = "redis")]
pub use self::redis::RedisResults;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use self::sql::SqlResults;

/// A boxed `Send` future, as the store traits return: futures-util's, re-exported (gcm-hyper's
/// `BoxFuture` is the same type).
pub use futures_util::future::BoxFuture;

/// What a store holds of a settled attempt: the retry it scheduled, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Settled {
    /// The next attempt the settlement scheduled.
    pub retry: Option<Scheduled>,
}

/// The answer to a worker that claims an attempt before sending it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// The lease is this worker's: new, renewed, or taken over from `taken_over_from`,
    /// whose lease ran out before it settled (a dead or stalled worker).
    Granted {
        /// The worker whose expired lease this claim replaced.
        taken_over_from: Option<String>,
    },
    /// Another worker's lease is live, or the attempt is settled: do not send.
    Held {
        /// The lease's owner (empty for an attempt settled before leases were recorded).
        owner: String,
    },
    /// The job is cancelled and nobody holds a live lease on this attempt: record its
    /// recipients as cancelled instead of sending them.
    Cancelled,
}

/// Records settlements, each once, and fences the sends of each attempt.
///
/// A worker [`claim`](ResultStore::claim)s an attempt before it sends (only the owner of a
/// live lease sends it, and a settled attempt is never granted); when it is held, the worker
/// reads whether it is [`settled`](ResultStore::settled) (then it is not sent again); then
/// it [`settle`](ResultStore::settle)s what the send decided.
/// `settle` must be atomic and insert-if-absent per job and attempt: when two runs of one
/// attempt race, the first settlement wins and both push its retry.
pub trait ResultStore: Send + Sync + 'static {
    /// The settlement of this attempt, if one is recorded.
    fn settled<'a>(&'a self, job_id: &'a str, attempt: u32) -> BoxFuture<'a, Result<Option<Settled>, Error>>;

    /// Claims this attempt for `owner` for `lease`, atomically: granted when nobody holds
    /// it, when `owner` does (a renewal) or when the holder's lease has run out (a takeover,
    /// kept in the record); held when another owner's lease is live or the attempt is
    /// settled. Leases are timed by the store's clock, so that workers' clocks may differ.
    fn claim<'a>(
        &'a self,
        job_id: &'a str,
        attempt: u32,
        owner: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Claim, Error>>;

    /// Records `settlement` (its records and its retry) unless the same job and attempt
    /// is already settled; returns what is recorded.
    fn settle<'a>(&'a self, settlement: &'a Settlement) -> BoxFuture<'a, Result<Settled, Error>>;

    /// Records that a job's first attempt was enqueued, once per job: what makes
    /// [`ResultReader::summary`] know it before anything is sent. A store that keeps no such
    /// record knows a job from its first settlement only.
    fn register<'a>(&'a self, enqueued: &'a Enqueued) -> BoxFuture<'a, Result<(), Error>> {
        let _ = enqueued;
        Box::pin(async { Ok(()) })
    }

    /// Marks a registered job cancelled (once: a second call keeps the first time); from
    /// then on, [`claim`](ResultStore::claim) answers [`Claim::Cancelled`] for an attempt
    /// nobody holds. Returns false for a job the store does not know.
    fn cancel<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let _ = job_id;
        Box::pin(async { Err(Error::Config("this result store does not record cancellations".to_owned())) })
    }

    /// Keeps `remembered` under `key` for [`IDEMPOTENCY_KEPT`] unless something is kept
    /// under it already; returns what is kept (an `Idempotency-Key`'s request digest and
    /// first answer).
    fn remember<'a>(&'a self, key: &'a str, remembered: &'a str) -> BoxFuture<'a, Result<String, Error>> {
        let _ = (key, remembered);
        Box::pin(async { Err(Error::Config("this result store does not keep idempotency keys".to_owned())) })
    }
}

/// How long an `Idempotency-Key` and its first answer are kept.
pub const IDEMPOTENCY_KEPT: Duration = Duration::from_secs(24 * 3600);

/// Reads the recorded fates back: what an application needs to update its tokens.
pub trait ResultReader: Send + Sync + 'static {
    /// The records after `cursor` (0 for the first), at most `limit`, each with its own
    /// cursor: pass the last one to read on.
    fn since<'a>(&'a self, cursor: u64, limit: usize) -> BoxFuture<'a, Result<Vec<(u64, Record)>, Error>>;

    /// Where job `job_id` stands; `None` when the store does not know it.
    fn summary<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<Option<Summary>, Error>>;
}

/// Settlements kept in the process: for tests, and an example of the traits.
#[derive(Debug, Default)]
pub struct MemoryResults {
    inner: Mutex<Memory>,
}

#[derive(Debug, Default)]
struct Memory {
    settled: BTreeMap<(String, u32), Settled>,
    records: Vec<Record>,
    claims: BTreeMap<(String, u32), Lease>,
    jobs: BTreeMap<String, Enqueued>,
    remembered: BTreeMap<String, String>,
}

/// A claim in memory, timed by tokio's clock (a test's paused clock moves it).
#[derive(Debug)]
struct Lease {
    owner: String,
    until: tokio::time::Instant,
}

impl MemoryResults {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        // A panic elsewhere cannot leave a half-written settlement: each one is one push.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ResultStore for MemoryResults {
    fn settled<'a>(&'a self, job_id: &'a str, attempt: u32) -> BoxFuture<'a, Result<Option<Settled>, Error>> {
        let found = self.lock().settled.get(&(job_id.to_owned(), attempt)).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn claim<'a>(
        &'a self,
        job_id: &'a str,
        attempt: u32,
        owner: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Claim, Error>> {
        let mut memory = self.lock();
        let key = (job_id.to_owned(), attempt);
        let now = tokio::time::Instant::now();
        let settled = memory.settled.contains_key(&key);
        let cancelled = memory.jobs.get(job_id).is_some_and(|job| job.cancelled_ms.is_some());
        let claim = match memory.claims.get(&key) {
            Some(held) if settled => Claim::Held { owner: held.owner.clone() },
            None if settled => Claim::Held { owner: String::new() },
            Some(held) if held.owner != owner && held.until > now => Claim::Held { owner: held.owner.clone() },
            Some(held) if cancelled && held.owner != owner => Claim::Cancelled,
            None if cancelled => Claim::Cancelled,
            held => {
                let taken_over_from = held.filter(|held| held.owner != owner).map(|held| held.owner.clone());
                memory.claims.insert(key, Lease { owner: owner.to_owned(), until: now + lease });
                Claim::Granted { taken_over_from }
            }
        };
        Box::pin(async move { Ok(claim) })
    }

    fn settle<'a>(&'a self, settlement: &'a Settlement) -> BoxFuture<'a, Result<Settled, Error>> {
        let mut memory = self.lock();
        let key = (settlement.job_id.clone(), settlement.attempt);
        let stored = match memory.settled.get(&key) {
            Some(existing) => existing.clone(),
            None => {
                let settled = Settled { retry: settlement.retry.clone() };
                memory.settled.insert(key, settled.clone());
                memory.records.extend(settlement.records.iter().cloned());
                settled
            }
        };
        Box::pin(async move { Ok(stored) })
    }

    fn register<'a>(&'a self, enqueued: &'a Enqueued) -> BoxFuture<'a, Result<(), Error>> {
        self.lock().jobs.entry(enqueued.job_id.clone()).or_insert_with(|| enqueued.clone());
        Box::pin(async { Ok(()) })
    }

    fn remember<'a>(&'a self, key: &'a str, remembered: &'a str) -> BoxFuture<'a, Result<String, Error>> {
        let kept = self.lock().remembered.entry(key.to_owned()).or_insert_with(|| remembered.to_owned()).clone();
        Box::pin(async move { Ok(kept) })
    }

    fn cancel<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let known = match self.lock().jobs.get_mut(job_id) {
            Some(job) => {
                job.cancelled_ms.get_or_insert_with(|| millis(std::time::SystemTime::now()));
                true
            }
            None => false,
        };
        Box::pin(async move { Ok(known) })
    }
}

impl ResultReader for MemoryResults {
    fn since<'a>(&'a self, cursor: u64, limit: usize) -> BoxFuture<'a, Result<Vec<(u64, Record)>, Error>> {
        let memory = self.lock();
        let start = usize::try_from(cursor).unwrap_or(usize::MAX);
        let page = (start..).zip(memory.records.iter().skip(start).take(limit));
        let page: Vec<_> = page.map(|(index, record)| (index as u64 + 1, record.clone())).collect();
        Box::pin(async move { Ok(page) })
    }

    fn summary<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<Option<Summary>, Error>> {
        let memory = self.lock();
        let mut summary = Summary::default();
        for record in memory.records.iter().filter(|record| record.job_id == job_id) {
            summary.count(&record.fate);
        }
        let attempts = memory.settled.range((job_id.to_owned(), 0)..=(job_id.to_owned(), u32::MAX));
        for (_, settled) in attempts {
            summary.attempts += 1;
            summary.pending = settled.retry.as_ref().map_or(0, |retry| retry.job.payload.len() as u64);
        }
        let next = (job_id.to_owned(), u32::try_from(summary.attempts).unwrap_or(u32::MAX));
        let now = tokio::time::Instant::now();
        let sending = memory.claims.get(&next).is_some_and(|lease| lease.until > now);
        let enqueued = memory.jobs.get(job_id).cloned();
        let summary = summary.finish(job_id, enqueued, sending, millis(std::time::SystemTime::now()));
        Box::pin(async move { Ok(summary) })
    }
}
