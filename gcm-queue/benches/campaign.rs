//! A campaign through the queue beside the same campaign sent directly, each side in its
//! own processes: gcm-mock (recording off) runs in a child process, `gcm-worker run`
//! processes drain the queue, and the direct side sends from this process with the same
//! client (`FcmClient::send_multicast`, as many multicasts in flight as the worker runs
//! jobs). Every run sends `--jobs` multicasts of 1000 distinct tokens (default 1000: a
//! 1 000 000-token campaign) and prints, per side: wall time, tokens/s, CPU per 1000 tokens
//! of the sender, the mock and the database server, the worker's peak RSS, the database's
//! size after, and duplicates (deliveries the mock counted beyond one per token).
//!
//! The queue side's time runs from the worker's spawn (the jobs are already enqueued, each
//! with its own tokens) to the moment the last job's settlement is read back; enqueueing is
//! timed apart. Its ratio is direct time / queue time: the queue's throughput as a share
//! of direct sending.
//!
//! ```text
//! cargo bench -p gcm-queue --bench campaign                     # SQLite
//! bash scripts/test-servers.sh start
//! cargo bench -p gcm-queue --features postgres,redis --bench campaign -- --runs 3
//! ```
//!
//! Options: `--jobs N`, `--runs N`, `--workers N` (worker processes), `--concurrency N`
//! (jobs in flight per worker), `--backend sqlite|postgres|redis` (repeatable),
//! `--queue-only` (no direct side: to profile the queue).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a bench may fail loudly

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use gcm_hyper::gcm_proto::Fate;
use gcm_hyper::v1::{Fcm, Multicast};
use gcm_hyper::{Credentials, FcmClient};
use gcm_queue::{Job, Queue, QueueConfig, ResultReader as _};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Set in the child process that serves as the mock.
const MOCK_ROLE: &str = "GCM_CAMPAIGN_MOCK_KEY_FILE";
const TOKENS_PER_JOB: usize = 1000;
/// Linux's `USER_HZ`, the unit of `/proc/<pid>/stat`'s CPU times (fixed by the ABI).
const TICKS_PER_SECOND: f64 = 100.0;

struct Options {
    jobs: usize,
    runs: usize,
    workers: usize,
    concurrency: usize,
    backends: Vec<String>,
    /// No direct side: the queue alone, to profile it.
    queue_only: bool,
}

fn options() -> Options {
    let mut options =
        Options { jobs: 1000, runs: 1, workers: 1, concurrency: 4, backends: Vec::new(), queue_only: false };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--jobs" => options.jobs = value().parse().expect("--jobs N"),
            "--runs" => options.runs = value().parse().expect("--runs N"),
            "--workers" => options.workers = value().parse().expect("--workers N"),
            "--concurrency" => options.concurrency = value().parse().expect("--concurrency N"),
            "--backend" => options.backends.push(value()),
            "--queue-only" => options.queue_only = true,
            _ => {} // cargo's own (`--bench`)
        }
    }
    if options.backends.is_empty() {
        options.backends.push("sqlite".to_owned());
        for (name, enabled) in [("postgres", cfg!(feature = "postgres")), ("redis", cfg!(feature = "redis"))] {
            if enabled {
                options.backends.push(name.to_owned());
            } else {
                eprintln!(
                    "campaign: no {name} rows (needs --features {name} and `bash scripts/test-servers.sh start`)"
                );
            }
        }
    }
    options
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if let Some(key_file) = std::env::var_os(MOCK_ROLE) {
        return runtime.block_on(serve_mock(PathBuf::from(key_file)));
    }
    let options = options();
    runtime.block_on(bench(&options));
}

/// The mock's process: prints its v1 base URL, writes its service account to `key_file`,
/// answers each `delivered` line on stdin with its count, and stops at the end of stdin.
async fn serve_mock(key_file: PathBuf) {
    let server = gcm_mock::MockServer::builder().recording(false).start().await.unwrap();
    std::fs::write(&key_file, server.service_account_json().unwrap()).unwrap();
    let mut stdout = tokio::io::stdout();
    stdout.write_all(format!("{}\n", server.v1_base_url()).as_bytes()).await.unwrap();
    stdout.flush().await.unwrap();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(_)) = lines.next_line().await {
        let delivered = server.recording_stats().delivered;
        stdout.write_all(format!("{delivered}\n").as_bytes()).await.unwrap();
        stdout.flush().await.unwrap();
    }
    server.shutdown().await;
}

/// gcm-mock in a child process (this bench, run again in the mock's role).
struct Mock {
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
    base_url: String,
    key_file: PathBuf,
}

