//! One quota for the fleet, kept in the backend: the bucket's arithmetic on each backend,
//! FCM's `QUOTA_EXCEEDED` holding it empty, and three `gcm-worker run` processes that
//! together send at the configured rate and no faster.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use gcm_hyper::v1::Multicast;
use gcm_mock::{Behaviour, Scenario, TokenRule};
use gcm_queue::{Job, Processor, Queue, Quota, Rate};

/// 6000 a minute: 100 a second, a bucket of 100.
const PER_MINUTE: u32 = 6000;

async fn the_bucket_on(url: &str) {
    let queue = Queue::connect(url).await.unwrap();
    let rate = Rate::per_minute(PER_MINUTE).unwrap();
    let bucket = format!("bucket-{}", ulid::Ulid::generate());
    // A new bucket is empty: 50 messages wait half a second, the next 50 a second (the
    // bucket is in debt: each taker waits its turn). Milliseconds pass between the takes.
    let first = queue.take(&bucket, &rate, 50).await.unwrap();
    assert!(first > Duration::from_millis(400) && first <= Duration::from_millis(500), "{first:?}");
    let second = queue.take(&bucket, &rate, 50).await.unwrap();
    assert!(second > first + Duration::from_millis(300) && second <= Duration::from_secs(1), "{first:?} {second:?}");
    // FCM said the quota is spent: a minute before anything is sent, then the debt.
    queue.pause(&bucket, Duration::from_secs(60)).await.unwrap();
    let paused = queue.take(&bucket, &rate, 1).await.unwrap();
    assert!(paused > Duration::from_secs(59) && paused <= Duration::from_secs(62), "{paused:?}");
    // Another project's bucket is not held.
    let other = queue.take(&format!("{bucket}-other"), &rate, 1).await.unwrap();
    assert!(other <= Duration::from_millis(10), "{other:?}");
}

#[tokio::test]
async fn sqlite_keeps_the_fleets_bucket() {
    let dir = tempfile::tempdir().unwrap();
    the_bucket_on(&format!("sqlite:{}", dir.path().join("q.db").display())).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_keeps_the_fleets_bucket() {
    the_bucket_on(&server_url("GCM_QUEUE_POSTGRES_URL")).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_keeps_the_fleets_bucket() {
    the_bucket_on(&server_url("GCM_QUEUE_REDIS_URL")).await;
}

/// A `QUOTA_EXCEEDED` answer holds the project's bucket empty for its `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exceeded_holds_the_bucket_empty() {
    let mut scenario = Scenario::default();
    scenario.tokens.insert("spent".into(), TokenRule::new(Behaviour::RateLimited).times(1).retry_after("120"));
    let server = mock(scenario).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(Queue::connect(&format!("sqlite:{}", dir.path().join("q.db").display())).await.unwrap());
    let processor = Processor::new(senders(&server), queue.clone(), queue.clone())
        .quota(queue.clone())
        .fleet_rate("project", 600_000);
    let job = Job::v1_multicast(Multicast::new(vec!["spent".to_owned()]));
    let retry = processor.process(&job).await.unwrap().expect("a retry");
    assert!(retry.run_at_ms > 0);
    let rate = Rate::per_minute(600_000).unwrap();
    let wait = queue.take("project", &rate, 1).await.unwrap();
    assert!(wait > Duration::from_secs(115) && wait <= Duration::from_secs(120), "held for the Retry-After: {wait:?}");
}

/// Three worker processes at a fleet rate of 6000 a minute for 30 s send 3000 (±5 %)
/// together, on each backend at once: the bucket starts empty, and the count runs from
/// the first delivery. Runs with the server backends' features (in CI's loaded step).
#[cfg(any(feature = "postgres", feature = "redis"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_one_rate() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!("sqlite:{}", dir.path().join("fleet.db").display())];
    if cfg!(feature = "postgres") {
        urls.push(server_url("GCM_QUEUE_POSTGRES_URL"));
    }
    if cfg!(feature = "redis") {
        urls.push(server_url("GCM_QUEUE_REDIS_URL"));
    }
    let runs = urls.iter().map(|url| three_workers_at(url));
    futures_util::future::join_all(runs).await;
}

#[cfg(any(feature = "postgres", feature = "redis"))]
async fn three_workers_at(url: &str) {
    let server = mock(Scenario::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let queue_name = format!("fleet-{}", ulid::Ulid::generate());
    let config = gcm_queue::QueueConfig { name: queue_name.clone(), ..Default::default() };
    let queue = Queue::connect_with(url, &config).await.unwrap();
    // 5000 tokens in jobs of 50: more than 30 s can send.
    for job in 0..100 {
        let tokens: Vec<String> = (0..50).map(|i| format!("fleet-{job}-{i}")).collect();
        queue.enqueue(&Job::v1_multicast(Multicast::new(tokens))).await.unwrap();
    }
    let fleet = Fleet::sending_to(&server, dir.path(), url, queue_name, 15, 2);
    let rate = PER_MINUTE.to_string();
    let _workers: Vec<_> =
        (0..3).map(|i| fleet.start_with(&format!("fleet-worker-{i}"), &["--fleet-rate", &rate])).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while server.inbox_page(0, 1).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "{url}: nothing sent in 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let sent = server.inbox().len();
    assert!((2850..=3150).contains(&sent), "{url}: {sent} sent in 30 s at {PER_MINUTE} a minute, not 3000 ± 5 %");
    eprintln!("{url}: {sent} sent in 30 s at {PER_MINUTE} a minute (3000 expected)");
}
