//! The per-job step against gcm-mock, with the results in memory and the queue a list:
//! when a retry is scheduled, what pauses, what is given up, what is parked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use gcm_hyper::gcm_proto::Gcm;
use gcm_hyper::{Client, Message, v1::Multicast};
use gcm_mock::{Behaviour, Reply, Scenario, TokenReply, TokenRule};
use gcm_queue::{BoxFuture, Enqueue, Error, Final, Gate, Job, MemoryResults, Policy, Processor, ResultReader, Unsure};

/// The queue as a list of what was pushed, and when it is due.
#[derive(Default)]
struct Pushed(Mutex<Vec<(Job, u64)>>);

impl Enqueue for Pushed {
    fn enqueue<'a>(&'a self, job: &'a Job, run_at_ms: u64) -> BoxFuture<'a, Result<(), Error>> {
        self.0.lock().unwrap().push((job.clone(), run_at_ms));
        Box::pin(async { Ok(()) })
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

struct Setup {
    server: gcm_mock::MockServer,
    results: Arc<MemoryResults>,
    pushed: Arc<Pushed>,
    processor: Processor,
}

async fn setup(scenario: Scenario, policy: Policy) -> Setup {
    let server = mock(scenario).await;
    let results = Arc::new(MemoryResults::new());
    let pushed = Arc::new(Pushed::default());
    let processor = Processor::new(senders(&server), results.clone(), pushed.clone())
        .policy(policy)
        .gate(Arc::new(Gate::new(Duration::from_millis(20), Duration::from_millis(200))));
    Setup { server, results, pushed, processor }
}

#[tokio::test]
async fn a_retry_after_of_30_s_schedules_the_retry_30_s_later_not_sooner() {
    let scenario = Scenario::default().token("busy", TokenRule::unavailable_times(1).retry_after("30"));
    let s = setup(scenario, Policy::default()).await;
    let job = Job::v1_multicast(Multicast::new(["ok", "busy"]));
    let before = now_ms();
    let retry = s.processor.process(&job).await.unwrap().expect("busy is retried");
    assert!(retry.run_at_ms >= before + 30_000, "due {} ms after the send", retry.run_at_ms - before);
    assert!(retry.run_at_ms <= now_ms() + 31_500, "and not much later: {}", retry.run_at_ms - before);
    assert_eq!((retry.job.attempt, retry.job.id.as_str()), (1, job.id.as_str()));
    let Some(gcm_queue::Payload::V1Multicast { multicast }) = Some(&retry.job.payload) else { panic!() };
    assert_eq!(multicast.tokens(), ["busy"]);
    assert_eq!(s.pushed.0.lock().unwrap().as_slice(), [(retry.job.clone(), retry.run_at_ms)]);
}

#[tokio::test]
async fn a_quota_error_without_retry_after_waits_at_least_60_s() {
    let scenario = Scenario::default().token("hot", TokenRule::new(Behaviour::RateLimited).times(1));
    let s = setup(scenario, Policy::default()).await;
    let before = now_ms();
    let retry = s.processor.process(&Job::v1_multicast(Multicast::new(["hot"]))).await.unwrap().unwrap();
    assert!(retry.run_at_ms >= before + 60_000, "due {} ms after the send", retry.run_at_ms - before);
}

#[tokio::test]
async fn refused_credentials_pause_sending_instead_of_retrying_the_job() {
    // The token endpoint refuses twice, then issues tokens again.
    let scenario = Scenario { token_replies: vec![TokenReply::status(400).repeat(2)], ..Scenario::default() };
    let s = setup(scenario, Policy::default()).await;
    let job = Job::v1_multicast(Multicast::new(["a", "b"]));
    let retry = s.processor.process(&job).await.unwrap();
    assert_eq!(retry, None, "the pause held the job: no attempt was spent");
    assert!(s.processor.metrics().paused.get() >= 1, "at least one pause");
    let summary = s.results.summary(&job.id).await.unwrap().unwrap();
    assert_eq!((summary.delivered, summary.attempts), (2, 1), "{summary:?}");
    assert!(s.pushed.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_api_key_pauses_legacy_sending_too() {
    let scenario = Scenario { replies: vec![Reply::status(401)], ..Scenario::default() };
    let s = setup(scenario, Policy::default()).await;
    let job = Job::legacy(Message::multicast(["a"]));
    assert_eq!(s.processor.process(&job).await.unwrap(), None);
    assert_eq!(s.processor.metrics().paused.get(), 1);
    assert_eq!(s.results.summary(&job.id).await.unwrap().unwrap().delivered, 1);
}

#[tokio::test]
async fn after_the_last_attempt_pending_tokens_are_given_up_not_dropped() {
    let scenario = Scenario::default().token("down", TokenRule::new(Behaviour::Unavailable));
    let s = setup(scenario, Policy { max_attempts: 2, ..Policy::default() }).await;
    let first = Job::v1_multicast(Multicast::new(["ok", "down"]));
    let retry = s.processor.process(&first).await.unwrap().expect("attempt 0 of 2 retries");
    assert_eq!(s.processor.process(&retry.job).await.unwrap(), None, "attempt 1 of 2 is the last");
    let records = all_records(s.results.as_ref()).await;
    let fates: Vec<_> = records.iter().map(|r| (r.recipient.as_str(), r.attempt, r.fate.name())).collect();
    assert_eq!(fates, [("ok", 0, "delivered"), ("down", 1, "given_up")]);
    let Final::GivenUp { cause } = &records[1].fate else { unreachable!() };
    assert!(cause.contains("Unavailable") || cause.contains("UNAVAILABLE"), "{cause}");
    assert_eq!(
        s.results.summary(&first.id).await.unwrap().unwrap().status,
        "given_up",
        "a job that gave up on some is not done"
    );
}

#[tokio::test]
async fn an_attempt_run_twice_sends_once_and_pushes_the_same_retry() {
    let scenario = Scenario::default().token("busy", TokenRule::unavailable_times(5));
    let s = setup(scenario, Policy::default()).await;
    let job = Job::legacy(Message::multicast(["ok", "busy"]));
    let first = s.processor.process(&job).await.unwrap();
    let again = s.processor.process(&job).await.unwrap();
    assert_eq!(first, again, "the second run reads the first one's settlement");
    assert_eq!(s.server.inbox().len(), 1, "and does not send again");
    let keys: Vec<String> = s.pushed.0.lock().unwrap().iter().map(|(job, _)| job.idempotency_key()).collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "the queue keeps one");
    assert_eq!(all_records(s.results.as_ref()).await.len(), 1, "ok is recorded once");
}

#[tokio::test]
async fn messages_that_may_have_reached_the_server_are_parked_when_the_policy_says_so() {
    let results = Arc::new(MemoryResults::new());
    let gcm = Gcm::new(API_KEY).unwrap().with_endpoint(&silent_server().await).unwrap();
    let client = Client::builder(gcm).request_timeout(Duration::from_millis(200)).build().unwrap();
    let senders = gcm_queue::Senders { fcm: None, legacy: Some(client) };
    let job = Job::legacy(Message::multicast(["a", "b"]));

    let park = Processor::new(senders.clone(), results.clone(), Arc::new(Pushed::default()))
        .policy(Policy { unsure: Unsure::Park, ..Policy::default() });
    assert_eq!(park.process(&job).await.unwrap(), None, "nothing resent");
    let records = all_records(results.as_ref()).await;
    assert!(
        records.iter().all(|r| matches!(&r.fate, Final::Parked { cause } if cause.contains("no complete answer"))),
        "{records:?}"
    );
    assert_eq!(records.len(), 2);

    let resend = Processor::new(senders, Arc::new(MemoryResults::new()), Arc::new(Pushed::default()));
    let retry = resend.process(&job).await.unwrap().expect("the default resends");
    assert_eq!(retry.job.payload.len(), 2);
}

#[tokio::test]
async fn single_v1_messages_each_get_their_fate_and_the_pending_ones_a_retry() {
    use gcm_hyper::v1::Message as V1Message;
    let scenario = Scenario::default()
        .token("gone", TokenRule::new(Behaviour::NotRegistered))
        .token("busy", TokenRule::unavailable_times(1).retry_after("2"));
    let s = setup(scenario, Policy::default()).await;
    let messages =
        vec![V1Message::token("ok"), V1Message::topic("news"), V1Message::token("gone"), V1Message::token("busy")];
    let job = Job::v1_messages(messages);
    let before = now_ms();
    let retry = s.processor.process(&job).await.unwrap().expect("busy is retried");
    assert!(retry.run_at_ms >= before + 2_000, "Retry-After: 2 is a lower bound");
    let gcm_queue::Payload::V1Messages { messages } = &retry.job.payload else { panic!("{retry:?}") };
    assert_eq!(messages.as_slice(), [V1Message::token("busy")]);
    let records = all_records(s.results.as_ref()).await;
    let fates: Vec<_> = records.iter().map(|r| (r.recipient.as_str(), r.fate.name())).collect();
    assert_eq!(fates, [("ok", "delivered"), ("/topics/news", "delivered"), ("gone", "not_registered")]);
    assert_eq!(s.processor.process(&retry.job).await.unwrap(), None);
    assert_eq!(s.results.summary(&job.id).await.unwrap().unwrap().delivered, 3);
}

/// A processor with no client: if it ever tried to send, `process` would fail.
fn unable_to_send(results: Arc<MemoryResults>, pushed: Arc<Pushed>) -> Processor {
    Processor::new(gcm_queue::Senders::default(), results, pushed).owner("me")
}

#[tokio::test(start_paused = true)]
async fn a_run_whose_attempt_another_worker_holds_waits_for_its_settlement_and_sends_nothing() {
    use gcm_queue::{ResultStore, Scheduled, Settlement};
    let (results, pushed) = (Arc::new(MemoryResults::new()), Arc::new(Pushed::default()));
    let job = Job::v1_multicast(Multicast::new(["a", "b"]));
    results.claim(&job.id, 0, "other", Duration::from_secs(60)).await.unwrap();
    let processor = unable_to_send(results.clone(), pushed.clone());
    let run = tokio::spawn({
        let job = job.clone();
        async move { processor.process(&job).await }
    });
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!run.is_finished(), "the run waits while the other worker's lease is live");
    let retry = Scheduled { job: job.retry(job.payload.clone()), run_at_ms: 7 };
    let settlement = Settlement {
        job_id: job.id.clone(),
        attempt: 0,
        records: Vec::new(),
        retry: Some(retry.clone()),
        audience: None,
        webhook: None,
    };
    results.settle(&settlement).await.unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(run.await.unwrap().unwrap(), Some(retry.clone()), "the holder's settlement, not a send");
    assert!(started.elapsed() < Duration::from_secs(1), "noticed within a poll");
    assert_eq!(pushed.0.lock().unwrap().as_slice(), [(retry.job, 7)], "and its retry pushed again");
}

#[tokio::test(start_paused = true)]
async fn an_attempt_whose_holder_stopped_renewing_is_taken_over_when_its_lease_runs_out() {
    use gcm_queue::{Claim, ResultStore};
    let (results, pushed) = (Arc::new(MemoryResults::new()), Arc::new(Pushed::default()));
    let job = Job::v1_multicast(Multicast::new(["a"]));
    results.claim(&job.id, 0, "stalled", Duration::from_secs(60)).await.unwrap();
    let processor = unable_to_send(results.clone(), pushed.clone());
    let started = tokio::time::Instant::now();
    let error = processor.process(&job).await.expect_err("taken over, then sent: this processor cannot");
    assert!(error.to_string().contains("no v1 client"), "{error}");
    assert!(started.elapsed() >= Duration::from_secs(60), "not before the lease ran out: {:?}", started.elapsed());
    assert_eq!(processor.metrics().takeovers.get(), 1);
    let claim = results.claim(&job.id, 0, "stalled", Duration::from_secs(60)).await.unwrap();
    let Claim::Held { owner } = claim else { panic!("the stalled worker lost it: {claim:?}") };
    assert!(owner.starts_with("me/"), "to a run of this worker: {owner}");
}

/// A store that refuses its first `failures` settlements, as a database does while it is down.
struct Flaky {
    inner: MemoryResults,
    failures: Mutex<u32>,
}

impl gcm_queue::ResultStore for Flaky {
    fn settled<'a>(
        &'a self,
        job_id: &'a str,
        attempt: u32,
    ) -> BoxFuture<'a, Result<Option<gcm_queue::Settled>, Error>> {
        self.inner.settled(job_id, attempt)
    }

