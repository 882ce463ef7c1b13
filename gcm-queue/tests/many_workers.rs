//! Many machines, simulated: three `gcm-worker run` processes share a queue, gcm-mock
//! injects the faults into 100 000 tokens in 100 jobs, one worker is killed with
//! SIGKILL at 30 % and a new one started. At the end every deliverable token is in
//! the mock's inbox, duplicates are no more than the killed worker had in flight, every
//! token has exactly one final fate, every canonical id is reported, nothing is pending.
//!
//! SQLite runs here with nothing installed; PostgreSQL and Redis run with the `postgres` and
//! `redis` features, against the servers of `scripts/test-servers.sh` (a feature on and no
//! server named fails: nothing is skipped).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use gcm_hyper::{Message, v1::Multicast};
use gcm_queue::{Final, Job, Queue, QueueConfig, ResultReader};
use tokio::process::Child;

const JOBS: usize = 100;
const TOKENS_PER_JOB: usize = 1000;
const CONCURRENCY: usize = 2;

async fn kill_a_worker_in_the_middle(url: &str) {
    let started = Instant::now();
    let tokens = JOBS * TOKENS_PER_JOB;
    let server = mock(faulty_scenario(tokens, 11)).await;
    let dir = tempfile::tempdir().unwrap();
    let queue_name = format!("kill-test-{}", ulid::Ulid::generate());
    let config = QueueConfig { name: queue_name.clone(), ..QueueConfig::default() };
    let queue = Arc::new(Queue::connect_with(url, &config).await.expect("the queue connects"));
    // A killed worker's attempts go to another once its 15 s claim runs out.
    let fleet = Fleet::sending_to(&server, dir.path(), url, queue_name, 15, CONCURRENCY);

    // Half legacy multicasts (canonical ids exist there), half v1.
    let mut jobs = Vec::new();
    for chunk in 0..JOBS {
        let range = chunk * TOKENS_PER_JOB..(chunk + 1) * TOKENS_PER_JOB;
        let job = if chunk % 2 == 0 {
            Job::legacy(Message::multicast(range.map(token)).data("kind", "sync"))
        } else {
            Job::v1_multicast(Multicast::new(range.map(token)).data("kind", "sync"))
        };
        queue.enqueue(&job).await.unwrap();
        queue.enqueue(&job).await.expect("enqueueing the same job again is a no-op");
        jobs.push(job.id);
    }
    let ours: HashSet<String> = jobs.iter().cloned().collect();

    let mut workers: Vec<Child> = (0..3).map(|i| fleet.start(&format!("worker-{i}"))).collect();

    // Kill worker 0 once 30 % of the tokens are settled, and start a new one.
    let mut cursor = 0;
    let mut settled = 0;
    while settled < tokens * 3 / 10 {
        assert!(started.elapsed() < Duration::from_secs(120), "only {settled} tokens settled in 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (next, record) in queue.since(cursor, 10_000).await.unwrap() {
            cursor = next;
            settled += usize::from(ours.contains(&record.job_id));
        }
    }
    workers[0].start_kill().unwrap();
    let killed = workers[0].wait().await.unwrap();
    assert!(!killed.success(), "SIGKILL ends the worker");
    workers[0] = fleet.start("worker-3");

    wait_done(queue.as_ref(), &jobs, Duration::from_secs(300)).await;
    for worker in &mut workers {
        let status = terminate(worker).await;
        assert!(status.success(), "SIGTERM stops a worker cleanly: {status}");
    }

    let records: Vec<_> = all_records(queue.as_ref()).await.into_iter().filter(|r| ours.contains(&r.job_id)).collect();
    let fates = check_fates(&records, tokens);
    let canonical_expected =
        (0..tokens).filter(|&i| (i / TOKENS_PER_JOB).is_multiple_of(2) && canonical_of(i).is_some()).count();
    let canonical = fates.values().filter(|fate| matches!(fate, Final::Delivered { canonical: Some(_), .. })).count();
    assert_eq!(canonical, canonical_expected, "every canonical id of the legacy jobs is reported");

    let inbox = server.inbox();
    let delivered: BTreeSet<&str> = fates
        .iter()
        .filter(|(_, fate)| matches!(fate, Final::Delivered { .. }))
        .map(|(token, _)| token.as_str())
        .collect();
    let received: BTreeSet<&str> = inbox.iter().map(|delivery| delivery.token.as_str()).collect();
    let lost = delivered.difference(&received).count();
    assert_eq!(lost, 0, "every token recorded as delivered is in the mock's inbox");
    let duplicates = inbox.len() - received.len();
    assert!(
        duplicates <= CONCURRENCY * TOKENS_PER_JOB,
        "{duplicates} duplicates, more than the {} messages the killed worker had in flight",
        CONCURRENCY * TOKENS_PER_JOB
    );
    for job in &jobs {
        let summary = queue.summary(job).await.unwrap().unwrap();
        assert_eq!((summary.status.as_str(), summary.pending), ("done", 0), "{job}: {summary:?}");
    }
    println!(
        "kill-a-worker on {}: tokens={tokens} delivered={} not_registered={} canonical={canonical} duplicates={duplicates} lost={lost} elapsed={:.1}s",
        queue.backend_name(),
        delivered.len(),
        fates.values().filter(|fate| **fate == Final::NotRegistered).count(),
        started.elapsed().as_secs_f64()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_a_killed_worker() {
    let dir = tempfile::tempdir().unwrap();
    kill_a_worker_in_the_middle(&format!("sqlite:{}", dir.path().join("queue.db").display())).await;
}

/// The URL of a test server: from the environment, or from the file the script writes.
#[cfg(any(feature = "postgres", feature = "redis"))]
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_a_killed_worker() {
    kill_a_worker_in_the_middle(&server_url("GCM_QUEUE_POSTGRES_URL")).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_survives_a_killed_worker() {
    kill_a_worker_in_the_middle(&server_url("GCM_QUEUE_REDIS_URL")).await;
}

/// A Redis busy with other clients (one script runs at a time) answers late: a reader
/// waits for it instead of failing after redis-rs's default 500 ms (it did: `Store(timed
/// out)` while three workers settled 1000-token jobs).
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_readers_wait_for_a_busy_server() {
    const BUSY_FOR_A_SECOND: &str = "local t0 = redis.call('TIME') \
        local start = t0[1] * 1000000 + t0[2] \
        repeat local t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > 1000000 \
        return 0";
    let url = server_url("GCM_QUEUE_REDIS_URL");
    let queue = Queue::connect(&url).await.unwrap();
    let patient = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut other = client.get_multiplexed_async_connection_with_config(&patient).await.unwrap();
    let busy =
        tokio::spawn(
            async move { redis::cmd("EVAL").arg(BUSY_FOR_A_SECOND).arg(0).query_async::<i64>(&mut other).await },
        );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    queue.since(0, 10).await.unwrap();
    assert!(started.elapsed() > Duration::from_millis(500), "the server was not busy: {:?}", started.elapsed());
    busy.await.unwrap().unwrap();
}
