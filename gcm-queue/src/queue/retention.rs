//! Retention: what is finished is deleted once it is older than the operator keeps it —
//! the records read by `GET /results` after `results`, and after `jobs` the jobs whose last
//! attempt is settled (their summary, settlements, claims, payloads) and apalis's own
//! finished tasks. Nothing that may still run is touched.
//!
//! Each backend deletes in batches of [`PRUNE_BATCH`], each its own statement or script,
//! so that sends and settlements go on between them. apalis's own `Vacuum` is not used: on
//! SQLite it deletes every queue's tasks in one statement and then rewrites the whole file
//! (`VACUUM`), and on Redis it reads the whole task hash in one script; apalis-postgres has
//! none.

use std::time::Duration;

use serde::Serialize;

use super::{Backend, Queue, queue_error};
use crate::error::Error;
use crate::job::millis;

/// How long finished things are kept by default: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Rows, blocks, jobs or tasks one batch deletes at most.
pub const PRUNE_BATCH: usize = 500;

/// How long finished things are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// The records of settled attempts, as `GET /results` reads them, and the changes of
    /// audience feeds.
    pub results: Duration,
    /// Finished jobs: their summary, settlements, claims and payloads, and apalis's
    /// finished tasks.
    pub jobs: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self { results: DEFAULT_RETENTION, jobs: DEFAULT_RETENTION }
    }
}

/// What a prune deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Blocks of records (up to 1000 records each).
    pub result_blocks: u64,
    /// Changes of audience feeds.
    pub audience_changes: u64,
    /// Webhook deliveries delivered or dead.
    pub webhook_deliveries: u64,
    /// Finished jobs.
    pub jobs: u64,
    /// apalis's finished tasks (one per attempt).
    pub tasks: u64,
}

