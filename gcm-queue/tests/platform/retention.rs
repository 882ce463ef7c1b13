//! Retention on each backend: at a time given explicitly (days ahead of the clock), what is
//! finished and older than kept is deleted — records, then jobs and apalis's tasks — and a
//! job with an attempt to come, or not yet sent, is never touched.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
use gcm_hyper::v1::Multicast;
use gcm_mock::{Behaviour, Scenario, TokenRule};
use gcm_queue::{Audiences, Job, Processor, Pruned, Queue, QueueConfig, ResultReader, Retention};

const DAY_MS: u64 = 24 * 3600 * 1000;

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

fn days(days: u64) -> Duration {
    Duration::from_secs(days * 24 * 3600)
}

fn jobs_in(stats: &gcm_queue::QueueStats, state: &str) -> u64 {
    stats.jobs.iter().filter(|(name, _)| name == state).map(|(_, count)| *count).sum()
}

async fn retention_deletes_only_what_is_finished(url: &str) {
    let retried = format!("retried-{}", ulid::Ulid::generate());
    let audience = format!("retained-{}", ulid::Ulid::generate());
    let gone = format!("gone-{audience}");
    let mut scenario = Scenario::default();
    // Refused for an hour: its retry waits in the queue through every prune below.
    scenario.tokens.insert(retried.clone(), TokenRule::new(Behaviour::Unavailable).retry_after("3600"));
    scenario.tokens.insert(gone.clone(), TokenRule::new(Behaviour::NotRegistered));
    let server = mock(scenario).await;
    let name = format!("retention-{}", ulid::Ulid::generate());
    let queue = Arc::new(Queue::connect_with(url, &QueueConfig { name, ..QueueConfig::default() }).await.unwrap());
    let processor = Processor::new(senders(&server), queue.clone(), queue.clone());

    // The finished job came from an audience, one of whose tokens is uninstalled: a change
    // in its feed, which retention prunes with the records.
    let tokens: Vec<String> = (0..3).map(|i| format!("done-{i}")).chain([gone.clone()]).collect();
    queue.put_audience(&audience, &tokens).await.unwrap();
    let mut finished = Job::v1_multicast(Multicast::new(tokens));
    finished.audience = Some(audience.clone());
    let retrying = Job::v1_multicast(Multicast::new(vec![retried]));
    let scheduled = Job::v1_multicast(Multicast::new(vec!["later-0".to_owned(), "later-1".to_owned()]));
    queue.enqueue(&finished).await.unwrap();
    queue.enqueue(&retrying).await.unwrap();
    queue.enqueue_at(&scheduled, Some(now_ms() + DAY_MS)).await.unwrap();
    let retry = processor.process(&retrying).await.unwrap().expect("a retry in an hour");
    assert_eq!(retry.job.attempt, 1);
    drain(queue.clone(), processor, std::slice::from_ref(&finished.id), Duration::from_secs(60)).await;
    let stats = queue.stats().await.unwrap();
    assert!(jobs_in(&stats, "done") >= 2, "the finished job's task and the retried one's first: {stats:?}");

    // Today, nothing is old enough.
    assert_eq!(queue.prune(&Retention::default(), now_ms()).await.unwrap(), Pruned::default());

    // Two days on, records kept a day are gone; jobs kept 60 days stay.
    let records_only = Retention { results: days(1), jobs: days(60) };
    let pruned = queue.prune(&records_only, now_ms() + 2 * DAY_MS).await.unwrap();
    // One block: the finished job's 4 records (the retried attempt settled no final fate);
    // the audience's change (and, on a Redis other tests share, their audiences' changes:
    // audiences belong to the backend, not to a queue).
    assert_eq!((pruned.result_blocks, pruned.jobs, pruned.tasks), (1, 0, 0), "{pruned:?}");
    assert!(pruned.audience_changes >= 1, "{pruned:?}");
    assert!(queue.since(0, 100).await.unwrap().is_empty(), "no record left");
    assert!(queue.audience_changes(&audience, 0, 10).await.unwrap().is_empty(), "no change left");
    assert_eq!(queue.audience_recipients(&audience).await.unwrap().len(), 3, "the audience itself is kept");
    let summary = queue.summary(&finished.id).await.unwrap().expect("the finished job is still known");
    assert_eq!((summary.status.as_str(), summary.delivered, summary.not_registered), ("done", 3, 1), "{summary:?}");

    // 31 days on, the finished job goes with its tasks; the others are untouched.
    let pruned = queue.prune(&Retention { results: days(1), jobs: days(30) }, now_ms() + 31 * DAY_MS).await.unwrap();
    assert_eq!((pruned.result_blocks, pruned.jobs), (0, 1), "{pruned:?}");
    assert!(pruned.tasks >= 2, "apalis's finished tasks: {pruned:?}");
    assert_eq!(queue.summary(&finished.id).await.unwrap(), None, "the finished job is gone");
    let stats = queue.stats().await.unwrap();
    assert_eq!(jobs_in(&stats, "done"), 0, "{stats:?}");
    assert_eq!(
        jobs_in(&stats, "pending") + jobs_in(&stats, "scheduled"),
        2,
        "the retry and the scheduled job: {stats:?}"
    );
    let summary = queue.summary(&scheduled.id).await.unwrap().expect("the scheduled job is kept");
    assert_eq!((summary.status.as_str(), summary.attempts, summary.pending), ("scheduled", 0, 2), "{summary:?}");
    // The retry still has all it needs: cancelling it reads its payload and records it.
    let summary = queue.cancel(&retrying.id).await.unwrap().expect("the retried job is kept");
    assert_eq!((summary.status.as_str(), summary.cancelled, summary.attempts), ("cancelled", 1, 2), "{summary:?}");

    // Cancelled, the retried job is finished too: 31 days on it goes; the scheduled job,
    // never sent, stays.
    let pruned = queue.prune(&Retention { results: days(1), jobs: days(30) }, now_ms() + 31 * DAY_MS).await.unwrap();
    assert_eq!((pruned.result_blocks, pruned.jobs), (1, 1), "{pruned:?}");
    assert_eq!(queue.summary(&retrying.id).await.unwrap(), None);
    assert!(queue.summary(&scheduled.id).await.unwrap().is_some(), "the scheduled job is kept");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_retention_deletes_only_what_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    retention_deletes_only_what_is_finished(&format!("sqlite:{}", dir.path().join("q.db").display())).await;
}

/// In a database of its own: a prune days ahead would delete other tests' finished jobs.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_retention_deletes_only_what_is_finished() {
    crate::on_own_postgres_database(async |url| retention_deletes_only_what_is_finished(&url).await).await;
}

/// Redis keeps each queue's keys under its name: the test's queue is its own.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_retention_deletes_only_what_is_finished() {
    let _audiences = crate::SHARED_AUDIENCES.lock().await;
    retention_deletes_only_what_is_finished(&server_url("GCM_QUEUE_REDIS_URL")).await;
}
