//! End-to-end: gcm-hyper against gcm-mock on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::time::Duration;

use gcm_hyper::gcm_proto::{ErrorCode, Fate, ResponseError, RetryCause};
use gcm_hyper::{Client, Error, Gcm, Message};
use gcm_mock::{Behaviour, MockServer, Reply, Scenario, TokenRule};
use tokio::net::TcpListener;

const KEY: &str = "e2e-key";

async fn mock(scenario: Scenario) -> MockServer {
    MockServer::builder().api_key(KEY).scenario(scenario).start().await.unwrap()
}

fn client(url: &str) -> Client {
    Client::new(Gcm::new(KEY).unwrap().with_endpoint(url).unwrap()).unwrap()
}

fn delivered_to(server: &MockServer) -> Vec<String> {
    server.inbox().into_iter().map(|d| d.token).collect()
}

#[tokio::test]
async fn unicast_plain_text_and_multicast_json() {
    let scenario = Scenario::default()
        .token("canon", TokenRule::canonical("canon-new"))
        .token("gone", TokenRule::new(Behaviour::NotRegistered))
        .token("bad", TokenRule::new(Behaviour::Invalid))
        .token("busy", TokenRule::new(Behaviour::Unavailable));
    let server = mock(scenario).await;
    let client = client(&server.url());

    let unicast = Message::plain_text("canon").data("score", "3x1");
    let outcome = client.send(&unicast).await.unwrap();
    let Some(Fate::Delivered { canonical, .. }) = outcome.fate("canon") else { panic!("{outcome:?}") };
    assert_eq!(canonical.as_deref(), Some("canon-new"));

    let multicast = Message::multicast(["ok", "canon", "gone", "bad", "busy"]).data("k", "v");
    let outcome = client.send(&multicast).await.unwrap();
    assert_eq!(outcome.success().map(|(t, _)| t).collect::<Vec<_>>(), ["ok", "canon"]);
    assert_eq!(outcome.canonical().collect::<Vec<_>>(), [("canon", "canon-new")]);
    assert_eq!(outcome.not_registered().collect::<Vec<_>>(), ["gone"]);
    assert_eq!(outcome.failed().collect::<Vec<_>>(), [("bad", &ErrorCode::InvalidRegistration)]);
    assert_eq!(outcome.to_retry().collect::<Vec<_>>(), [("busy", &RetryCause::Error(ErrorCode::Unavailable))]);
    assert!(outcome.multicast_id().is_some());
    assert_eq!(delivered_to(&server), ["canon", "ok", "canon"]);
    assert_eq!(server.inbox()[2].data["k"], "v");

    // The FCM path and topics work the same way.
    let fcm = client.gcm().clone().with_endpoint(&server.fcm_url()).unwrap();
    let outcome = Client::new(fcm).unwrap().send(&Message::topic("news")).await.unwrap();
    assert!(matches!(outcome.fate("/topics/news"), Some(Fate::Delivered { .. })));
}

#[tokio::test]
async fn authentication_and_bad_request_errors() {
    let server = mock(Scenario::default()).await;
    let wrong = Client::new(Gcm::new("wrong").unwrap().with_endpoint(&server.url()).unwrap()).unwrap();
    let error = wrong.send(&Message::to("a")).await.unwrap_err();
    assert!(matches!(error, Error::Response(ResponseError::Authentication { .. })), "{error:?}");
    assert!(!error.is_retryable() && error.may_have_reached_server());

    let error = client(&server.url()).send(&Message::multicast(Vec::<String>::new())).await.unwrap_err();
    assert!(matches!(error, Error::Build(_)) && !error.may_have_reached_server());

    // The server's 400 reason reaches the caller.
    let too_many: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
    let error = client(&server.url()).send(&Message::multicast(too_many)).await.unwrap_err();
    let Error::Response(ResponseError::BadRequest { body }) = &error else { panic!("{error:?}") };
    assert_eq!(body.text(), "Number of messages on bulk (1001) exceeds maximum allowed (1000)\n");
    assert!(server.inbox().is_empty());
}

