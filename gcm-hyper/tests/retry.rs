//! The opt-in retry loop against gcm-mock: no real waiting (the sleeper records the delays),
//! a seeded generator, and proofs from the mock's inbox.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::time::Duration;

use gcm_hyper::gcm_proto::{Backoff, ErrorCode, Fate, ResponseError, RetryCause};
use gcm_hyper::{Client, Error, Gcm, Message, RetryLoop};
use gcm_mock::{Behaviour, MockServer, Reply, Scenario, TokenRule};
use rand::SeedableRng;
use rand::rngs::StdRng;

use common::recorder;

const KEY: &str = "retry-key";

async fn mock(scenario: Scenario) -> MockServer {
    MockServer::builder().api_key(KEY).scenario(scenario).start().await.unwrap()
}

fn client(server: &MockServer) -> Client {
    Client::new(Gcm::new(KEY).unwrap().with_endpoint(&server.url()).unwrap()).unwrap()
}

#[tokio::test]
async fn transient_unavailable_tokens_end_up_delivered_exactly_once() {
    let scenario = Scenario::default()
        .token("canon", TokenRule::canonical("canon-new"))
        .token("gone", TokenRule::new(Behaviour::NotRegistered))
        .token("bad", TokenRule::new(Behaviour::MismatchSender))
        .token("flaky1", TokenRule::unavailable_times(1))
        .token("flaky2", TokenRule::unavailable_times(2))
        .token("internal", TokenRule::new(Behaviour::InternalError).times(1));
    let server = mock(scenario).await;
    let tokens = ["ok", "canon", "gone", "bad", "flaky1", "flaky2", "internal"];
    let message = Message::multicast(tokens).data("k", "v");
    let (delays, sleeper) = recorder();
    let report = RetryLoop::new().rng(StdRng::seed_from_u64(1)).sleeper(sleeper).run(&client(&server), &message).await;

    assert!(report.error.is_none());
    assert_eq!(report.attempts, 3);
    let outcome = &report.outcome;
    assert!(!outcome.needs_retry());
    // The canonical id learned on the first attempt survives the retries.
    assert_eq!(outcome.canonical().collect::<Vec<_>>(), [("canon", "canon-new")]);
    assert_eq!(outcome.success().map(|(t, _)| t).collect::<Vec<_>>(), ["ok", "canon", "flaky1", "flaky2", "internal"]);
    assert_eq!(outcome.not_registered().collect::<Vec<_>>(), ["gone"]);
    assert_eq!(outcome.failed().collect::<Vec<_>>(), [("bad", &ErrorCode::MismatchSenderId)]);

    // The inbox proves it: every deliverable token exactly once, with the attempt it took.
    let mut delivered: Vec<(String, u32)> = server.inbox().into_iter().map(|d| (d.token, d.attempt)).collect();
    delivered.sort();
    assert_eq!(
        delivered,
        [("canon".into(), 1), ("flaky1".into(), 2), ("flaky2".into(), 3), ("internal".into(), 2), ("ok".into(), 1)]
    );
    // Only the pending tokens were resent, in their original order.
    let bodies: Vec<String> = server.requests().into_iter().map(|r| r.body).collect();
    assert!(bodies[1].starts_with(r#"{"registration_ids":["flaky1","flaky2","internal"]"#), "{}", bodies[1]);
    assert!(bodies[2].starts_with(r#"{"registration_ids":["flaky2"]"#), "{}", bodies[2]);
    // Exponential backoff with jitter: [0.5, 1.5) s, then [1.5, 2.5) s.
    let delays = delays.lock().unwrap().clone();
    assert_eq!(delays.len(), 2);
    assert!(delays[0] >= Duration::from_millis(500) && delays[0] < Duration::from_millis(1500), "{delays:?}");
    assert!(delays[1] >= Duration::from_millis(1500) && delays[1] < Duration::from_millis(2500), "{delays:?}");
}

#[tokio::test]
async fn the_same_seed_gives_the_same_delays() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let server = mock(Scenario::default().token("f", TokenRule::unavailable_times(3))).await;
        let (delays, sleeper) = recorder();
        RetryLoop::new().rng(StdRng::seed_from_u64(9)).sleeper(sleeper).run(&client(&server), &Message::to("f")).await;
        runs.push(delays.lock().unwrap().clone());
    }
    assert_eq!(runs[0].len(), 3);
    assert_eq!(runs[0], runs[1]);
}

#[tokio::test]
async fn retry_after_is_honoured_on_5xx_and_on_200() {
    let scenario = Scenario::default()
        .reply(Reply::status(503).retry_after("30"))
        .token("slow", TokenRule::unavailable_times(1).retry_after("12"));
    let server = mock(scenario).await;
    let (delays, sleeper) = recorder();
    let report = RetryLoop::new().sleeper(sleeper).run(&client(&server), &Message::multicast(["slow", "x"])).await;
    assert_eq!(report.attempts, 3);
    assert!(!report.outcome.needs_retry());
    assert_eq!(*delays.lock().unwrap(), [Duration::from_secs(30), Duration::from_secs(12)]);
    assert_eq!(server.inbox().len(), 2);
}

#[tokio::test]
async fn gives_up_after_max_attempts_with_the_pending_tokens() {
    let scenario = Scenario::default().token("never", TokenRule::new(Behaviour::Unavailable));
    let server = mock(scenario).await;
    let message = Message::multicast(["never", "ok"]).data("k", "v");
    let (delays, sleeper) = recorder();
    let report = RetryLoop::new().max_attempts(4).sleeper(sleeper).run(&client(&server), &message).await;
    assert_eq!(report.attempts, 4);
    assert_eq!(delays.lock().unwrap().len(), 3);
    assert_eq!(report.outcome.to_retry().collect::<Vec<_>>(), [("never", &RetryCause::Error(ErrorCode::Unavailable))]);
    // What is left to schedule later: the same payload, only the pending token.
    assert_eq!(report.outcome.retry(), Some(Message::multicast(["never"]).data("k", "v")));
    assert_eq!(server.inbox().iter().filter(|d| d.token == "ok").count(), 1);
}

#[tokio::test]
async fn a_deadline_stops_the_loop_before_a_wait_that_would_pass_it() {
    let server = mock(Scenario::default().token("never", TokenRule::new(Behaviour::Unavailable))).await;
    let tiny = Backoff { initial: Duration::from_millis(10), max: Duration::from_secs(1), ..Backoff::default() };
    let gcm = Gcm::new(KEY).unwrap().with_endpoint(&server.url()).unwrap().with_backoff(tiny);
    let request_timeout = Duration::from_secs(5);
    let client = Client::builder(gcm).request_timeout(request_timeout).build().unwrap();
    // Real time (a paused clock would fire the request timeout while the send waits on its
    // socket): the deadline is far above a loopback send, even on a busy machine, and the
    // bounds below are what the loop promises, not how fast this machine is.
    let deadline = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let report = RetryLoop::new().max_attempts(100).deadline(deadline).run(&client, &Message::to("never")).await;
    assert!(report.attempts >= 2, "the loop retried within the deadline: {}", report.attempts);
    assert!(report.attempts < 100, "the deadline stopped it, not the attempts: {}", report.attempts);
    assert!(report.next_delay.is_some(), "the wait it did not take is reported");
    // No wait starts past the deadline: at most one send (bounded by its timeout) follows.
    assert!(started.elapsed() < deadline + request_timeout, "{:?}", started.elapsed());
    assert!(report.outcome.needs_retry());
}

#[tokio::test]
async fn a_fatal_error_stops_at_once_and_keeps_what_was_learned() {
    // First answer: canon delivered with a canonical id, flaky unavailable; second: 401.
    let first = r#"{"multicast_id":1,"success":1,"failure":1,"canonical_ids":1,"results":[{"message_id":"0:1","registration_id":"canon-new"},{"error":"Unavailable"}]}"#;
    let scenario =
        Scenario::default().reply(Reply { body: Some(first.into()), ..Reply::status(200) }).reply(Reply::status(401));
    let server = mock(scenario).await;
    let (delays, sleeper) = recorder();
    let report = RetryLoop::new().sleeper(sleeper).run(&client(&server), &Message::multicast(["canon", "flaky"])).await;
    assert_eq!(report.attempts, 2);
    assert_eq!(delays.lock().unwrap().len(), 1);
    assert!(matches!(report.error, Some(Error::Response(ResponseError::Authentication { .. }))), "{:?}", report.error);
    assert_eq!(report.outcome.canonical().collect::<Vec<_>>(), [("canon", "canon-new")]);
    assert_eq!(report.outcome.to_retry().collect::<Vec<_>>(), [("flaky", &RetryCause::Error(ErrorCode::Unavailable))]);
    assert!(matches!(report.outcome.fate("canon"), Some(Fate::Delivered { .. })));
}

#[tokio::test]
async fn transport_errors_are_retried_unless_disabled() {
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let gcm = Gcm::new(KEY).unwrap().with_endpoint(&format!("http://{addr}/gcm/send")).unwrap();
    let client = Client::new(gcm).unwrap();
    let (delays, sleeper) = recorder();
    let report = RetryLoop::new().max_attempts(3).sleeper(sleeper).run(&client, &Message::multicast(["a", "b"])).await;
    assert_eq!(report.attempts, 3);
    assert_eq!(delays.lock().unwrap().len(), 2);
    assert!(matches!(report.error, Some(Error::Transport { connect: true, .. })));
    assert_eq!(report.outcome.to_retry().count(), 2);
    assert!(report.outcome.to_retry().all(|(_, cause)| *cause == RetryCause::Unanswered));

    let (delays, sleeper) = recorder();
    let report = RetryLoop::new().retry_transport_errors(false).sleeper(sleeper).run(&client, &Message::to("a")).await;
    assert_eq!(report.attempts, 1);
    assert!(delays.lock().unwrap().is_empty());
    assert_eq!(report.outcome.to_retry().count(), 1);
}
