//! What the queue's fleet is doing: the workers apalis knows, with their heartbeats and the
//! jobs each runs, and the recipients sent per minute.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use apalis::prelude::ListWorkers as _;
use serde::Serialize;

use crate::error::Error;

use super::{Backend, Queue, queue_error};

/// A worker of the queue as its backend knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Worker {
    /// Its name (`gcm-worker run --name`, with `~N` after its N-th restart on a backend
    /// failure).
    pub name: String,
    /// When it registered, in seconds since the Unix epoch (0 when the backend does not say).
    pub started_s: u64,
    /// Its last heartbeat, in seconds since the Unix epoch.
    pub heartbeat_s: u64,
    /// The jobs it is running now.
    pub running: u64,
}

/// Seconds from a backend's time: apalis keeps seconds, but a value past the year 5138 can
/// only be milliseconds.
fn seconds(time: u64) -> u64 {
    if time > 100_000_000_000 { time / 1000 } else { time }
}

/// Each worker's count among `counts` (by `lock_by`), 0 for a worker running nothing.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn per_worker(workers: &[Worker], counts: &[(Option<String>, i64)]) -> Vec<u64> {
    let of = |name: &str| counts.iter().find(|(owner, _)| owner.as_deref() == Some(name)).map(|(_, count)| *count);
    workers.iter().map(|worker| of(&worker.name).and_then(|count| u64::try_from(count).ok()).unwrap_or(0)).collect()
}

/// apalis-redis's workers, read from its set of heartbeats: its own `list_workers` (1.0.0)
/// fails on every worker, reading their metadata under a key other than the one it writes
/// (the missing fields come back as `false` where it expects text).
#[cfg(feature = "redis")]
async fn redis_workers(
    storage: &apalis_redis::RedisStorage<crate::job::Ticket>,
) -> Result<Vec<apalis::prelude::RunningWorker>, Error> {
    use redis::AsyncCommands as _;
    let config = storage.get_config();
    let mut connection = storage.clone().get_connection().clone();
    let beats: Vec<(String, f64)> =
        connection.zrevrange_withscores(config.workers_set(), 0, 99).await.map_err(queue_error)?;
    Ok(beats
        .into_iter()
        .map(|(id, beat)| apalis::prelude::RunningWorker {
            id,
            queue: config.workers_set(),
            backend: "redis".to_owned(),
            started_at: 0,
            last_heartbeat: beat.max(0.0) as u64,
            layers: String::new(),
        })
        .collect())
}

impl Queue {
    /// The workers registered on this queue (apalis's own list: at most 100, the latest
    /// heartbeat first), with the jobs each runs.
    pub async fn workers(&self) -> Result<Vec<Worker>, Error> {
        let listed = match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { storage, .. } => storage.list_workers().await.map_err(queue_error)?,
            #[cfg(feature = "postgres")]
            Backend::Postgres { storage, .. } => storage.list_workers().await.map_err(queue_error)?,
            #[cfg(feature = "redis")]
            Backend::Redis { storage, .. } => redis_workers(storage).await?,
        };
        let mut workers: Vec<Worker> = listed
            .into_iter()
            .map(|worker| Worker {
                name: worker.id,
                started_s: seconds(worker.started_at),
                heartbeat_s: seconds(worker.last_heartbeat),
                running: 0,
            })
            .collect();
        let running = self.running_by_worker(&workers).await?;
        for (worker, running) in workers.iter_mut().zip(running) {
            worker.running = running;
        }
        Ok(workers)
    }

    /// How many jobs each of `workers` runs: apalis marks them with the worker's name (SQL)
    /// or keeps them in the worker's in-flight set (Redis).
    async fn running_by_worker(&self, workers: &[Worker]) -> Result<Vec<u64>, Error> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { storage, .. } => {
                let counts = sqlx::query_as(
                    "SELECT lock_by, COUNT(*) FROM Jobs WHERE job_type = $1 AND status = 'Running' GROUP BY lock_by",
                )
                .bind(&self.name)
                .fetch_all(storage.pool())
                .await
                .map_err(queue_error)?;
                Ok(per_worker(workers, &counts))
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres { storage, .. } => {
                let counts = sqlx::query_as(
                    "SELECT lock_by, COUNT(*) FROM apalis.jobs WHERE job_type = $1 AND status = 'Running' GROUP BY lock_by",
                )
                .bind(&self.name)
                .fetch_all(storage.pool())
                .await
                .map_err(queue_error)?;
                Ok(per_worker(workers, &counts))
            }
            #[cfg(feature = "redis")]
            Backend::Redis { storage, .. } => {
                if workers.is_empty() {
                    return Ok(Vec::new()); // an empty pipeline is an error
                }
                let inflight = storage.get_config().inflight_jobs_set();
                let mut reads = redis::pipe();
                for worker in workers {
                    reads.scard(format!("{inflight}:{}", worker.name));
                }
                let mut connection = storage.clone().get_connection().clone();
                reads.query_async(&mut connection).await.map_err(queue_error)
            }
        }
    }

    /// Recipients sent per minute over the `minutes` up to `now_ms` (at most 120), by project
    /// (`""` for jobs of none): the attempts settled in each minute, but their cancelled
    /// recipients. Each row is a project, a minute since the Unix epoch and a count; minutes
    /// without a send have no row.
    pub async fn sent_per_minute(&self, now_ms: u64, minutes: u64) -> Result<Vec<(String, u64, u64)>, Error> {
        let since_ms = (now_ms / 60_000).saturating_sub(minutes.clamp(1, 120) - 1).saturating_mul(60_000);
        let mut sent = each_backend!(self, |_storage, results| results.sent_per_minute(since_ms).await?);
        sent.retain(|(_, minute, _)| *minute <= now_ms / 60_000);
        sent.sort();
        Ok(sent)
    }
}
