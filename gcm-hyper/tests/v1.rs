//! FCM HTTP v1 end to end against gcm-mock on loopback: token minting and refresh on
//! tokio's paused clock, a 1000-token fan-out over HTTP/2, every error class, the legacy
//! conversion, and refused credentials.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use gcm_hyper::gcm_proto::oauth::{AuthError, ServiceAccountKey};
use gcm_hyper::gcm_proto::v1::{Converted, Fcm, Message, Multicast};
use gcm_hyper::gcm_proto::{ErrorCode, Fate, Priority, RetryCause};
use gcm_hyper::{FcmClient, Problem, RetryLoop};
use gcm_mock::{Behaviour, MockServer, Scenario, TokenRule};
use rand::SeedableRng;
use rand::rngs::StdRng;

use common::{recorder, tokio_clock};

async fn mock(scenario: Scenario) -> MockServer {
    MockServer::builder().scenario(scenario).clock(tokio_clock()).start().await.unwrap()
}

fn key(server: &MockServer) -> ServiceAccountKey {
    ServiceAccountKey::from_json(server.service_account_json().unwrap()).unwrap()
}

fn client(server: &MockServer) -> FcmClient {
    let fcm = Fcm::new("mock-project").unwrap().with_base_url(&server.v1_base_url()).unwrap();
    FcmClient::builder(fcm, key(server)).clock(tokio_clock()).build().unwrap()
}

/// A client whose key the server does not know: its token requests are refused.
fn stranger(server: &MockServer) -> FcmClient {
    let mut file: serde_json::Value = serde_json::from_str(server.service_account_json().unwrap()).unwrap();
    file["private_key"] = include_str!("fixtures/other-key.pem").into();
    let stranger = ServiceAccountKey::from_json(&file.to_string()).unwrap();
    let fcm = Fcm::new("mock-project").unwrap().with_base_url(&server.v1_base_url()).unwrap();
    FcmClient::new(fcm, stranger).unwrap()
}

fn one(token: &str) -> Message {
    Message::token(token).data("k", "v")
}

#[tokio::test(start_paused = true)]
async fn tokens_are_minted_once_and_refreshed_before_they_expire() {
    let server = mock(Scenario::default()).await;
    let client = client(&server);

    // 50 sends at once on an empty cache: one token request, the others wait for it.
    let sends = (0..50).map(|i| {
        let client = client.clone();
        tokio::spawn(async move { client.send(&one(&format!("t{i}"))).await })
    });
    for send in sends.collect::<Vec<_>>() {
        assert!(matches!(send.await.unwrap().unwrap().fate, Fate::Delivered { .. }));
    }
    assert_eq!(server.tokens_issued(), 1);

    // The token lives 3599 s and is refreshed 300 s before: still good at +3298 s…
    tokio::time::advance(Duration::from_secs(3298)).await;
    assert!(matches!(client.send(&one("a")).await.unwrap().fate, Fate::Delivered { .. }));
    assert_eq!(server.tokens_issued(), 1);
    // …and replaced at +3300 s, before the server would refuse it.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(matches!(client.send(&one("b")).await.unwrap().fate, Fate::Delivered { .. }));
    assert_eq!(server.tokens_issued(), 2);
    assert!(server.requests().iter().all(|r| r.status != 401));
}

#[tokio::test]
async fn a_refused_token_is_replaced_and_the_message_sent_again() {
    let server = mock(Scenario::default()).await;
    let client = client(&server);
    client.send(&one("a")).await.unwrap();
    server.reset(); // the mock forgets every token it issued: the next send gets a 401
    let reply = client.send(&one("b")).await.unwrap();
    assert!(matches!(reply.fate, Fate::Delivered { .. }));
    let statuses: Vec<(String, u16)> = server.requests().into_iter().map(|r| (r.path, r.status)).collect();
    let send = "/v1/projects/mock-project/messages:send".to_owned();
    assert_eq!(statuses, [(send.clone(), 401), ("/token".to_owned(), 200), (send, 200)]);
    assert_eq!(server.inbox().len(), 1);
}

