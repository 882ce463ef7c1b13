//! FCM HTTP v1 with a service account: offline against an in-process gcm-mock by default,
//! or against Firebase with your own key file.
//!
//! ```sh
//! cargo run --example fcm_v1                                        # offline, on the mock
//! cargo run --example fcm_v1 -- --key-file sa.json --token DEVICE   # the real endpoint
//! ```
//!
//! The mock plays both Google services: the OAuth2 token endpoint (it checks the JWT
//! signed with the service account's key and issues an expiring access token) and the v1
//! send endpoint (one request per token, multiplexed over one HTTP/2 connection).

use std::path::PathBuf;

use clap::Parser;
use gcm_hyper::gcm_proto::v1::{Fcm, Message, Notification};
use gcm_hyper::gcm_proto::{Outcome, oauth::ServiceAccountKey};
use gcm_hyper::{FcmClient, RetryLoop};
use gcm_mock::{Behaviour, MockServer, Scenario, TokenRule};

#[derive(Parser)]
struct Args {
    /// A service-account key file (from the Firebase console); without it, the mock.
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Device tokens to send to (with --key-file).
    #[arg(long = "token")]
    tokens: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let template = Message::token("")
        .data("kind", "sync")
        .notification(Notification::new("Hello", "from FCM HTTP v1"))
        .android_ttl(3600);

    let Some(path) = args.key_file else {
        return offline(template).await;
    };
    // The real endpoint: the key file names the project and Google's token endpoint.
    let client = FcmClient::from_service_account(&std::fs::read_to_string(path)?)?;
    let messages = template.fan_out(args.tokens);
    let report = RetryLoop::new().run_v1(&client, &messages).await;
    print(&report.outcome, &messages);
    if let Some(error) = report.error {
        println!("  error          {error}");
    }
    Ok(())
}

async fn offline(template: Message) -> Result<(), Box<dyn std::error::Error>> {
    let scenario = Scenario::default()
        .token("device-uninstalled", TokenRule::new(Behaviour::NotRegistered))
        .token("device-corrupt", TokenRule::new(Behaviour::Invalid))
        .token("device-busy", TokenRule::unavailable_times(1).retry_after("1"))
        .token("device-hot", TokenRule::new(Behaviour::RateLimited).times(1).retry_after("1"));
    let server = MockServer::builder().scenario(scenario).start().await?;
    println!("gcm-mock (FCM v1) listening at {}\n", server.v1_base_url());

    // In production: FcmClient::from_service_account(&key_file) and nothing else.
    let key = ServiceAccountKey::from_json(server.service_account_json().unwrap_or_default())?;
    let fcm = Fcm::new("mock-project")?.with_base_url(&server.v1_base_url())?;
    let client = FcmClient::new(fcm, key)?;

    let tokens = ["device-ok", "device-uninstalled", "device-corrupt", "device-busy", "device-hot"];
    let messages = template.fan_out(tokens);
    println!("== one send per token, one report");
    let mut outcome = client.send_each(&messages).await.outcome;
    print(&outcome, &messages);

    // The retry: in a worker you would enqueue it; `RetryLoop::run_v1` waits in place.
    if let Some(retry) = outcome.retry_v1(&messages) {
        let delay = outcome.delay(0, &mut rand::rng());
        println!("\n== waiting {delay:?}, then resending {} message(s)", retry.len());
        tokio::time::sleep(delay).await;
        outcome.merge(client.send_each(&retry).await.outcome);
        println!("\n== merged report of both attempts");
        print(&outcome, &messages);
    }
    println!(
        "\n{} access token(s) minted, {} HTTP/2 connection(s) for {} requests",
        server.tokens_issued(),
        server.connections(),
        server.requests().len()
    );
    server.shutdown().await;
    Ok(())
}

fn print(outcome: &Outcome, messages: &[Message]) {
    for (token, name) in outcome.success() {
        println!("  success        {token}: {name}");
    }
    for token in outcome.not_registered() {
        println!("  not registered {token} (remove it from your database)");
    }
    for (token, code) in outcome.failed() {
        println!("  failed         {token}: {code} (do not retry)");
    }
    if let Some(retry) = outcome.retry_v1(messages) {
        let tokens: Vec<String> = retry.iter().map(|m| m.target.recipient()).collect();
        println!("  retry          {tokens:?} (after {:?})", outcome.retry_after().unwrap_or_default());
    }
}