impl Mock {
    async fn spawn(dir: &Path) -> Self {
        let key_file = dir.join("service-account.json");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(MOCK_ROLE, &key_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let base_url = stdout.next_line().await.unwrap().expect("the mock prints its URL");
        Self { child, stdin, stdout, base_url, key_file }
    }

    async fn delivered(&mut self) -> u64 {
        self.stdin.write_all(b"delivered\n").await.unwrap();
        self.stdout.next_line().await.unwrap().expect("the mock answers").parse().unwrap()
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }
}

/// A process's CPU time so far (user + system), from `/proc/<pid>/stat`.
fn cpu(pid: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return Duration::ZERO };
    // Fields after the command, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / TICKS_PER_SECOND)
}

/// The CPU time of every process named `postgres` or `redis-server`: the database servers.
fn database_cpu() -> Duration {
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|byte| byte.is_ascii_digit()) {
            continue;
        }
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if matches!(comm.trim(), "postgres" | "redis-server") {
            total += cpu(&name);
        }
    }
    total
}

/// A process's peak resident set, from `/proc/<pid>/status`.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .map_or(0.0, |value| value.trim().trim_end_matches("kB").trim().parse::<f64>().unwrap_or(0.0));
    kib / 1024.0
}

/// The campaign's multicasts: `jobs` × 1000 distinct tokens of FCM's length and alphabet,
/// as random as real ones (so that a database compresses them no better than real ones).
fn campaign(run: &str, jobs: usize) -> Vec<Multicast> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state =
        0x9e37_79b9_7f4a_7c15_u64 ^ run.bytes().fold(0u64, |hash, byte| hash.rotate_left(5) ^ u64::from(byte));
    let mut random = move || {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..jobs)
        .map(|job| {
            let tokens = (0..TOKENS_PER_JOB).map(|i| {
                let tail: String = (0..134).map(|_| char::from(ALPHABET[(random() % 64) as usize])).collect();
                format!("{run}-{job:05}-{i:04}:APA91b{tail}")
            });
            Multicast::new(tokens.collect::<Vec<_>>()).data("kind", "sync").data("campaign", run)
        })
        .collect()
}

/// What one side of a run measured.
#[derive(Clone, Copy, Default)]
struct Figures {
    wall: Duration,
    enqueue: Duration,
    sender_cpu: Duration,
    mock_cpu: Duration,
    database_cpu: Duration,
    peak_rss_mib: f64,
    database_mib: f64,
    duplicates: i64,
}

impl Figures {
    fn tokens_per_second(&self, tokens: usize) -> f64 {
        tokens as f64 / self.wall.as_secs_f64()
    }

    fn print(&self, label: &str, tokens: usize) {
        let per_1000 = |cpu: Duration| cpu.as_secs_f64() * 1000.0 / tokens as f64 * 1000.0;
        println!(
            "  {label:<7} wall {:>7.2} s  {:>8.0} tokens/s  CPU ms per 1000 tokens: sender {:>5.1}, mock {:>5.1}, database {:>5.1}  \
             peak RSS {:>6.1} MiB  database {:>7.1} MiB  enqueue {:>6.2} s  duplicates {}",
            self.wall.as_secs_f64(),
            self.tokens_per_second(tokens),
            per_1000(self.sender_cpu),
            per_1000(self.mock_cpu),
            per_1000(self.database_cpu),
            self.peak_rss_mib,
            self.database_mib,
            self.enqueue.as_secs_f64(),
            self.duplicates,
        );
    }
}

async fn direct(mock: &mut Mock, multicasts: &[Multicast], in_flight: usize) -> Figures {
    let own = std::process::id().to_string();
    let (mock_pid, delivered) = (mock.pid().to_string(), mock.delivered().await);
    let (cpu_before, mock_before) = (cpu(&own), cpu(&mock_pid));
    let started = Instant::now();
    let credentials = Credentials::from_file(&mock.key_file).unwrap();
    let fcm = Fcm::new(credentials.project_id().unwrap()).unwrap().with_base_url(&mock.base_url).unwrap();
    let client = FcmClient::new(fcm, credentials).unwrap();
    let mut pending = multicasts.iter();
    let mut sending = FuturesUnordered::new();
    loop {
        while sending.len() < in_flight {
            let Some(multicast) = pending.next() else { break };
            sending.push(client.send_multicast(multicast));
        }
        match sending.next().await {
            Some(report) => {
                let report = report.unwrap();
                let delivered = report.outcome.fates().all(|(_, fate)| matches!(fate, Fate::Delivered { .. }));
                assert!(delivered, "the mock delivers every token");
            }
            None => break,
        }
    }
    let wall = started.elapsed();
    let tokens = (multicasts.len() * TOKENS_PER_JOB) as i64;
    Figures {
        wall,
        sender_cpu: cpu(&own) - cpu_before,
        mock_cpu: cpu(&mock_pid) - mock_before,
        duplicates: (mock.delivered().await - delivered) as i64 - tokens,
        ..Figures::default()
    }
}