#[tokio::test]
async fn a_thousand_token_fan_out_over_http2_accounts_for_every_token() {
    let mut scenario = Scenario::default();
    let mut expected = BTreeMap::new();
    for i in 0..1000 {
        let token = format!("tok{i:04}");
        let rule = match i % 10 {
            1 => Some((TokenRule::new(Behaviour::NotRegistered), "not_registered")),
            2 => Some((TokenRule::new(Behaviour::Invalid), "failed")),
            3 => Some((TokenRule::unavailable_times(1), "success")),
            4 => Some((TokenRule::new(Behaviour::RateLimited).times(2).retry_after("1"), "success")),
            5 => Some((TokenRule::new(Behaviour::InternalError).times(1), "success")),
            _ => None,
        };
        let bucket = match rule {
            Some((rule, bucket)) => {
                scenario = scenario.token(token.clone(), rule);
                bucket
            }
            None => "success",
        };
        expected.insert(token, bucket);
    }
    let server = mock(scenario).await;
    let client = client(&server);
    let multicast = Multicast::new(expected.keys()).data("kind", "sync");

    // One pass: every token in exactly one bucket.
    let first = client.send_multicast(&multicast).await.unwrap();
    assert!(first.errors().next().is_none());
    let outcome = &first.outcome;
    assert_eq!(outcome.len(), 1000);
    let counted = outcome.success().count()
        + outcome.not_registered().count()
        + outcome.failed().count()
        + outcome.to_retry().count();
    assert_eq!(counted, 1000);
    assert_eq!(outcome.to_retry().count(), 300);
    assert_eq!(outcome.rate_limited().count(), 100);
    assert_eq!(outcome.retry_after(), Some(Duration::from_secs(1)));
    // Multiplexed: the token request and 1000 sends over one HTTP/2 connection.
    assert_eq!(server.connections(), 1);

    // With the retry loop, one merged report in which each token has its final bucket.
    server.reset();
    server.clear_inbox();
    let (delays, sleeper) = recorder();
    let mut retry_loop = RetryLoop::new().rng(StdRng::seed_from_u64(7)).sleeper(sleeper);
    let report = retry_loop.run_multicast(&client, &multicast).await.unwrap();
    assert!(report.errors().next().is_none());
    assert_eq!(report.attempts, 3);
    // The server's Retry-After (1 s) is the floor of each exponential window.
    let delays = delays.lock().unwrap().clone();
    assert_eq!(delays.len(), 2);
    assert!(delays[0] >= Duration::from_secs(1) && delays[0] < Duration::from_millis(1500), "{delays:?}");
    assert!(delays[1] >= Duration::from_millis(1500) && delays[1] < Duration::from_millis(2500), "{delays:?}");
    let mut got = BTreeMap::new();
    for (token, fate) in report.outcome.fates() {
        let bucket = match fate {
            Fate::Delivered { .. } => "success",
            Fate::NotRegistered => "not_registered",
            Fate::Failed(ErrorCode::InvalidArgument) => "failed",
            other => panic!("{token}: {other:?}"),
        };
        assert!(got.insert(token.to_owned(), bucket).is_none(), "{token} twice");
    }
    assert_eq!(got, expected);
    // The inbox proves delivery exactly once per deliverable token.
    let mut delivered: Vec<String> = server.inbox().into_iter().map(|d| d.token).collect();
    delivered.sort();
    let deliverable: Vec<&String> = expected.iter().filter(|(_, b)| **b == "success").map(|(t, _)| t).collect();
    assert_eq!(delivered.iter().collect::<Vec<_>>(), deliverable);
}

