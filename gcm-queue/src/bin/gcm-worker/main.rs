//! `gcm-worker`: run workers, enqueue multicasts, read results, serve the HTTP API.
//!
//! ```text
//! gcm-worker run     --queue postgres://… --credentials service-account.json --concurrency 8
//! gcm-worker enqueue --queue postgres://… --message message.json --tokens tokens.txt
//! gcm-worker results --queue postgres://… --since 0
//! gcm-worker serve   --queue postgres://… --listen 127.0.0.1:8080
//! gcm-worker prune   --queue postgres://… --retain-results 7d --retain-jobs 30d
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

mod projects;
mod settings;

use clap::{Args, Parser, Subcommand};
use gcm_hyper::gcm_proto::{Backoff, Gcm};
use gcm_hyper::v1::Fcm;
use gcm_hyper::{Client, Credentials, FcmClient};
use gcm_queue::http::{
    AllowedHosts, Api, ApiKeys, EnqueueRequest, Kind, Limits, Projects, ResultRecord, SessionSecret, TokenLimits,
};
use gcm_queue::webhook::Deliverer;
use gcm_queue::{
    Metrics, Policy, Processor, Queue, QueueConfig, ResultReader, Retention, Senders, Unsure, WorkerOptions,
};
use projects::{Platform, ProjectConfigs};

#[derive(Parser)]
#[command(name = "gcm-worker", version, about = "Durable FCM sending through a job queue (SQLite, Postgres, Redis)")]
struct Cli {
    /// A TOML file of settings: top-level keys for every command (`queue = "…"`), a table
    /// per command (`[serve]`, `[run]`…), each key a flag's long name. The command line
    /// wins over the environment (GCM_*), which wins over this file.
    #[arg(long, global = true, env = "GCM_CONFIG")]
    config: Option<PathBuf>,
    /// How logs are written: `text` or `json` (one object a line).
    #[arg(long, global = true, env = "GCM_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct QueueArgs {
    /// The queue: `sqlite:<file>`, `postgres://user@host/db` or `redis://host:6379`.
    #[arg(long, env = "GCM_QUEUE_URL", hide_env_values = true)]
    queue: String,
    /// The queue's name within the backend.
    #[arg(long, env = "GCM_QUEUE_NAME", default_value = gcm_queue::QUEUE_NAME)]
    queue_name: String,
    /// Give up at once when the backend cannot be reached at start (by default the
    /// worker says why and tries again, with a wait that doubles up to 30 s).
    #[arg(long, env = "GCM_EXIT_ON_UNREACHABLE")]
    exit_on_unreachable: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Take jobs from the queue and send them until SIGTERM or Ctrl-C.
    Run(Box<RunArgs>),
    /// Enqueue a multicast; prints its job id.
    Enqueue(EnqueueArgs),
    /// Print the recorded fates after a cursor (JSON lines), or one job's summary.
    Results(ResultsArgs),
    /// Serve the HTTP API: `POST /jobs`, `GET /jobs/<id>`, `GET /results`, `GET /metrics`.
    Serve(ServeArgs),
    /// Delete now what retention no longer keeps; prints what was deleted (JSON).
    Prune(PruneArgs),
}

/// How long finished things are kept.
#[derive(Args)]
struct RetentionArgs {
    /// How long the records of settled attempts are kept (`GET /results`), e.g. `7d`, `12h`.
    #[arg(long, env = "GCM_RETAIN_RESULTS", default_value = "30d", value_parser = parse_duration)]
    retain_results: Duration,
    /// How long finished jobs are kept (their summary, and the queue's finished tasks).
    /// A job with an attempt to come is never deleted.
    #[arg(long, env = "GCM_RETAIN_JOBS", default_value = "30d", value_parser = parse_duration)]
    retain_jobs: Duration,
}

impl RetentionArgs {
    fn retention(&self) -> Retention {
        Retention { results: self.retain_results, jobs: self.retain_jobs }
    }
}

/// Retention, and how often `run` and `serve` delete what it no longer keeps.
#[derive(Args)]
struct PruneSchedule {
    #[command(flatten)]
    retention: RetentionArgs,
    /// How often to delete what is no longer kept (`0s`: never, for a deployment that runs
    /// `gcm-worker prune` from its own scheduler).
    #[arg(long, env = "GCM_PRUNE_EVERY", default_value = "10m", value_parser = parse_duration)]
    prune_every: Duration,
}

