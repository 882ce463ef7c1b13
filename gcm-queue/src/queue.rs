//! The job queue: an apalis backend chosen by URL, its result store beside it, and the
//! workers that drain it.
//!
//! | URL | backend | results |
//! |---|---|---|
//! | `sqlite:<path>` | apalis-sqlite, a file (created if missing) | tables in the same file |
//! | `postgres://…` | apalis-postgres | tables in the same database |
//! | `redis://…` | apalis-redis | keys beside the jobs |

use std::future::Future;
use std::time::Duration;

use apalis::prelude::*;

use crate::error::Error;
use crate::fate::{Enqueued, Record, Summary};
use crate::job::{Job, Ticket};
use crate::metrics::QueueStats;
use crate::send::{Enqueue, Processor};
use crate::store::{BoxFuture, ResultReader, ResultStore, Settled};

pub use retention::{DEFAULT_RETENTION, PRUNE_BATCH, Pruned, Retention};

/// The default apalis queue (the "job type") gcm-queue's jobs live in: a fixed name
/// rather than apalis's default (the Rust type's path), so that renaming a type never
/// strands stored jobs.
pub const QUEUE_NAME: &str = "gcm-queue";

/// How long a backend may take to answer one command (SQLite's busy wait, a Redis reply)
/// before it is an error: workers, settlements and readers share one loaded server.
#[cfg(any(feature = "sqlite", feature = "redis"))]
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting to a server (PostgreSQL, Redis) may take before it is an error
/// that names its cause: an unreachable backend is reported, not waited on in silence.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL advisory lock that serializes schema set-up: replicas started together
/// on a new database would otherwise race on `CREATE TABLE IF NOT EXISTS` and `CREATE TYPE`
/// (both fail when another session creates the same name first).
#[cfg(feature = "postgres")]
const SETUP_LOCK: i64 = 0x6763_6d2d_7175_6575; // "gcm-queue"

/// Which queue, and how its workers take jobs and notice dead ones.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// The queue's name (default [`QUEUE_NAME`]): queues of different names share a
    /// database without seeing each other's jobs (Redis keeps their results apart too).
    pub name: String,
    /// How often a worker says it is alive (default 5 s). Keep it at 2 s or more: apalis
    /// stores heartbeats in whole seconds, and at 1 s a busy but live worker can look
    /// dead (3 missed), so that another takes its jobs and sends them a second time.
    pub heartbeat: Duration,
    /// Heartbeats missed before a worker's jobs are handed to another (default 3).
    pub missed_heartbeats: usize,
    /// Jobs fetched per poll (default 1). apalis 1.0 sends no heartbeat while fetched jobs
    /// wait in its buffer (its `poll_ready` checks the timer only when the buffer is
    /// empty): with a batch larger than the free slots, a live worker looks dead and its
    /// jobs are handed to another. One job per fetch keeps the heartbeat going; a job is
    /// up to 1000 messages, so the fetch is a small part of its cost.
    pub batch_size: usize,
    /// How often an idle worker looks for due jobs (default 100 ms): the latency of a
    /// new job and the precision of a scheduled retry.
    pub poll: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            name: QUEUE_NAME.to_owned(),
            heartbeat: Duration::from_secs(5),
            missed_heartbeats: 3,
            batch_size: 1,
            poll: Duration::from_millis(100),
        }
    }
}

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The worker's name, unique among running workers. A worker restarted under the same
    /// name takes back at once the jobs its previous run left running. After a backend
    /// failure, apalis's worker starts again as `<name>~1`, `<name>~2`…, so that what the
    /// lost run had fetched is re-enqueued once its heartbeats stop.
    pub name: String,
    /// Jobs in flight at once.
    pub concurrency: usize,
    /// On shutdown, how long jobs in flight may take to finish; the others are left to
    /// be taken back (by this worker's next run, or by another after missed heartbeats).
    pub grace: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self { name: format!("gcm-worker-{}", std::process::id()), concurrency: 4, grace: Duration::from_secs(30) }
    }
}

/// A job queue and its result store, on one backend.
#[derive(Clone)]
pub struct Queue {
    backend: Backend,
    poll: Duration,
    name: String,
}

#[derive(Clone)]
enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite { storage: apalis_sqlite::SqliteStorage<Ticket>, results: crate::SqlResults<sqlx::Sqlite> },
    #[cfg(feature = "postgres")]
    Postgres { storage: apalis_postgres::PostgresStorage<Ticket>, results: crate::SqlResults<sqlx::Postgres> },
    #[cfg(feature = "redis")]
    Redis { storage: apalis_redis::RedisStorage<Ticket>, results: crate::RedisResults },
}

