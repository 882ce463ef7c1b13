//! FCM HTTP v1 with a service account: offline against an in-process gcm-mock by default,
//! or against Firebase (or any server) with your own key file.
//!
//! ```sh
//! cargo run --example fcm_v1                                        # offline, on the mock
//! cargo run --example fcm_v1 -- --key-file sa.json --token DEVICE   # the real endpoint
//! cargo run --example fcm_v1 -- --key-file sa.json --token DEVICE --base-url http://127.0.0.1:PORT
//! cargo run --example fcm_v1 -- --adc --token DEVICE   # GOOGLE_APPLICATION_CREDENTIALS, gcloud, metadata server
//! cargo run --example fcm_v1 -- --subscribe news --token T          # topic management, on the mock
//! cargo run --example fcm_v1 -- --key-file sa.json --unsubscribe news --token DEVICE
//! ```
//!
//! With `--subscribe TOPIC` (or `--unsubscribe TOPIC`) the tokens are subscribed to the topic
//! (Firebase Admin's `subscribeToTopic`), 1000 a call; on the mock, a message to the topic
//! follows and the mock's inbox shows which devices it reached.
//!
//! The mock plays both Google services: the OAuth2 token endpoint (it checks the JWT
//! signed with the service account's key and issues an expiring access token) and the v1
//! send endpoint (one request per token, multiplexed over one HTTP/2 connection).
//!
//! Exit status, as the `send` example's: 0 when every token was delivered, 4 when some were
//! not (not registered, or failed), 3 when some are still pending (and none failed), 1 on
//! an error that concerns every message (credentials refused, no route). The offline demo,
//! whose scenario fails some tokens on purpose, exits 0 when it ran.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gcm_hyper::Outcome;
use gcm_hyper::v1::{Message, Multicast, Notification, Subscription, TopicAction};
use gcm_hyper::{FcmClient, MulticastReport, RetryLoop};
use gcm_mock::{Behaviour, MockServer, Scenario, TokenRule};

