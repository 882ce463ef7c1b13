//! Results in the queue's SQL database (SQLite or PostgreSQL), beside apalis's jobs:
//! `gcm_settlements`, one row per job and attempt (its retry and its counts),
//! `gcm_jobs`, one row per job enqueued (what it was enqueued with), `gcm_result_blocks`, the records it settled in blocks of up to 1000 (see `block`),
//! numbered by `seq`, `gcm_claims`, the lease of the run sending each attempt (and who
//! it took over from), and `gcm_payloads`, what each attempt sends (apalis's row holds the
//! job without it, see `Ticket`). A settlement and its blocks are written in one transaction that
//! starts with the settlement's insert: its primary key is what makes each job, attempt
//! and recipient recorded once.

use std::time::Duration;

use super::block::{self, Page};
use super::{BoxFuture, Claim, ResultReader, ResultStore, Settled};
use crate::error::Error;
use crate::fate::{Enqueued, Record, Settlement, Summary};
use crate::job::{Job, Payload, millis};

/// Results stored in SQL tables of the queue's own database (SQLite or PostgreSQL).
#[derive(Debug)]
pub struct SqlResults<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
}

impl<DB: sqlx::Database> Clone for SqlResults<DB> {
    fn clone(&self) -> Self {
        Self { pool: self.pool.clone() }
    }
}

/// The PostgreSQL advisory lock a settlement holds from its first block to its commit:
/// sequence numbers are taken before commit, so without it a block could become visible
/// after a later one that a reader has already read past. SQLite has one writer anyway.
#[cfg(feature = "postgres")]
const RESULTS_LOCK: i64 = 0x6763_6d2d_7265_7375; // "gcm-resu"

fn store_error(error: sqlx::Error) -> Error {
    Error::Store(Box::new(error))
}

fn json_error(error: serde_json::Error) -> Error {
    Error::Store(Box::new(error))
}

/// The columns of a delivery, in [`DeliveryRow`]'s order.
macro_rules! delivery_columns {
    () => {
        "seq, id, job_id, attempt, url, project, state, tries, last_error, created_ms, started_ms, body"
    };
}

type DeliveryRow = (i64, String, String, i64, String, Option<String>, String, i64, Option<String>, i64, i64, String);

fn delivery(row: DeliveryRow) -> crate::webhook::Delivery {
    let (seq, id, job_id, attempt, url, project, state, tries, last_error, created_ms, started_ms, body) = row;
    let number = |value: i64| u64::try_from(value).unwrap_or(0);
    crate::webhook::Delivery {
        cursor: number(seq),
        id,
        job_id,
        attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
        url,
        project,
        state: crate::webhook::DeliveryState::parse(&state),
        tries: u32::try_from(tries).unwrap_or(u32::MAX),
        last_error,
        created_ms: number(created_ms),
        started_ms: number(started_ms),
        body,
    }
}

/// When a settlement's retry is due, read from the last 40 characters of its JSON (a
/// [`crate::Scheduled`] ends with `"run_at_ms":N}`): a summary learns it without reading the
/// retry's payload.
fn retry_due(retry_tail: &str) -> Option<u64> {
    retry_tail.rsplit_once("\"run_at_ms\":")?.1.strip_suffix('}')?.parse().ok()
}