impl Backend {
    /// The ticket as apalis will hold it: the SQL backends keep the payload in their own
    /// table first, out of apalis's row; Redis keeps it in the ticket (apalis-redis writes
    /// a job once and moves its id between lists).
    async fn ticket(&self, job: &Job) -> Result<Ticket, Error> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite { results, .. } => results.keep_payload(job).await.map(|()| Ticket::without_payload(job)),
            #[cfg(feature = "postgres")]
            Self::Postgres { results, .. } => results.keep_payload(job).await.map(|()| Ticket::without_payload(job)),
            #[cfg(feature = "redis")]
            Self::Redis { .. } => Ok(Ticket::holding(job)),
        }
    }

    /// The payload an attempt was enqueued with, while the backend keeps it: beside the
    /// ticket on SQL, in apalis's task on Redis (found by the attempt's idempotency key).
    fn payload<'a>(&'a self, job_id: &'a str, attempt: u32) -> BoxFuture<'a, Result<Option<crate::Payload>, Error>> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite { results, .. } => Box::pin(results.payload(job_id, attempt)),
            #[cfg(feature = "postgres")]
            Self::Postgres { results, .. } => Box::pin(results.payload(job_id, attempt)),
            #[cfg(feature = "redis")]
            Self::Redis { storage, .. } => Box::pin(redis_payload(storage, job_id, attempt)),
        }
    }
}

/// The payload of attempt `attempt` of job `job_id` as apalis-redis holds it: the attempt's
/// idempotency key names the task, whose data is the ticket until apalis vacuums it.
#[cfg(feature = "redis")]
async fn redis_payload(
    storage: &apalis_redis::RedisStorage<Ticket>,
    job_id: &str,
    attempt: u32,
) -> Result<Option<crate::Payload>, Error> {
    use redis::AsyncCommands as _;
    let config = storage.get_config();
    let mut connection = storage.clone().get_connection().clone();
    let key = format!("{}:{job_id}:{attempt}", config.idempotency_key_set());
    let task: Option<String> = connection.get(&key).await.map_err(queue_error)?;
    let Some(task) = task else { return Ok(None) };
    let data: Option<Vec<u8>> = connection.hget(config.job_data_hash(), task).await.map_err(queue_error)?;
    let Some(data) = data else { return Ok(None) };
    let ticket: Ticket =
        serde_json::from_slice(&data).map_err(|error| Error::Queue(format!("a task apalis holds: {error}").into()))?;
    Ok(ticket.into_job(None).map(|job| job.payload))
}

impl std::fmt::Debug for Queue {
    // The URL is not kept: it may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.backend_name())
    }
}

fn queue_error(error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Queue(Box::new(error))
}

/// SQLITE_BUSY, primary or extended (`SQLITE_BUSY_SNAPSHOT`, `SQLITE_BUSY_RECOVERY`…).
#[cfg(feature = "sqlite")]
fn is_busy(error: &apalis_sqlite::Error) -> bool {
    let apalis_sqlite::Error::Database(error) = error else { return false };
    let code = error.as_database_error().and_then(|error| error.code()).and_then(|code| code.parse::<i32>().ok());
    code.is_some_and(|code| code & 0xff == 5)
}

/// Rolls back a transaction left open on a connection returned to the pool. A statement
/// that fails with SQLITE_FULL (or an I/O error) makes SQLite roll back or keep the
/// transaction as it decides, and sqlx's count of open transactions can then disagree with
/// it: a transaction left open holds the write lock forever, and every other process
/// waits on it (seen with the filesystem full for 20 s). With no transaction open, the
/// ROLLBACK is refused at once and nothing happens.
#[cfg(feature = "sqlite")]
async fn end_leaked_transaction(connection: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Executor as _;
    let _ = connection.execute("ROLLBACK").await;
    Ok(true)
}

/// Holds an exclusive lock on `path` (created if missing) until dropped; waits for it
/// within the busy bound.
#[cfg(feature = "sqlite")]
async fn lock_file(path: &std::path::Path) -> Result<std::fs::File, Error> {
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(queue_error)?;
    let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Queue(format!("{} stayed locked for {REPLY_TIMEOUT:?}", path.display()).into()));
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(queue_error(error)),
        }
    }
}

/// Seconds since the Unix epoch at or after `millis`: apalis schedules by the second, and
/// a retry must never run before its delay.
fn run_at_seconds(millis: u64) -> u64 {
    millis.div_ceil(1000)
}

// Each backend is its own type behind the same apalis traits; the bounds a generic
// function would need are long, so each arm spells the same code out.
macro_rules! each_backend {
    ($queue:expr, |$storage:ident, $results:ident| $body:expr) => {
        match &$queue.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { storage: $storage, results: $results } => $body,
            #[cfg(feature = "postgres")]
            Backend::Postgres { storage: $storage, results: $results } => $body,
            #[cfg(feature = "redis")]
            Backend::Redis { storage: $storage, results: $results } => $body,
        }
    };
}

