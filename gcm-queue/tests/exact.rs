//! Each token sent once per attempt: workers whose apalis heartbeat stalls, claims that
//! fence an attempt to one live worker, and N processes setting up a new database at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use gcm_hyper::v1::Multicast;
use gcm_mock::{Faults, Scenario};
use gcm_queue::{Job, Processor, Queue, QueueConfig, WorkerOptions};

/// apalis 1.0 sends no heartbeat while jobs it fetched wait in its buffer (a batch of 10,
/// one slot, answers that take 1.5 s): the other worker takes the stalled worker's jobs,
/// the one it is sending among them, while it is alive. The claim on each attempt keeps
/// every token to one delivery: the second worker waits for the first to settle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_worker_whose_heartbeat_stalls_has_nothing_sent_twice() {
    const JOBS: usize = 8;
    const TOKENS: usize = 20;
    let scenario = Scenario { faults: Faults { latency_ms: 1500, ..Faults::default() }, ..Scenario::default() };
    let server = mock(scenario).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("queue.db").display());
    let config = QueueConfig { heartbeat: Duration::from_secs(2), batch_size: 10, ..QueueConfig::default() };
    let first = Arc::new(Queue::connect_with(&url, &config).await.unwrap());
    let mut jobs = Vec::new();
    for job in 0..JOBS {
        let job = Job::v1_multicast(Multicast::new((job * TOKENS..(job + 1) * TOKENS).map(token)).data("k", "v"));
        first.enqueue(&job).await.unwrap();
        jobs.push(job.id);
    }
    let one_slot = |name: &str| WorkerOptions { name: name.into(), concurrency: 1, ..WorkerOptions::default() };
    let processor = Processor::new(senders(&server), first.clone(), first.clone());
    let (stop_first, first_worker) = spawn_worker(first.clone(), processor, one_slot("first"));
    // The first worker has fetched every job (a batch of 10) once its first send arrives.
    while server.inbox().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = Arc::new(Queue::connect_with(&url, &config).await.unwrap());
    let processor = Processor::new(senders(&server), second.clone(), second.clone());
    let (stop_second, second_worker) = spawn_worker(second.clone(), processor, one_slot("second"));

    wait_done(first.as_ref(), &jobs, Duration::from_secs(120)).await;
    stop_first.send(()).unwrap();
    stop_second.send(()).unwrap();
    first_worker.await.unwrap().expect("the first worker stops cleanly");
    second_worker.await.unwrap().expect("the second worker stops cleanly");

    let twice: Vec<_> = deliveries(&server).into_iter().filter(|(_, count)| *count > 1).collect();
    assert_eq!(twice, [], "tokens delivered more than once");
    assert_eq!(server.inbox().len(), JOBS * TOKENS);
    let records = all_records(first.as_ref()).await;
    assert_eq!(records.len(), JOBS * TOKENS, "one fate per token");
}

/// What every store promises of a claim: one live owner, renewals, a takeover only after
/// the lease ran out (and named), nothing granted once the attempt is settled.
async fn claims_fence_an_attempt(store: &dyn gcm_queue::ResultStore) {
    use gcm_queue::{Claim, Settlement};
    let job = format!("claim-{}", ulid::Ulid::generate());
    let (short, long) = (Duration::from_millis(100), Duration::from_secs(60));
    let granted = |from: Option<&str>| Claim::Granted { taken_over_from: from.map(str::to_owned) };
    let held = |owner: &str| Claim::Held { owner: owner.to_owned() };
    assert_eq!(store.claim(&job, 0, "a", short).await.unwrap(), granted(None));
    assert_eq!(store.claim(&job, 0, "b", long).await.unwrap(), held("a"), "a's lease is live");
    assert_eq!(store.claim(&job, 0, "a", short).await.unwrap(), granted(None), "a renews");
    assert_eq!(store.claim(&job, 1, "b", long).await.unwrap(), granted(None), "another attempt is another claim");
    // Past a's lease (timed by the store's clock), b takes the attempt over and says so.
    tokio::time::sleep(short * 3).await;
    assert_eq!(store.claim(&job, 0, "b", long).await.unwrap(), granted(Some("a")));
    assert_eq!(store.claim(&job, 0, "a", long).await.unwrap(), held("b"), "a lost it");
    let settlement =
        Settlement { job_id: job.clone(), attempt: 0, records: Vec::new(), retry: None, audience: None, webhook: None };
    store.settle(&settlement).await.unwrap();
    tokio::time::sleep(short * 3).await;
    assert!(
        matches!(store.claim(&job, 0, "c", long).await.unwrap(), Claim::Held { .. }),
        "a settled attempt is never granted"
    );
}

