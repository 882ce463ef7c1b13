//! What the fleet is doing, on each backend: the workers apalis knows with their heartbeat
//! and the jobs each runs, and the recipients sent per minute (a cancelled one is not).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
use gcm_hyper::v1::Multicast;
use gcm_mock::{Behaviour, Scenario, TokenRule};
use gcm_queue::{Job, Processor, Queue, QueueConfig, WorkerOptions};

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

async fn the_fleet_says_what_it_is_doing(url: &str) {
    let mut scenario = Scenario::default();
    scenario.tokens.insert("busy".to_owned(), TokenRule::new(Behaviour::Unavailable).retry_after("3600"));
    let server = mock(scenario).await;
    let name = format!("activity-{}", ulid::Ulid::generate());
    let queue = Arc::new(Queue::connect_with(url, &QueueConfig { name, ..QueueConfig::default() }).await.unwrap());

    // Sent: two delivered and one left for a retry, in this minute; cancelled: none.
    let before = now_ms();
    let processor = Processor::new(senders(&server), queue.clone(), queue.clone());
    let sent = Job::v1_multicast(Multicast::new(["a", "b", "busy"]));
    queue.enqueue(&sent).await.unwrap();
    processor.process(&sent).await.unwrap().expect("busy is retried");
    let later = Job::v1_multicast(Multicast::new(["later"]));
    queue.enqueue_at(&later, Some(now_ms() + 3_600_000)).await.unwrap();
    queue.cancel(&later.id).await.unwrap();
    let per_minute = queue.sent_per_minute(now_ms(), 60).await.unwrap();
    let total: u64 = per_minute.iter().map(|(_, _, count)| count).sum();
    assert_eq!(total, 3, "{per_minute:?}");
    let (project, minute, _) = &per_minute[0];
    assert_eq!(project, "", "a job of no project");
    assert!((before / 60_000..=now_ms() / 60_000).contains(minute), "{minute}");

    // A worker sending a job to a server that never answers: listed, alive, running it.
    let silent = gcm_hyper::Gcm::new(API_KEY).unwrap().with_endpoint(&silent_server().await).unwrap();
    let silent = gcm_hyper::Client::builder(silent).request_timeout(Duration::from_secs(600)).build().unwrap();
    let hanging = Processor::new(gcm_queue::Senders { fcm: None, legacy: Some(silent) }, queue.clone(), queue.clone());
    let worker = format!("fleet-{}", ulid::Ulid::generate());
    let options = WorkerOptions { name: worker.clone(), concurrency: 2, grace: Duration::from_millis(10) };
    let (stop, running) = spawn_worker(queue.clone(), hanging, options);
    queue.enqueue(&Job::legacy(gcm_hyper::Message::multicast(["hangs"]))).await.unwrap();
    let started = now_ms() / 1000;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let workers = queue.workers().await.unwrap();
        if let Some(seen) = workers.into_iter().find(|listed| listed.name == worker && listed.running == 1) {
            break seen;
        }
        assert!(tokio::time::Instant::now() < deadline, "the worker never showed its job");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Heartbeats in seconds since the epoch, as the backend's clock gives them.
    assert!((started.saturating_sub(120)..=now_ms() / 1000 + 120).contains(&seen.heartbeat_s), "{seen:?}");
    let _ = stop.send(());
    let _ = running.await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_fleet_says_what_it_is_doing() {
    let dir = tempfile::tempdir().unwrap();
    the_fleet_says_what_it_is_doing(&format!("sqlite:{}", dir.path().join("q.db").display())).await;
}

/// In a database of its own: the counts per minute are the database's.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_fleet_says_what_it_is_doing() {
    crate::on_own_postgres_database(async |url| the_fleet_says_what_it_is_doing(&url).await).await;
}

/// Redis keeps each queue's keys under its name: the test's queue is its own.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_the_fleet_says_what_it_is_doing() {
    the_fleet_says_what_it_is_doing(&server_url("GCM_QUEUE_REDIS_URL")).await;
}
