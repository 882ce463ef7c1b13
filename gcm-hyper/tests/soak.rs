//! No-loss soak: 100 000 token deliveries through the retry loop against a mock with seeded
//! random `Unavailable` results, 5xx answers with `Retry-After`, and a share of canonical and
//! unregistered tokens. The inbox and the merged reports must agree: every token delivered
//! exactly once or reported with its final fate, and every canonical id handed over.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::collections::HashMap;
use std::time::Duration;

use gcm_hyper::gcm_proto::{Backoff, Fate};
use gcm_hyper::{Client, Gcm, Message, RetryLoop};
use gcm_mock::{Behaviour, Faults, MockServer, Scenario, TokenRule};
use rand::SeedableRng;
use rand::rngs::StdRng;

const MESSAGES: usize = 100;
const TOKENS: usize = 1000;
const WORKERS: usize = 4;

fn token(message: usize, i: usize) -> String {
    format!("soak-{message:03}-{i:04}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_token_is_delivered_once_or_reported() {
    let mut scenario = Scenario {
        seed: 2026,
        faults: Faults { unavailable: 0.15, server_error: 0.1, retry_after: Some("1".into()), ..Faults::default() },
        ..Scenario::default()
    };
    let mut canonical = HashMap::new();
    for m in 0..MESSAGES {
        for i in 0..TOKENS {
            match i % 100 {
                0..=4 => {
                    let new = format!("{}-new", token(m, i));
                    scenario.tokens.insert(token(m, i), TokenRule::canonical(new.clone()));
                    canonical.insert(token(m, i), new);
                }
                5..=7 => drop(scenario.tokens.insert(token(m, i), TokenRule::new(Behaviour::NotRegistered))),
                _ => {}
            }
        }
    }
    let server = MockServer::builder().api_key("soak").scenario(scenario).start().await.unwrap();
    let tiny = Backoff { initial: Duration::from_millis(1), max: Duration::from_millis(10), ..Backoff::default() };
    let client =
        Client::new(Gcm::new("soak").unwrap().with_endpoint(&server.url()).unwrap().with_backoff(tiny)).unwrap();

    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let client = client.clone();
        workers.push(tokio::spawn(async move {
            let mut reports = Vec::new();
            let mut waited = Duration::ZERO;
            for m in (worker..MESSAGES).step_by(WORKERS) {
                let message = Message::multicast((0..TOKENS).map(|i| token(m, i))).data("m", m.to_string());
                // No real waiting: the sleeper adds up what it was asked to wait.
                let sleeper = |delay: Duration| {
                    waited += delay;
                    std::future::ready(())
                };
                let report = RetryLoop::new()
                    .max_attempts(30)
                    .rng(StdRng::seed_from_u64(m as u64))
                    .sleeper(sleeper)
                    .run(&client, &message)
                    .await;
                assert!(report.error.is_none(), "{:?}", report.error);
                reports.push((message, report));
            }
            (reports, waited)
        }));
    }
    let mut reports = Vec::new();
    let mut waited = Duration::ZERO;
    for worker in workers {
        let (mut r, w) = worker.await.unwrap();
        reports.append(&mut r);
        waited += w;
    }

    let inbox = server.inbox();
    let mut delivered: HashMap<&str, Vec<&str>> = HashMap::new();
    for delivery in &inbox {
        delivered.entry(&delivery.token).or_default().push(&delivery.message_id);
    }
    let (mut ok, mut gone, mut pending, mut canonical_seen, mut attempts) = (0, 0, 0, 0, 0);
    for (message, report) in &reports {
        attempts += report.attempts;
        assert_eq!(report.outcome.len(), TOKENS);
        for (token, fate) in report.outcome.fates() {
            let copies = delivered.get(token).map_or(0, Vec::len);
            match fate {
                Fate::Delivered { message_id, canonical: new } => {
                    assert_eq!(copies, 1, "{token} delivered {copies} times");
                    assert_eq!(delivered[token][0], message_id);
                    assert_eq!(new.as_ref(), canonical.get(token), "{token}: canonical id handed over");
                    canonical_seen += usize::from(new.is_some());
                    ok += 1;
                }
                Fate::NotRegistered => {
                    assert_eq!(copies, 0);
                    gone += 1;
                }
                Fate::Retry(_) => {
                    assert_eq!(copies, 0, "{token} pending yet delivered");
                    pending += 1;
                }
                Fate::Failed(code) => panic!("{token}: unexpected failure {code}"),
            }
        }
        assert_eq!(message.tokens().len(), TOKENS);
    }
    let requests = server.requests().len();
    eprintln!(
        "soak: {} tokens, {ok} delivered, {gone} not registered, {pending} pending, {canonical_seen} canonical ids, \
         {attempts} multicasts, {requests} requests, {} inbox entries, {waited:?} of backoff asked for",
        MESSAGES * TOKENS,
        inbox.len()
    );
    assert_eq!(ok + gone + pending, MESSAGES * TOKENS);
    assert_eq!(inbox.len(), ok, "nothing delivered that the reports do not show");
    assert_eq!(canonical_seen, canonical.len(), "every canonical id reached the caller");
    assert_eq!(pending, 0, "30 attempts finish every token");
    assert!(attempts as usize > MESSAGES, "the faults forced retries");
}
