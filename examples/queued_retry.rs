//! The job-queue pattern: a send whose outcome needs a retry stores the retry message and
//! its delay as JSON (what a job queue would hold); later — in another worker, another
//! process — the job is read back, sent, and the reports of both attempts are merged.
//!
//! Run with `cargo run --example queued_retry`.

use std::time::Duration;

use gcm_hyper::Client;
use gcm_hyper::{Message, Outcome};
use gcm_mock::{Behaviour, MockServer, Scenario, TokenRule};
use serde::{Deserialize, Serialize};

/// What the queue stores: the message to resend, when, and what is known so far.
#[derive(Serialize, Deserialize)]
struct RetryJob {
    message: Message,
    attempt: u32,
    not_before: Duration,
    report: Outcome,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scenario = Scenario::default()
        .token("device-moved", TokenRule::canonical("device-moved-new"))
        .token("device-uninstalled", TokenRule::new(Behaviour::NotRegistered))
        .token("device-busy", TokenRule::unavailable_times(1).retry_after("2"))
        .token("device-slow", TokenRule::unavailable_times(1));
    let server = MockServer::builder().api_key("queue-key").scenario(scenario).start().await?;
    let client = Client::from_api_key_at("queue-key", &server.url())?;

    // Worker 1: send, and enqueue what needs a retry instead of sleeping.
    let message = Message::multicast(["device-ok", "device-moved", "device-uninstalled", "device-busy", "device-slow"])
        .data("kind", "sync");
    let outcome = client.send(&message).await?;
    let Some(retry) = outcome.retry() else {
        println!("nothing to retry");
        return Ok(());
    };
    let job = RetryJob { not_before: outcome.delay(0, &mut rand::rng()), message: retry, attempt: 1, report: outcome };
    let stored = serde_json::to_string_pretty(&job)?;
    println!("== stored in the job queue:\n{stored}\n");

    // Worker 2, later: read the job back, wait until it is due, send, merge.
    let job: RetryJob = serde_json::from_str(&stored)?;
    println!("== due in {:?}; resending to {:?}", job.not_before, job.message.tokens());
    tokio::time::sleep(job.not_before).await;
    let mut report = job.report;
    report.merge(client.send(&job.message).await?);

    println!("\n== merged report of attempts 1 and {}", job.attempt + 1);
    for (token, message_id) in report.success() {
        println!("  success        {token}: {message_id}");
    }
    for (token, canonical) in report.canonical() {
        println!("  canonical      {token} → {canonical}");
    }
    for token in report.not_registered() {
        println!("  not registered {token}");
    }
    println!("  still pending  {}", report.to_retry().count());
    server.shutdown().await;
    Ok(())
}