#[tokio::test]
async fn server_errors_with_both_retry_after_forms() {
    let scenario = Scenario::default()
        .reply(Reply::status(503).retry_after("30"))
        .reply(Reply::status(500).retry_after("Fri, 31 Dec 1999 23:59:59 GMT"))
        .reply(Reply::status(502));
    let server = mock(scenario).await;
    let client = client(&server.url());
    let message = Message::multicast(["a", "b"]);
    let expected = [(503, Some(Duration::from_secs(30))), (500, Some(Duration::ZERO)), (502, None)];
    for (status, retry_after) in expected {
        let outcome = client.send(&message).await.unwrap();
        assert_eq!(outcome.to_retry().map(|(_, c)| c.clone()).collect::<Vec<_>>(), vec![RetryCause::Status(status); 2]);
        assert_eq!(outcome.retry_after(), retry_after);
        assert_eq!(outcome.retry(), Some(message.clone()));
    }
    assert!(server.inbox().is_empty());
}

#[tokio::test]
async fn a_body_over_the_cap_is_an_error() {
    let server = mock(Scenario::default().reply(Reply { body: Some("x".repeat(5000)), ..Reply::status(500) })).await;
    let gcm = Gcm::new(KEY).unwrap().with_endpoint(&server.url()).unwrap();
    let client = Client::builder(gcm).max_response_body(4096).build().unwrap();
    let error = client.send(&Message::to("a")).await.unwrap_err();
    assert!(matches!(error, Error::BodyTooLarge { limit: 4096, status: 500 }), "{error:?}");
    // The same client goes on working.
    assert!(client.send(&Message::to("a")).await.is_ok());
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream); // accept, read nothing, answer nothing
        }
    });
    let gcm = Gcm::new(KEY).unwrap().with_endpoint(&format!("http://{addr}/gcm/send")).unwrap();
    let client = Client::builder(gcm).request_timeout(Duration::from_millis(200)).build().unwrap();
    let error = client.send(&Message::to("a")).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert!(error.is_retryable() && error.may_have_reached_server());
    holder.abort();
}

#[tokio::test]
async fn a_refused_connection_was_certainly_not_sent() {
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap(); // closed at once
    let error = client(&format!("http://{addr}/gcm/send")).send(&Message::to("a")).await.unwrap_err();
    assert!(matches!(error, Error::Transport { connect: true, .. }), "{error:?}");
    assert!(!error.may_have_reached_server());
    assert!(std::error::Error::source(&error).is_some(), "hyper's error is kept as the source");
}

#[tokio::test]
async fn sequential_sends_reuse_one_connection() {
    let server = mock(Scenario::default()).await;
    let client = client(&server.url());
    for i in 0..50 {
        client.send(&Message::to(format!("t{i}"))).await.unwrap();
    }
    assert_eq!(server.connections(), 1);
    assert_eq!(server.inbox().len(), 50);
}

#[tokio::test]
async fn concurrent_sends_from_many_tasks_share_the_pool() {
    let server = mock(Scenario::default()).await;
    let client = client(&server.url());
    let mut tasks = Vec::new();
    for task in 0..16 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let message = Message::multicast([format!("t{task}-{i}-a"), format!("t{task}-{i}-b")]);
                let outcome = client.send(&message).await.unwrap();
                assert_eq!(outcome.success().count(), 2);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut tokens = delivered_to(&server);
    assert_eq!(tokens.len(), 320);
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 320, "no token delivered twice");
    assert!(server.connections() <= 16, "{} connections for 16 tasks", server.connections());
}

#[tokio::test]
async fn the_api_key_stays_out_of_debug_and_errors() {
    let server = mock(Scenario::default()).await;
    let wrong = Client::new(Gcm::new("super-secret-key").unwrap().with_endpoint(&server.url()).unwrap()).unwrap();
    let error = wrong.send(&Message::to("a")).await.unwrap_err();
    for text in [format!("{wrong:?}"), format!("{error:?}"), error.to_string()] {
        assert!(!text.contains("super-secret-key"), "{text}");
    }
}