impl PruneSchedule {
    /// Prunes `queue` every `--prune-every` in the background, unless it is 0.
    fn spawn(&self, queue: &Arc<Queue>) {
        if self.prune_every.is_zero() {
            return;
        }
        let (queue, retention, every) = (queue.clone(), self.retention.retention(), self.prune_every);
        tokio::spawn(async move { queue.prune_periodically(retention, every, std::future::pending()).await });
    }
}

#[derive(Args)]
struct PruneArgs {
    #[command(flatten)]
    queue: QueueArgs,
    #[command(flatten)]
    retention: RetentionArgs,
}

/// A duration as `30d`, `12h`, `90m` or `3600s` (humantime's syntax).
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|error| format!("{text:?}: {error} (e.g. 30d, 12h, 90m)"))
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    queue: QueueArgs,
    /// Seconds between the worker's heartbeats, at least 2 (apalis stores them in whole
    /// seconds, so 1 lets a live worker look dead); 3 missed hand its jobs to another worker.
    #[arg(long, env = "GCM_HEARTBEAT", default_value_t = 5, value_parser = clap::value_parser!(u64).range(2..))]
    heartbeat: u64,
    /// A service account key (or any Google credential file) for FCM v1 jobs. Without
    /// it, v1 jobs use Application Default Credentials when they are found.
    #[arg(long, env = "GOOGLE_APPLICATION_CREDENTIALS", hide_env_values = true)]
    credentials: Option<PathBuf>,
    /// The FCM v1 base URL (default: Google's), e.g. a gcm-mock's.
    #[arg(long, env = "GCM_V1_ENDPOINT")]
    v1_endpoint: Option<String>,
    /// The server key for legacy jobs.
    #[arg(long, env = "GCM_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The legacy send URL (default: FCM's).
    #[arg(long, env = "GCM_LEGACY_ENDPOINT")]
    legacy_endpoint: Option<String>,
    /// Jobs in flight at once (at least 1).
    #[arg(long, env = "GCM_CONCURRENCY", default_value_t = 4, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    concurrency: usize,
    /// Messages a minute this worker sends at most (0: no limit). FCM's project quota is
    /// 600 000 a minute: give each worker its share.
    #[arg(long, env = "GCM_RATE", default_value_t = 0)]
    rate: u32,
    /// Messages a minute all workers of this FCM project send together at most (0: no
    /// limit), counted in the queue's backend: give every worker the project's quota.
    #[arg(long, env = "GCM_FLEET_RATE", default_value_t = 0)]
    fleet_rate: u32,
    /// Attempts per job (at least 1); then pending tokens are recorded as given up.
    #[arg(long, env = "GCM_MAX_ATTEMPTS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,
    /// Messages that may have reached the server before failing: `resend` or `park`.
    #[arg(long, env = "GCM_UNSURE", default_value = "resend", value_parser = parse_unsure)]
    unsure: Unsure,
    /// The first retry's delay window, in milliseconds (at least 1; the window doubles per
    /// attempt).
    #[arg(long, env = "GCM_BACKOFF_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    backoff_ms: u64,
    /// The longest backoff window, in milliseconds.
    #[arg(long, env = "GCM_BACKOFF_MAX_MS", default_value_t = 1_024_000)]
    backoff_max_ms: u64,
    /// The worker's name; a worker restarted under the same name takes back its jobs at once.
    #[arg(long, env = "GCM_WORKER_NAME")]
    name: Option<String>,
    /// Serve `/metrics` (and `/healthz`) here, with the keys of `--api-keys-file`.
    #[arg(long, env = "GCM_METRICS_LISTEN")]
    metrics: Option<SocketAddr>,
    #[command(flatten)]
    auth: AuthArgs,
    /// Seconds jobs in flight may take to finish after SIGTERM.
    #[arg(long, env = "GCM_GRACE", default_value_t = 30)]
    grace: u64,
    /// Seconds a worker's claim on the attempt it sends lasts unless renewed: another
    /// worker sends the attempt only after the claim runs out (its worker died or stalled).
    #[arg(long, env = "GCM_LEASE", default_value_t = gcm_queue::DEFAULT_LEASE.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    lease: u64,
    #[command(flatten)]
    prune: PruneSchedule,
}

