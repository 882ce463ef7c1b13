//! The embedded queue with no set-up: gcm-mock in this process, a SQLite file in a temporary
//! directory, a 1000-token FCM v1 multicast with faults (15 % `UNAVAILABLE`, 10 % of
//! requests 503 with `Retry-After: 1`, 3 % unregistered), one worker run until the queue is
//! empty, and the results read back.
//!
//! Run with `cargo run -p gcm-queue --example queue_demo`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gcm_hyper::gcm_proto::Backoff;
use gcm_hyper::v1::{Fcm, Multicast};
use gcm_hyper::{Credentials, FcmClient};
use gcm_mock::{Behaviour, Faults, MockServer, Scenario, TokenRule};
use gcm_queue::{Final, Job, Processor, Queue, ResultReader, Senders, WorkerOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tokens: Vec<String> = (0..1000).map(|i| format!("device-{i:04}")).collect();
    let mut scenario = Scenario {
        seed: 1,
        faults: Faults { unavailable: 0.15, server_error: 0.10, retry_after: Some("1".into()), ..Faults::default() },
        ..Scenario::default()
    };
    for token in tokens.iter().step_by(33) {
        scenario.tokens.insert(token.clone(), TokenRule::new(Behaviour::NotRegistered));
    }
    let server = MockServer::builder().scenario(scenario).start().await?;

    // The queue: one SQLite file, created with its tables.
    let dir = std::env::temp_dir().join(format!("gcm-queue-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let queue = Arc::new(Queue::connect(&format!("sqlite:{}", dir.join("queue.db").display())).await?);
    let job = Job::v1_multicast(Multicast::new(tokens).data("kind", "sync")).correlation_id("demo");
    queue.enqueue(&job).await?;
    println!("enqueued job {} (1000 tokens) into {}", job.id, dir.join("queue.db").display());

    // The worker: an FcmClient for the mock (in production: FcmClient::from_key_file), and
    // a short backoff so that the demo ends in seconds.
    let credentials = Credentials::from_json(server.service_account_json().unwrap_or_default())?;
    let backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(2), ..Backoff::fcm_v1() };
    let fcm = Fcm::new(credentials.project_id().unwrap_or("demo"))?
        .with_base_url(&server.v1_base_url())?
        .with_backoff(backoff);
    let senders = Senders { fcm: Some(FcmClient::new(fcm, credentials)?), legacy: None };
    let processor = Processor::new(senders, queue.clone(), queue.clone());
    let metrics = processor.metrics().clone();

    let started = Instant::now();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn({
        let queue = queue.clone();
        async move {
            queue
                .work(processor, &WorkerOptions::default(), async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    loop {
        let summary = queue.summary(&job.id).await?.ok_or("the job is unknown")?;
        if summary.status == "done" {
            println!(
                "done in {:.1} s after {} attempts: {summary:?}",
                started.elapsed().as_secs_f64(),
                summary.attempts
            );
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(format!("not done after 120 s: {summary:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(());
    worker.await??;

    // What an application reads to update its token database.
    let mut cursor = 0;
    let mut unregistered = Vec::new();
    let mut delivered = 0;
    loop {
        let page = queue.since(cursor, 500).await?;
        let Some((last, _)) = page.last() else { break };
        cursor = *last;
        for (_, record) in page {
            match record.fate {
                Final::Delivered { .. } => delivered += 1,
                Final::NotRegistered => unregistered.push(record.recipient),
                other => println!("  {}: {other:?}", record.recipient),
            }
        }
    }
    // Listed in token order: the order of the results depends on which attempt settled
    // each token, and so on how the requests interleaved.
    unregistered.sort();
    let first: Vec<&str> = unregistered.iter().take(3).map(String::as_str).collect();
    println!("delivered {delivered}, not registered {} (remove them: {}…)", unregistered.len(), first.join(", "));
    println!("mock inbox: {} deliveries\n", server.inbox().len());
    println!("{}", metrics.encode());
    server.shutdown().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