impl Pruned {
    /// True when nothing was deleted.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// apalis's finished tasks: done, killed, or failed with no attempt left.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
macro_rules! finished_task {
    () => {
        "(status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts)) AND done_at IS NOT NULL"
    };
}

/// One batch of apalis's finished tasks deleted by `$statement` (binds: queue, cutoff in
/// seconds, limit), from `$pool`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
macro_rules! delete_tasks {
    ($queue:expr, $pool:expr, $statement:expr, $cutoff_ms:expr) => {
        sqlx::query($statement)
            .bind($queue.name.clone())
            .bind(i64::try_from($cutoff_ms / 1000).unwrap_or(i64::MAX))
            .bind(i64::try_from(PRUNE_BATCH).unwrap_or(i64::MAX))
            .execute($pool)
            .await
            .map(|deleted| deleted.rows_affected())
            .map_err(queue_error)
    };
}

/// KEYS: one of apalis-redis's sets of ended tasks (done or dead), its task data hash.
/// ARGV: its metadata prefix, the SSCAN cursor, the count, the cutoff in seconds.
/// Deletes the tasks of one scan step that ended before the cutoff; returns the next cursor
/// and how many it deleted.
#[cfg(feature = "redis")]
const PRUNE_TASKS: &str = r"
local scan = redis.call('SSCAN', KEYS[1], ARGV[2], 'COUNT', ARGV[3])
local deleted = 0
for _, id in ipairs(scan[2]) do
  local meta = ARGV[1] .. ':' .. id
  local done_at = tonumber(redis.call('HGET', meta, 'done_at') or '')
  if done_at and done_at < tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', ARGV[1] .. ':result', id)
    redis.call('DEL', meta)
    redis.call('SREM', KEYS[1], id)
    deleted = deleted + 1
  end
end
return {scan[1], deleted}
";

/// Runs `batch` until it deletes less than a whole batch; returns the total.
async fn in_batches<F, Fut>(mut batch: F) -> Result<u64, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, Error>>,
{
    let mut total = 0u64;
    loop {
        let deleted = batch().await?;
        total = total.saturating_add(deleted);
        if deleted < PRUNE_BATCH as u64 {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

impl Queue {
    /// Deletes what `retention` no longer keeps at `now_ms` (milliseconds since the Unix
    /// epoch; [`Queue::prune_now`] passes the clock's), in batches of [`PRUNE_BATCH`].
    pub async fn prune(&self, retention: &Retention, now_ms: u64) -> Result<Pruned, Error> {
        let cutoff = |kept: Duration| now_ms.saturating_sub(u64::try_from(kept.as_millis()).unwrap_or(u64::MAX));
        let (results_cutoff, jobs_cutoff) = (cutoff(retention.results), cutoff(retention.jobs));
        let (result_blocks, audience_changes, webhook_deliveries, jobs) = each_backend!(self, |_storage, results| (
            in_batches(|| results.prune_results(results_cutoff, PRUNE_BATCH)).await?,
            in_batches(|| results.prune_audience_changes(results_cutoff, PRUNE_BATCH)).await?,
            in_batches(|| results.prune_deliveries(results_cutoff, PRUNE_BATCH)).await?,
            in_batches(|| results.prune_jobs(jobs_cutoff, PRUNE_BATCH)).await?,
        ));
        // apalis's own tasks, as each engine keeps them.
        let tasks = match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { storage, .. } => {
                const STATEMENT: &str = concat!(
                    "DELETE FROM Jobs WHERE rowid IN (SELECT rowid FROM Jobs WHERE job_type = $1 AND ",
                    finished_task!(),
                    " AND done_at < $2 LIMIT $3)"
                );
                in_batches(|| async { delete_tasks!(self, storage.pool(), STATEMENT, jobs_cutoff) }).await?
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres { storage, .. } => {
                const STATEMENT: &str = concat!(
                    "DELETE FROM apalis.jobs WHERE id IN (SELECT id FROM apalis.jobs WHERE job_type = $1 AND ",
                    finished_task!(),
                    " AND done_at < to_timestamp(CAST($2 AS DOUBLE PRECISION)) LIMIT $3)"
                );
                in_batches(|| async { delete_tasks!(self, storage.pool(), STATEMENT, jobs_cutoff) }).await?
            }
            #[cfg(feature = "redis")]
            Backend::Redis { results, .. } => {
                let mut connection = results.connection();
                let done = self.delete_redis_tasks(&mut connection, "done", jobs_cutoff).await?;
                done.saturating_add(self.delete_redis_tasks(&mut connection, "dead", jobs_cutoff).await?)
            }
        };
        Ok(Pruned { result_blocks, audience_changes, webhook_deliveries, jobs, tasks })
    }

    /// [`Queue::prune`] at the system clock's time.
    pub async fn prune_now(&self, retention: &Retention) -> Result<Pruned, Error> {
        self.prune(retention, millis(std::time::SystemTime::now())).await
    }

    /// Prunes every `every` until `shutdown` completes, logging what it deleted; a failed
    /// prune is logged and tried again at the next turn.
    pub async fn prune_periodically(
        &self,
        retention: Retention,
        every: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = &mut shutdown => return,
            }
            match self.prune_now(&retention).await {
                Ok(pruned) if pruned.is_empty() => tracing::debug!("nothing to prune"),
                Ok(pruned) => tracing::info!(
                    result_blocks = pruned.result_blocks,
                    audience_changes = pruned.audience_changes,
                    jobs = pruned.jobs,
                    tasks = pruned.tasks,
                    "pruned what retention no longer keeps"
                ),
                Err(error) => tracing::warn!(%error, cause = %error.root_cause(), "prune failed; trying again later"),
            }
        }
    }

    /// apalis-redis's tasks in its `ended` set ("done" or "dead") that ended before
    /// `cutoff_ms`, one scan step at a time.
    #[cfg(feature = "redis")]
    async fn delete_redis_tasks(
        &self,
        connection: &mut redis::aio::ConnectionManager,
        ended: &str,
        cutoff_ms: u64,
    ) -> Result<u64, Error> {
        static SCRIPT: std::sync::LazyLock<redis::Script> =
            std::sync::LazyLock::new(|| redis::Script::new(PRUNE_TASKS));
        // apalis-redis's key layout (its `Config`): `<queue>:done`, `<queue>:data`, `<queue>:meta:<id>`.
        let (mut cursor, mut total) = (String::from("0"), 0u64);
        loop {
            let (next, deleted): (String, u64) = SCRIPT
                .key(format!("{}:{ended}", self.name))
                .key(format!("{}:data", self.name))
                .arg(format!("{}:meta", self.name))
                .arg(&cursor)
                .arg(PRUNE_BATCH)
                .arg(cutoff_ms / 1000)
                .invoke_async(connection)
                .await
                .map_err(queue_error)?;
            total = total.saturating_add(deleted);
            if next == "0" {
                return Ok(total);
            }
            cursor = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_run_until_one_is_not_full() {
        let mut batches = vec![3, PRUNE_BATCH as u64, PRUNE_BATCH as u64].into_iter().rev();
        let mut calls = 0;
        let total = in_batches(|| {
            calls += 1;
            let deleted = batches.next().unwrap_or(0);
            async move { Ok(deleted) }
        })
        .await
        .unwrap();
        assert_eq!((total, calls), (2 * PRUNE_BATCH as u64 + 3, 3));
    }
}