    fn claim<'a>(
        &'a self,
        job_id: &'a str,
        attempt: u32,
        owner: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<gcm_queue::Claim, Error>> {
        self.inner.claim(job_id, attempt, owner, lease)
    }

    fn settle<'a>(&'a self, settlement: &'a gcm_queue::Settlement) -> BoxFuture<'a, Result<gcm_queue::Settled, Error>> {
        let mut failures = self.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Box::pin(async { Err(Error::Store("database is down".into())) });
        }
        self.inner.settle(settlement)
    }
}

#[tokio::test]
async fn a_settlement_the_store_refuses_is_kept_and_recorded_later_not_sent_again() {
    let server = mock(Scenario::default()).await;
    let store = Arc::new(Flaky { inner: MemoryResults::new(), failures: Mutex::new(3) });
    let processor = Processor::new(senders(&server), store.clone(), Arc::new(Pushed::default()));
    let job = Job::v1_multicast(Multicast::new(["a", "b"]));
    assert_eq!(processor.process(&job).await.unwrap(), None);
    assert_eq!(server.inbox().len(), 2, "each token sent once");
    assert_eq!(all_records(&store.inner).await.len(), 2, "and recorded once the store took it");
    assert_eq!(processor.metrics().backend_down.get(), 0, "the store is back");
}

