//! Topic management, FID multicasts and sends of different messages, end to end against
//! gcm-mock on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::time::Duration;

use gcm_hyper::FcmClient;
use gcm_hyper::gcm_proto::oauth::ServiceAccountKey;
use gcm_hyper::gcm_proto::v1::{Fcm, Message, Messages, Multicast, Notification};
use gcm_mock::{Behaviour, MockServer, Scenario, TokenRule};

use common::tokio_clock;

async fn mock(scenario: Scenario) -> MockServer {
    MockServer::builder().scenario(scenario).clock(tokio_clock()).start().await.unwrap()
}

fn client(server: &MockServer) -> FcmClient {
    let key = ServiceAccountKey::from_json(server.service_account_json().unwrap()).unwrap();
    let client = FcmClient::builder(Fcm::new("mock-project").unwrap(), key).clock(tokio_clock()).build().unwrap();
    client.base_url(&server.v1_base_url()).unwrap()
}

/// "What was seen" 3: a subscription of any size, 1000 tokens a call, one report; the mock
/// keeps it and a send to the topic reaches the subscribers.
#[tokio::test(start_paused = true)]
async fn subscribe_2500_tokens_then_send_to_the_topic() {
    let scenario = Scenario::default().token("t7", TokenRule::new(Behaviour::NotRegistered));
    let server = mock(scenario).await;
    let client = client(&server);
    let tokens: Vec<String> = (0..2500).map(|i| format!("t{i}")).collect();

    let report = client.subscribe("/topics/news", tokens.clone()).await.unwrap();
    assert_eq!(report.outcome.success().count(), 2499);
    assert_eq!(report.outcome.not_registered().collect::<Vec<_>>(), ["t7"]);
    assert!(report.outcome.retry().is_none() && report.problems.is_empty());
    let calls: Vec<_> = server.requests().into_iter().filter(|r| r.path == "/iid/v1:batchAdd").collect();
    assert_eq!(calls.len(), 3, "1000 tokens a call");
    assert!(calls.iter().all(|call| call.authorized));
    assert_eq!(server.topics()["news"].len(), 2499);

    let unsubscribed = client.unsubscribe("news", &tokens[..2000]).await.unwrap();
    assert_eq!(unsubscribed.outcome.success().count(), 1999);
    assert_eq!(server.topics()["news"], tokens[2000..]);

    let reply = client.send(&Message::topic("news").notification(Notification::new("Hi", "all"))).await.unwrap();
    assert!(matches!(reply.fate, gcm_hyper::gcm_proto::Fate::Delivered { .. }));
    let reached: Vec<String> =
        server.inbox().into_iter().filter(|d| d.via.as_deref() == Some("/topics/news")).map(|d| d.token).collect();
    assert_eq!(reached, tokens[2000..]);
}

/// "What was seen" 4: different messages in one call (Firebase Admin's `sendEach`), and a
/// multicast to installation ids.
#[tokio::test(start_paused = true)]
async fn send_each_and_fid_multicasts() {
    let server = mock(Scenario::default().token("gone", TokenRule::new(Behaviour::NotRegistered))).await;
    let client = client(&server);
    let messages = Messages::new([
        Message::token("a").data("n", "1"),
        Message::topic("news").data("n", "2"),
        Message::fid("fid-1").data("n", "3"),
        Message::token("gone"),
    ]);
    let report = client.send_each(&messages).await.unwrap();
    assert_eq!(report.outcome.success().count(), 3);
    assert_eq!(report.outcome.not_registered().collect::<Vec<_>>(), ["gone"]);

    let report = client.send_multicast(&Multicast::fids(["fid-2", "fid-3"]).data("k", "v")).await.unwrap();
    assert_eq!(report.outcome.success().count(), 2);
    let bodies: Vec<String> = server.requests().into_iter().map(|r| r.body).filter(|b| b.contains("fid-2")).collect();
    assert_eq!(bodies, [r#"{"message":{"fid":"fid-2","data":{"k":"v"}}}"#]);
}

/// "What was seen" 7: when every connection carries as many streams as the server allows,
/// another is opened, up to the cap; past it, streams queue on the open ones.
#[tokio::test(start_paused = true)]
async fn a_server_stream_limit_opens_more_connections_up_to_the_cap() {
    for (cap, connections) in [(4, 4), (2, 2), (1, 1)] {
        let server = MockServer::builder().max_concurrent_streams(2).clock(tokio_clock()).start().await.unwrap();
        let key = ServiceAccountKey::from_json(server.service_account_json().unwrap()).unwrap();
        let fcm = Fcm::new("mock-project").unwrap().with_base_url(&server.v1_base_url()).unwrap();
        let client =
            FcmClient::builder(fcm, key).clock(tokio_clock()).concurrency(8).max_connections(cap).build().unwrap();
        // The access token first, on the first connection.
        client.send(&Message::token("warm-up")).await.unwrap();
        server.hold_answers();
        let tokens: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
        let sending = tokio::spawn({
            let client = client.clone();
            async move { client.send_multicast(&Multicast::new(tokens)).await }
        });
        // Every stream the connections allow is open and held: 2 per connection. (On the
        // paused clock the timeout fires only once nothing else can happen: a client that
        // queued its streams on too few connections fails here instead of hanging.)
        let held = tokio::time::timeout(Duration::from_secs(600), server.wait_held(2 * connections)).await;
        assert!(held.is_ok(), "cap {cap}: the streams were not spread over {connections} connections");
        assert_eq!(server.connections(), connections, "cap {cap}");
        server.release_answers();
        let report = sending.await.unwrap().unwrap();
        assert_eq!(report.outcome.success().count(), 8, "cap {cap}: the queued streams were sent too");
        assert_eq!(server.connections(), connections, "cap {cap}");
    }
}
