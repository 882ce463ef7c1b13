//! Signed webhooks on each backend, against a receiver in Python that verifies every
//! signature with PyPI's `standardwebhooks` (`receiver.py`) and fails, hangs and answers
//! slowly as a plan says: every settlement arrives, signed with both secrets of a rotation,
//! one delivery of a job at a time in attempt order, under one id however often it is
//! tried; a replay sends the same ids again. Then the kill: a `gcm-worker` killed
//! while its delivery is in flight, and the receiver still gets every batch once after
//! de-duplicating by `webhook-id`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use gcm_hyper::v1::Multicast;
use gcm_mock::{Behaviour, Scenario, TokenRule};
use gcm_queue::webhook::{Deliverer, DeliveryState, Endpoint, Secret, WebhookOutbox};
use gcm_queue::{Audiences, Job, Processor, Queue, QueueConfig};
use serde_json::Value;

/// A Python with `standardwebhooks` (from PyPI, installed once into the target directory).
fn python() -> PathBuf {
    static VENV: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = VENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("standardwebhooks-1.3.0");
    let python = venv.join("bin/python");
    let ready = || std::process::Command::new(&python).args(["-c", "import standardwebhooks"]).status();
    if ready().is_ok_and(|status| status.success()) {
        return python;
    }
    let created = std::process::Command::new("python3").arg("-m").arg("venv").arg(&venv).status().unwrap();
    assert!(created.success(), "python3 -m venv {} failed (Debian: python3-venv)", venv.display());
    let installed = std::process::Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "standardwebhooks==1.3.0"])
        .status()
        .unwrap();
    assert!(installed.success(), "pip install standardwebhooks==1.3.0 failed: the receiver needs it from PyPI");
    python
}

/// `receiver.py` on a free loopback port.
struct Receiver {
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl Receiver {
    async fn start(plan: &str, secrets: &[&str]) -> Self {
        use tokio::io::AsyncBufReadExt as _;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("received.jsonl");
        let mut child = tokio::process::Command::new(python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/platform/receiver.py"))
            .arg(&log)
            .arg(plan)
            .args(secrets)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let port = tokio::io::BufReader::new(stdout).lines().next_line().await.unwrap().expect("the receiver's port");
        Self { url: format!("http://127.0.0.1:{port}/hooks"), log, _dir: dir, _child: child }
    }

    /// What it logged, in order.
    fn entries(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    fn arrivals(&self) -> Vec<Value> {
        self.entries().into_iter().filter(|entry| entry["event"] == "arrived").collect()
    }
}

/// Waits for `done` (checked every 50 ms), failing after `limit` with `what`.
async fn wait_until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn secret(byte: u8) -> String {
    use base64::Engine as _;
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([byte; 24]))
}

/// The deliveries of `jobs` (bodies left out).
async fn deliveries(queue: &Queue, jobs: &[&Job]) -> Vec<gcm_queue::webhook::Delivery> {
    let all = queue.deliveries(0, 100_000).await.unwrap();
    all.into_iter().filter(|delivery| jobs.iter().any(|job| job.id == delivery.job_id)).collect()
}

/// The receiver's side, de-duplicated by `webhook-id`: each id's body, checking that every
/// try of an id carried the same records, every one signed with both secrets.
fn deduplicated(arrivals: &[Value]) -> BTreeMap<String, Value> {
    let mut seen = BTreeMap::new();
    for arrival in arrivals {
        assert_eq!(arrival["verified"], serde_json::json!([true, true]), "{arrival}");
        let id = arrival["id"].as_str().unwrap().to_owned();
        let first = seen.entry(id).or_insert_with(|| arrival["body"].clone());
        assert_eq!(first["data"], arrival["body"]["data"], "a delivery's tries carry the same batch");
    }
    seen
}

/// Each job's recipients, from the de-duplicated deliveries: every recipient once.
fn recipients_by_job(bodies: &BTreeMap<String, Value>) -> BTreeMap<String, Vec<String>> {
    let mut by_job: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for body in bodies.values() {
        let job = body["data"]["job_id"].as_str().unwrap().to_owned();
        let records = body["data"]["records"].as_array().unwrap();
        by_job
            .entry(job)
            .or_default()
            .extend(records.iter().map(|record| record["recipient"].as_str().unwrap().to_owned()));
    }
    by_job.values_mut().for_each(|recipients| recipients.sort());
    by_job
}

async fn settlements_reach_their_webhook(url: &str) {
    let run = ulid::Ulid::generate().to_string().to_lowercase();
    let token = |i: usize| format!("hook-{run}-{i}");
    let mut scenario = Scenario::default();
    scenario.tokens.insert(token(1), TokenRule::unavailable_times(1)); // job 0 takes two attempts
    scenario.tokens.insert(token(4), TokenRule::new(Behaviour::NotRegistered));
    let server = mock(scenario).await;
    let config = QueueConfig { name: format!("webhooks-{run}"), ..QueueConfig::default() };
    let queue = Arc::new(Queue::connect_with(url, &config).await.unwrap());
    let processor = Processor::new(senders(&server), queue.clone(), queue.clone());
    // The first request fails, the second hangs past the timeout, the third is slow.
    let (old, new) = (secret(1), secret(2));
    let receiver = Receiver::start("fail,hang,slow", &[&old, &new]).await;

    let audience = format!("hooked-{run}");
    queue.put_audience(&audience, &[token(3), token(4), token(5)]).await.unwrap();
    let mut jobs = vec![
        Job::v1_multicast(Multicast::new([token(0), token(1), token(2)])),
        Job::v1_multicast(Multicast::new([token(3), token(4), token(5)])),
        Job::v1_multicast(Multicast::new([token(6)])),
    ];
    jobs[1].audience = Some(audience.clone());
    for job in &mut jobs {
        job.webhook = Some(receiver.url.clone());
    }
    let cancelled = jobs[2].clone();
    for job in &jobs[..2] {
        let mut next = Some(job.clone());
        while let Some(job) = next {
            next = processor.process(&job).await.unwrap().map(|retry| retry.job);
        }
    }
    queue.enqueue(&cancelled).await.unwrap();
    assert!(queue.cancel(&cancelled.id).await.unwrap().is_some());
    // A worker that meets the cancelled job records its recipients cancelled.
    assert_eq!(processor.process(&cancelled).await.unwrap(), None);
    let ours = [&jobs[0], &jobs[1], &cancelled];
    let written = deliveries(&queue, &ours).await;
    let ids: Vec<_> = written.iter().map(|delivery| (delivery.job_id.clone(), delivery.attempt)).collect();
    let expected =
        vec![(jobs[0].id.clone(), 1), (jobs[0].id.clone(), 2), (jobs[1].id.clone(), 1), (cancelled.id.clone(), 1)];
    assert_eq!(ids, expected, "one delivery per settlement, in the order they were written");
    assert!(written.iter().all(|delivery| delivery.state == DeliveryState::Pending && delivery.tries == 0));
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.pending_deliveries, stats.dead_deliveries), (4, 0), "the gauges' counts");

