//! Quickstart: the whole flow offline. Starts an in-process gcm-mock whose scenario
//! exercises every outcome, sends a plain-text unicast and a JSON multicast through
//! gcm-hyper, prints what a sender must act on, then performs the retry.
//!
//! Run with `cargo run --example quickstart` (no network, no API key).

use gcm_hyper::gcm_proto::{Message, Outcome};
use gcm_hyper::{Client, Gcm};
use gcm_mock::{Behaviour, MockServer, Scenario, TokenRule};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A GCM server on a free loopback port, scripted to show every kind of result.
    let scenario = Scenario::default()
        .token("device-moved", TokenRule::canonical("device-moved-new"))
        .token("device-uninstalled", TokenRule::new(Behaviour::NotRegistered))
        .token("device-corrupt", TokenRule::new(Behaviour::Invalid))
        .token("device-busy", TokenRule::unavailable_times(1).retry_after("1"));
    let server = MockServer::builder().api_key("demo-key").scenario(scenario).start().await?;
    println!("gcm-mock listening at {}\n", server.url());

    // The client: in production, Gcm::new(key)?.with_endpoint(gcm_hyper::FCM_URL)?.
    let client = Client::new(Gcm::new("demo-key")?.with_endpoint(&server.url())?)?;

    println!("== plain-text unicast to device-moved");
    let unicast = Message::plain_text("device-moved").data("str", "string").data("int", 10);
    report(&client.send(&unicast).await?);

    println!("\n== JSON multicast to five devices");
    let multicast =
        Message::multicast(["device-ok", "device-moved", "device-uninstalled", "device-corrupt", "device-busy"])
            .data("str", "string")
            .collapse_key("my.key");
    let mut outcome = client.send(&multicast).await?;
    report(&outcome);

    // The retry: in a worker you would enqueue it instead of sleeping (see queued_retry).
    if let Some(retry) = outcome.retry() {
        let delay = outcome.delay(0, &mut rand::rng());
        println!("\n== waiting {delay:?}, then retrying {:?}", retry.tokens());
        tokio::time::sleep(delay).await;
        outcome.merge(client.send(&retry).await?);
        println!("\n== merged report of both attempts");
        report(&outcome);
    }

    println!("\n== the mock's inbox: what each device received, and on which attempt");
    for delivery in server.inbox() {
        println!("  {:<14} attempt {} message id {}", delivery.token, delivery.attempt, delivery.message_id);
    }
    server.shutdown().await;
    Ok(())
}

fn report(outcome: &Outcome) {
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
    if let Some(retry) = outcome.retry() {
        let wait = match outcome.retry_after() {
            Some(after) => format!("Retry-After {after:?}"),
            None => "backoff".to_owned(),
        };
        println!("  retry          {:?} ({wait})", retry.tokens());
    }
}