// After `each_backend!`, which they use.
mod activity;
mod campaigns;
mod retention;
mod webhooks;

pub use self::activity::Worker;
pub use self::campaigns::{Campaign, MOST_CAMPAIGN_JOBS, Requeued, RequeuedJob};

impl Queue {
    /// Connects to the queue at `url` (see the module's table) with the default
    /// configuration, creating its tables if they are missing.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url, &QueueConfig::default()).await
    }

    /// Connects to the queue at `url` with `config`.
    pub async fn connect_with(url: &str, config: &QueueConfig) -> Result<Self, Error> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            #[cfg(feature = "sqlite")]
            "sqlite" => Self::sqlite(url, config).await,
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Self::postgres(url, config).await,
            #[cfg(feature = "redis")]
            "redis" | "rediss" => Self::redis(url, config).await,
            _ => Err(Error::Config(format!(
                "unsupported queue URL scheme {scheme:?}: this build reads {}",
                Self::schemes().join(", ")
            ))),
        }
    }

    /// The URL schemes this build supports (its cargo features).
    pub fn schemes() -> Vec<&'static str> {
        [
            cfg!(feature = "sqlite").then_some("sqlite:"),
            cfg!(feature = "postgres").then_some("postgres://"),
            cfg!(feature = "redis").then_some("redis://"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    #[cfg(feature = "sqlite")]
    async fn sqlite(url: &str, config: &QueueConfig) -> Result<Self, Error> {
        use std::str::FromStr;
        let options = apalis_sqlite::SqliteConnectOptions::from_str(url)
            .map_err(queue_error)?
            .create_if_missing(true)
            .busy_timeout(REPLY_TIMEOUT)
            // Durable: a commit is on disk when it returns (apalis's set-up turns this off;
            // it is set again after it, and on every connection the pool opens later).
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
            // Pages mapped rather than read(): a 1000-token job is 150 KB read back at once.
            .pragma("mmap_size", "268435456")
            // apalis's set-up asks for a 250 MB page cache (64 000 pages), which a long
            // campaign fills: 16 MiB, as SQLite counts it (negative: KiB).
            .pragma("cache_size", "-16384");
        // One writer at a time is all SQLite allows: one connection queues the process's
        // statements in order, where several would wait on each other in SQLite's busy
        // handler (sleeps of up to 100 ms).
        let open = || async {
            let pool = apalis_sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .after_release(|connection, _| Box::pin(end_leaked_transaction(connection)))
                .connect_with(options.clone())
                .await?;
            apalis_sqlite::SqliteStorage::setup(&pool).await?;
            sqlx::query("PRAGMA synchronous = FULL").execute(&pool).await?;
            sqlx::query("PRAGMA cache_size = -16384").execute(&pool).await?;
            Ok::<_, apalis_sqlite::Error>(pool)
        };
        // Processes started together would race on apalis's migrations (sqlx takes no lock
        // on SQLite: "UNIQUE constraint failed: _sqlx_migrations.version"): a lock file
        // beside the database lets one set up at a time. Not the database file itself:
        // closing any descriptor of it would drop SQLite's own POSIX locks.
        let filename = options.get_filename();
        let _setup = match filename.to_str() {
            Some(":memory:") | Some("") | None => None,
            Some(_) => Some(lock_file(&filename.with_extension("setup-lock")).await?),
        };
        // SQLite answers "database is locked" at once, without its busy wait, where waiting
        // could deadlock (a read that becomes a write, as setup's `PRAGMA optimize` may): a
        // worker started beside busy ones saw it once. Open again, within the busy bound.
        let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
        let pool = loop {
            match open().await {
                Err(error) if is_busy(&error) && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                opened => break opened.map_err(queue_error)?,
            }
        };
        let apalis_config = apalis_sqlite::Config::default()
            .queue(&config.name)
            .heartbeat_interval(config.heartbeat)
            .missed_heartbeats(config.missed_heartbeats)
            .batch_size(config.batch_size);
        let storage = apalis_sqlite::SqliteStorage::new(&pool).with_config(apalis_config);
        let results = crate::SqlResults::<sqlx::Sqlite>::setup(&pool).await?;
        Ok(Self { backend: Backend::Sqlite { storage, results }, poll: config.poll, name: config.name.clone() })
    }

    #[cfg(feature = "postgres")]
    async fn postgres(url: &str, config: &QueueConfig) -> Result<Self, Error> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect(url)
            .await
            .map_err(queue_error)?;
        // One process at a time sets the schema up; the others wait, then find it done.
        let mut lock = pool.acquire().await.map_err(queue_error)?;
        sqlx::query("SELECT pg_advisory_lock($1)").bind(SETUP_LOCK).execute(&mut *lock).await.map_err(queue_error)?;
        let set_up = async {
            apalis_postgres::PostgresStorage::setup(&pool).await.map_err(queue_error)?;
            crate::SqlResults::<sqlx::Postgres>::setup(&pool).await
        }
        .await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)").bind(SETUP_LOCK).execute(&mut *lock).await;
        let results = set_up?;
        unlocked.map_err(queue_error)?;
        let apalis_config = apalis_postgres::Config::default()
            .queue(&config.name)
            .heartbeat_interval(config.heartbeat)
            .missed_heartbeats(config.missed_heartbeats)
            .batch_size(config.batch_size);
        let storage = apalis_postgres::PostgresStorage::new(&pool).with_config(apalis_config);
        Ok(Self { backend: Backend::Postgres { storage, results }, poll: config.poll, name: config.name.clone() })
    }

    #[cfg(feature = "redis")]
    async fn redis(url: &str, config: &QueueConfig) -> Result<Self, Error> {
        // redis-rs gives up on a reply after 500 ms by default: too short for reading 10 000
        // results, or for a settlement's script, while a busy Redis serves every worker.
        // A reply may take as long as SQLite's busy wait.
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(REPLY_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT));
        let client = redis::Client::open(url).map_err(queue_error)?;
        let connection = client.get_connection_manager_with_config(manager).await.map_err(queue_error)?;
        let apalis_config = apalis_redis::Config::default()
            .queue(&config.name)
            .heartbeat_interval(config.heartbeat)
            .missed_heartbeats(config.missed_heartbeats)
            .batch_size(config.batch_size)
            // apalis-redis keeps idempotency keys forever unless told otherwise; a retry is
            // pushed again within minutes of its first push, not weeks.
            .idempotency_ttl(Some(Duration::from_secs(7 * 24 * 3600)));
        let storage = apalis_redis::RedisStorage::new(connection.clone()).with_config(apalis_config);
        let results = crate::RedisResults::with_prefix(connection, &config.name);
        Ok(Self { backend: Backend::Redis { storage, results }, poll: config.poll, name: config.name.clone() })
    }

    /// Closes the queue's connections (SQL pools; Redis's close when the last clone goes),
    /// waiting for those in use to be returned.
    pub async fn close(&self) {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { storage, .. } => storage.pool().close().await,
            #[cfg(feature = "postgres")]
            Backend::Postgres { storage, .. } => storage.pool().close().await,
            #[cfg(feature = "redis")]
            Backend::Redis { .. } => {}
        }
    }

    /// The backend's name: `sqlite`, `postgres` or `redis`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { .. } => "sqlite",
            #[cfg(feature = "postgres")]
            Backend::Postgres { .. } => "postgres",
            #[cfg(feature = "redis")]
            Backend::Redis { .. } => "redis",
        }
    }

    /// Enqueues `job`, due now. Enqueueing the same job (id and attempt) twice enqueues
    /// it once.
    pub async fn enqueue(&self, job: &Job) -> Result<(), Error> {
        self.enqueue_at(job, None).await
    }

    /// Enqueues `job`, due at `send_at_ms` (milliseconds since the Unix epoch) or, without
    /// one, now; a first attempt is registered with the result store first, so that its
    /// summary knows it before anything is sent.
    pub async fn enqueue_at(&self, job: &Job, send_at_ms: Option<u64>) -> Result<(), Error> {
        if job.attempt == 0 {
            self.results().0.register(&Enqueued::of(job, send_at_ms)).await?;
        }
        self.push(job, send_at_ms).await
    }

    /// Pushes `job`, due at `run_at_ms` or, without one, now.
    async fn push(&self, job: &Job, run_at_ms: Option<u64>) -> Result<(), Error> {
        let ticket = self.backend.ticket(job).await?;
        let mut task = TaskBuilder::new(ticket).idempotency_key(job.idempotency_key()).max_attempts(25);
        if let Some(run_at_ms) = run_at_ms {
            task = task.run_at_timestamp(run_at_seconds(run_at_ms));
        }
        let task = task.build();
        fn pushed<E: std::fmt::Display>(result: Result<(), TaskSinkError<E>>) -> Result<(), Error> {
            result.map_err(|error| Error::Queue(error.to_string().into()))
        }
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { storage, .. } => pushed(storage.clone().push_task(task).await),
            #[cfg(feature = "postgres")]
            Backend::Postgres { storage, .. } => match storage.clone().push_task(task).await {
                // apalis-postgres inserts without ON CONFLICT (SQLite and Redis skip a known
                // key): a unique violation is the second push of this idempotency key.
                Err(TaskSinkError::PushError(apalis_postgres::Error::Database(sqlx::Error::Database(error))))
                    if error.is_unique_violation() =>
                {
                    Ok(())
                }
                other => pushed(other),
            },
            #[cfg(feature = "redis")]
            Backend::Redis { storage, .. } => pushed(storage.clone().push_task(task).await),
        }
    }

    /// What the queue holds, read from its backend (for `/metrics`: a few scans and counts,
    /// never on a send's path).
    pub async fn stats(&self) -> Result<QueueStats, Error> {
        let mut stats = self.job_stats().await?;
        (stats.pending_deliveries, stats.dead_deliveries) =
            each_backend!(self, |_storage, results| results.delivery_counts().await?);
        Ok(stats)
    }

    /// The jobs' part of [`Queue::stats`].
    async fn job_stats(&self) -> Result<QueueStats, Error> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { storage, results } => {
                let pool = storage.pool();
                let jobs: Vec<(String, i64)> =
                    sqlx::query_as("SELECT status, COUNT(*) FROM Jobs WHERE job_type = $1 GROUP BY status")
                        .bind(&self.name)
                        .fetch_all(pool)
                        .await
                        .map_err(queue_error)?;
                let (lag,): (Option<i64>,) = sqlx::query_as(
                    "SELECT CAST(strftime('%s', 'now') AS INTEGER) - MIN(run_at) FROM Jobs \
                     WHERE job_type = $1 AND status = 'Pending' AND run_at <= CAST(strftime('%s', 'now') AS INTEGER)",
                )
                .bind(&self.name)
                .fetch_one(pool)
                .await
                .map_err(queue_error)?;
                Ok(QueueStats::new(jobs, lag, results.pending_recipients().await?))
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres { storage, results } => {
                let pool = storage.pool();
                let jobs: Vec<(String, i64)> =
                    sqlx::query_as("SELECT status, COUNT(*) FROM apalis.jobs WHERE job_type = $1 GROUP BY status")
                        .bind(&self.name)
                        .fetch_all(pool)
                        .await
                        .map_err(queue_error)?;
                let (lag,): (Option<i64>,) = sqlx::query_as(
                    "SELECT CAST(EXTRACT(EPOCH FROM now() - MIN(run_at)) AS BIGINT) FROM apalis.jobs \
                     WHERE job_type = $1 AND status = 'Pending' AND run_at <= now()",
                )
                .bind(&self.name)
                .fetch_one(pool)
                .await
                .map_err(queue_error)?;
                Ok(QueueStats::new(jobs, lag, results.pending_recipients().await?))
            }
            #[cfg(feature = "redis")]
            Backend::Redis { storage, results } => {
                let config = storage.get_config();
                let mut connection = storage.clone().get_connection().clone();
                let now = crate::job::millis(std::time::SystemTime::now()) / 1000;
                type Counts = (i64, i64, i64, i64, i64, i64, Vec<(String, f64)>);
                let (active, due_count, later, done, failed, dead, due): Counts = redis::pipe()
                    .llen(config.active_jobs_list())
                    .zcount(config.scheduled_jobs_set(), "-inf", now)
                    .zcount(config.scheduled_jobs_set(), format!("({now}"), "+inf")
                    // apalis-redis keeps done and dead tasks in plain sets (`SADD`).
                    .scard(config.done_jobs_set())
                    .zcard(config.failed_jobs_set())
                    .scard(config.dead_jobs_set())
                    .zrangebyscore_limit_withscores(config.scheduled_jobs_set(), "-inf", now, 0, 1)
                    .query_async(&mut connection)
                    .await
                    .map_err(queue_error)?;
                // apalis-redis keeps every pushed job in its scheduled set until a worker's
                // poll moves the due ones to the active list: due ones are pending.
                let pending = active.saturating_add(due_count);
                let jobs =
                    [("pending", pending), ("scheduled", later), ("done", done), ("failed", failed), ("dead", dead)];
                let jobs = jobs.into_iter().map(|(state, count)| (state.to_owned(), count)).collect();
                // Due jobs wait in the scheduled set until a worker moves them; the active
                // list keeps no times.
                let lag = due.first().map(|(_, at)| i64::try_from(now).unwrap_or(i64::MAX).saturating_sub(*at as i64));
                Ok(QueueStats::new(jobs, lag, results.pending_recipients().await?))
            }
        }
    }

    /// Cancels job `job_id`: what it has not sent is recorded `cancelled`, now when its
    /// pending attempt's payload can be read (a retry's, or any attempt's on SQL) and
    /// nobody is sending it, or else when that attempt comes due. An attempt being sent
    /// finishes, and its retry is cancelled. Returns the job's summary, `None` for a job
    /// the queue does not know.
    pub async fn cancel(&self, job_id: &str) -> Result<Option<Summary>, Error> {
        let (store, reader) = self.results();
        if !store.cancel(job_id).await? {
            return Ok(None);
        }
        let Some(summary) = reader.summary(job_id).await? else { return Ok(None) };
        let attempt = u32::try_from(summary.attempts).unwrap_or(u32::MAX);
        if summary.pending == 0 {
            return Ok(Some(summary));
        }
        let run = format!("cancel/{}", ulid::Ulid::generate());
        if store.claim(job_id, attempt, &run, Duration::from_secs(1)).await? != crate::Claim::Cancelled {
            return Ok(Some(summary)); // being sent: its retry will be cancelled
        }
        let payload = match attempt.checked_sub(1) {
            Some(previous) => {
                store.settled(job_id, previous).await?.and_then(|settled| settled.retry).map(|retry| retry.job.payload)
            }
            None => None,
        };
        let payload = match payload {
            Some(payload) => Some(payload),
            None => self.backend.payload(job_id, attempt).await?,
        };
        if let Some(payload) = payload {
            let job = Job {
                id: job_id.to_owned(),
                attempt,
                correlation_id: summary.correlation_id.clone(),
                campaign_id: summary.campaign_id.clone(),
                project: summary.project.clone(),
                webhook: summary.webhook.clone(),
                ..Job::new(payload)
            };
            store.settle(&crate::Settlement::cancelled(&job)).await?;
        }
        reader.summary(job_id).await
    }

    /// Runs a worker on this queue with `processor` until `shutdown` completes, then
    /// lets the jobs in flight finish for `options.grace`.
    ///
    /// A backend failure (a lost database, a Redis restart) stops apalis's worker: it is
    /// started again after a wait that doubles up to 10 s, with a WARN and the
    /// `backend_down` gauge, once the backend answers again. Jobs run on their own tasks, so
    /// those in flight finish and record their settlements meanwhile. Returns an error when
    /// jobs were still running at the end of the grace period.
    pub async fn work(
        &self,
        processor: Processor,
        options: &WorkerOptions,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        use futures_util::FutureExt as _;
        let processor = processor.owner(&options.name);
        let metrics = processor.metrics().clone();
        let jobs = tokio_util::task::TaskTracker::new();
        let signalled = std::sync::Arc::new(std::sync::OnceLock::new());
        let shutdown = {
            let signalled = signalled.clone();
            async move {
                shutdown.await;
                let _ = signalled.set(tokio::time::Instant::now());
            }
            .boxed()
            .shared()
        };
        let mut wait = Duration::from_secs(1);
        let mut run = options.clone();
        for restart in 1u64.. {
            // apalis's monitor returns, with or without an error, once its worker has died.
            let ended = self.run_worker(&processor, &jobs, &run, shutdown.clone()).await;
            if signalled.get().is_some() {
                if let Err(error) = ended {
                    tracing::warn!(%error, "the worker stopped with an error while shutting down");
                }
                break;
            }
            metrics.backend_down.set(1);
            let (error, cause) = match &ended {
                Err(error) => (error.to_string(), error.root_cause()),
                Ok(()) => ("apalis's worker stopped".to_owned(), "unknown".to_owned()),
            };
            tracing::warn!(worker = %options.name, %error, %cause, "the worker stopped on a backend failure; starting it again once the backend answers");
            // The worker starts again once the backend answers (the waits double up to 10 s).
            let answered = loop {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.clone() => break false,
                }
                wait = wait.saturating_mul(2).min(Duration::from_secs(10));
                // A write the backend must take (a full disk still answers reads): a
                // one-millisecond claim of an attempt no job has.
                match self.results().0.claim("", 0, &options.name, Duration::from_millis(1)).await {
                    Ok(_) => break true,
                    Err(error) => {
                        tracing::warn!(worker = %options.name, %error, cause = %error.root_cause(), retry_in_ms = wait.as_millis() as u64, "the backend still fails");
                    }
                }
            };
            if !answered {
                break;
            }
            metrics.backend_down.set(0);
            wait = Duration::from_secs(1);
            // Under a new name: a task the lost run fetched but never got (the backend
            // took the fetch, the answer was cut) stays locked by the old name, and apalis
            // re-enqueues it only once that name's heartbeats stop. Kept, they never would.
            run.name = format!("{}~{restart}", options.name);
        }
        // apalis waited for its handlers up to the grace period; a job whose handler was
        // dropped (the worker died under it) may still be running on its own task. One cut
        // off at the deadline logs what it could not record as the process ends.
        jobs.close();
        let deadline = signalled.get().copied().unwrap_or_else(tokio::time::Instant::now) + options.grace;
        match tokio::time::timeout_at(deadline, jobs.wait()).await {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::Queue(
                format!("{} jobs were still running when the grace period ended: their attempts run again", jobs.len())
                    .into(),
            )),
        }
    }

    /// Runs apalis's worker until `shutdown` (`Ok`) or a backend failure (`Err`, with the
    /// worker's error: apalis's monitor itself ends `Ok` once its worker has died).
    async fn run_worker(
        &self,
        processor: &Processor,
        jobs: &tokio_util::task::TaskTracker,
        options: &WorkerOptions,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        async fn handle(
            ticket: Ticket,
            processor: Data<Processor>,
            jobs: Data<tokio_util::task::TaskTracker>,
            backend: Data<Backend>,
        ) -> Result<(), BoxDynError> {
            // On its own task: if apalis drops this handler (its worker died on a backend
            // error), the send still ends with its settlement recorded.
            use tracing::Instrument as _;
            let processor = Processor::clone(&processor);
            // Every line logged for this job names the worker, the job and the attempt.
            let span = tracing::error_span!(
                "job",
                worker = %processor.owner_name(),
                id = %ticket.id,
                attempt = ticket.attempt,
                campaign = ticket.campaign_id.as_deref(),
                correlation = ticket.correlation_id.as_deref(),
            );
            let backend = Backend::clone(&backend);
            let running = jobs.spawn(
                async move {
                    let kept = if ticket.holds_payload() {
                        None
                    } else {
                        processor.persist("read a job's payload", || backend.payload(&ticket.id, ticket.attempt)).await
                    };
                    let missing = format!("the payload of job {} attempt {} is missing", ticket.id, ticket.attempt);
                    let job = ticket.into_job(kept).ok_or_else(|| Error::Store(missing.into()))?;
                    processor.process(&job).await
                }
                .instrument(span.clone()),
            );
            match running.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => {
                    let _entered = span.enter();
                    tracing::error!(%error, "job not settled; the queue will run it again");
                    Err(error.into())
                }
                Err(panicked) => Err(panicked.into()),
            }
        }
        let signal = async move {
            shutdown.await;
            Ok(())
        };
        let failure = std::sync::Arc::new(std::sync::Mutex::new(None));
        let ended = each_backend!(self, |storage, _results| {
            let (storage, name, concurrency) = (storage.clone(), options.name.clone(), options.concurrency.max(1));
            let (processor, jobs, poll, backend) = (processor.clone(), jobs.clone(), self.poll, self.backend.clone());
            let failed = failure.clone();
            Monitor::new()
                .register(move |_| {
                    WorkerBuilder::new(name.clone())
                        .backend(storage.clone().poll_with_interval(poll))
                        .data(processor.clone())
                        .data(jobs.clone())
                        .data(backend.clone())
                        .concurrency(concurrency)
                        .build(handle)
                })
                // Restarted by `work`, after a wait: apalis would restart it at once.
                .should_restart(move |_, error| {
                    *failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error.to_string());
                    false
                })
                .shutdown_timeout(options.grace)
                .run_with_signal(signal)
                .await
                .map_err(queue_error)
        });
        let failed = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        match failed {
            Some(error) => Err(Error::Queue(error.into())),
            None => ended,
        }
    }

    fn results(&self) -> (&dyn ResultStore, &dyn ResultReader) {
        each_backend!(self, |_storage, results| (results, results))
    }
}

