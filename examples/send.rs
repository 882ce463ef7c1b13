//! A small command-line sender for real use: prints the outcome as JSON for scripts.
//!
//! ```sh
//! GCM_API_KEY=... cargo run --example send -- --to TOKEN --data title=Hello
//! cargo run --example send -- --endpoint http://127.0.0.1:PORT/gcm/send --api-key KEY \
//!     --to tok-1 --to tok-2 --data-file payload.json --dry-run
//! ```
//! Exit status: 0 when every token was delivered, 4 when some were not (not registered,
//! or failed: the report says why), 3 when some need a retry (and none failed), 1 on an
//! error, 2 on bad arguments (an empty token).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gcm_hyper::Client;
use gcm_hyper::gcm_proto::{Fate, Message, Outcome, Priority, RetryCause};
use serde_json::{Map, Value, json};

/// Send one GCM / FCM legacy message and print the outcome as JSON.
#[derive(Debug, Parser)]
struct Args {
    /// The server API key (or set GCM_API_KEY).
    #[arg(long, env = "GCM_API_KEY", hide_env_values = true)]
    api_key: String,
    /// The send endpoint: the FCM legacy URL by default, or any compatible server (gcm-mock).
    #[arg(long, default_value = gcm_hyper::FCM_URL)]
    endpoint: String,
    /// A registration token, `/topics/<name>`, or notification key (repeat for a multicast).
    #[arg(long = "to", required_unless_present = "tokens_file", value_parser = non_empty)]
    to: Vec<String>,
    /// A JSON file holding an array of registration tokens.
    #[arg(long)]
    tokens_file: Option<PathBuf>,
    /// A data entry `key=value` (repeatable).
    #[arg(long = "data", value_parser = parse_pair)]
    data: Vec<(String, String)>,
    /// A JSON file holding the data object.
    #[arg(long)]
    data_file: Option<PathBuf>,
    /// Send as plain text (one token only).
    #[arg(long)]
    plain_text: bool,
    /// Validate without delivering.
    #[arg(long)]
    dry_run: bool,
    /// `collapse_key`.
    #[arg(long)]
    collapse_key: Option<String>,
    /// `time_to_live` in seconds.
    #[arg(long)]
    ttl: Option<u32>,
    /// Send with high priority.
    #[arg(long)]
    high_priority: bool,
}

fn non_empty(text: &str) -> Result<String, String> {
    match text.trim() {
        "" => Err("a token cannot be empty".to_owned()),
        _ => Ok(text.to_owned()),
    }
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected key=value: {text:?}"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(error) => {
            print_line(&json!({ "error": error.to_string() }).to_string());
            ExitCode::FAILURE
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut tokens = args.to.clone();
    if let Some(path) = &args.tokens_file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let listed: Vec<String> = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(position) = listed.iter().position(|token| token.trim().is_empty()) {
            return Err(format!("{}: token {position} is empty", path.display()).into());
        }
        tokens.extend(listed);
    }
    let mut data: Map<String, Value> = match &args.data_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Map::new(),
    };
    data.extend(args.data.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))));

    let mut message = match (args.plain_text, tokens.as_slice()) {
        (true, [one]) => Message::plain_text(one.as_str()),
        (true, _) => return Err("--plain-text sends to exactly one token".into()),
        (false, [one]) => Message::to(one.as_str()),
        (false, _) => Message::multicast(tokens),
    };
    message.data = data;
    message.options.dry_run = args.dry_run.then_some(true);
    message.options.collapse_key = args.collapse_key;
    message.options.time_to_live = args.ttl;
    message.options.priority = args.high_priority.then_some(Priority::High);

    let client = Client::from_api_key_at(&args.api_key, &args.endpoint)?;
    // More than 1000 tokens go out as several requests; their outcomes are appended in
    // order. A part that gets no outcome leaves its tokens pending, beside the error.
    let mut outcome: Option<Outcome> = None;
    let mut error = None;
    for part in message.split() {
        let answered = match client.send(&part).await {
            Ok(answered) => answered,
            Err(failure) => {
                error.get_or_insert(failure.to_string());
                Outcome::for_all(&part, Fate::Retry(RetryCause::Unanswered), client.gcm().backoff())
            }
        };
        match &mut outcome {
            Some(outcome) => outcome.append(answered),
            None => outcome = Some(answered),
        }
    }
    let outcome = outcome.ok_or("no recipient")?;
    if let (Some(error), true) = (&error, outcome.success().count() == 0) {
        return Err(error.clone().into());
    }
    let retry = outcome.retry();
    let delay = retry.as_ref().map(|_| outcome.delay(0, &mut rand::rng()).as_secs_f64());
    let report = json!({
        "success": pairs(outcome.success()),
        "canonical": pairs(outcome.canonical()),
        "not_registered": outcome.not_registered().collect::<Vec<_>>(),
        "failed": outcome.failed().map(|(t, c)| (t.to_owned(), Value::from(c.as_str()))).collect::<Map<_, _>>(),
        "retry": retry.as_ref().map(|m| m.tokens().to_vec()).unwrap_or_default(),
        "retry_delay_seconds": delay,
        "multicast_id": outcome.multicast_id(),
        "error": error,
    });
    print_line(&report.to_string());
    let undelivered = outcome.not_registered().next().is_some() || outcome.failed().next().is_some();
    Ok(match (undelivered, retry.is_some()) {
        (true, _) => ExitCode::from(4),
        (false, true) => ExitCode::from(3),
        (false, false) => ExitCode::SUCCESS,
    })
}

/// Prints one line; a reader that went away (`| head -c 200`) is not an error worth a panic.
fn print_line(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Token → text pairs as a JSON object.
fn pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Map<String, Value> {
    pairs.map(|(token, text)| (token.to_owned(), Value::from(text))).collect()
}