// The same statements for both databases, but for the key column's type: sqlx's query
// functions are generic over the database only through traits too wide to spell out, so
// a macro writes each implementation.
//
// `$now` is the database's clock in milliseconds since the Unix epoch: leases are timed by
// the one clock every worker shares. `$storage` is a set-up statement for how the large
// columns are stored; `$add_columns` adds the columns an older database lacks; `$json_texts`
// a query of the texts of the JSON array bound as `$2`, as column `token`; `$seq_lock` the
// advisory lock that keeps blocks (and audience changes) in commit order, if the database
// needs one.
macro_rules! sql_results {
    ($db:ty, $pool:ty, $feature:literal, $seq:literal, $now:literal, $storage:literal, $add_columns:expr, $json_texts:literal, $seq_lock:expr) => {
        #[cfg(feature = $feature)]
        impl SqlResults<$db> {
            /// Results in `pool`'s database; creates the tables if they are missing.
            pub async fn setup(pool: &$pool) -> Result<Self, Error> {
                let statements = [
                    "CREATE TABLE IF NOT EXISTS gcm_settlements (job_id TEXT NOT NULL, attempt BIGINT NOT NULL, \
                     pending BIGINT NOT NULL, delivered BIGINT NOT NULL, canonical BIGINT NOT NULL, \
                     not_registered BIGINT NOT NULL, failed BIGINT NOT NULL, given_up BIGINT NOT NULL, \
                     parked BIGINT NOT NULL, retry TEXT, settled_at_ms BIGINT NOT NULL, \
                     cancelled BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (job_id, attempt))",
                    concat!(
                        "CREATE TABLE IF NOT EXISTS gcm_result_blocks (seq ",
                        $seq,
                        ", job_id TEXT NOT NULL, attempt BIGINT NOT NULL, records TEXT NOT NULL, settled_at_ms BIGINT)"
                    ),
                    "CREATE TABLE IF NOT EXISTS gcm_payloads (job_id TEXT NOT NULL, attempt BIGINT NOT NULL, \
                     payload TEXT NOT NULL, PRIMARY KEY (job_id, attempt))",
                    $storage,
                    "CREATE TABLE IF NOT EXISTS gcm_claims (job_id TEXT NOT NULL, attempt BIGINT NOT NULL, \
                     owner TEXT NOT NULL, expires_at_ms BIGINT NOT NULL, claims BIGINT NOT NULL, taken_over_from TEXT, \
                     PRIMARY KEY (job_id, attempt))",
                    "CREATE TABLE IF NOT EXISTS gcm_jobs (job_id TEXT PRIMARY KEY, recipients BIGINT NOT NULL, \
                     campaign_id TEXT, correlation_id TEXT, enqueued_ms BIGINT NOT NULL, send_at_ms BIGINT, \
                     cancelled_ms BIGINT, project TEXT, webhook TEXT)",
                    "CREATE TABLE IF NOT EXISTS gcm_idempotency (key TEXT PRIMARY KEY, remembered TEXT NOT NULL, \
                     kept_at_ms BIGINT NOT NULL)",
                    "CREATE TABLE IF NOT EXISTS gcm_quota (bucket TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL, \
                     at_ms BIGINT NOT NULL, taken_ms BIGINT NOT NULL)",
                    "CREATE TABLE IF NOT EXISTS gcm_audience_tokens (audience TEXT NOT NULL, token TEXT NOT NULL, \
                     flagged TEXT, PRIMARY KEY (audience, token))",
                    concat!(
                        "CREATE TABLE IF NOT EXISTS gcm_audience_changes (seq ",
                        $seq,
                        ", audience TEXT NOT NULL, token TEXT NOT NULL, change TEXT NOT NULL, value TEXT, \
                         job_id TEXT NOT NULL, at_ms BIGINT NOT NULL)"
                    ),
                    "CREATE INDEX IF NOT EXISTS gcm_audience_changes_feed ON gcm_audience_changes (audience, seq)",
                    "CREATE INDEX IF NOT EXISTS gcm_audience_changes_at ON gcm_audience_changes (at_ms)",
                    // `due_ms` is also a claimed delivery's lease: it is due again when the lease ends.
                    concat!(
                        "CREATE TABLE IF NOT EXISTS gcm_webhooks (seq ",
                        $seq,
                        ", id TEXT NOT NULL UNIQUE, job_id TEXT NOT NULL, attempt BIGINT NOT NULL, url TEXT NOT NULL, \
                         project TEXT, body TEXT NOT NULL, state TEXT NOT NULL, tries BIGINT NOT NULL, \
                         created_ms BIGINT NOT NULL, started_ms BIGINT NOT NULL, due_ms BIGINT NOT NULL, owner TEXT, \
                         last_error TEXT, done_ms BIGINT)"
                    ),
                    "CREATE INDEX IF NOT EXISTS gcm_webhooks_due ON gcm_webhooks (due_ms) WHERE state = 'pending'",
                    "CREATE INDEX IF NOT EXISTS gcm_webhooks_job ON gcm_webhooks (job_id, seq) WHERE state = 'pending'",
                    "CREATE INDEX IF NOT EXISTS gcm_webhooks_done ON gcm_webhooks (done_ms) WHERE state <> 'pending'",
                    "CREATE INDEX IF NOT EXISTS gcm_webhooks_dead ON gcm_webhooks (seq) WHERE state = 'dead'",
                    // What a campaign's page reads: its jobs, and their records.
                    "CREATE INDEX IF NOT EXISTS gcm_jobs_campaign ON gcm_jobs (campaign_id) WHERE campaign_id IS NOT NULL",
                    "CREATE INDEX IF NOT EXISTS gcm_result_blocks_job ON gcm_result_blocks (job_id)",
                    // What the dashboard's chart reads: the last hour's settlements.
                    "CREATE INDEX IF NOT EXISTS gcm_settlements_at ON gcm_settlements (settled_at_ms)",
                ];
                for statement in statements {
                    sqlx::query(statement).execute(pool).await.map_err(store_error)?;
                }
                // A database set up by 0.1 has no `cancelled` count yet, and one set up
                // before retention no block times.
                for added in $add_columns {
                    if let Err(error) = sqlx::query(added).execute(pool).await {
                        if !error.to_string().contains("duplicate column") {
                            return Err(store_error(error));
                        }
                    }
                }
                let retention = [
                    "CREATE INDEX IF NOT EXISTS gcm_result_blocks_settled ON gcm_result_blocks (settled_at_ms)",
                    "CREATE INDEX IF NOT EXISTS gcm_settlements_finished ON gcm_settlements (settled_at_ms) WHERE retry IS NULL",
                    // Blocks written before retention take their settlement's time (once:
                    // the index finds the blocks without one).
                    concat!(
                        "UPDATE gcm_result_blocks SET settled_at_ms = COALESCE((SELECT s.settled_at_ms FROM gcm_settlements s \
                         WHERE s.job_id = gcm_result_blocks.job_id AND s.attempt = gcm_result_blocks.attempt), ",
                        $now,
                        ") WHERE settled_at_ms IS NULL"
                    ),
                ];
                for statement in retention {
                    sqlx::query(statement).execute(pool).await.map_err(store_error)?;
                }
                Ok(Self { pool: pool.clone() })
            }

            /// Keeps what `job` sends, for the worker that runs it (once per job and attempt).
            pub(crate) async fn keep_payload(&self, job: &Job) -> Result<(), Error> {
                let payload = serde_json::to_string(&job.payload).map_err(json_error)?;
                sqlx::query(
                    "INSERT INTO gcm_payloads (job_id, attempt, payload) VALUES ($1, $2, $3) \
                     ON CONFLICT (job_id, attempt) DO NOTHING",
                )
                .bind(&job.id)
                .bind(i64::from(job.attempt))
                .bind(payload)
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
                Ok(())
            }

            /// What attempt `attempt` of job `job_id` sends, if it was kept.
            pub(crate) async fn payload(&self, job_id: &str, attempt: u32) -> Result<Option<Payload>, Error> {
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT payload FROM gcm_payloads WHERE job_id = $1 AND attempt = $2")
                        .bind(job_id)
                        .bind(i64::from(attempt))
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(store_error)?;
                row.map(|(text,)| serde_json::from_str(&text)).transpose().map_err(json_error)
            }

            async fn find(&self, job_id: &str, attempt: u32) -> Result<Option<Settled>, Error> {
                let row: Option<(Option<String>,)> =
                    sqlx::query_as("SELECT retry FROM gcm_settlements WHERE job_id = $1 AND attempt = $2")
                        .bind(job_id)
                        .bind(i64::from(attempt))
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(store_error)?;
                let Some((retry,)) = row else { return Ok(None) };
                let retry = retry.map(|text| serde_json::from_str(&text)).transpose().map_err(json_error)?;
                Ok(Some(Settled { retry }))
            }

            async fn lease(&self, job_id: &str, attempt: u32, owner: &str, lease: Duration) -> Result<Claim, Error> {
                let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
                // Granted when the row is new, ours, or expired; never once the attempt is
                // settled, and to none but the lease's owner once the job is cancelled.
                let granted: Option<(Option<String>,)> = sqlx::query_as(concat!(
                    "INSERT INTO gcm_claims (job_id, attempt, owner, expires_at_ms, claims) \
                     SELECT $1, $2, $3, ", $now, " + $4, 1 \
                     WHERE NOT EXISTS (SELECT 1 FROM gcm_settlements WHERE job_id = $1 AND attempt = $2) \
                     AND (NOT EXISTS (SELECT 1 FROM gcm_jobs WHERE job_id = $1 AND cancelled_ms IS NOT NULL) \
                     OR EXISTS (SELECT 1 FROM gcm_claims WHERE job_id = $1 AND attempt = $2 AND owner = $3)) \
                     ON CONFLICT (job_id, attempt) DO UPDATE SET \
                     taken_over_from = CASE WHEN gcm_claims.owner = excluded.owner THEN gcm_claims.taken_over_from \
                     ELSE gcm_claims.owner END, \
                     claims = gcm_claims.claims + CASE WHEN gcm_claims.owner = excluded.owner THEN 0 ELSE 1 END, \
                     owner = excluded.owner, expires_at_ms = excluded.expires_at_ms \
                     WHERE (gcm_claims.owner = excluded.owner OR gcm_claims.expires_at_ms < ", $now, ") \
                     AND NOT EXISTS (SELECT 1 FROM gcm_settlements WHERE job_id = $1 AND attempt = $2) \
                     RETURNING taken_over_from"
                ))
                .bind(job_id)
                .bind(i64::from(attempt))
                .bind(owner)
                .bind(lease_ms)
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error)?;
                if let Some((taken_over_from,)) = granted {
                    return Ok(Claim::Granted { taken_over_from });
                }
                type Holder = (Option<String>, Option<i64>, Option<i64>, i64);
                let (holder, live, cancelled, settled): Holder = sqlx::query_as(concat!(
                    "SELECT (SELECT owner FROM gcm_claims WHERE job_id = $1 AND attempt = $2), \
                     (SELECT CAST(CASE WHEN expires_at_ms >= ", $now, " THEN 1 ELSE 0 END AS BIGINT) FROM gcm_claims WHERE job_id = $1 AND attempt = $2), \
                     (SELECT cancelled_ms FROM gcm_jobs WHERE job_id = $1), \
                     (SELECT COUNT(*) FROM gcm_settlements WHERE job_id = $1 AND attempt = $2)"
                ))
                .bind(job_id)
                .bind(i64::from(attempt))
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
                if cancelled.is_some() && settled == 0 && live != Some(1) {
                    return Ok(Claim::Cancelled);
                }
                Ok(Claim::Held { owner: holder.unwrap_or_default() })
            }

            async fn keep(&self, key: &str, remembered: &str) -> Result<String, Error> {
                let now = i64::try_from(millis(std::time::SystemTime::now())).unwrap_or(i64::MAX);
                let kept_ms = i64::try_from(super::IDEMPOTENCY_KEPT.as_millis()).unwrap_or(i64::MAX);
                sqlx::query("DELETE FROM gcm_idempotency WHERE kept_at_ms < $1")
                    .bind(now.saturating_sub(kept_ms))
                    .execute(&self.pool)
                    .await
                    .map_err(store_error)?;
                sqlx::query(
                    "INSERT INTO gcm_idempotency (key, remembered, kept_at_ms) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(remembered)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
                let (kept,): (String,) = sqlx::query_as("SELECT remembered FROM gcm_idempotency WHERE key = $1")
                    .bind(key)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(store_error)?;
                Ok(kept)
            }

            /// Recipients of registered jobs without a final fate yet (two scans: read when
            /// `/metrics` is scraped, not on any send's path).
            pub(crate) async fn pending_recipients(&self) -> Result<u64, Error> {
                let (pending,): (Option<i64>,) = sqlx::query_as(
                    "SELECT CAST((SELECT COALESCE(SUM(recipients), 0) FROM gcm_jobs) - (SELECT COALESCE(SUM(s.delivered + \
                     s.not_registered + s.failed + s.given_up + s.parked + s.cancelled), 0) FROM gcm_settlements s \
                     JOIN gcm_jobs j ON j.job_id = s.job_id) AS BIGINT)",
                )
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
                Ok(pending.and_then(|pending| u64::try_from(pending).ok()).unwrap_or(0))
            }

            /// Recipients sent by the attempts settled since `since_ms` (the cancelled ones
            /// are not sent; those left for a retry were), by project (`""` for none) and
            /// minute since the Unix epoch.
            pub(crate) async fn sent_per_minute(&self, since_ms: u64) -> Result<Vec<(String, u64, u64)>, Error> {
                let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT COALESCE(j.project, ''), s.settled_at_ms / 60000, CAST(SUM(s.delivered + s.not_registered + \
                     s.failed + s.given_up + s.parked + s.pending) AS BIGINT) FROM gcm_settlements s \
                     LEFT JOIN gcm_jobs j ON j.job_id = s.job_id WHERE s.settled_at_ms >= $1 GROUP BY 1, 2",
                )
                .bind(i64::try_from(since_ms).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
                let number = |value: i64| u64::try_from(value).unwrap_or(0);
                Ok(rows.into_iter().map(|(project, minute, sent)| (project, number(minute), number(sent.unwrap_or(0)))).collect())
            }

            /// The ids of the newest `limit` campaigns, by when their first job was enqueued.
            pub(crate) async fn campaigns(&self, limit: usize) -> Result<Vec<String>, Error> {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT campaign_id FROM gcm_jobs WHERE campaign_id IS NOT NULL \
                     GROUP BY campaign_id ORDER BY MIN(enqueued_ms) DESC, campaign_id DESC LIMIT $1",
                )
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
                Ok(rows.into_iter().map(|(id,)| id).collect())
            }

            /// The summaries of campaign `campaign_id`'s jobs (at most `limit`, in id order), in
            /// one query that reads the campaign's rows alone (by its index and the settlements'
            /// key).
            pub(crate) async fn campaign_jobs(&self, campaign_id: &str, limit: usize) -> Result<Vec<Summary>, Error> {
                use sqlx::Row as _;
                let rows = sqlx::query(concat!(
                    "SELECT j.job_id, j.recipients, j.correlation_id, j.enqueued_ms, j.send_at_ms, j.cancelled_ms, \
                     j.project, j.webhook, COUNT(s.attempt), CAST(SUM(s.delivered) AS BIGINT), \
                     CAST(SUM(s.canonical) AS BIGINT), CAST(SUM(s.not_registered) AS BIGINT), CAST(SUM(s.failed) AS BIGINT), \
                     CAST(SUM(s.given_up) AS BIGINT), CAST(SUM(s.parked) AS BIGINT), CAST(SUM(s.cancelled) AS BIGINT), \
                     MAX(CASE WHEN s.attempt = l.attempt THEN s.pending END), \
                     MAX(CASE WHEN s.attempt = l.attempt THEN substr(s.retry, length(s.retry) - 39) END), \
                     (SELECT COUNT(*) FROM gcm_claims c WHERE c.job_id = j.job_id AND c.attempt = COALESCE(l.attempt + 1, 0) \
                     AND c.expires_at_ms > ", $now, "), ", $now, " \
                     FROM gcm_jobs j LEFT JOIN gcm_settlements s ON s.job_id = j.job_id \
                     LEFT JOIN (SELECT job_id, MAX(attempt) AS attempt FROM gcm_settlements WHERE job_id IN \
                     (SELECT job_id FROM gcm_jobs WHERE campaign_id = $1) GROUP BY job_id) l ON l.job_id = j.job_id \
                     WHERE j.campaign_id = $1 GROUP BY j.job_id, l.attempt ORDER BY j.job_id LIMIT $2"
                ))
                .bind(campaign_id)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
                let mut summaries = Vec::with_capacity(rows.len());
                for row in rows {
                    let number = |index: usize| -> Result<Option<u64>, Error> {
                        let value: Option<i64> = row.try_get(index).map_err(store_error)?;
                        Ok(value.map(|value| u64::try_from(value).unwrap_or(0)))
                    };
                    let text = |index: usize| -> Result<Option<String>, Error> { row.try_get(index).map_err(store_error) };
                    let job_id: String = row.try_get(0).map_err(store_error)?;
                    let enqueued = Enqueued {
                        job_id: job_id.clone(),
                        recipients: number(1)?.unwrap_or(0),
                        campaign_id: Some(campaign_id.to_owned()),
                        correlation_id: text(2)?,
                        enqueued_ms: number(3)?.unwrap_or(0),
                        send_at_ms: number(4)?,
                        cancelled_ms: number(5)?,
                        project: text(6)?,
                        webhook: text(7)?,
                    };
                    let summary = Summary {
                        attempts: number(8)?.unwrap_or(0),
                        delivered: number(9)?.unwrap_or(0),
                        canonical: number(10)?.unwrap_or(0),
                        not_registered: number(11)?.unwrap_or(0),
                        failed: number(12)?.unwrap_or(0),
                        given_up: number(13)?.unwrap_or(0),
                        parked: number(14)?.unwrap_or(0),
                        cancelled: number(15)?.unwrap_or(0),
                        pending: number(16)?.unwrap_or(0),
                        retry_at_ms: text(17)?.as_deref().and_then(retry_due),
                        ..Summary::default()
                    };
                    let sending = number(18)?.unwrap_or(0) > 0;
                    summaries.extend(summary.finish(&job_id, Some(enqueued), sending, number(19)?.unwrap_or(0)));
                }
                Ok(summaries)
            }

            /// Every record of job `job_id`, in the order they were written.
            pub(crate) async fn job_records(&self, job_id: &str) -> Result<Vec<Record>, Error> {
                let rows: Vec<(i64, i64, String)> =
                    sqlx::query_as("SELECT seq, attempt, records FROM gcm_result_blocks WHERE job_id = $1 ORDER BY seq")
                        .bind(job_id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(store_error)?;
                let mut page = Page::after(0, usize::MAX);
                for (seq, attempt, records) in rows {
                    let (seq, attempt) = (u64::try_from(seq).unwrap_or(0), u32::try_from(attempt).unwrap_or(u32::MAX));
                    page.add(seq, job_id, attempt, &records).map_err(json_error)?;
                }
                Ok(page.records.into_iter().map(|(_, record)| record).collect())
            }

            async fn cancel_job(&self, job_id: &str) -> Result<bool, Error> {
                let now = i64::try_from(millis(std::time::SystemTime::now())).unwrap_or(i64::MAX);
                let updated = sqlx::query("UPDATE gcm_jobs SET cancelled_ms = COALESCE(cancelled_ms, $2) WHERE job_id = $1")
                    .bind(job_id)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(store_error)?;
                Ok(updated.rows_affected() > 0)
            }

            /// Deletes up to `limit` blocks of records settled before `cutoff_ms`; returns
            /// how many.
            pub(crate) async fn prune_results(&self, cutoff_ms: u64, limit: usize) -> Result<u64, Error> {
                self.delete_before(
                    "DELETE FROM gcm_result_blocks WHERE seq IN (SELECT seq FROM gcm_result_blocks \
                     WHERE settled_at_ms < $1 ORDER BY settled_at_ms LIMIT $2)",
                    cutoff_ms,
                    limit,
                )
                .await
            }

            /// Deletes up to `limit` changes of audience feeds applied before `cutoff_ms`;
            /// returns how many.
            pub(crate) async fn prune_audience_changes(&self, cutoff_ms: u64, limit: usize) -> Result<u64, Error> {
                self.delete_before(
                    "DELETE FROM gcm_audience_changes WHERE seq IN (SELECT seq FROM gcm_audience_changes \
                     WHERE at_ms < $1 ORDER BY at_ms LIMIT $2)",
                    cutoff_ms,
                    limit,
                )
                .await
            }

            /// Runs `statement`, a bounded delete (binds: the cutoff, the limit); returns
            /// how many rows it deleted.
            async fn delete_before(&self, statement: &'static str, cutoff_ms: u64, limit: usize) -> Result<u64, Error> {
                let deleted = sqlx::query(statement)
                    .bind(i64::try_from(cutoff_ms).unwrap_or(i64::MAX))
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .execute(&self.pool)
                    .await
                    .map_err(store_error)?;
                Ok(deleted.rows_affected())
            }

            /// Deletes up to `limit` jobs that finished (their last attempt settled with
            /// no retry) before `cutoff_ms`: their row, settlements, claims and payloads,
            /// in one transaction. A job with an attempt to come is never touched.
            pub(crate) async fn prune_jobs(&self, cutoff_ms: u64, limit: usize) -> Result<u64, Error> {
                macro_rules! finished {
                    () => {
                        "SELECT job_id FROM gcm_settlements WHERE retry IS NULL AND settled_at_ms < $1 \
                         ORDER BY settled_at_ms, job_id LIMIT $2"
                    };
                }
                let cutoff = i64::try_from(cutoff_ms).unwrap_or(i64::MAX);
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let mut tx = self.pool.begin().await.map_err(store_error)?;
                let (jobs,): (i64,) = sqlx::query_as(concat!("SELECT COUNT(*) FROM (", finished!(), ") finished"))
                    .bind(cutoff)
                    .bind(limit)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(store_error)?;
                // The settlements last: they are what names the jobs.
                let deletes = [
                    concat!("DELETE FROM gcm_claims WHERE job_id IN (", finished!(), ")"),
                    concat!("DELETE FROM gcm_payloads WHERE job_id IN (", finished!(), ")"),
                    concat!("DELETE FROM gcm_jobs WHERE job_id IN (", finished!(), ")"),
                    concat!("DELETE FROM gcm_settlements WHERE job_id IN (", finished!(), ")"),
                ];
                for delete in deletes {
                    sqlx::query(delete)
                        .bind(cutoff)
                        .bind(limit)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_error)?;
                }
                tx.commit().await.map_err(store_error)?;
                Ok(u64::try_from(jobs).unwrap_or(0))
            }

            /// Takes `messages` from the fleet's bucket `bucket` (see [`super::quota`]) in
            /// one statement; returns how long to wait before sending them.
            pub(crate) async fn take_quota(&self, bucket: &str, rate: &super::quota::Rate, messages: u64) -> Result<Duration, Error> {
                // `taken_ms` is the database's time of this take; `at_ms` may be later (a pause).
                let (tokens, at_ms, taken_ms): (f64, i64, i64) = sqlx::query_as(concat!(
                    "INSERT INTO gcm_quota AS q (bucket, tokens, at_ms, taken_ms) VALUES ($1, 0 - $3, ", $now, ", ", $now, ") \
                     ON CONFLICT (bucket) DO UPDATE SET \
                     tokens = CASE WHEN excluded.taken_ms <= q.at_ms THEN q.tokens \
                     WHEN q.tokens + (excluded.taken_ms - q.at_ms) * $2 > $4 THEN $4 \
                     ELSE q.tokens + (excluded.taken_ms - q.at_ms) * $2 END - $3, \
                     at_ms = CASE WHEN excluded.taken_ms > q.at_ms THEN excluded.taken_ms ELSE q.at_ms END, \
                     taken_ms = excluded.taken_ms \
                     RETURNING tokens, at_ms, taken_ms"
                ))
                .bind(bucket)
                .bind(rate.per_ms())
                .bind(messages as f64)
                .bind(rate.burst())
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
                Ok(rate.wait(tokens, at_ms.saturating_sub(taken_ms)))
            }

            /// Holds the fleet's bucket `bucket` empty for `pause` from the database's now.
            pub(crate) async fn pause_quota(&self, bucket: &str, pause: Duration) -> Result<(), Error> {
                sqlx::query(concat!(
                    "UPDATE gcm_quota SET tokens = CASE WHEN tokens > 0 THEN 0 ELSE tokens END, \
                     at_ms = CASE WHEN at_ms > ", $now, " + $2 THEN at_ms ELSE ", $now, " + $2 END WHERE bucket = $1"
                ))
                .bind(bucket)
                .bind(i64::try_from(pause.as_millis()).unwrap_or(i64::MAX / 2))
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
                Ok(())
            }

            /// Applies one result's `change` to `token` of `audience` within a settlement's
            /// transaction; a change that finds nothing to change (the token is gone,
            /// flagged already) is not listed.
            async fn apply(
                tx: &mut sqlx::Transaction<'_, $db>,
                audience: &str,
                token: &str,
                change: &crate::audience::Change,
                job_id: &str,
                at_ms: i64,
            ) -> Result<(), Error> {
                use crate::audience::Change;
                let changed = match change {
                    Change::Removed | Change::Replaced { .. } => {
                        sqlx::query("DELETE FROM gcm_audience_tokens WHERE audience = $1 AND token = $2")
                            .bind(audience)
                            .bind(token)
                            .execute(&mut **tx)
                            .await
                            .map_err(store_error)?
                            .rows_affected()
                    }
                    Change::Flagged { code } => sqlx::query(
                        "UPDATE gcm_audience_tokens SET flagged = $3 WHERE audience = $1 AND token = $2 AND flagged IS NULL",
                    )
                    .bind(audience)
                    .bind(token)
                    .bind(code)
                    .execute(&mut **tx)
                    .await
                    .map_err(store_error)?
                    .rows_affected(),
                };
                if changed == 0 {
                    return Ok(());
                }
                if let Change::Replaced { by } = change {
                    sqlx::query(
                        "INSERT INTO gcm_audience_tokens (audience, token) VALUES ($1, $2) ON CONFLICT (audience, token) DO NOTHING",
                    )
                    .bind(audience)
                    .bind(by)
                    .execute(&mut **tx)
                    .await
                    .map_err(store_error)?;
                }
                sqlx::query(
                    "INSERT INTO gcm_audience_changes (audience, token, change, value, job_id, at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(audience)
                .bind(token)
                .bind(change.name())
                .bind(change.value())
                .bind(job_id)
                .bind(at_ms)
                .execute(&mut **tx)
                .await
                .map_err(store_error)?;
                Ok(())
            }

            /// Inserts `tokens` into `audience` (those it holds already are skipped) in
            /// statements of 1000; returns how many were new.
            async fn insert_tokens(
                tx: &mut sqlx::Transaction<'_, $db>,
                audience: &str,
                tokens: &[String],
            ) -> Result<u64, Error> {
                let mut added = 0;
                for chunk in tokens.chunks(1000) {
                    let array = serde_json::to_string(chunk).map_err(json_error)?;
                    added += sqlx::query(concat!(
                        "INSERT INTO gcm_audience_tokens (audience, token) SELECT $1, t.token FROM (",
                        $json_texts,
                        // `WHERE true`: SQLite reads an upsert after a SELECT only so.
                        ") t WHERE true ON CONFLICT (audience, token) DO NOTHING"
                    ))
                    .bind(audience)
                    .bind(array)
                    .execute(&mut **tx)
                    .await
                    .map_err(store_error)?
                    .rows_affected();
                }
                Ok(added)
            }

            pub(crate) async fn put_audience_tokens(&self, audience: &str, tokens: &[String]) -> Result<u64, Error> {
                let mut tx = self.pool.begin().await.map_err(store_error)?;
                sqlx::query("DELETE FROM gcm_audience_tokens WHERE audience = $1")
                    .bind(audience)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                let held = Self::insert_tokens(&mut tx, audience, tokens).await?;
                tx.commit().await.map_err(store_error)?;
                Ok(held)
            }

            pub(crate) async fn add_audience_tokens(&self, audience: &str, tokens: &[String]) -> Result<u64, Error> {
                let mut tx = self.pool.begin().await.map_err(store_error)?;
                let added = Self::insert_tokens(&mut tx, audience, tokens).await?;
                tx.commit().await.map_err(store_error)?;
                Ok(added)
            }

            pub(crate) async fn audience_tokens(&self, audience: &str, after: &str, limit: usize) -> Result<Vec<crate::AudienceToken>, Error> {
                let rows: Vec<(String, Option<String>)> = sqlx::query_as(
                    "SELECT token, flagged FROM gcm_audience_tokens WHERE audience = $1 AND token > $2 ORDER BY token LIMIT $3",
                )
                .bind(audience)
                .bind(after)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
                Ok(rows.into_iter().map(|(token, flagged)| crate::AudienceToken { token, flagged }).collect())
            }

            pub(crate) async fn audience_sendable(&self, audience: &str) -> Result<Vec<String>, Error> {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT token FROM gcm_audience_tokens WHERE audience = $1 AND flagged IS NULL ORDER BY token",
                )
                .bind(audience)
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
                Ok(rows.into_iter().map(|(token,)| token).collect())
            }

            pub(crate) async fn drop_audience(&self, audience: &str) -> Result<bool, Error> {
                let mut tx = self.pool.begin().await.map_err(store_error)?;
                let held = sqlx::query("DELETE FROM gcm_audience_tokens WHERE audience = $1")
                    .bind(audience)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?
                    .rows_affected();
                sqlx::query("DELETE FROM gcm_audience_changes WHERE audience = $1")
                    .bind(audience)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                tx.commit().await.map_err(store_error)?;
                Ok(held > 0)
            }

            pub(crate) async fn audience_feed(&self, audience: &str, since: u64, limit: usize) -> Result<Vec<crate::AudienceChange>, Error> {
                type Row = (i64, String, String, Option<String>, String, i64);
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT seq, token, change, value, job_id, at_ms FROM gcm_audience_changes \
                     WHERE audience = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(audience)
                .bind(i64::try_from(since).unwrap_or(i64::MAX))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
                rows.into_iter()
                    .map(|(seq, token, change, value, job_id, at_ms)| {
                        let unknown = || Error::Store(format!("an audience change reads {change:?}").into());
                        let change = crate::audience::Change::from_parts(&change, value).ok_or_else(unknown)?;
                        let (cursor, at_ms) = (u64::try_from(seq).unwrap_or(0), u64::try_from(at_ms).unwrap_or(0));
                        Ok(crate::AudienceChange { cursor, token, change, job_id, at_ms })
                    })
                    .collect()
            }

            async fn insert(&self, settlement: &Settlement) -> Result<Settled, Error> {
                let retry = settlement.retry.as_ref().map(serde_json::to_string).transpose().map_err(json_error)?;
                // Serialized before the transaction: on PostgreSQL it holds the results lock.
                let delivery = crate::webhook::delivery_of(settlement, std::time::SystemTime::now());
                let mut tx = self.pool.begin().await.map_err(store_error)?;
                let mut counts = Summary::default();
                settlement.records.iter().for_each(|record| counts.count(&record.fate));
                let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
                let settled_at_ms = count(millis(std::time::SystemTime::now()));
                let inserted = sqlx::query(
                    "INSERT INTO gcm_settlements (job_id, attempt, pending, delivered, canonical, not_registered, \
                     failed, given_up, parked, retry, settled_at_ms, cancelled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (job_id, attempt) DO NOTHING",
                )
                .bind(&settlement.job_id)
                .bind(i64::from(settlement.attempt))
                .bind(i64::try_from(settlement.pending()).unwrap_or(i64::MAX))
                .bind(count(counts.delivered))
                .bind(count(counts.canonical))
                .bind(count(counts.not_registered))
                .bind(count(counts.failed))
                .bind(count(counts.given_up))
                .bind(count(counts.parked))
                .bind(&retry)
                .bind(settled_at_ms)
                .bind(count(counts.cancelled))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
                if inserted.rows_affected() == 0 {
                    // Another run of this attempt settled it first: its decision stands.
                    drop(tx);
                    return self.find(&settlement.job_id, settlement.attempt).await?.ok_or_else(|| {
                        Error::Store("a settlement vanished between its insert and its read".into())
                    });
                }
                if let Some(lock) = $seq_lock {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(lock).execute(&mut *tx).await.map_err(store_error)?;
                }
                if let Some(audience) = &settlement.audience {
                    let at_ms = settled_at_ms;
                    for (token, change) in crate::audience::changes(settlement) {
                        Self::apply(&mut tx, audience, token, &change, &settlement.job_id, at_ms).await?;
                    }
                }
                for records in block::blocks(&settlement.records).map_err(json_error)? {
                    sqlx::query(
                        "INSERT INTO gcm_result_blocks (job_id, attempt, records, settled_at_ms) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&settlement.job_id)
                    .bind(i64::from(settlement.attempt))
                    .bind(records)
                    .bind(settled_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                }
                if let Some(delivery) = delivery {
                    sqlx::query(
                        "INSERT INTO gcm_webhooks (id, job_id, attempt, url, project, body, state, tries, created_ms, \
                         started_ms, due_ms) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7, $7)",
                    )
                    .bind(&delivery.id)
                    .bind(&settlement.job_id)
                    .bind(i64::from(delivery.attempt))
                    .bind(&delivery.url)
                    .bind(&delivery.project)
                    .bind(&delivery.body)
                    .bind(settled_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                }
                tx.commit().await.map_err(store_error)?;
                Ok(Settled { retry: settlement.retry.clone() })
            }

            /// Claims up to `limit` due deliveries, the first pending one of each job (see
            /// [`crate::webhook::WebhookOutbox`]).
            pub(crate) async fn claim_deliveries(&self, project: &str, owner: &str, lease: Duration, limit: usize) -> Result<Vec<crate::webhook::Delivery>, Error> {
                let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
                // The outer conditions again: PostgreSQL rechecks them on a row another
                // claim updated meanwhile, so that two claims never both take it.
                let rows: Vec<DeliveryRow> = sqlx::query_as(concat!(
                    "UPDATE gcm_webhooks SET owner = $1, due_ms = ", $now, " + $2, tries = tries + 1 \
                     WHERE state = 'pending' AND due_ms <= ", $now, " AND seq IN (SELECT w.seq FROM gcm_webhooks w \
                     WHERE w.state = 'pending' AND w.due_ms <= ", $now, " AND COALESCE(w.project, '') = $4 AND NOT EXISTS (SELECT 1 FROM gcm_webhooks e \
                     WHERE e.job_id = w.job_id AND e.state = 'pending' AND e.seq < w.seq) ORDER BY w.due_ms LIMIT $3) \
                     RETURNING ", delivery_columns!()
                ))
                .bind(owner)
                .bind(lease_ms)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .bind(project)
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
                Ok(rows.into_iter().map(delivery).collect())
            }

            /// Records how `owner`'s try of delivery `id` ended.
            pub(crate) async fn finish_delivery(&self, delivery: &crate::webhook::Delivery, owner: &str, tried: &crate::webhook::Tried) -> Result<(), Error> {
                use crate::webhook::{DeliveryState, Tried};
                let id = &delivery.id;
                let query = match tried {
                    Tried::Retry { after, error } => sqlx::query(concat!(
                        "UPDATE gcm_webhooks SET due_ms = ", $now, " + $3, owner = NULL, last_error = $4 \
                         WHERE id = $1 AND owner = $2 AND state = 'pending'"
                    ))
                    .bind(id)
                    .bind(owner)
                    .bind(i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 2))
                    .bind(error),
                    Tried::Delivered | Tried::Dead { .. } => {
                        let (state, error) = match tried {
                            Tried::Dead { error } => (DeliveryState::Dead, Some(error)),
                            _ => (DeliveryState::Delivered, None),
                        };
                        sqlx::query(concat!(
                            "UPDATE gcm_webhooks SET state = $3, owner = NULL, last_error = COALESCE($4, last_error), \
                             done_ms = ", $now, " WHERE id = $1 AND owner = $2 AND state = 'pending'"
                        ))
                        .bind(id)
                        .bind(owner)
                        .bind(state.as_str())
                        .bind(error)
                    }
                };
                query.execute(&self.pool).await.map_err(store_error)?;
                Ok(())
            }

            /// Up to `limit` deliveries after `since`.
            pub(crate) async fn read_deliveries(&self, since: u64, limit: usize) -> Result<Vec<crate::webhook::Delivery>, Error> {
                let rows: Vec<DeliveryRow> = sqlx::query_as(concat!(
                    "SELECT ", delivery_columns!(), " FROM gcm_webhooks WHERE seq > $1 ORDER BY seq LIMIT $2"
                ))
                .bind(i64::try_from(since).unwrap_or(i64::MAX))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
                Ok(rows.into_iter().map(delivery).collect())
            }

            /// Makes the deliveries after `since` pending again, due now.
            pub(crate) async fn replay_deliveries(&self, since: u64) -> Result<u64, Error> {
                let replayed = sqlx::query(concat!(
                    "UPDATE gcm_webhooks SET state = 'pending', tries = 0, owner = NULL, done_ms = NULL, \
                     started_ms = ", $now, ", due_ms = ", $now, " WHERE seq > $1 AND state <> 'pending'"
                ))
                .bind(i64::try_from(since).unwrap_or(i64::MAX))
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
                Ok(replayed.rows_affected())
            }

            /// How many deliveries are pending, and how many dead (each counted on its index).
            pub(crate) async fn delivery_counts(&self) -> Result<(u64, u64), Error> {
                let (pending, dead): (i64, i64) = sqlx::query_as(
                    "SELECT (SELECT COUNT(*) FROM gcm_webhooks WHERE state = 'pending'), \
                     (SELECT COUNT(*) FROM gcm_webhooks WHERE state = 'dead')",
                )
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
                Ok((u64::try_from(pending).unwrap_or(0), u64::try_from(dead).unwrap_or(0)))
            }

            /// Deletes up to `limit` deliveries delivered or dead before `cutoff_ms`; returns
            /// how many.
            pub(crate) async fn prune_deliveries(&self, cutoff_ms: u64, limit: usize) -> Result<u64, Error> {
                self.delete_before(
                    "DELETE FROM gcm_webhooks WHERE seq IN (SELECT seq FROM gcm_webhooks \
                     WHERE state <> 'pending' AND done_ms < $1 ORDER BY done_ms LIMIT $2)",
                    cutoff_ms,
                    limit,
                )
                .await
            }

            async fn page(&self, cursor: u64, limit: usize) -> Result<Vec<(u64, Record)>, Error> {
                let mut page = Page::after(cursor, limit);
                while !page.is_full() {
                    let rows: Vec<(i64, String, i64, String)> = sqlx::query_as(
                        "SELECT seq, job_id, attempt, records FROM gcm_result_blocks WHERE seq >= $1 ORDER BY seq LIMIT $2",
                    )
                    .bind(i64::try_from(page.next_block()).unwrap_or(i64::MAX))
                    .bind(i64::try_from(page.wanted()).unwrap_or(i64::MAX))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(store_error)?;
                    let more = page.fetched(rows.len());
                    for (seq, job_id, attempt, records) in rows {
                        let (seq, attempt) = (u64::try_from(seq).unwrap_or(0), u32::try_from(attempt).unwrap_or(u32::MAX));
                        page.add(seq, &job_id, attempt, &records).map_err(json_error)?;
                    }
                    if !more {
                        break;
                    }
                }
                Ok(page.records)
            }

            async fn register_job(&self, enqueued: &Enqueued) -> Result<(), Error> {
                let ms = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
                sqlx::query(
                    "INSERT INTO gcm_jobs (job_id, recipients, campaign_id, correlation_id, enqueued_ms, send_at_ms, project, \
                     webhook) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (job_id) DO NOTHING",
                )
                .bind(&enqueued.job_id)
                .bind(ms(enqueued.recipients))
                .bind(&enqueued.campaign_id)
                .bind(&enqueued.correlation_id)
                .bind(ms(enqueued.enqueued_ms))
                .bind(enqueued.send_at_ms.map(ms))
                .bind(&enqueued.project)
                .bind(&enqueued.webhook)
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
                Ok(())
            }

            async fn count(&self, job_id: &str) -> Result<Option<Summary>, Error> {
                // PostgreSQL sums BIGINTs as NUMERIC: cast them back.
                type Sums = (i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<String>);
                let sums: Sums = sqlx::query_as(
                    "SELECT COUNT(*), CAST(SUM(delivered) AS BIGINT), CAST(SUM(canonical) AS BIGINT), CAST(SUM(not_registered) AS BIGINT), CAST(SUM(failed) AS BIGINT), CAST(SUM(given_up) AS BIGINT), \
                     CAST(SUM(parked) AS BIGINT), CAST(SUM(cancelled) AS BIGINT), MAX(CASE WHEN attempt = (SELECT MAX(attempt) FROM gcm_settlements WHERE job_id = $1) \
                     THEN pending END), MAX(CASE WHEN attempt = (SELECT MAX(attempt) FROM gcm_settlements WHERE job_id = $1) \
                     THEN substr(retry, length(retry) - 39) END) FROM gcm_settlements WHERE job_id = $1",
                )
                .bind(job_id)
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
                let (attempts, delivered, canonical, not_registered, failed, given_up, parked, cancelled, pending, retry) = sums;
                let value = |sum: Option<i64>| sum.and_then(|sum| u64::try_from(sum).ok()).unwrap_or(0);
                type Row = (i64, Option<String>, Option<String>, i64, Option<i64>, Option<i64>, Option<String>, Option<String>);
                let row: Option<Row> = sqlx::query_as(
                    "SELECT recipients, campaign_id, correlation_id, enqueued_ms, send_at_ms, cancelled_ms, project, webhook \
                     FROM gcm_jobs WHERE job_id = $1",
                )
                .bind(job_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error)?;
                let enqueued = row.map(|(recipients, campaign_id, correlation_id, enqueued_ms, send_at_ms, cancelled_ms, project, webhook)| Enqueued {
                    job_id: job_id.to_owned(),
                    recipients: value(Some(recipients)),
                    campaign_id,
                    correlation_id,
                    project,
                    webhook,
                    enqueued_ms: value(Some(enqueued_ms)),
                    send_at_ms: send_at_ms.map(|ms| value(Some(ms))),
                    cancelled_ms: cancelled_ms.map(|ms| value(Some(ms))),
                });
                // Attempts settle in order: the next one is numbered by the count of settled ones.
                let (sending, now): (i64, i64) = sqlx::query_as(concat!(
                    "SELECT (SELECT COUNT(*) FROM gcm_claims WHERE job_id = $1 AND attempt = $2 AND expires_at_ms > ",
                    $now,
                    "), ",
                    $now
                ))
                .bind(job_id)
                .bind(attempts)
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
                let summary = Summary {
                    attempts: value(Some(attempts)),
                    delivered: value(delivered),
                    canonical: value(canonical),
                    not_registered: value(not_registered),
                    failed: value(failed),
                    given_up: value(given_up),
                    parked: value(parked),
                    cancelled: value(cancelled),
                    pending: value(pending),
                    retry_at_ms: retry.as_deref().and_then(retry_due),
                    ..Summary::default()
                };
                Ok(summary.finish(job_id, enqueued, sending > 0, value(Some(now))))
            }
        }

        #[cfg(feature = $feature)]
        impl ResultStore for SqlResults<$db> {
            fn settled<'a>(&'a self, job_id: &'a str, attempt: u32) -> BoxFuture<'a, Result<Option<Settled>, Error>> {
                Box::pin(self.find(job_id, attempt))
            }

            fn claim<'a>(
                &'a self,
                job_id: &'a str,
                attempt: u32,
                owner: &'a str,
                lease: Duration,
            ) -> BoxFuture<'a, Result<Claim, Error>> {
                Box::pin(self.lease(job_id, attempt, owner, lease))
            }

            fn settle<'a>(&'a self, settlement: &'a Settlement) -> BoxFuture<'a, Result<Settled, Error>> {
                Box::pin(self.insert(settlement))
            }

            fn register<'a>(&'a self, enqueued: &'a Enqueued) -> BoxFuture<'a, Result<(), Error>> {
                Box::pin(self.register_job(enqueued))
            }

            fn cancel<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
                Box::pin(self.cancel_job(job_id))
            }

            fn remember<'a>(&'a self, key: &'a str, remembered: &'a str) -> BoxFuture<'a, Result<String, Error>> {
                Box::pin(self.keep(key, remembered))
            }
        }

        #[cfg(feature = $feature)]
        impl ResultReader for SqlResults<$db> {
            fn since<'a>(&'a self, cursor: u64, limit: usize) -> BoxFuture<'a, Result<Vec<(u64, Record)>, Error>> {
                Box::pin(self.page(cursor, limit))
            }

            fn summary<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<Option<Summary>, Error>> {
                Box::pin(self.count(job_id))
            }
        }
    };
}