impl Enqueue for Queue {
    fn enqueue<'a>(&'a self, job: &'a Job, run_at_ms: u64) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.push(job, Some(run_at_ms)))
    }
}

impl ResultStore for Queue {
    fn settled<'a>(&'a self, job_id: &'a str, attempt: u32) -> BoxFuture<'a, Result<Option<Settled>, Error>> {
        self.results().0.settled(job_id, attempt)
    }

    fn claim<'a>(
        &'a self,
        job_id: &'a str,
        attempt: u32,
        owner: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<crate::Claim, Error>> {
        self.results().0.claim(job_id, attempt, owner, lease)
    }

    fn settle<'a>(&'a self, settlement: &'a crate::Settlement) -> BoxFuture<'a, Result<Settled, Error>> {
        self.results().0.settle(settlement)
    }

    fn register<'a>(&'a self, enqueued: &'a Enqueued) -> BoxFuture<'a, Result<(), Error>> {
        self.results().0.register(enqueued)
    }

    fn cancel<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        self.results().0.cancel(job_id)
    }

    fn remember<'a>(&'a self, key: &'a str, remembered: &'a str) -> BoxFuture<'a, Result<String, Error>> {
        self.results().0.remember(key, remembered)
    }
}

impl crate::Audiences for Queue {
    fn put_audience<'a>(&'a self, name: &'a str, tokens: &'a [String]) -> BoxFuture<'a, Result<u64, Error>> {
        each_backend!(self, |_storage, results| Box::pin(results.put_audience_tokens(name, tokens)))
    }

    fn add_to_audience<'a>(&'a self, name: &'a str, tokens: &'a [String]) -> BoxFuture<'a, Result<u64, Error>> {
        each_backend!(self, |_storage, results| Box::pin(results.add_audience_tokens(name, tokens)))
    }

    fn audience_page<'a>(
        &'a self,
        name: &'a str,
        after: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<crate::AudienceToken>, Error>> {
        each_backend!(self, |_storage, results| Box::pin(results.audience_tokens(name, after, limit)))
    }

    fn audience_recipients<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, Error>> {
        each_backend!(self, |_storage, results| Box::pin(results.audience_sendable(name)))
    }

    fn delete_audience<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        each_backend!(self, |_storage, results| Box::pin(results.drop_audience(name)))
    }

    fn audience_changes<'a>(
        &'a self,
        name: &'a str,
        since: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<crate::AudienceChange>, Error>> {
        each_backend!(self, |_storage, results| Box::pin(results.audience_feed(name, since, limit)))
    }
}

