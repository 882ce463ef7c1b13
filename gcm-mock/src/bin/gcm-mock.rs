//! `gcm-mock`: the mock FCM HTTP v1 and GCM / FCM legacy server as a program, for clients
//! in any language.
//!
//! Prints the legacy send URL as the first line on stdout once it accepts connections
//! (FCM v1 is served below the same base URL), logs to stderr (plain text unless stderr is
//! a terminal, filtered by `RUST_LOG`), and exits cleanly on SIGTERM or Ctrl-C. FCM HTTP v1
//! clients find their key file (with the mock's `token_uri`) at `GET /_mock/service-account`.

use std::io::{IsTerminal as _, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr as _;
use std::time::Duration;

use clap::Parser;
use gcm_mock::{MockServer, Scenario};
use gcm_proto::oauth::ServiceAccountKey;

/// A deterministic mock of Firebase Cloud Messaging: FCM HTTP v1 (with Google's OAuth2
/// token endpoint and the metadata server) and the legacy GCM / FCM HTTP protocol.
///
/// The first line on stdout is the legacy send URL, http://HOST:PORT/gcm/send; FCM v1
/// clients send to http://HOST:PORT/v1/projects/mock-project/messages:send with the key
/// file from http://HOST:PORT/_mock/service-account. Logs go to stderr; RUST_LOG filters
/// them (for example RUST_LOG=debug).
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Address to listen on, HOST:PORT (a name such as localhost works); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Legacy API key to accept (repeat for several); without one, any key is accepted.
    #[arg(long = "api-key")]
    api_keys: Vec<String>,
    /// Scenario file (TOML, or JSON when it ends in .json).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Seed of the random faults and the ids (overrides the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = gcm_mock::DEFAULT_BODY_LIMIT)]
    max_body: usize,
    /// Log every request on stderr.
    #[arg(long)]
    log_requests: bool,
    /// Keep no inbox and no request log, for load tests (memory stays flat).
    #[arg(long)]
    no_recording: bool,
    /// FCM v1: the service-account key file whose JWTs to accept (default: the built-in
    /// test account of project `mock-project`).
    #[arg(long)]
    service_account: Option<PathBuf>,
    /// FCM v1: lifetime of issued access tokens, in seconds.
    #[arg(long, default_value_t = gcm_mock::DEFAULT_TOKEN_LIFETIME.as_secs())]
    token_lifetime: u64,
    /// Serve HTTPS with a certificate made at start for localhost, 127.0.0.1 and Google's
    /// hosts (fcm, iid, oauth2.googleapis.com), written to this file for clients to trust
    /// (NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE). The URLs printed are then https://.
    #[arg(long, value_name = "CERT_FILE")]
    tls: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logs(args.log_requests);
    let scenario = match &args.scenario {
        Some(path) => match Scenario::from_file(path) {
            Ok(scenario) => scenario,
            Err(error) => {
                eprintln!("gcm-mock: {}: {error}", path.display());
                return ExitCode::from(2);
            }
        },
        None => Scenario::default(),
    };
    let service_account = match &args.service_account {
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|json| ServiceAccountKey::from_json(&json).map_err(|e| e.to_string()))
        {
            Ok(key) => Some(key),
            Err(error) => {
                eprintln!("gcm-mock: {}: {error}", path.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("gcm-mock: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args, scenario, service_account))
}

/// Logs on stderr: colours only on a terminal; `RUST_LOG` if set (targets and levels), else
/// INFO (DEBUG with --log-requests), plus the reason for every HTTP/2 stream the HTTP/2
/// layer rejects (h2 logs those, and only those, at DEBUG under `h2::server`).
fn init_logs(log_requests: bool) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let default = if log_requests { "debug,h2=info,h2::server=debug" } else { "info,h2::server=debug" };
    let filter = std::env::var("RUST_LOG").ok().and_then(|text| Targets::from_str(&text).ok());
    let filter = filter.unwrap_or_else(|| Targets::from_str(default).unwrap_or_default());
    let stderr = std::io::stderr();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(stderr.is_terminal())
        .with_target(false)
        .with_filter(filter);
    tracing_subscriber::registry().with(layer).init();
}

async fn run(args: Args, scenario: Scenario, service_account: Option<ServiceAccountKey>) -> ExitCode {
    let listen = match tokio::net::lookup_host(&args.listen).await.map(|mut found| found.next()) {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            eprintln!("gcm-mock: --listen {}: the name has no address", args.listen);
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("gcm-mock: --listen {}: {error}", args.listen);
            return ExitCode::from(2);
        }
    };
    let mut builder = MockServer::builder()
        .scenario(scenario)
        .listen(listen)
        .body_limit(args.max_body)
        .recording(!args.no_recording)
        .token_lifetime(Duration::from_secs(args.token_lifetime));
    if let Some(key) = service_account {
        builder = builder.service_account(key);
    }
    for key in args.api_keys {
        builder = builder.api_key(key);
    }
    if let Some(seed) = args.seed {
        builder = builder.seed(seed);
    }
    if let Some(path) = &args.tls {
        let tls = match gcm_mock::Tls::self_signed(&[]) {
            Ok(tls) => tls,
            Err(error) => {
                eprintln!("gcm-mock: --tls: {error}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(error) = std::fs::write(path, tls.cert_pem()) {
            eprintln!("gcm-mock: --tls {}: {error}", path.display());
            return ExitCode::from(2);
        }
        builder = builder.tls(tls);
    }
    let server = match builder.start().await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("gcm-mock: cannot listen on {listen}: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Listen for SIGTERM before printing the URL: whoever read the URL may send it at once,
    // and before the listener exists it would kill the process instead of shutting it down.
    let signals = shutdown_signal();
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", server.url()).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    tracing::info!(url = %server.url(), "listening");
    signals.await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// SIGTERM or Ctrl-C; the SIGTERM listener is installed when this is called, not when the
/// future is first polled.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