#[tokio::test]
async fn the_same_seed_and_clock_give_the_same_retry_time() {
    let scenario = Scenario::default().token("busy", TokenRule::new(Behaviour::Unavailable));
    let server = mock(scenario).await;
    let at = |seed| {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        Processor::new(senders(&server), Arc::new(MemoryResults::new()), Arc::new(Pushed::default()))
            .clock(Arc::new(move || now))
            .seed(seed)
    };
    let job = Job::v1_multicast(Multicast::new(["busy"]));
    let first = at(7).process(&job).await.unwrap().unwrap().run_at_ms;
    let second = at(7).process(&job).await.unwrap().unwrap().run_at_ms;
    assert_eq!(first, second, "no other source of time or chance");
    assert!(first > 1_800_000_000_000, "{first}");
}

#[tokio::test]
async fn two_runs_of_one_attempt_in_one_worker_send_it_once() {
    // apalis hands a restarted worker its own running jobs back: the same worker name, two runs.
    let scenario =
        Scenario { faults: gcm_mock::Faults { latency_ms: 300, ..Default::default() }, ..Scenario::default() };
    let server = mock(scenario).await;
    let processor = Processor::new(senders(&server), Arc::new(MemoryResults::new()), Arc::new(Pushed::default()));
    let job = Job::v1_multicast(Multicast::new(["a", "b"]));
    let (first, second) = tokio::join!(processor.process(&job), processor.process(&job));
    assert_eq!((first.unwrap(), second.unwrap()), (None, None));
    assert_eq!(server.inbox().len(), 2, "each token sent once");
}