/// Where a run's queue lives, fresh for the run, and what it weighs after.
enum Store {
    Sqlite {
        file: PathBuf,
    },
    #[cfg(feature = "postgres")]
    Postgres {
        admin: String,
        database: String,
    },
    #[cfg(feature = "redis")]
    Redis {
        url: String,
        used_before: u64,
    },
}

/// A server URL from the environment or the file `scripts/test-servers.sh` writes.
#[cfg(any(feature = "postgres", feature = "redis"))]
fn server_url(variable: &str) -> String {
    std::env::var(variable)
        .ok()
        .or_else(|| {
            let text =
                std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/test-servers.env")).ok()?;
            text.lines().find_map(|line| line.strip_prefix(&format!("{variable}="))).map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("{variable} is not set: run `bash scripts/test-servers.sh start`"))
}

#[cfg(feature = "redis")]
async fn redis_command(url: &str, command: &str, arg: Option<&str>) -> redis::Value {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(command);
    if let Some(arg) = arg {
        cmd.arg(arg);
    }
    cmd.query_async(&mut connection).await.unwrap()
}

#[cfg(feature = "redis")]
async fn redis_used_memory(url: &str) -> u64 {
    let info = match redis_command(url, "INFO", Some("memory")).await {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes).unwrap(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("INFO memory: {other:?}"),
    };
    info.lines().find_map(|line| line.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap()
}

impl Store {
    async fn fresh(backend: &str, dir: &Path, run: &str) -> Self {
        match backend {
            "sqlite" => Self::Sqlite { file: dir.join(format!("{run}.db")) },
            #[cfg(feature = "postgres")]
            "postgres" => {
                use sqlx::Connection as _;
                let admin = server_url("GCM_QUEUE_POSTGRES_URL");
                // Digits, letters and underscores only: safe to write into the statement.
                let database = format!("gcm_bench_{}", run.replace('-', "_"));
                let mut connection = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
                    .execute(&mut connection)
                    .await
                    .unwrap();
                Self::Postgres { admin, database }
            }
            #[cfg(feature = "redis")]
            "redis" => {
                // A database of its own, emptied before and after.
                let url =
                    format!("{}9", server_url("GCM_QUEUE_REDIS_URL").trim_end_matches(|c: char| c.is_ascii_digit()));
                redis_command(&url, "FLUSHDB", None).await;
                let used_before = redis_used_memory(&url).await;
                Self::Redis { url, used_before }
            }
            other => panic!("unknown or disabled backend {other}"),
        }
    }

    fn url(&self) -> String {
        match self {
            Self::Sqlite { file } => format!("sqlite:{}", file.display()),
            #[cfg(feature = "postgres")]
            Self::Postgres { admin, database } => {
                let (server, _) = admin.rsplit_once('/').unwrap();
                format!("{server}/{database}")
            }
            #[cfg(feature = "redis")]
            Self::Redis { url, .. } => url.clone(),
        }
    }

    async fn mib_and_drop(self) -> f64 {
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        match self {
            Self::Sqlite { file } => {
                let size = |suffix: &str| {
                    std::fs::metadata(format!("{}{suffix}", file.display())).map_or(0, |metadata| metadata.len())
                };
                mib(size("") + size("-wal"))
            }
            #[cfg(feature = "postgres")]
            Self::Postgres { admin, database } => {
                use sqlx::Connection as _;
                let mut connection = sqlx::PgConnection::connect(&admin).await.unwrap();
                let (size,): (i64,) = sqlx::query_as("SELECT pg_database_size($1)")
                    .bind(&database)
                    .fetch_one(&mut connection)
                    .await
                    .unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {database} WITH (FORCE)")))
                    .execute(&mut connection)
                    .await
                    .unwrap();
                mib(size as u64)
            }
            #[cfg(feature = "redis")]
            Self::Redis { url, used_before } => {
                let used = redis_used_memory(&url).await;
                redis_command(&url, "FLUSHDB", None).await;
                mib(used.saturating_sub(used_before))
            }
        }
    }
}

async fn through_the_queue(
    mock: &mut Mock,
    store: &Store,
    multicasts: &[Multicast],
    options: &Options,
    logs: &Path,
) -> Figures {
    let config = QueueConfig { name: "campaign".to_owned(), ..QueueConfig::default() };
    let queue = Queue::connect_with(&store.url(), &config).await.unwrap();
    let started = Instant::now();
    let mut jobs = Vec::with_capacity(multicasts.len());
    for multicast in multicasts {
        let job = Job::v1_multicast(multicast.clone());
        queue.enqueue(&job).await.unwrap();
        jobs.push(job.id);
    }
    let enqueue = started.elapsed();

    let (mock_pid, delivered) = (mock.pid().to_string(), mock.delivered().await);
    let (mock_before, database_before) = (cpu(&mock_pid), database_cpu());
    let started = Instant::now();
    let mut workers: Vec<Child> = (0..options.workers)
        .map(|i| {
            let log = std::fs::File::create(logs.join(format!("worker-{i}.log"))).unwrap();
            Command::new(env!("CARGO_BIN_EXE_gcm-worker"))
                .args(["run", "--queue", &store.url(), "--queue-name", &config.name])
                .arg("--credentials")
                .arg(&mock.key_file)
                .args(["--v1-endpoint", &mock.base_url, "--concurrency", &options.concurrency.to_string()])
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .unwrap()
        })
        .collect();
    // The jobs settle about in order: each pass reads the first one not yet done.
    let mut done = 0;
    let mut last_progress = Instant::now();
    while done < jobs.len() {
        if queue.summary(&jobs[done]).await.unwrap().is_some_and(|summary| summary.status == "done") {
            done += 1;
            last_progress = Instant::now();
            continue;
        }
        assert!(
            last_progress.elapsed() < Duration::from_secs(60),
            "no job settled for 60 s (logs in {})",
            logs.display()
        );
        // Rare enough to cost the database nothing measurable, while adding at most this
        // much to the wall time.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed();
    let pids: Vec<String> = workers.iter().map(|worker| worker.id().unwrap().to_string()).collect();
    let sender_cpu = pids.iter().map(|pid| cpu(pid)).sum();
    let peak_rss_mib = workers.iter().map(|worker| peak_rss_mib(worker.id().unwrap())).fold(0.0, f64::max);
    let figures = Figures {
        wall,
        enqueue,
        sender_cpu,
        mock_cpu: cpu(&mock_pid) - mock_before,
        database_cpu: database_cpu().saturating_sub(database_before),
        peak_rss_mib,
        duplicates: (mock.delivered().await - delivered) as i64 - (multicasts.len() * TOKENS_PER_JOB) as i64,
        ..Figures::default()
    };
    for (worker, pid) in workers.iter_mut().zip(&pids) {
        std::process::Command::new("kill").args(["-TERM", pid]).status().unwrap();
        let status = worker.wait().await.unwrap();
        assert!(status.success(), "the worker exited with {status} (logs in {})", logs.display());
    }
    queue.close().await;
    figures
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn bench(options: &Options) {
    let dir = tempfile::tempdir().unwrap();
    let mut mock = Mock::spawn(dir.path()).await;
    let tokens = options.jobs * TOKENS_PER_JOB;
    println!(
        "campaign: {} jobs of {TOKENS_PER_JOB} tokens, {} worker process(es) × {} jobs in flight, {} run(s) per backend",
        options.jobs, options.workers, options.concurrency, options.runs
    );
    for backend in &options.backends {
        let mut ratios = Vec::new();
        for run in 0..options.runs {
            let name = format!("r{}-{backend}-{run}", std::process::id());
            let multicasts = campaign(&name, options.jobs);
            let direct = if options.queue_only {
                Figures { wall: Duration::from_secs(1), ..Figures::default() }
            } else {
                direct(&mut mock, &multicasts, options.workers * options.concurrency).await
            };
            let multicasts = campaign(&format!("{name}-q"), options.jobs);
            let store = Store::fresh(backend, dir.path(), &name).await;
            let mut queued = through_the_queue(&mut mock, &store, &multicasts, options, dir.path()).await;
            queued.database_mib = store.mib_and_drop().await;
            let ratio = direct.wall.as_secs_f64() / queued.wall.as_secs_f64();
            println!("{backend} run {}: queue/direct {:.0} %", run + 1, ratio * 100.0);
            direct.print("direct", tokens);
            queued.print(backend, tokens);
            ratios.push(ratio);
        }
        let each: Vec<String> = ratios.iter().map(|ratio| format!("{:.0}", ratio * 100.0)).collect();
        println!("{backend}: queue/direct median {:.0} % [{}]", median(ratios.clone()) * 100.0, each.join(", "));
    }
    drop(mock.stdin);
    let _ = mock.child.wait().await;
}