impl crate::Quota for Queue {
    fn take<'a>(
        &'a self,
        bucket: &'a str,
        rate: &'a crate::Rate,
        messages: u64,
    ) -> BoxFuture<'a, Result<Duration, Error>> {
        each_backend!(self, |_storage, results| Box::pin(results.take_quota(bucket, rate, messages)))
    }

    fn pause<'a>(&'a self, bucket: &'a str, pause: Duration) -> BoxFuture<'a, Result<(), Error>> {
        each_backend!(self, |_storage, results| Box::pin(results.pause_quota(bucket, pause)))
    }
}

impl ResultReader for Queue {
    fn since<'a>(&'a self, cursor: u64, limit: usize) -> BoxFuture<'a, Result<Vec<(u64, Record)>, Error>> {
        self.results().1.since(cursor, limit)
    }

    fn summary<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<Option<Summary>, Error>> {
        self.results().1.summary(job_id)
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use std::str::FromStr as _;

    use sqlx::{ConnectOptions as _, Connection as _};

    use super::is_busy;

    #[tokio::test]
    async fn sqlite_commits_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let queue = super::Queue::connect(&format!("sqlite:{}", dir.path().join("q.db").display())).await.unwrap();
        #[allow(irrefutable_let_patterns)] // with SQLite the only backend built
        let super::Backend::Sqlite { storage, .. } = &queue.backend else { panic!("a SQLite queue") };
        let (synchronous,): (i64,) = sqlx::query_as("PRAGMA synchronous").fetch_one(storage.pool()).await.unwrap();
        let (journal,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(storage.pool()).await.unwrap();
        // apalis's set-up leaves 0 (OFF): a power loss could undo a commit.
        assert_eq!((synchronous, journal.as_str()), (2, "wal"), "synchronous = FULL, journal_mode = WAL");
        let (cache,): (i64,) = sqlx::query_as("PRAGMA cache_size").fetch_one(storage.pool()).await.unwrap();
        assert_eq!(cache, -16384, "16 MiB of page cache, not apalis's 64 000 pages");
    }

    /// apalis updates its row at each step of a job, and SQLite writes a whole row again on
    /// every update: the row holds the job without its payload, which waits beside it.
    #[tokio::test]
    async fn apalis_row_holds_the_job_without_its_payload() {
        let dir = tempfile::tempdir().unwrap();
        let queue = super::Queue::connect(&format!("sqlite:{}", dir.path().join("q.db").display())).await.unwrap();
        let tokens = (0..1000).map(|i| format!("token-{i:04}-{}", "x".repeat(140)));
        let job = crate::Job::v1_multicast(gcm_hyper::v1::Multicast::new(tokens.collect::<Vec<_>>()));
        queue.enqueue(&job).await.unwrap();
        #[allow(irrefutable_let_patterns)] // with SQLite the only backend built
        let super::Backend::Sqlite { storage, .. } = &queue.backend else { panic!("a SQLite queue") };
        let (row,): (i64,) = sqlx::query_as("SELECT length(job) FROM Jobs").fetch_one(storage.pool()).await.unwrap();
        let (kept,): (i64,) =
            sqlx::query_as("SELECT length(payload) FROM gcm_payloads").fetch_one(storage.pool()).await.unwrap();
        assert!(row < 200 && kept > 150_000, "apalis's row: {row} bytes, the payload beside it: {kept}");
    }

    #[tokio::test]
    async fn a_locked_database_is_busy_and_other_errors_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("locked.db").display());
        let options = apalis_sqlite::SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true);
        let mut holder = options.connect().await.unwrap();
        sqlx::query("BEGIN EXCLUSIVE").execute(&mut holder).await.unwrap();
        let mut other = options.clone().busy_timeout(std::time::Duration::ZERO).connect().await.unwrap();
        let locked = sqlx::query("BEGIN EXCLUSIVE").execute(&mut other).await.unwrap_err();
        assert!(is_busy(&locked.into()));
        let syntax = sqlx::query("NOT SQL").execute(&mut other).await.unwrap_err();
        assert!(!is_busy(&syntax.into()));
        holder.close().await.unwrap();
    }
}