#[derive(Args)]
struct EnqueueArgs {
    #[command(flatten)]
    queue: QueueArgs,
    /// A JSON file: what every token receives (a v1 content, or legacy data/notification/options).
    #[arg(long, env = "GCM_MESSAGE")]
    message: Option<PathBuf>,
    /// A file of tokens, one per line; `-` (the default) reads them from stdin.
    #[arg(long, env = "GCM_TOKENS", default_value = "-")]
    tokens: String,
    /// Send with the legacy protocol instead of v1.
    #[arg(long, env = "GCM_LEGACY")]
    legacy: bool,
    /// Copied into every result.
    #[arg(long, env = "GCM_CORRELATION_ID")]
    correlation_id: Option<String>,
    /// Tokens per job, 1 to 100 000 (legacy jobs hold at most 1000).
    #[arg(long, visible_alias = "chunk", env = "GCM_TOKENS_PER_JOB", default_value_t = 1000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    tokens_per_job: usize,
    /// When to send the first attempt (RFC 3339); now without it.
    #[arg(long, env = "GCM_SEND_AT")]
    send_at: Option<String>,
    /// The project to send for (`[projects.<name>]` of the settings file); without it, the
    /// only one configured.
    #[arg(long, env = "GCM_PROJECT")]
    project: Option<String>,
    /// Where the jobs' settlements are posted (a URL the project's `job-urls` allow);
    /// without it, the project's webhook, if it has one.
    #[arg(long, env = "GCM_WEBHOOK")]
    webhook: Option<String>,
}

#[derive(Args)]
struct ResultsArgs {
    #[command(flatten)]
    queue: QueueArgs,
    /// Print the records after this cursor.
    #[arg(long, env = "GCM_SINCE", default_value_t = 0)]
    since: u64,
    /// At most this many records (at least 1).
    #[arg(long, env = "GCM_LIMIT", default_value_t = 1000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    limit: usize,
    /// Print this job's summary instead.
    #[arg(long, env = "GCM_JOB")]
    job: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    queue: QueueArgs,
    /// Where to listen.
    #[arg(long, env = "GCM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    auth: AuthArgs,
    /// Tokens a request may hold at most.
    #[arg(long, env = "GCM_MAX_TOKENS_PER_REQUEST", default_value_t = 100_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_tokens_per_request: usize,
    /// Tokens per job: a longer list is cut into jobs of one campaign (legacy: at most 1000).
    #[arg(long, env = "GCM_TOKENS_PER_JOB", default_value_t = 1000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    tokens_per_job: usize,
    /// The largest request body, in bytes.
    #[arg(long, env = "GCM_MAX_BODY_BYTES", default_value_t = 24 << 20, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..))]
    max_body_bytes: usize,
    /// The bytes the bodies being read may hold together.
    #[arg(long, env = "GCM_BODY_MEMORY_BYTES", default_value_t = 32 << 20, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024..))]
    body_memory_bytes: usize,
    /// Connections open at once.
    #[arg(long, env = "GCM_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,
    /// Seconds a client has to send a request's head.
    #[arg(long, env = "GCM_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Seconds a whole request may take (408 after).
    #[arg(long, env = "GCM_REQUEST_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout: u64,
    #[command(flatten)]
    prune: PruneSchedule,
}

/// Who may call the API. Keys are never given on the command line: `--api-keys-file`
/// names a file, `GCM_API_KEYS` holds them.
#[derive(Args)]
struct AuthArgs {
    /// A file of API keys, `name:scopes:secret` each (scopes: send, read, metrics). The
    /// environment variable GCM_API_KEYS may hold the same entries.
    #[arg(long, env = "GCM_API_KEYS_FILE")]
    api_keys_file: Option<PathBuf>,
    /// Serve without authentication: refused unless the address is a loopback one.
    #[arg(long, env = "GCM_NO_AUTH")]
    no_auth: bool,
    /// A `Host` this server answers to besides the loopback names (repeat, or separate
    /// with commas; `*` for any, behind a proxy that checks it).
    #[arg(long = "allow-host", env = "GCM_ALLOW_HOSTS", value_delimiter = ',')]
    allow_hosts: Vec<String>,
    /// Serve `/metrics` without a key (to a Prometheus on a trusted network); every other
    /// route still needs one.
    #[arg(long, env = "GCM_PUBLIC_METRICS")]
    public_metrics: bool,
    /// A file holding the secret (32 characters or more) that signs the dashboard's sessions:
    /// give every replica behind one address the same. Without it, each process draws its
    /// own, and a restart logs everyone out.
    #[arg(long, env = "GCM_SESSION_SECRET_FILE")]
    session_secret_file: Option<PathBuf>,
}