#[derive(Parser)]
struct Args {
    /// A service-account key file (from the Firebase console); without it (or --adc), the mock.
    #[arg(long, conflicts_with = "adc")]
    key_file: Option<PathBuf>,
    /// Application default credentials, as Google's SDKs find them:
    /// GOOGLE_APPLICATION_CREDENTIALS, gcloud's file, then the metadata server
    /// (GCE_METADATA_HOST overrides its host).
    #[arg(long)]
    adc: bool,
    /// Device tokens to send to (with --key-file or --adc; at least one).
    #[arg(long = "token")]
    tokens: Vec<String>,
    /// Another FCM base URL than https://fcm.googleapis.com (a mock, a proxy).
    #[arg(long)]
    base_url: Option<String>,
    /// Subscribes the tokens to this topic instead of sending to them.
    #[arg(long, value_name = "TOPIC", conflicts_with = "unsubscribe")]
    subscribe: Option<String>,
    /// Unsubscribes the tokens from this topic instead of sending to them.
    #[arg(long, value_name = "TOPIC")]
    unsubscribe: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let topic = match (&args.subscribe, &args.unsubscribe) {
        (Some(topic), _) => Some((TopicAction::Subscribe, topic.clone())),
        (None, Some(topic)) => Some((TopicAction::Unsubscribe, topic.clone())),
        (None, None) => None,
    };
    if let Some((action, topic)) = topic {
        return topics(args, action, &topic).await;
    }
    let demo = args.key_file.is_none() && !args.adc;
    let result = match (args.key_file, args.adc) {
        (Some(path), _) => match FcmClient::from_key_file(&path) {
            Ok(client) => real(client, args.tokens, args.base_url.as_deref()).await,
            Err(error) => Err(error.into()),
        },
        (None, true) => match FcmClient::application_default().await {
            Ok(client) => real(client, args.tokens, args.base_url.as_deref()).await,
            Err(error) => Err(error.into()),
        },
        (None, false) if args.tokens.is_empty() && args.base_url.is_none() => offline().await,
        (None, false) => Err("--token and --base-url need --key-file or --adc".into()),
    };
    match result {
        Ok(_) if demo => ExitCode::SUCCESS,
        Ok(report) if report.outcome.not_registered().next().is_some() || report.outcome.failed().next().is_some() => {
            ExitCode::from(4)
        }
        Ok(report) if report.outcome.needs_retry() => ExitCode::from(3),
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn content(tokens: Vec<String>) -> Multicast {
    Multicast::new(tokens)
        .data("kind", "sync")
        .notification(Notification::new("Hello", "from FCM HTTP v1"))
        .android_ttl(Duration::from_secs(3600))
}

/// The real endpoint (or `base_url`), with the credentials' project and token endpoint.
async fn real(
    mut client: FcmClient,
    tokens: Vec<String>,
    base_url: Option<&str>,
) -> Result<MulticastReport, Box<dyn std::error::Error>> {
    if tokens.is_empty() {
        return Err("give at least one --token".into());
    }
    if let Some(base_url) = base_url {
        client = client.base_url(base_url)?;
    }
    // Err: credentials refused or no route. Not a reason to retry each message.
    let report = RetryLoop::new().run_multicast(&client, &content(tokens)).await?;
    print(&report);
    Ok(report)
}

async fn offline() -> Result<MulticastReport, Box<dyn std::error::Error>> {
    let scenario = Scenario::default()
        .token("device-uninstalled", TokenRule::new(Behaviour::NotRegistered))
        .token("device-corrupt", TokenRule::new(Behaviour::Invalid))
        .token("device-busy", TokenRule::unavailable_times(1).retry_after("1"))
        .token("device-hot", TokenRule::new(Behaviour::RateLimited).times(1).retry_after("1"));
    let server = MockServer::builder().scenario(scenario).start().await?;
    println!("gcm-mock (FCM v1) listening at {}\n", server.v1_base_url());

    // In production: FcmClient::from_service_account(&key_file) and nothing else.
    let client = FcmClient::from_service_account(server.service_account_json().unwrap_or_default())?
        .base_url(&server.v1_base_url())?;

    let tokens = ["device-ok", "device-uninstalled", "device-corrupt", "device-busy", "device-hot"];
    let multicast = content(tokens.map(String::from).to_vec());
    println!("== one content, one request per token, one report");
    // Err only for what concerns every message (credentials refused, no route).
    let mut report = client.send_multicast(&multicast).await?;
    print(&report);

    // The retry is built from the report alone: in a worker you would enqueue it (it
    // serializes); `RetryLoop::run_multicast` waits in place.
    if let Some(retry) = report.outcome.retry() {
        let delay = report.outcome.delay(0, &mut gcm_hyper::rand::rng());
        println!("\n== waiting {delay:?}, then resending {} message(s)", retry.tokens().len());
        tokio::time::sleep(delay).await;
        let later = client.send_multicast(&retry).await?;
        report.outcome.merge(later.outcome);
        println!("\n== merged report of both attempts");
        print(&report);
    }
    println!(
        "\n{} access token(s) minted, {} HTTP/2 connection(s) for {} requests",
        server.tokens_issued(),
        server.connections(),
        server.requests().len()
    );
    server.shutdown().await;
    Ok(report)
}

/// `--subscribe` / `--unsubscribe`: with credentials, for real; without, on the mock, then a
/// message to the topic, and who got it.
async fn topics(args: Args, action: TopicAction, topic: &str) -> ExitCode {
    if args.tokens.is_empty() {
        eprintln!("error: give at least one --token");
        return ExitCode::FAILURE;
    }
    let subscription = Subscription::new(action, topic, args.tokens);
    let result = match (args.key_file, args.adc) {
        (Some(path), _) => manage(FcmClient::from_key_file(&path), &subscription, args.base_url.as_deref()).await,
        (None, true) => manage(FcmClient::application_default().await, &subscription, args.base_url.as_deref()).await,
        (None, false) => on_the_mock(&subscription).await,
    };
    match result {
        Ok(outcome) if outcome.not_registered().next().is_some() || outcome.failed().next().is_some() => {
            ExitCode::from(4)
        }
        Ok(outcome) if outcome.needs_retry() => ExitCode::from(3),
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn manage(
    client: Result<FcmClient, gcm_hyper::Error>,
    subscription: &Subscription,
    base_url: Option<&str>,
) -> Result<Outcome<Subscription>, Box<dyn std::error::Error>> {
    let mut client = client?;
    if let Some(base_url) = base_url {
        client = client.base_url(base_url)?;
    }
    let report = client.manage_topic(subscription).await?;
    print_subscription(&report.outcome);
    Ok(report.outcome)
}

async fn on_the_mock(subscription: &Subscription) -> Result<Outcome<Subscription>, Box<dyn std::error::Error>> {
    let server = MockServer::start().await?;
    println!("gcm-mock (FCM v1 and the Instance ID API) listening at {}\n", server.v1_base_url());
    let client = FcmClient::from_service_account(server.service_account_json().unwrap_or_default())?
        .base_url(&server.v1_base_url())?;
    println!("== {:?} {} token(s), topic {}", subscription.action(), subscription.tokens().len(), subscription.topic());
    let report = client.manage_topic(subscription).await?;
    print_subscription(&report.outcome);

    println!("\n== a message to /topics/{}", subscription.topic());
    let reply = client.send(&Message::topic(subscription.topic()).notification(Notification::new("Hi", "all"))).await?;
    println!("  answered       {:?}", reply.fate);
    let topic = format!("/topics/{}", subscription.topic());
    let reached: Vec<String> =
        server.inbox().into_iter().filter(|d| d.via.as_deref() == Some(topic.as_str())).map(|d| d.token).collect();
    println!("  reached        {} device(s): {reached:?}", reached.len());
    server.shutdown().await;
    Ok(report.outcome)
}

fn print_subscription(outcome: &Outcome<Subscription>) {
    for (token, topic) in outcome.success() {
        println!("  done           {token}: {topic}");
    }
    for token in outcome.not_registered() {
        println!("  not registered {token} (remove it from your database)");
    }
    for (token, code) in outcome.failed() {
        println!("  failed         {token}: {code}");
    }
    if let Some(retry) = outcome.retry() {
        println!("  retry          {:?}", retry.tokens());
    }
}

fn print(report: &MulticastReport) {
    let outcome: &Outcome<Multicast> = &report.outcome;
    for (token, name) in outcome.success() {
        println!("  success        {token}: {name}");
    }
    for token in outcome.not_registered() {
        println!("  not registered {token} (remove it from your database)");
    }
    for (token, code) in outcome.failed() {
        println!("  failed         {token}: {code} (do not retry)");
    }
    for (position, token, error) in report.errors() {
        println!("  unanswered     {token} (#{position}): {error}");
    }
    if let Some(retry) = outcome.retry() {
        println!("  retry          {:?} (after {:?})", retry.tokens(), outcome.retry_after().unwrap_or_default());
    }
}