#[tokio::test]
async fn each_v1_error_class_lands_in_its_bucket() {
    let scenario = Scenario::default()
        .token("gone", TokenRule::new(Behaviour::NotRegistered))
        .token("bad", TokenRule::new(Behaviour::Invalid))
        .token("other", TokenRule::new(Behaviour::MismatchSender))
        .token("apns", TokenRule::error("THIRD_PARTY_AUTH_ERROR"))
        .token("novel", TokenRule::error("SOMETHING_NEW"))
        .token("busy", TokenRule::new(Behaviour::Unavailable).retry_after("30"))
        .token("oops", TokenRule::new(Behaviour::InternalError))
        .token("hot", TokenRule::new(Behaviour::RateLimited).retry_after("60"));
    let server = mock(scenario).await;
    let tokens = ["ok", "gone", "bad", "other", "apns", "novel", "busy", "oops", "hot"];
    let report = client(&server).send_multicast(&Multicast::new(tokens)).await.unwrap();
    assert!(report.errors().next().is_none());
    // The server's detail of each error reply is kept beside its fate, by position.
    assert!(report.problems.get(&2).is_some_and(|p| matches!(p, Problem::Detail(d) if !d.is_empty())));
    assert!(!report.problems.contains_key(&0));
    let outcome = report.outcome;
    assert_eq!(outcome.success().map(|(t, _)| t).collect::<Vec<_>>(), ["ok"]);
    assert!(outcome.success().all(|(_, id)| id.starts_with("projects/mock-project/messages/0:")));
    assert_eq!(outcome.not_registered().collect::<Vec<_>>(), ["gone"]);
    assert_eq!(
        outcome.failed().collect::<Vec<_>>(),
        [
            ("bad", &ErrorCode::InvalidArgument),
            ("other", &ErrorCode::SenderIdMismatch),
            ("apns", &ErrorCode::ThirdPartyAuthError),
            ("novel", &ErrorCode::Other("SOMETHING_NEW".into())),
        ]
    );
    assert_eq!(
        outcome.to_retry().collect::<Vec<_>>(),
        [
            ("busy", &RetryCause::Error(ErrorCode::Unavailable)),
            ("oops", &RetryCause::Error(ErrorCode::Internal)),
            ("hot", &RetryCause::Error(ErrorCode::QuotaExceeded)),
        ]
    );
    assert_eq!(outcome.rate_limited().map(|(t, _)| t).collect::<Vec<_>>(), ["hot"]);
    assert_eq!(outcome.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(outcome.retry().unwrap().tokens(), ["busy", "oops", "hot"]);
}

#[tokio::test]
async fn a_legacy_message_is_sent_through_v1() {
    let server = mock(Scenario::default().token("gone", TokenRule::new(Behaviour::NotRegistered))).await;
    let legacy = gcm_hyper::Message::multicast(["a", "gone", "b"])
        .data("count", 2)
        .collapse_key("inbox")
        .priority(Priority::High)
        .time_to_live(60);
    let Converted::Multicast(multicast) = Converted::from_legacy(&legacy).unwrap() else { panic!("a multicast") };
    let report = client(&server).send_multicast(&multicast).await.unwrap();
    assert_eq!(report.outcome.success().map(|(t, _)| t).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(report.outcome.not_registered().collect::<Vec<_>>(), ["gone"]);
    let inbox = server.inbox();
    assert_eq!(inbox.len(), 2);
    assert_eq!(inbox[0].data["count"], "2");
    assert_eq!(
        inbox[0].options["android"],
        serde_json::json!({"collapse_key": "inbox", "priority": "HIGH", "ttl": "60s"})
    );
    assert_eq!(inbox[0].options["apns"]["headers"]["apns-priority"], "10");
}

#[tokio::test]
async fn a_key_the_server_does_not_know_gets_no_token_and_loses_no_message() {
    let server = mock(Scenario::default()).await;
    let client = stranger(&server);
    let multicast = Multicast::new(["a", "b"]);
    // A refused credential is not "retry every message": it is an error of its own type.
    let stopped = RetryLoop::new().run_multicast(&client, &multicast).await.unwrap_err();
    assert!(stopped.error().is_authentication());
    assert!(
        matches!(stopped.error().auth_error(), Some(AuthError::TokenRefused { error, .. }) if error == "invalid_grant"),
        "{:?}",
        stopped.error()
    );
    let report = stopped.report();
    assert_eq!(report.attempts, 1, "a refused key is not retried");
    assert!(!report.may_have_reached_server());
    assert_eq!(report.outcome.to_retry().filter(|(_, c)| **c == RetryCause::Unanswered).count(), 2);
    assert_eq!(report.outcome.retry().unwrap().tokens(), ["a", "b"]);
    assert!(server.inbox().is_empty());
    let token_requests = server.requests().iter().filter(|r| r.path == "/token").count();
    assert_eq!(token_requests, 1, "one refused token request for the whole fan-out");
    assert!(!format!("{client:?}").contains("PRIVATE KEY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_content_to_ten_thousand_tokens_is_delivered_once_each() {
    let server = MockServer::builder()
        .scenario(Scenario::default().token("t05000", TokenRule::new(Behaviour::NotRegistered)))
        .start()
        .await
        .unwrap();
    let key = ServiceAccountKey::from_json(server.service_account_json().unwrap()).unwrap();
    let fcm = Fcm::new("mock-project").unwrap().with_base_url(&server.v1_base_url()).unwrap();
    let client = FcmClient::new(fcm, key).unwrap();
    let tokens: Vec<String> = (0..10_000).map(|i| format!("t{i:05}")).collect();
    let multicast = Multicast::new(&tokens).data("blob", "p".repeat(1000));

    let report = client.send_multicast(&multicast).await.unwrap();
    assert_eq!(report.outcome.len(), 10_000);
    assert_eq!(report.outcome.success().count(), 9_999);
    assert_eq!(report.outcome.not_registered().collect::<Vec<_>>(), ["t05000"]);
    assert_eq!(report.outcome.retry(), None);
    // Each token got the one content, exactly once, in its own request.
    let inbox = server.inbox();
    assert_eq!(inbox.len(), 9_999);
    assert!(inbox.iter().all(|delivery| delivery.data["blob"].as_str().map(str::len) == Some(1000)));
    let mut delivered: Vec<&str> = inbox.iter().map(|delivery| delivery.token.as_str()).collect();
    delivered.sort_unstable();
    delivered.dedup();
    assert_eq!(delivered.len(), 9_999);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn messages_sent_each_keep_their_own_content_fate_and_retry() {
    use gcm_hyper::gcm_proto::v1::Messages;
    let scenario = Scenario::default()
        .token("gone", TokenRule::new(Behaviour::NotRegistered))
        .token("busy", TokenRule::unavailable_times(1));
    let server = mock(scenario).await;
    let client = client(&server);
    let messages = Messages::new([
        Message::token("a").data("n", "1"),
        Message::token("busy").data("n", "2"),
        Message::topic("news").data("n", "3"),
        Message::token("gone"),
    ]);
    let report = client.send_each(&messages).await.unwrap();
    let fates: Vec<_> = report.outcome.fates().map(|(recipient, fate)| (recipient, fate.is_final())).collect();
    assert_eq!(fates, [("a", true), ("busy", false), ("/topics/news", true), ("gone", true)]);
    assert_eq!(report.outcome.not_registered().collect::<Vec<_>>(), ["gone"]);
    let retry = report.outcome.retry().expect("busy is retried");
    assert_eq!(retry.as_slice(), [messages.as_slice()[1].clone()], "with its own content");
    let again = client.send_each(&retry).await.unwrap();
    assert!(!again.outcome.needs_retry());
    let mut data: Vec<String> =
        server.inbox().iter().filter_map(|d| Some(d.data.get("n")?.as_str()?.to_owned())).collect();
    data.sort();
    assert_eq!(data, ["1", "2", "3"], "each content delivered to its own target, once");
}

#[tokio::test(start_paused = true)]
async fn messages_sent_each_without_credentials_stop_with_every_message_pending() {
    use gcm_hyper::gcm_proto::v1::Messages;
    let server = mock(Scenario::default()).await;
    let client = stranger(&server);
    let messages = Messages::new([Message::token("a"), Message::topic("b")]);
    let stopped = client.send_each(&messages).await.unwrap_err();
    assert!(stopped.error().is_systemic());
    assert_eq!(stopped.report().outcome.retry(), Some(messages));
    assert!(server.inbox().is_empty());
}
