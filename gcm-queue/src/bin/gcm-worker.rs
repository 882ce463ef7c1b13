//! `gcm-worker`: run workers, enqueue multicasts, read results, serve the HTTP API.
//!
//! ```text
//! gcm-worker run     --queue postgres://… --credentials service-account.json --concurrency 8
//! gcm-worker enqueue --queue postgres://… --message message.json --tokens tokens.txt
//! gcm-worker results --queue postgres://… --since 0
//! gcm-worker serve   --queue postgres://… --listen 127.0.0.1:8080
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use gcm_hyper::gcm_proto::{Backoff, Gcm};
use gcm_hyper::v1::Fcm;
use gcm_hyper::{Client, Credentials, FcmClient};
use gcm_queue::http::{Api, EnqueueRequest, Kind};
use gcm_queue::{Metrics, Policy, Processor, Queue, QueueConfig, ResultReader, Senders, Unsure, WorkerOptions};

#[derive(Parser)]
#[command(name = "gcm-worker", version, about = "Durable FCM sending through a job queue (SQLite, Postgres, Redis)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct QueueArgs {
    /// The queue: `sqlite:<file>`, `postgres://user@host/db` or `redis://host:6379`.
    #[arg(long, env = "GCM_QUEUE_URL", hide_env_values = true)]
    queue: String,
    /// The queue's name within the backend.
    #[arg(long, default_value = gcm_queue::QUEUE_NAME)]
    queue_name: String,
    /// Give up at once when the backend cannot be reached at start (by default the
    /// worker says why and tries again, with a wait that doubles up to 30 s).
    #[arg(long)]
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
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    queue: QueueArgs,
    /// Seconds between the worker's heartbeats, at least 2 (apalis stores them in whole
    /// seconds, so 1 lets a live worker look dead); 3 missed hand its jobs to another worker.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(2..))]
    heartbeat: u64,
    /// A service account key (or any Google credential file) for FCM v1 jobs. Without
    /// it, v1 jobs use Application Default Credentials when they are found.
    #[arg(long, env = "GOOGLE_APPLICATION_CREDENTIALS", hide_env_values = true)]
    credentials: Option<PathBuf>,
    /// The FCM v1 base URL (default: Google's), e.g. a gcm-mock's.
    #[arg(long)]
    v1_endpoint: Option<String>,
    /// The server key for legacy jobs.
    #[arg(long, env = "GCM_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The legacy send URL (default: FCM's).
    #[arg(long)]
    legacy_endpoint: Option<String>,
    /// Jobs in flight at once (at least 1).
    #[arg(long, default_value_t = 4, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    concurrency: usize,
    /// Messages a minute this worker sends at most (0: no limit). FCM's project quota is
    /// 600 000 a minute: give each worker its share.
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// Attempts per job (at least 1); then pending tokens are recorded as given up.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,
    /// Messages that may have reached the server before failing: `resend` or `park`.
    #[arg(long, default_value = "resend", value_parser = parse_unsure)]
    unsure: Unsure,
    /// The first retry's delay window, in milliseconds (at least 1; the window doubles per
    /// attempt).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    backoff_ms: u64,
    /// The longest backoff window, in milliseconds.
    #[arg(long, default_value_t = 1_024_000)]
    backoff_max_ms: u64,
    /// The worker's name; a worker restarted under the same name takes back its jobs at once.
    #[arg(long)]
    name: Option<String>,
    /// Serve `/metrics` here.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Seconds jobs in flight may take to finish after SIGTERM.
    #[arg(long, default_value_t = 30)]
    grace: u64,
    /// Seconds a worker's claim on the attempt it sends lasts unless renewed: another
    /// worker sends the attempt only after the claim runs out (its worker died or stalled).
    #[arg(long, default_value_t = gcm_queue::DEFAULT_LEASE.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    lease: u64,
}

#[derive(Args)]
struct EnqueueArgs {
    #[command(flatten)]
    queue: QueueArgs,
    /// A JSON file: what every token receives (a v1 content, or legacy data/notification/options).
    #[arg(long)]
    message: Option<PathBuf>,
    /// A file of tokens, one per line; `-` (the default) reads them from stdin.
    #[arg(long, default_value = "-")]
    tokens: String,
    /// Send with the legacy protocol instead of v1.
    #[arg(long)]
    legacy: bool,
    /// Copied into every result.
    #[arg(long)]
    correlation_id: Option<String>,
    /// Tokens per job (at most 1000 for legacy jobs).
    #[arg(long, default_value_t = 1000)]
    chunk: usize,
}