fn parse_unsure(text: &str) -> Result<Unsure, String> {
    match text {
        "resend" => Ok(Unsure::Resend),
        "park" => Ok(Unsure::Park),
        _ => Err(format!("{text:?}: expected resend or park")),
    }
}

fn main() -> ExitCode {
    let (cli, platform) = match settings::parse_cli() {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("gcm-worker: {error}");
            return ExitCode::from(2);
        }
    };
    init_logs(&cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("gcm-worker: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, platform)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "gcm-worker failed");
            ExitCode::FAILURE
        }
    }
}

fn init_logs(format: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter = std::env::var("RUST_LOG").ok().and_then(|text| text.parse::<Targets>().ok());
    // PostgreSQL's notices ("schema \"apalis\" already exists, skipping" at every start)
    // are INFO to sqlx: only their warnings are worth a line.
    let filter = filter.unwrap_or_else(|| {
        Targets::new().with_default(tracing::Level::INFO).with_target("sqlx::postgres::notice", tracing::Level::WARN)
    });
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let layer = match format {
        "json" => layer.json().with_current_span(true).with_span_list(true).boxed(),
        _ => layer.with_ansi(std::io::stderr().is_terminal()).boxed(),
    };
    tracing_subscriber::registry().with(layer.with_filter(filter)).init();
}

