//! What each backend keeps of a job besides its sends: `DELETE /jobs/<id>` underneath (a
//! cancelled job's unsent recipients are recorded `cancelled` and never sent; an attempt
//! being sent finishes under its own lease), and the first answer of an `Idempotency-Key`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use gcm_hyper::v1::Multicast;
use gcm_queue::{Claim, Job, Processor, Queue, QueueConfig, ResultReader, ResultStore};

async fn what_the_queue_keeps_of_a_job(url: &str) {
    let server = mock(gcm_mock::Scenario::default()).await;
    let name = format!("cancel-{}", ulid::Ulid::generate());
    let queue = Arc::new(Queue::connect_with(url, &QueueConfig { name, ..QueueConfig::default() }).await.unwrap());
    let processor = Processor::new(senders(&server), queue.clone(), queue.clone());
    let tokens = |prefix: &str| (0..3).map(|i| format!("{prefix}-{}-{i}", ulid::Ulid::generate())).collect::<Vec<_>>();

    // Queued, then cancelled: when its attempt runs, nothing is sent.
    let queued = Job::v1_multicast(Multicast::new(tokens("queued")));
    queue.enqueue(&queued).await.unwrap();
    let summary = queue.cancel(&queued.id).await.unwrap().unwrap();
    assert_eq!(summary.status, "cancelled", "{summary:?}");
    assert_eq!(processor.process(&queued).await.unwrap(), None, "no retry");
    let summary = queue.summary(&queued.id).await.unwrap().unwrap();
    assert_eq!((summary.cancelled, summary.pending, summary.delivered), (3, 0, 0), "{summary:?}");
    let sent = deliveries(&server);
    assert!(queued.payload.recipients().iter().all(|token| !sent.contains_key(token)), "nothing sent: {sent:?}");
    if url.starts_with("sqlite:") {
        // A fresh database (the servers' are shared with other tests: their counts above).
        let records = all_records(queue.as_ref()).await;
        let fates: Vec<_> = records.iter().filter(|r| r.job_id == queued.id).map(|r| r.fate.name()).collect();
        assert_eq!(fates, ["cancelled"; 3]);
    }

    // Being sent: the sender keeps its lease, another run waits, and the attempt's own
    // settlement stands.
    let sending = Job::v1_multicast(Multicast::new(tokens("sending")));
    queue.enqueue(&sending).await.unwrap();
    let lease = Duration::from_secs(60);
    assert!(matches!(queue.claim(&sending.id, 0, "sender", lease).await.unwrap(), Claim::Granted { .. }));
    let summary = queue.cancel(&sending.id).await.unwrap().unwrap();
    assert_eq!((summary.status.as_str(), summary.cancelled), ("sending", 0), "{summary:?}");
    assert_eq!(queue.claim(&sending.id, 0, "other", lease).await.unwrap(), Claim::Held { owner: "sender".into() });
    assert!(matches!(queue.claim(&sending.id, 0, "sender", lease).await.unwrap(), Claim::Granted { .. }));

    assert_eq!(queue.cancel("no-such-job").await.unwrap(), None);

    // The queue's gauges: its two jobs wait in the engine (this queue's name is its own);
    // the job being sent still has its 3 recipients pending (the database may be shared).
    let stats = queue.stats().await.unwrap();
    let pending = stats.jobs.iter().find(|(state, _)| state == "pending").map(|(_, count)| *count);
    assert_eq!(pending, Some(2), "{stats:?}");
    assert!(stats.pending_recipients >= 3, "{stats:?}");

    // The first answer of a key stands.
    let key = format!("caller:{}", ulid::Ulid::generate());
    assert_eq!(queue.remember(&key, "first").await.unwrap(), "first");
    assert_eq!(queue.remember(&key, "second").await.unwrap(), "first");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_cancellations_and_idempotency_keys() {
    let dir = tempfile::tempdir().unwrap();
    what_the_queue_keeps_of_a_job(&format!("sqlite:{}", dir.path().join("q.db").display())).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_cancellations_and_idempotency_keys() {
    what_the_queue_keeps_of_a_job(&server_url("GCM_QUEUE_POSTGRES_URL")).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keeps_cancellations_and_idempotency_keys() {
    what_the_queue_keeps_of_a_job(&server_url("GCM_QUEUE_REDIS_URL")).await;
}