#[tokio::test]
async fn memory_claims_fence_an_attempt() {
    claims_fence_an_attempt(&gcm_queue::MemoryResults::new()).await;
}

#[tokio::test]
async fn sqlite_claims_fence_an_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::connect(&format!("sqlite:{}", dir.path().join("queue.db").display())).await.unwrap();
    claims_fence_an_attempt(&queue).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_claims_fence_an_attempt() {
    claims_fence_an_attempt(&Queue::connect(&server_url("GCM_QUEUE_POSTGRES_URL")).await.unwrap()).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_claims_fence_an_attempt() {
    claims_fence_an_attempt(&Queue::connect(&server_url("GCM_QUEUE_REDIS_URL")).await.unwrap()).await;
}

/// What every store promises of its records: each settled record read back once, in the
/// order of its settlement, through pages of any size (the SQL and Redis stores keep them
/// in blocks of 1000: pages end inside blocks and across them); a second settlement of one
/// attempt records nothing.
async fn records_read_back_once_in_order(store: &(impl gcm_queue::ResultStore + gcm_queue::ResultReader)) {
    use gcm_queue::{Final, Record, Settlement};
    let job = format!("records-{}", ulid::Ulid::generate());
    let record = |attempt: u32, i: usize| Record {
        job_id: job.clone(),
        attempt,
        recipient: format!("token-{i}"),
        correlation_id: i.is_multiple_of(2).then(|| "campaign".to_owned()),
        campaign_id: i.is_multiple_of(3).then(|| "c-1".to_owned()),
        project: i.is_multiple_of(7).then(|| "shop".to_owned()),
        fate: if i.is_multiple_of(5) {
            Final::NotRegistered
        } else {
            Final::Delivered { message_id: format!("m{i}"), canonical: None }
        },
    };
    // Read from the end of what the store holds: a shared database has other tests' records,
    // and a page costs the blocks it touches.
    let mut start = 0;
    while let Some((last, _)) = store.since(start, 10_000).await.unwrap().last() {
        start = *last;
    }
    // Blocks of 1000, partial, none, and 20 of one record (a reader asks for more at a time).
    let sizes = [(0, 2500), (1, 1), (2, 0), (3, 1000)].into_iter().chain((4..24).map(|attempt| (attempt, 1)));
    let settlements: Vec<Settlement> = sizes
        .map(|(attempt, n)| Settlement {
            job_id: job.clone(),
            attempt,
            records: (0..n).map(|i| record(attempt, i)).collect(),
            retry: None,
            audience: None,
            webhook: None,
        })
        .collect();
    for settlement in &settlements {
        store.settle(settlement).await.unwrap();
    }
    let again = Settlement { records: vec![record(0, 9999)], ..settlements[0].clone() };
    store.settle(&again).await.unwrap();
    let expected: Vec<Record> = settlements.iter().flat_map(|settlement| settlement.records.clone()).collect();
    for limit in [7, 1000, 1001] {
        let (mut cursor, mut read) = (start, Vec::new());
        loop {
            let page = store.since(cursor, limit).await.unwrap();
            assert!(page.len() <= limit);
            let Some((last, _)) = page.last() else { break };
            assert!(*last > cursor, "cursors grow");
            cursor = *last;
            read.extend(page.into_iter().map(|(_, record)| record).filter(|record| record.job_id == job));
        }
        assert_eq!(read, expected, "pages of {limit}");
    }
    let summary = store.summary(&job).await.unwrap().unwrap();
    assert_eq!((summary.attempts, summary.delivered, summary.not_registered), (24, 2800, 721), "{summary:?}");
}

#[tokio::test]
async fn memory_records_read_back_once_in_order() {
    records_read_back_once_in_order(&gcm_queue::MemoryResults::new()).await;
}

#[tokio::test]
async fn sqlite_records_read_back_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::connect(&format!("sqlite:{}", dir.path().join("queue.db").display())).await.unwrap();
    records_read_back_once_in_order(&queue).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_records_read_back_once_in_order() {
    records_read_back_once_in_order(&Queue::connect(&server_url("GCM_QUEUE_POSTGRES_URL")).await.unwrap()).await;
}

/// PostgreSQL takes a block's number before its commit: a settlement holds an advisory lock
/// from its first block to its commit, so that no block becomes visible after a later one a
/// reader has already read past. While another transaction holds that lock, a settlement
/// waits.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_settlements_commit_their_blocks_in_the_order_of_their_numbers() {
    use sqlx::Connection as _;
    const RESULTS_LOCK: i64 = 0x6763_6d2d_7265_7375; // gcm-queue's, in store/sql.rs
    let url = server_url("GCM_QUEUE_POSTGRES_URL");
    let queue = std::sync::Arc::new(Queue::connect(&url).await.unwrap());
    let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut held = holder.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(RESULTS_LOCK).execute(&mut *held).await.unwrap();
    let job = format!("ordered-{}", ulid::Ulid::generate());
    let record = gcm_queue::Record {
        job_id: job.clone(),
        attempt: 0,
        recipient: "token".to_owned(),
        correlation_id: None,
        campaign_id: None,
        project: None,
        fate: gcm_queue::Final::NotRegistered,
    };
    let settlement = gcm_queue::Settlement {
        job_id: job.clone(),
        attempt: 0,
        records: vec![record],
        retry: None,
        audience: None,
        webhook: None,
    };
    let mut settling = tokio::spawn({
        let queue = queue.clone();
        async move { gcm_queue::ResultStore::settle(queue.as_ref(), &settlement).await.map(|_| ()) }
    });
    // It cannot end while the lock is held, however long this waits.
    assert!(tokio::time::timeout(Duration::from_millis(500), &mut settling).await.is_err(), "settled past the lock");
    held.commit().await.unwrap();
    settling.await.unwrap().unwrap();
    assert_eq!(gcm_queue::ResultReader::summary(queue.as_ref(), &job).await.unwrap().unwrap().not_registered, 1);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_records_read_back_once_in_order() {
    let config = gcm_queue::QueueConfig { name: format!("records-{}", ulid::Ulid::generate()), ..Default::default() };
    let queue = Queue::connect_with(&server_url("GCM_QUEUE_REDIS_URL"), &config).await.unwrap();
    records_read_back_once_in_order(&queue).await;
}

/// Starts `n` `gcm-worker enqueue` processes on `url` together, as replicas start under
/// systemd or Kubernetes; each must set the queue up (or find it set up) and succeed.
async fn start_together(url: &str, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, "device-1\n").unwrap();
    let runs = (0..n).map(|_| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_gcm-worker"))
            .args(["enqueue", "--exit-on-unreachable", "--queue", url, "--tokens"])
            .arg(&tokens)
            .env("RUST_LOG", "warn")
            .output()
    });
    for output in futures_util::future::join_all(runs).await {
        let output = output.expect("gcm-worker runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_processes_set_up_a_new_sqlite_queue_together() {
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        start_together(&format!("sqlite:{}", dir.path().join(format!("new-{round}.db")).display()), 5).await;
    }
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_processes_set_up_a_new_postgres_database_together() {
    let server = server_url("GCM_QUEUE_POSTGRES_URL");
    let admin = sqlx::PgPool::connect(&server).await.unwrap();
    let base = server.rsplit_once('/').unwrap().0;
    for _ in 0..10 {
        let name = format!("gcm_setup_{}", ulid::Ulid::generate().to_string().to_lowercase());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
        start_together(&format!("{base}/{name}"), 5).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).execute(&admin).await.unwrap();
    }
}