    // Rotation: the new secret signs, and the old one too.
    let endpoint = Endpoint {
        timeout: Duration::from_secs(3),
        first_retry: Duration::from_millis(100),
        ..Endpoint::new(vec![new.parse::<Secret>().unwrap(), old.parse().unwrap()])
    };
    let metrics = Arc::new(gcm_queue::Metrics::default());
    let deliverer = Deliverer::new(queue.clone(), BTreeMap::from([(None, endpoint)]), "deliverer-1")
        .unwrap()
        .with_metrics(metrics.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(deliverer.clone().run(stop.clone().cancelled_owned()));
    wait_until("every delivery delivered", Duration::from_secs(120), async || {
        deliveries(&queue, &ours).await.iter().all(|delivery| delivery.state == DeliveryState::Delivered)
    })
    .await;

    let arrivals = receiver.arrivals();
    let bodies = deduplicated(&arrivals);
    let written: BTreeSet<_> = deliveries(&queue, &ours).await.into_iter().map(|delivery| delivery.id).collect();
    assert_eq!(bodies.keys().cloned().collect::<BTreeSet<_>>(), written, "every delivery arrived, under its id");
    let by_job = recipients_by_job(&bodies);
    assert_eq!(by_job[&jobs[0].id], [token(0), token(1), token(2)], "each recipient once");
    assert_eq!(by_job[&jobs[1].id], [token(3), token(4), token(5)]);
    assert_eq!(by_job[&cancelled.id], [token(6)]);
    // The failed and the hung requests were tried again, under the same id.
    for action in ["fail", "hang"] {
        let tried = arrivals.iter().find(|arrival| arrival["action"] == action).unwrap();
        let again = arrivals.iter().filter(|arrival| arrival["id"] == tried["id"]).count();
        assert!(again >= 2, "the {action} delivery was tried {again} time(s)");
    }
    // A job's deliveries arrive in attempt order: attempt 2 never before attempt 1 is answered.
    let first_of_2 = arrivals.iter().position(|arrival| arrival["body"]["data"]["attempt"] == 2).unwrap();
    let job_0 = serde_json::json!(jobs[0].id);
    let answered = receiver.entries();
    let delivered_0 = answered.iter().position(|entry| {
        entry["event"] == "answered" && entry["status"] == 200 && entry["id"] == format!("msg_{}_1", jobs[0].id)
    });
    let arrivals_before: Vec<_> =
        answered.iter().take(delivered_0.unwrap()).filter(|entry| entry["event"] == "arrived").collect();
    assert!(
        arrivals_before
            .iter()
            .all(|entry| entry["body"]["data"]["attempt"] != 2 || entry["body"]["data"]["job_id"] != job_0)
    );
    assert!(arrivals[first_of_2]["body"]["data"]["job_id"] == job_0);
    // What the bodies say: the type, the records, the audience's changes.
    let cancelled_body = &bodies[&format!("msg_{}_1", cancelled.id)];
    assert_eq!(cancelled_body["type"], "job.cancelled");
    assert_eq!(cancelled_body["data"]["records"][0]["fate"], "cancelled");
    let audience_body = &bodies[&format!("msg_{}_1", jobs[1].id)];
    assert_eq!(audience_body["type"], "job.settled");
    assert_eq!(audience_body["data"]["audience"], audience.as_str());
    assert_eq!(
        audience_body["data"]["audience_changes"],
        serde_json::json!([{"token": token(4), "change": "removed"}])
    );
    let retried = &bodies[&format!("msg_{}_1", jobs[0].id)];
    assert_eq!(
        (retried["data"]["pending"].as_u64(), retried["data"]["records"].as_array().unwrap().len()),
        (Some(1), 2)
    );

    // A replay from a cursor sends the later deliveries again, under the same ids.
    let after_first = deliveries(&queue, &ours).await[0].cursor;
    assert_eq!(queue.replay(after_first).await.unwrap(), 3);
    wait_until("the replay delivered", Duration::from_secs(120), async || {
        deliveries(&queue, &ours).await.iter().all(|delivery| delivery.state == DeliveryState::Delivered)
    })
    .await;
    let replayed = receiver.arrivals();
    let again: BTreeSet<_> =
        replayed[arrivals.len()..].iter().map(|arrival| arrival["id"].as_str().unwrap().to_owned()).collect();
    let later: BTreeSet<_> = written.iter().filter(|id| **id != format!("msg_{}_1", jobs[0].id)).cloned().collect();
    assert_eq!(again, later);
    assert_eq!(deduplicated(&replayed).len(), 4, "nothing new after de-duplicating");
    let tries = |outcome| metrics.webhook_tries.get_or_create(&gcm_queue::OutcomeLabel { outcome }).get();
    assert_eq!(tries("delivered"), 4 + 3);
    assert!(tries("retry") >= 2, "the failed and the hung tries: {}", tries("retry"));

    // A receiver that never answers: dead when the retry period ends, kept for a replay.
    let mut lost = Job::v1_multicast(Multicast::new([token(7)]));
    lost.webhook = Some("http://127.0.0.1:9/nobody-listens".to_owned());
    assert_eq!(processor.process(&lost).await.unwrap(), None);
    stop.cancel();
    running.await.unwrap();
    let brief = Endpoint { retry_for: Duration::ZERO, ..Endpoint::new(vec![new.parse().unwrap()]) };
    let deliverer = Deliverer::new(queue.clone(), BTreeMap::from([(None, brief)]), "deliverer-2").unwrap();
    wait_until("the lost delivery dead", Duration::from_secs(60), async || {
        deliverer.deliver_due().await.unwrap();
        deliveries(&queue, &[&lost]).await[0].state == DeliveryState::Dead
    })
    .await;
    let dead = deliveries(&queue, &[&lost]).await.pop().unwrap();
    assert_eq!((dead.job_id.as_str(), dead.tries), (lost.id.as_str(), 1));
    assert!(dead.last_error.is_some(), "{dead:?}");
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.pending_deliveries, stats.dead_deliveries), (0, 1), "the gauges' counts");

    // Delivered and dead deliveries go with the results they carry.
    let now_ms = u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis());
    let day = Duration::from_secs(24 * 3600);
    let retention = gcm_queue::Retention { results: day, jobs: day * 30 };
    assert_eq!(queue.prune(&retention, now_ms.unwrap()).await.unwrap().webhook_deliveries, 0, "all recent");
    let pruned = queue.prune(&retention, now_ms.unwrap() + 2 * 24 * 3600 * 1000).await.unwrap();
    assert_eq!(pruned.webhook_deliveries, 5, "{pruned:?}");
    assert!(queue.deliveries(0, 100).await.unwrap().is_empty());
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.pending_deliveries, stats.dead_deliveries), (0, 0), "the gauges' counts");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_settlements_reach_their_webhook() {
    let dir = tempfile::tempdir().unwrap();
    settlements_reach_their_webhook(&format!("sqlite:{}", dir.path().join("q.db").display())).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_settlements_reach_their_webhook() {
    crate::on_own_postgres_database(async |url| settlements_reach_their_webhook(&url).await).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_settlements_reach_their_webhook() {
    let _audiences = crate::SHARED_AUDIENCES.lock().await;
    settlements_reach_their_webhook(&server_url("GCM_QUEUE_REDIS_URL")).await;
}

/// The kill: `gcm-worker` processes send the jobs and post their settlements; the
/// first post hangs, and the worker is killed (SIGKILL) while it waits. Another worker
/// takes the delivery over when its lease ends; after de-duplicating by `webhook-id`, the
/// receiver holds every batch once, each recipient of each job once.
async fn a_killed_worker_loses_no_delivery(url: &str) {
    let run = ulid::Ulid::generate().to_string().to_lowercase();
    let token = |i: usize| format!("kill-{run}-{i}");
    let mut scenario = Scenario::default();
    scenario.tokens.insert(token(2), TokenRule::unavailable_times(1));
    scenario.tokens.insert(token(9), TokenRule::new(Behaviour::NotRegistered));
    let server = mock(scenario).await;
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (secret(3), secret(4));
    let receiver = Receiver::start("hang,slow,slow", &[&old, &new]).await;
    let settings = dir.path().join("gcm-worker.toml");
    let webhook = format!("[webhook]\nsecrets = [\"{new}\", \"{old}\"]\ntimeout = \"2s\"\nfirst-retry = \"200ms\"\n");
    std::fs::write(&settings, webhook).unwrap();
    let queue_name = format!("killed-{run}");
    let config = QueueConfig { name: queue_name.clone(), ..QueueConfig::default() };
    let queue = Arc::new(Queue::connect_with(url, &config).await.unwrap());
    let jobs: Vec<Job> = (0..4)
        .map(|j| {
            let mut job = Job::v1_multicast(Multicast::new((j * 3..j * 3 + 3).map(token)));
            job.webhook = Some(receiver.url.clone());
            job
        })
        .collect();
    for job in &jobs {
        queue.enqueue(job).await.unwrap();
    }
    let fleet = Fleet::sending_to(&server, dir.path(), url, queue_name, 5, 2);
    let config_flag = ["--config", settings.to_str().unwrap()];
    let mut first = fleet.start_with("webhook-worker-1", &config_flag);
    wait_until("the first post", Duration::from_secs(120), async || !receiver.arrivals().is_empty()).await;
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let hung = receiver.arrivals()[0]["id"].clone();
    let _second = fleet.start_with("webhook-worker-2", &config_flag);
    let ours: Vec<&Job> = jobs.iter().collect();
    wait_until("every job settled and every delivery delivered", Duration::from_secs(180), async || {
        let mut settled = true;
        for job in &jobs {
            let summary = gcm_queue::ResultReader::summary(queue.as_ref(), &job.id).await.unwrap();
            settled &= summary.is_some_and(|summary| summary.pending == 0 && summary.attempts > 0);
        }
        let written = deliveries(&queue, &ours).await;
        settled && !written.is_empty() && written.iter().all(|delivery| delivery.state == DeliveryState::Delivered)
    })
    .await;

    let arrivals = receiver.arrivals();
    assert!(arrivals.iter().filter(|arrival| arrival["id"] == hung).count() >= 2, "the hung post was sent again");
    let bodies = deduplicated(&arrivals);
    let written: BTreeSet<_> = deliveries(&queue, &ours).await.into_iter().map(|delivery| delivery.id).collect();
    assert_eq!(bodies.keys().cloned().collect::<BTreeSet<_>>(), written, "every batch, under its id");
    let by_job = recipients_by_job(&bodies);
    for (j, job) in jobs.iter().enumerate() {
        let mut tokens: Vec<String> = (j * 3..j * 3 + 3).map(token).collect();
        tokens.sort();
        assert_eq!(by_job[&job.id], tokens, "job {j}: each recipient once");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_killed_worker_loses_no_delivery() {
    let dir = tempfile::tempdir().unwrap();
    a_killed_worker_loses_no_delivery(&format!("sqlite:{}", dir.path().join("q.db").display())).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_killed_worker_loses_no_delivery() {
    crate::on_own_postgres_database(async |url| a_killed_worker_loses_no_delivery(&url).await).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_killed_worker_loses_no_delivery() {
    a_killed_worker_loses_no_delivery(&server_url("GCM_QUEUE_REDIS_URL")).await;
}