/// Connects to the queue; an unreachable backend is tried again (unless
/// `--exit-on-unreachable`) with a WARN that names the cause.
async fn connect(args: &QueueArgs, config: QueueConfig) -> Result<Arc<Queue>, gcm_queue::Error> {
    let config = QueueConfig { name: args.queue_name.clone(), ..config };
    let mut wait = Duration::from_secs(1);
    loop {
        match Queue::connect_with(&args.queue, &config).await {
            Ok(queue) => return Ok(Arc::new(queue)),
            Err(error @ gcm_queue::Error::Config(_)) => return Err(error),
            Err(error) if args.exit_on_unreachable => return Err(error),
            Err(error) => {
                tracing::warn!(%error, cause = %error.root_cause(), retry_in_s = wait.as_secs(), "cannot reach the queue; trying again");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown_signal() => return Err(error),
                }
                wait = wait.saturating_mul(2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn run(command: Command, platform: Platform) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Run(args) => work(*args, &platform).await,
        Command::Enqueue(args) => enqueue(args, &platform.api_projects()).await,
        Command::Results(args) => results(args).await,
        Command::Prune(args) => {
            let queue = connect(&args.queue, QueueConfig::default()).await?;
            let pruned = queue.prune_now(&args.retention.retention()).await?;
            println!("{}", serde_json::to_string(&pruned)?);
            Ok(())
        }
        Command::Serve(args) => {
            if args.body_memory_bytes < args.max_body_bytes {
                let (budget, max) = (args.body_memory_bytes, args.max_body_bytes);
                return Err(format!(
                    "--body-memory-bytes {budget} is below --max-body-bytes {max}: a large body would never be read"
                )
                .into());
            }
            let limits = Limits {
                tokens: TokenLimits { per_request: args.max_tokens_per_request, per_job: args.tokens_per_job },
                max_body: args.max_body_bytes,
                body_memory: args.body_memory_bytes,
                max_connections: args.max_connections,
                header_timeout: Duration::from_secs(args.header_timeout),
                request_timeout: Duration::from_secs(args.request_timeout),
                ..Limits::default()
            };
            let mut api = api(&args.auth, args.listen)?.limits(limits);
            platform.endpoints()?; // a webhook's mistake stops serve as it stops run
            api.projects = platform.api_projects();
            let queue = connect(&args.queue, QueueConfig::default()).await?;
            args.prune.spawn(&queue);
            let listener = tokio::net::TcpListener::bind(args.listen).await?;
            tracing::info!(addr = %listener.local_addr()?, backend = queue.backend_name(), keys = api.keys.len(), "serving the API");
            let api = Api { queue: Some(queue), ..api };
            gcm_queue::http::serve(listener, api, shutdown_signal()).await?;
            Ok(())
        }
    }
}

/// The API's guards from the command line: its keys, or none on a loopback address only.
fn api(args: &AuthArgs, listen: SocketAddr) -> Result<Api, Box<dyn std::error::Error>> {
    let mut text = match &args.api_keys_file {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?
        }
        None => String::new(),
    };
    if let Ok(keys) = std::env::var("GCM_API_KEYS") {
        text.push('\n');
        text.push_str(&keys);
    }
    let keys = ApiKeys::parse(&text)?;
    let hosts = if args.allow_hosts.iter().any(|host| host == "*") {
        AllowedHosts::Any
    } else {
        AllowedHosts::loopback_and(args.allow_hosts.iter().cloned().chain([listen.ip().to_string()]))
    };
    let mut api = Api::new(None, Arc::new(Metrics::default())).hosts(hosts);
    api.public_metrics = args.public_metrics;
    if let Some(path) = &args.session_secret_file {
        let text = std::fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        api.session_secret = Some(SessionSecret::new(&text).map_err(|error| format!("{}: {error}", path.display()))?);
    }
    match (keys.is_empty(), args.no_auth) {
        (false, true) => Err("--no-auth with API keys: choose one".into()),
        (true, true) if !listen.ip().is_loopback() => {
            Err(format!("--no-auth is refused on {listen}: only a loopback address may serve without keys").into())
        }
        (true, true) => Ok(api.without_auth()),
        (true, false) => Err("no API keys: give --api-keys-file or GCM_API_KEYS (name:scopes:secret), or --no-auth on a loopback address".into()),
        (false, false) => Ok(api.keys(keys)),
    }
}

/// The retries' backoff of `run`'s flags.
fn backoff(args: &RunArgs) -> Result<Backoff, String> {
    if args.backoff_max_ms < args.backoff_ms {
        return Err(format!("--backoff-max-ms {} is below --backoff-ms {}", args.backoff_max_ms, args.backoff_ms));
    }
    Ok(Backoff {
        initial: Duration::from_millis(args.backoff_ms),
        max: Duration::from_millis(args.backoff_max_ms),
        ..Backoff::fcm_v1()
    })
}

/// The worker's own senders (`--credentials`, `--api-key`): for jobs of no project. None
/// at all is refused unless projects are configured.
async fn senders(args: &RunArgs, projects: &ProjectConfigs) -> Result<Senders, Box<dyn std::error::Error>> {
    let backoff = backoff(args)?;
    let credentials = match &args.credentials {
        Some(path) => Some(Credentials::from_file(path)?),
        None => Credentials::from_env()?,
    };
    let fcm = match credentials {
        Some(credentials) => {
            let project = credentials.project_id().ok_or("the credentials name no project_id")?.to_owned();
            let mut fcm = Fcm::new(&project)?.with_backoff(backoff);
            if let Some(endpoint) = &args.v1_endpoint {
                fcm = fcm.with_base_url(endpoint)?;
            }
            Some(FcmClient::new(fcm, credentials)?)
        }
        None => None,
    };
    let legacy = match &args.api_key {
        Some(key) => {
            let mut gcm = Gcm::new(key)?.with_backoff(Backoff {
                rate_limited_floor: Duration::ZERO,
                server_error_floor: Duration::ZERO,
                ..backoff
            });
            if let Some(endpoint) = &args.legacy_endpoint {
                gcm = gcm.with_endpoint(endpoint)?;
            }
            Some(Client::new(gcm)?)
        }
        None => None,
    };
    if fcm.is_none() && legacy.is_none() && projects.is_empty() {
        return Err(
            "no credentials: pass --credentials (FCM v1) and/or --api-key (legacy), or configure [projects]".into()
        );
    }
    Ok(Senders { fcm, legacy })
}

async fn work(args: RunArgs, platform: &Platform) -> Result<(), Box<dyn std::error::Error>> {
    let (projects, endpoints) = (&platform.projects, platform.endpoints()?);
    let config = QueueConfig { heartbeat: Duration::from_secs(args.heartbeat), ..QueueConfig::default() };
    let queue = connect(&args.queue, config).await?;
    let senders = senders(&args, projects).await?;
    let metrics = Arc::new(Metrics::default());
    // The project's bucket (legacy jobs count against the same project's quota).
    let bucket = senders.fcm.as_ref().map_or("legacy", |fcm| fcm.fcm().project_id()).to_owned();
    let mut processor = Processor::new(senders, queue.clone(), queue.clone())
        .policy(Policy { max_attempts: args.max_attempts, unsure: args.unsure })
        .rate_limit(args.rate)
        .quota(queue.clone())
        .fleet_rate(bucket, args.fleet_rate)
        .lease(Duration::from_secs(args.lease))
        .with_metrics(metrics.clone());
    for (name, project) in projects {
        let fcm = project.client(name, backoff(&args)?)?;
        tracing::info!(project = %name, fcm_project = fcm.fcm().project_id(), rate = project.rate, "sending for a project");
        processor = processor.project(name, Senders { fcm: Some(fcm), legacy: None }, project.rate);
    }
    if let Some(addr) = args.metrics {
        let api = Api { metrics: metrics.clone(), ..api(&args.auth, addr)? };
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics");
        tokio::spawn(gcm_queue::http::serve(listener, api, std::future::pending()));
    }
    let mut options = WorkerOptions {
        concurrency: args.concurrency,
        grace: Duration::from_secs(args.grace),
        ..WorkerOptions::default()
    };
    if let Some(name) = args.name {
        options.name = name;
    }
    args.prune.spawn(&queue);
    if !endpoints.is_empty() {
        let deliverer = Deliverer::new(queue.clone(), endpoints, options.name.clone())?.with_metrics(metrics);
        tokio::spawn(deliverer.run(std::future::pending()));
    }
    tracing::info!(name = %options.name, backend = queue.backend_name(), concurrency = options.concurrency, "worker started");
    queue.work(processor, &options, shutdown_signal()).await?;
    tracing::info!("worker stopped");
    Ok(())
}

async fn enqueue(args: EnqueueArgs, projects: &Projects) -> Result<(), Box<dyn std::error::Error>> {
    let message = match &args.message {
        Some(path) => serde_json::from_str(&tokio::fs::read_to_string(path).await?)?,
        None => serde_json::Value::Null,
    };
    let text = if args.tokens == "-" {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::stdin(), &mut text).await?;
        text
    } else {
        tokio::fs::read_to_string(&args.tokens).await?
    };
    let tokens: Vec<String> = text.lines().map(str::trim).filter(|line| !line.is_empty()).map(str::to_owned).collect();
    if tokens.is_empty() {
        return Err("no tokens to enqueue".into());
    }
    let request = EnqueueRequest {
        kind: if args.legacy { Kind::Legacy } else { Kind::V1 },
        message,
        tokens,
        topic: None,
        correlation_id: args.correlation_id.clone(),
        send_at: args.send_at.clone(),
        project: args.project.clone(),
        audience: None,
        webhook: args.webhook.clone(),
    };
    let limits = TokenLimits { per_request: usize::MAX, per_job: args.tokens_per_job };
    let (jobs, send_at) = request.into_jobs(limits, projects)?;
    let queue = connect(&args.queue, QueueConfig::default()).await?;
    for job in jobs {
        queue.enqueue_at(&job, send_at).await?;
        println!("{}", job.id);
    }
    Ok(())
}