#[derive(Args)]
struct ResultsArgs {
    #[command(flatten)]
    queue: QueueArgs,
    /// Print the records after this cursor.
    #[arg(long, default_value_t = 0)]
    since: u64,
    /// At most this many records.
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// Print this job's summary instead.
    #[arg(long)]
    job: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    queue: QueueArgs,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

fn parse_unsure(text: &str) -> Result<Unsure, String> {
    match text {
        "resend" => Ok(Unsure::Resend),
        "park" => Ok(Unsure::Park),
        _ => Err(format!("{text:?}: expected resend or park")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("gcm-worker: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "gcm-worker failed");
            ExitCode::FAILURE
        }
    }
}

fn init_logs() {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter = std::env::var("RUST_LOG").ok().and_then(|text| text.parse::<Targets>().ok());
    // PostgreSQL's notices ("schema \"apalis\" already exists, skipping" at every start)
    // are INFO to sqlx: only their warnings are worth a line.
    let filter = filter.unwrap_or_else(|| {
        Targets::new().with_default(tracing::Level::INFO).with_target("sqlx::postgres::notice", tracing::Level::WARN)
    });
    let layer =
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
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

async fn run(command: Command) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Run(args) => work(*args).await,
        Command::Enqueue(args) => enqueue(args).await,
        Command::Results(args) => results(args).await,
        Command::Serve(args) => {
            let queue = connect(&args.queue, QueueConfig::default()).await?;
            let listener = tokio::net::TcpListener::bind(args.listen).await?;
            tracing::info!(addr = %listener.local_addr()?, backend = queue.backend_name(), "serving the API");
            let api = Api { queue: Some(queue), metrics: Arc::new(Metrics::default()) };
            gcm_queue::http::serve(listener, api, shutdown_signal()).await?;
            Ok(())
        }
    }
}

async fn senders(args: &RunArgs) -> Result<Senders, Box<dyn std::error::Error>> {
    if args.backoff_max_ms < args.backoff_ms {
        return Err(
            format!("--backoff-max-ms {} is below --backoff-ms {}", args.backoff_max_ms, args.backoff_ms).into()
        );
    }
    let backoff = Backoff {
        initial: Duration::from_millis(args.backoff_ms),
        max: Duration::from_millis(args.backoff_max_ms),
        ..Backoff::fcm_v1()
    };
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
    if fcm.is_none() && legacy.is_none() {
        return Err("no credentials: pass --credentials (FCM v1) and/or --api-key (legacy)".into());
    }
    Ok(Senders { fcm, legacy })
}

async fn work(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = QueueConfig { heartbeat: Duration::from_secs(args.heartbeat), ..QueueConfig::default() };
    let queue = connect(&args.queue, config).await?;
    let senders = senders(&args).await?;
    let metrics = Arc::new(Metrics::default());
    let processor = Processor::new(senders, queue.clone(), queue.clone())
        .policy(Policy { max_attempts: args.max_attempts, unsure: args.unsure })
        .rate_limit(args.rate)
        .lease(Duration::from_secs(args.lease))
        .with_metrics(metrics.clone());
    if let Some(addr) = args.metrics {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics");
        let api = Api { queue: None, metrics };
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
    tracing::info!(name = %options.name, backend = queue.backend_name(), concurrency = options.concurrency, "worker started");
    queue.work(processor, &options, shutdown_signal()).await?;
    tracing::info!("worker stopped");
    Ok(())
}

async fn enqueue(args: EnqueueArgs) -> Result<(), Box<dyn std::error::Error>> {
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
    let queue = connect(&args.queue, QueueConfig::default()).await?;
    for chunk in tokens.chunks(args.chunk.clamp(1, 100_000)) {
        let request = EnqueueRequest {
            kind: if args.legacy { Kind::Legacy } else { Kind::V1 },
            message: message.clone(),
            tokens: chunk.to_vec(),
            correlation_id: args.correlation_id.clone(),
        };
        let job = request.into_job()?;
        queue.enqueue(&job).await?;
        println!("{}", job.id);
    }
    Ok(())
}

async fn results(args: ResultsArgs) -> Result<(), Box<dyn std::error::Error>> {
    let queue = connect(&args.queue, QueueConfig::default()).await?;
    if let Some(job) = &args.job {
        println!("{}", serde_json::to_string(&queue.summary(job).await?)?);
        return Ok(());
    }
    for (cursor, record) in queue.since(args.since, args.limit).await? {
        println!("{}", gcm_queue::http::with_cursor(cursor, record));
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
