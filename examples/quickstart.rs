//! Quickstart: the whole flow offline. Starts an in-process gcm-mock whose scenario
//! exercises every outcome, sends an FCM HTTP v1 multicast through gcm-hyper (the mock
//! plays Google's token endpoint too), prints what a sender must act on, performs the
//! retry, then does the same over the legacy protocol, canonical ids included.
//!
//! Run with `cargo run --example quickstart` (no network, no credentials).

use gcm_hyper::gcm_proto::{Outcome, Retryable};
use gcm_hyper::v1::{Multicast, Notification};
use gcm_hyper::{Client, FcmClient, Message};
use gcm_mock::{Behaviour, MockServer, Scenario, TokenRule};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A server on a free loopback port, scripted to show every kind of result. The same
    // rules answer FCM v1 and legacy requests.
    let scenario = Scenario::default()
        .token("device-moved", TokenRule::canonical("device-moved-new"))
        .token("device-uninstalled", TokenRule::new(Behaviour::NotRegistered))
        .token("device-corrupt", TokenRule::new(Behaviour::Invalid))
        .token("device-busy", TokenRule::unavailable_times(1).retry_after("1"));
    let server = MockServer::builder().api_key("demo-key").scenario(scenario).start().await?;
    println!("gcm-mock listening at {}\n", server.v1_base_url());

    // FCM HTTP v1. In production: FcmClient::application_default().await?, or
    // FcmClient::from_key_file("service-account.json")?, with Google's base URL.
    let key_file = server.service_account_json().ok_or("the mock has no key file")?;
    let fcm = FcmClient::from_service_account(key_file)?.base_url(&server.v1_base_url())?;
    println!("== FCM v1 multicast to four devices (one HTTP/2 request each)");
    let multicast = Multicast::new(["device-ok", "device-uninstalled", "device-corrupt", "device-busy"])
        .data("kind", "sync")
        .notification(Notification::new("Hello", "World"));
    let mut report = fcm.send_multicast(&multicast).await?;
    print_outcome(&report.outcome);
    // The retry: in a worker you would enqueue it instead of sleeping (see queued_retry).
    if let Some(retry) = report.outcome.retry() {
        let delay = report.outcome.delay(0, &mut gcm_hyper::rand::rng());
        println!("\n== waiting {delay:?}, then retrying {:?}", retry.tokens());
        tokio::time::sleep(delay).await;
        report.outcome.merge(fcm.send_multicast(&retry).await?.outcome);
        println!("\n== merged report of both attempts");
        print_outcome(&report.outcome);
    }

    // The legacy protocol, for compatible servers: Client::from_api_key(key) sends to
    // FCM's legacy URL, which Google has shut down.
    println!("\n== legacy JSON multicast to three devices");
    let client = Client::from_api_key_at("demo-key", &server.url())?;
    let legacy = Message::multicast(["device-ok", "device-moved", "device-uninstalled"])
        .data("str", "string")
        .collapse_key("my.key");
    print_outcome(&client.send(&legacy).await?);

    println!("\n== the mock's inbox: what each device received, and on which attempt");
    for delivery in server.inbox() {
        println!("  {:<14} attempt {} message id {}", delivery.token, delivery.attempt, delivery.message_id);
    }
    server.shutdown().await;
    Ok(())
}

/// What a sender must act on, bucket by bucket (the same for both protocols).
fn print_outcome<P: Retryable>(outcome: &Outcome<P>) {
    for (token, message_id) in outcome.success() {
        println!("  success        {token}: message id {message_id}");
    }
    for (token, canonical) in outcome.canonical() {
        println!("  canonical      {token} → {canonical} (update your database)");
    }
    for token in outcome.not_registered() {
        println!("  not registered {token} (remove it from your database)");
    }
    for (token, code) in outcome.failed() {
        println!("  failed         {token}: {code} (do not retry)");
    }
    let pending: Vec<&str> = outcome.to_retry().map(|(token, _)| token).collect();
    if !pending.is_empty() {
        let wait = match outcome.retry_after() {
            Some(after) => format!("Retry-After {after:?}"),
            None => "backoff".to_owned(),
        };
        println!("  retry          {pending:?} ({wait})");
    }
}
