//! Campaigns on each backend: a campaign's jobs read together (their summaries, records and
//! retry schedule), its given-up and parked tokens enqueued again once with their content, the
//! campaign cancelled, and a pruned campaign gone from the list.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
use gcm_hyper::v1::Multicast;
use gcm_mock::{Behaviour, Scenario, TokenRule};
use gcm_queue::{
    Final, Job, JobStatus, Policy, Processor, Queue, QueueConfig, RequeuedJob, ResultReader, Retention, Unsure,
};

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

async fn campaigns_are_read_and_acted_on_together(url: &str) {
    let campaign = format!("c-{}", ulid::Ulid::generate());
    let mut scenario = Scenario::default();
    // Refused for an hour: a retry stays due through the test.
    scenario.tokens.insert("busy".to_owned(), TokenRule::new(Behaviour::Unavailable).retry_after("3600"));
    // Refused once: given up by a one-attempt policy, delivered when sent again.
    scenario.tokens.insert("flaky".to_owned(), TokenRule::new(Behaviour::Unavailable).times(1));
    scenario.tokens.insert("gone".to_owned(), TokenRule::new(Behaviour::NotRegistered));
    let server = mock(scenario).await;
    let name = format!("campaigns-{}", ulid::Ulid::generate());
    let queue = Arc::new(Queue::connect_with(url, &QueueConfig { name, ..QueueConfig::default() }).await.unwrap());
    let retrying = Processor::new(senders(&server), queue.clone(), queue.clone());
    let one_attempt = Processor::new(senders(&server), queue.clone(), queue.clone())
        .policy(Policy { max_attempts: 1, ..Policy::default() });
    // A server that never answers, and a policy that parks what may have reached it.
    let silent = gcm_hyper::Gcm::new(API_KEY).unwrap().with_endpoint(&silent_server().await).unwrap();
    let silent = gcm_hyper::Client::builder(silent).request_timeout(Duration::from_millis(200)).build().unwrap();
    let parking = Processor::new(gcm_queue::Senders { fcm: None, legacy: Some(silent) }, queue.clone(), queue.clone())
        .policy(Policy { unsure: Unsure::Park, ..Policy::default() });

    let job = |tokens: &[&str]| {
        Job::v1_multicast(Multicast::new(tokens.iter().copied()).data("kind", "campaign")).campaign_id(&campaign)
    };
    let (a, b, later) = (job(&["a-0", "busy", "gone"]), job(&["b-0", "flaky"]), job(&["later-0"]));
    queue.enqueue(&a).await.unwrap();
    queue.enqueue(&b).await.unwrap();
    queue.enqueue_at(&later, Some(now_ms() + 24 * 3600 * 1000)).await.unwrap();
    let parked = Job::legacy(gcm_hyper::Message::multicast(["unsure"]).data("kind", "legacy")).campaign_id(&campaign);
    queue.enqueue(&parked).await.unwrap();
    let before = now_ms();
    retrying.process(&a).await.unwrap().expect("busy is retried in an hour");
    assert!(one_attempt.process(&b).await.unwrap().is_none(), "flaky is given up at once");
    assert!(parking.process(&parked).await.unwrap().is_none(), "unsure is parked");

    let read = queue.campaign(&campaign).await.unwrap().expect("the campaign is known");
    let totals = &read.totals;
    assert_eq!(read.jobs.len(), 4);
    assert_eq!(
        (totals.recipients, totals.delivered, totals.not_registered, totals.given_up, totals.parked, totals.pending),
        (7, 2, 1, 1, 1, 2),
        "{totals:?}"
    );
    assert_eq!(totals.status, JobStatus::Retrying, "the busiest job's status");
    // The retry schedule: an hour on, as the job's own summary says.
    let due = totals.retry_at_ms.expect("a retry is due");
    assert!((before + 3_600_000..=now_ms() + 3_600_000).contains(&due), "{due} vs {before}");
    assert_eq!(queue.summary(&a.id).await.unwrap().unwrap().retry_at_ms, Some(due));
    assert!(queue.campaigns(10).await.unwrap().iter().any(|listed| listed.campaign_id == campaign));

    let (records, complete) = queue.campaign_records(&read, 100).await.unwrap();
    assert!(complete);
    // Read up to a bound, job by job: the first jobs' records, and the caller told.
    let (first, complete) = queue.campaign_records(&read, 1).await.unwrap();
    assert!(!complete && !first.is_empty() && first.len() < 5, "{first:?}");
    let fate = |token: &str| records.iter().find(|record| record.recipient == token).map(|record| record.fate.name());
    assert_eq!(records.len(), 5, "{records:?}");
    assert_eq!(
        (fate("gone"), fate("flaky"), fate("b-0")),
        (Some("not_registered"), Some("given_up"), Some("delivered"))
    );
    let flaky = &records.iter().find(|record| record.recipient == "flaky").unwrap().fate;
    assert_eq!(flaky, &Final::GivenUp { cause: "Unavailable".to_owned() });

    // Re-queued once, whatever the calls: jobs of the campaign with the same content.
    let requeued = queue.requeue_campaign(&campaign).await.unwrap().unwrap();
    let requeued_job = |job: &Job| RequeuedJob { job_id: format!("{}-r0", job.id), recipients: 1 };
    let mut expected = vec![requeued_job(&b), requeued_job(&parked)];
    expected.sort();
    let mut jobs = requeued.jobs.clone();
    jobs.sort();
    assert_eq!(jobs, expected);
    assert!(requeued.lost.is_empty());
    assert_eq!(queue.requeue_campaign(&campaign).await.unwrap().unwrap(), requeued);
    let read = queue.campaign(&campaign).await.unwrap().unwrap();
    assert_eq!((read.jobs.len(), read.totals.recipients), (6, 9));
    let ids: Vec<String> = expected.into_iter().map(|job| job.job_id).collect();
    drain(queue.clone(), retrying, &ids, Duration::from_secs(60)).await;
    for (token, kind) in [("flaky", "campaign"), ("unsure", "legacy")] {
        let sent: Vec<_> = server.inbox().into_iter().filter(|delivery| delivery.token == token).collect();
        assert_eq!(sent.len(), 1, "{token} sent once again, not twice: {sent:?}");
        assert_eq!(sent[0].data.get("kind").and_then(|kind| kind.as_str()), Some(kind));
    }

    // Cancelled: the scheduled job and the retry; what was settled stays.
    let read = queue.cancel_campaign(&campaign).await.unwrap().unwrap();
    assert_eq!(read.totals.status, JobStatus::Cancelled, "{read:?}");
    assert_eq!((read.totals.delivered, read.totals.cancelled, read.totals.pending), (4, 2, 0), "{:?}", read.totals);

    // Pruned with its jobs, the campaign leaves the list.
    let month_on = now_ms() + 31 * 24 * 3600 * 1000;
    queue
        .prune(&Retention { results: Duration::from_secs(3600), jobs: Duration::from_secs(3600) }, month_on)
        .await
        .unwrap();
    assert_eq!(queue.campaign(&campaign).await.unwrap(), None);
    assert!(!queue.campaigns(10).await.unwrap().iter().any(|listed| listed.campaign_id == campaign));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_campaigns_are_read_and_acted_on_together() {
    let dir = tempfile::tempdir().unwrap();
    campaigns_are_read_and_acted_on_together(&format!("sqlite:{}", dir.path().join("q.db").display())).await;
}

/// In a database of its own: the prune at the end would delete other tests' jobs.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_campaigns_are_read_and_acted_on_together() {
    crate::on_own_postgres_database(async |url| campaigns_are_read_and_acted_on_together(&url).await).await;
}

/// Redis keeps each queue's keys under its name: the test's queue is its own.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_campaigns_are_read_and_acted_on_together() {
    let _audiences = crate::SHARED_AUDIENCES.lock().await;
    campaigns_are_read_and_acted_on_together(&server_url("GCM_QUEUE_REDIS_URL")).await;
}