async fn results(args: ResultsArgs) -> Result<(), Box<dyn std::error::Error>> {
    let queue = connect(&args.queue, QueueConfig::default()).await?;
    if let Some(job) = &args.job {
        let summary = queue.summary(job).await?.ok_or_else(|| format!("no job {job:?}"))?;
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    for (cursor, record) in queue.since(args.since, args.limit).await? {
        println!("{}", serde_json::to_string(&ResultRecord::new(cursor, record))?);
    }
    Ok(())
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down: no new jobs; the ones in flight finish");
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// Every flag of every command can come from a `GCM_*` variable (the Google credential
    /// file keeps Google's own name), so that the settings file and the environment cover
    /// what the command line does.
    #[test]
    fn every_flag_has_an_environment_variable() {
        let command = super::Cli::command();
        let globals = command.get_arguments().map(|arg| (String::new(), arg.clone()));
        let commands = command
            .get_subcommands()
            .flat_map(|sub| sub.get_arguments().map(|arg| (sub.get_name().to_owned(), arg.clone())));
        for (name, arg) in globals.chain(commands) {
            if matches!(arg.get_id().as_str(), "help" | "version") {
                continue;
            }
            let env = arg.get_env().and_then(|env| env.to_str()).unwrap_or("");
            assert!(
                env.starts_with("GCM_") || env == "GOOGLE_APPLICATION_CREDENTIALS",
                "{name} --{}: no GCM_ variable",
                arg.get_id()
            );
        }
    }
}
