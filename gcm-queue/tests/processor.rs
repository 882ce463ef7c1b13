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
    let summary = s.results.summary(&job.id).await.unwrap();
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
    assert_eq!(s.results.summary(&job.id).await.unwrap().delivered, 1);
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
    assert_eq!(s.results.summary(&first.id).await.unwrap().status, "done");
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

/// A server that reads requests and never answers: the client's timeout ends them, after
/// they may have reached it.
async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/fcm/send", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
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
    assert_eq!(messages, &[V1Message::token("busy")]);
    let records = all_records(s.results.as_ref()).await;
    let fates: Vec<_> = records.iter().map(|r| (r.recipient.as_str(), r.fate.name())).collect();
    assert_eq!(fates, [("ok", "delivered"), ("/topics/news", "delivered"), ("gone", "not_registered")]);
    assert_eq!(s.processor.process(&retry.job).await.unwrap(), None);
    assert_eq!(s.results.summary(&job.id).await.unwrap().delivered, 3);
}