sql_results!(
    sqlx::Sqlite,
    sqlx::SqlitePool,
    "sqlite",
    "INTEGER PRIMARY KEY AUTOINCREMENT",
    "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    "SELECT 1",
    [
        "ALTER TABLE gcm_settlements ADD COLUMN cancelled BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE gcm_result_blocks ADD COLUMN settled_at_ms BIGINT",
        "ALTER TABLE gcm_jobs ADD COLUMN project TEXT",
        "ALTER TABLE gcm_jobs ADD COLUMN webhook TEXT"
    ],
    "SELECT value AS token FROM json_each($2)",
    None::<i64>
);
sql_results!(
    sqlx::Postgres,
    sqlx::PgPool,
    "postgres",
    "BIGSERIAL PRIMARY KEY",
    "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    // Blocks and payloads out of line but not compressed: compressing 250 KB per settlement
    // took the server more CPU than writing it, and tokens hardly compress. (Changed once:
    // an ALTER locks the table.)
    "DO $$ BEGIN \
     IF (SELECT attstorage FROM pg_attribute WHERE attrelid = 'gcm_result_blocks'::regclass AND attname = 'records') <> 'e' \
     THEN ALTER TABLE gcm_result_blocks ALTER COLUMN records SET STORAGE EXTERNAL; END IF; \
     IF (SELECT attstorage FROM pg_attribute WHERE attrelid = 'gcm_payloads'::regclass AND attname = 'payload') <> 'e' \
     THEN ALTER TABLE gcm_payloads ALTER COLUMN payload SET STORAGE EXTERNAL; END IF; END $$",
    [
        "ALTER TABLE gcm_settlements ADD COLUMN IF NOT EXISTS cancelled BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE gcm_result_blocks ADD COLUMN IF NOT EXISTS settled_at_ms BIGINT",
        "ALTER TABLE gcm_jobs ADD COLUMN IF NOT EXISTS project TEXT",
        "ALTER TABLE gcm_jobs ADD COLUMN IF NOT EXISTS webhook TEXT"
    ],
    "SELECT jsonb_array_elements_text(CAST($2 AS JSONB)) AS token",
    // Blocks commit in the order of their numbers.
    Some(RESULTS_LOCK)
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test may fail loudly

    use super::retry_due;

    #[test]
    fn a_retry_is_due_when_the_end_of_its_json_says() {
        let job = crate::Job::legacy(gcm_proto::Message::multicast(["a"]).data("run_at_ms", 7));
        let retry = crate::Scheduled { job, run_at_ms: 1_764_633_600_123 };
        let json = serde_json::to_string(&retry).unwrap();
        let tail: String = json.chars().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        assert_eq!(retry_due(&tail), Some(1_764_633_600_123), "{json}");
        assert_eq!(retry_due(&json), Some(1_764_633_600_123), "a payload's own run_at_ms is not read");
        assert_eq!(retry_due("{\"run_at_ms\":12"), None, "a cut tail");
    }
}
