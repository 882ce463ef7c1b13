//! The embedded queue end to end: a SQLite file, gcm-mock with the faults, one
//! worker in this process, and the results read back. Nothing to install.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use gcm_hyper::{Message, v1::Multicast};
use gcm_queue::{Final, Job, Processor, Queue};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_v1_and_legacy_multicast_end_with_one_final_fate_per_token() {
    let server = mock(faulty_scenario(2000, 7)).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("queue.db").display());
    let queue = Arc::new(Queue::connect(&url).await.unwrap());

    let legacy = Job::legacy(Message::multicast((0..1000).map(token)).data("kind", "sync")).correlation_id("legacy");
    let v1 = Job::v1_multicast(Multicast::new((1000..2000).map(token)).data("kind", "sync"));
    for job in [&legacy, &v1] {
        queue.enqueue(job).await.unwrap();
        // The same job twice is one job: the producer may retry its enqueue.
        queue.enqueue(job).await.unwrap();
    }

    let processor = Processor::new(senders(&server), queue.clone(), queue.clone());
    drain(queue.clone(), processor, &[legacy.id.clone(), v1.id.clone()], Duration::from_secs(120)).await;

    let records = all_records(queue.as_ref()).await;
    let fates = check_fates(&records, 2000);
    let canonical = fates.values().filter(|fate| matches!(fate, Final::Delivered { canonical: Some(_), .. })).count();
    assert_eq!(
        canonical,
        (0..1000).filter(|&i| canonical_of(i).is_some()).count(),
        "every legacy canonical id is reported"
    );
    assert!(records.iter().filter(|r| r.job_id == legacy.id).all(|r| r.correlation_id.as_deref() == Some("legacy")));

    let summary = gcm_queue::ResultReader::summary(queue.as_ref(), &legacy.id).await.unwrap().unwrap();
    assert_eq!((summary.status.as_str(), summary.pending, summary.canonical), ("done", 0, canonical as u64));
    assert!(summary.attempts >= 2, "the faults made retries: {summary:?}");

    // Every delivered token reached the mock, and none twice: one worker, no crash.
    let inbox = server.inbox();
    let delivered = fates.values().filter(|fate| matches!(fate, Final::Delivered { .. })).count();
    assert_eq!(inbox.len(), delivered, "each delivered token is in the inbox once");
    server.shutdown().await;
}

/// A topic subscription is a job like a send: 2500 tokens, 1000 a call, a final fate per
/// token recorded (a success is `delivered` with the topic as its id), the mock holding
/// the subscriptions afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_subscription_job_records_a_fate_per_token() {
    use gcm_mock::{Behaviour, Scenario, TokenRule};
    let server = mock(Scenario::default().token("sub-7", TokenRule::new(Behaviour::NotRegistered))).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("queue.db").display());
    let queue = Arc::new(Queue::connect(&url).await.unwrap());
    let tokens: Vec<String> = (0..2500).map(|i| format!("sub-{i}")).collect();
    let job = Job::v1_subscription(gcm_hyper::v1::Subscription::subscribe("news", tokens.clone()));
    queue.enqueue(&job).await.unwrap();

    let processor = Processor::new(senders(&server), queue.clone(), queue.clone());
    drain(queue.clone(), processor, std::slice::from_ref(&job.id), Duration::from_secs(120)).await;

    let records = all_records(queue.as_ref()).await;
    let fates: std::collections::BTreeMap<&str, &Final> =
        records.iter().map(|record| (record.recipient.as_str(), &record.fate)).collect();
    assert_eq!((records.len(), fates.len()), (2500, 2500), "one final fate per token");
    assert_eq!(fates["sub-7"], &Final::NotRegistered);
    assert!(
        fates
            .iter()
            .filter(|(token, _)| **token != "sub-7")
            .all(|(_, fate)| { matches!(fate, Final::Delivered { message_id, .. } if message_id == "/topics/news") })
    );
    assert_eq!(server.topics()["news"].len(), 2499);
    server.shutdown().await;
}
