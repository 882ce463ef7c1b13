//! FCM v1 against a hostile loopback HTTP/2 server (and gcm-mock's token endpoint): each
//! message keeps its own fate and error, the retry loop decides per message, quota errors
//! wait their floor, and no `Retry-After` makes the loop panic or sleep for decades.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gcm_hyper::gcm_proto::ResponseError;
use gcm_hyper::gcm_proto::oauth::ServiceAccountKey;
use gcm_hyper::gcm_proto::v1::{Fcm, Multicast};
use gcm_hyper::{Client, Error, FcmClient, Gcm, Message, Problem, RetryLoop};
use gcm_mock::MockServer;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::TcpListener;

use common::recorder;

const FCM_OK: &str = r#"{"name":"projects/mock-project/messages/1"}"#;
const QUOTA: &str = r#"{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"QUOTA_EXCEEDED"}]}}"#;
const UNAVAILABLE: &str = r#"{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNAVAILABLE"}]}}"#;

/// A v1 send endpoint that misbehaves by token: `reset` gets RST_STREAM, `noname` a 200
/// without `name`, `hang` no answer, `quota` a 429 without `Retry-After`, `ra=<value>` a
/// 503 with that `Retry-After`; any other token is delivered. Counts requests per token.
struct Hostile {
    base_url: String,
    seen: Arc<Mutex<HashMap<String, u32>>>,
}

impl Hostile {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let counts = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counts = Arc::clone(&counts);
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let counts = Arc::clone(&counts);
                    async move { answer(request, &counts).await }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { base_url, seen }
    }

    fn requests_for(&self, token: &str) -> u32 {
        self.seen.lock().unwrap().get(token).copied().unwrap_or(0)
    }
}

async fn answer(
    request: http::Request<hyper::body::Incoming>,
    counts: &Mutex<HashMap<String, u32>>,
) -> Result<http::Response<Full<Bytes>>, std::io::Error> {
    let body = request.into_body().collect().await.map_err(std::io::Error::other)?.to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body)?;
    let token = json["message"]["token"].as_str().unwrap_or_default().to_owned();
    *counts.lock().unwrap().entry(token.clone()).or_default() += 1;
    let reply = |status: u16, body: &'static str| {
        let mut response = http::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        response
    };
    Ok(match token.as_str() {
        // An error from the service: hyper resets the stream.
        "reset" => return Err(std::io::Error::other("reset this stream")),
        "noname" => reply(200, "{}"),
        "hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            reply(200, FCM_OK)
        }
        "quota" => reply(429, QUOTA),
        other => match other.strip_prefix("ra=") {
            Some(value) => {
                let mut response = reply(503, UNAVAILABLE);
                response.headers_mut().insert("retry-after", value.parse().map_err(std::io::Error::other)?);
                response
            }
            None => reply(200, FCM_OK),
        },
    })
}

/// gcm-mock mints the access tokens; the hostile server gets the sends.
async fn setup() -> (MockServer, Hostile, FcmClient) {
    let mock = MockServer::start().await.unwrap();
    let hostile = Hostile::start().await;
    let key = ServiceAccountKey::from_json(mock.service_account_json().unwrap()).unwrap();
    let fcm = Fcm::new("mock-project").unwrap().with_base_url(&hostile.base_url).unwrap();
    // Only "hang" needs the timeout; a loopback send on a busy machine must never reach it.
    let client = FcmClient::builder(fcm, key).request_timeout(Duration::from_secs(2)).build().unwrap();
    (mock, hostile, client)
}

fn seeded() -> StdRng {
    StdRng::seed_from_u64(1)
}

#[tokio::test]
async fn a_message_answered_without_name_is_not_resent_because_another_was_reset() {
    let (_mock, hostile, client) = setup().await;
    let (delays, sleeper) = recorder();
    let multicast = Multicast::new(["noname", "reset", "ok"]);
    let report = RetryLoop::new().rng(seeded()).sleeper(sleeper).run_multicast(&client, &multicast).await.unwrap();

    assert_eq!(hostile.requests_for("noname"), 1, "an unreadable answer is not resent");
    assert_eq!(hostile.requests_for("reset"), 6, "a reset stream is retried to the limit");
    assert_eq!(hostile.requests_for("ok"), 1);
    assert_eq!(delays.lock().unwrap().len(), 5);
    assert_eq!(report.attempts, 6);
    assert_eq!(report.outcome.success().map(|(t, _)| t).collect::<Vec<_>>(), ["ok"]);
    // Each pending message keeps its own error.
    assert!(
        matches!(report.problems.get(&0), Some(Problem::Error(Error::Response(ResponseError::Malformed { .. })))),
        "{:?}",
        report.problems
    );
    assert!(
        matches!(report.problems.get(&1), Some(Problem::Error(Error::Transport { connect: false, .. }))),
        "{:?}",
        report.problems
    );
    assert!(!report.problems.contains_key(&2));
    assert_eq!(report.outcome.retry().unwrap().tokens(), ["noname", "reset"]);
    assert_eq!(report.next_delay.map(|d| d > Duration::ZERO), Some(true));
}

#[tokio::test]
async fn messages_that_timed_out_say_they_may_have_reached_the_server() {
    let (_mock, _hostile, client) = setup().await;
    let report = client.send_multicast(&Multicast::new(["hang", "ok", "hang", "noname"])).await.unwrap();
    assert_eq!(report.outcome.success().count(), 1);
    for position in [0, 2] {
        let problem = report.problems.get(&position).unwrap();
        assert!(matches!(problem, Problem::Error(Error::Timeout { .. })), "{problem:?}");
        assert!(problem.may_have_reached_server());
    }
    assert!(report.may_have_reached_server());
    let errors: Vec<(usize, &str)> = report.errors().map(|(position, token, _)| (position, token)).collect();
    assert_eq!(errors, [(0, "hang"), (2, "hang"), (3, "noname")]);
}

#[tokio::test]
async fn a_quota_error_without_retry_after_waits_at_least_a_minute() {
    let (_mock, hostile, client) = setup().await;
    let (delays, sleeper) = recorder();
    let mut retry_loop = RetryLoop::new().max_attempts(3).rng(seeded()).sleeper(sleeper);
    let report = retry_loop.run_multicast(&client, &Multicast::new(["quota"])).await.unwrap();
    assert_eq!(hostile.requests_for("quota"), 3);
    let delays = delays.lock().unwrap().clone();
    assert_eq!(delays.len(), 2);
    assert!(delays.iter().all(|delay| *delay >= Duration::from_secs(60)), "{delays:?}");
    assert!(delays[1] > delays[0], "still exponential above the floor: {delays:?}");
    assert!(report.outcome.rate_limited().count() == 1);
}

#[tokio::test]
async fn a_hostile_retry_after_ends_the_loop_with_the_delay_in_the_report() {
    let (_mock, hostile, client) = setup().await;
    let year_9999 = "ra=Fri, 31 Dec 9999 23:59:59 GMT";
    for (token, deadline) in [
        ("ra=99999999999999999999", Some(Duration::from_secs(600))),
        ("ra=99999999999999999999", None),
        ("ra=4000000000", None),
        (year_9999, None),
    ] {
        let (delays, sleeper) = recorder();
        let mut retry_loop = RetryLoop::new().rng(seeded()).sleeper(sleeper);
        if let Some(deadline) = deadline {
            retry_loop = retry_loop.deadline(deadline);
        }
        let report = retry_loop.run_multicast(&client, &Multicast::new([token])).await.unwrap();
        assert!(delays.lock().unwrap().is_empty(), "{token}: never waits past the limits");
        assert_eq!(report.attempts, 1, "{token}");
        assert_eq!(report.outcome.to_retry().count(), 1, "{token}: still pending, not dropped");
        let next = report.next_delay.expect("the server's delay is in the report");
        assert!(next > Duration::from_secs(3_000_000_000), "{token}: {next:?}");
        assert_eq!(report.outcome.retry_after(), Some(next));
    }
    assert_eq!(hostile.requests_for(year_9999), 1);
}

#[tokio::test]
async fn a_retry_after_of_zero_backs_off_instead_of_looping_hot() {
    let (_mock, hostile, client) = setup().await;
    let (delays, sleeper) = recorder();
    let report =
        RetryLoop::new().rng(seeded()).sleeper(sleeper).run_multicast(&client, &Multicast::new(["ra=0"])).await;
    assert_eq!(report.unwrap().attempts, 6);
    assert_eq!(hostile.requests_for("ra=0"), 6);
    let delays = delays.lock().unwrap().clone();
    assert!(delays[0] >= Duration::from_millis(500), "{delays:?}");
    assert!(delays.windows(2).all(|pair| pair[1] > pair[0]), "growing: {delays:?}");
}

#[tokio::test]
async fn the_legacy_loop_survives_a_huge_retry_after_with_a_deadline() {
    let scenario =
        gcm_mock::Scenario::default().reply(gcm_mock::Reply::status(503).retry_after("99999999999999999999"));
    let mock = MockServer::builder().api_key("key").scenario(scenario).start().await.unwrap();
    let client = Client::new(Gcm::new("key").unwrap().with_endpoint(&mock.url()).unwrap()).unwrap();
    let (delays, sleeper) = recorder();
    let mut retry_loop = RetryLoop::new().deadline(Duration::from_secs(60)).sleeper(sleeper);
    let report = retry_loop.run(&client, &Message::multicast(["a"])).await;
    assert!(delays.lock().unwrap().is_empty());
    assert_eq!(report.attempts, 1);
    assert_eq!(report.outcome.retry().unwrap().tokens(), ["a"]);
    assert_eq!(report.next_delay, Some(Duration::from_secs(u64::MAX)));
}

#[tokio::test]
async fn errors_name_the_endpoint_and_the_root_cause() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/gcm/send");
    let client = Client::new(Gcm::new("key").unwrap().with_endpoint(&url).unwrap()).unwrap();
    let error = client.send(&Message::multicast(["a"])).await.unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with(&format!("cannot connect to {url}: tcp connect error: ")), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(error.is_retryable() && !error.is_authentication() && !error.may_have_reached_server());

    // FCM v1 errors do not speak of GCM, and say what timed out.
    let (_mock, hostile, client) = setup().await;
    let message = gcm_hyper::gcm_proto::v1::Message::token("hang");
    let error = client.send(&message).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("no complete answer from {}/v1/projects/mock-project/messages:send within 2s", hostile.base_url)
    );
    assert!(!format!("{error}{error:?}").contains("GCM"));
}

/// An HTTP/2 send endpoint that answers one request per connection, then closes it with
/// GOAWAY. Counts the connections it accepted.
async fn closing_after_one_request() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let answered = Arc::new(tokio::sync::Notify::new());
            let notify = Arc::clone(&answered);
            let service = service_fn(move |_request: http::Request<hyper::body::Incoming>| {
                notify.notify_one();
                async { Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from_static(FCM_OK.as_bytes())))) }
            });
            tokio::spawn(async move {
                let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service);
                tokio::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => return,
                    _ = answered.notified() => connection.as_mut().graceful_shutdown(),
                }
                let _ = connection.await;
            });
        }
    });
    (base_url, accepted)
}

#[tokio::test]
async fn a_connection_the_server_closed_is_opened_again() {
    let mock = MockServer::start().await.unwrap();
    let (base_url, accepted) = closing_after_one_request().await;
    let key = ServiceAccountKey::from_json(mock.service_account_json().unwrap()).unwrap();
    let fcm = Fcm::new("mock-project").unwrap().with_base_url(&base_url).unwrap();
    let client = FcmClient::new(fcm, key).unwrap();
    for attempt in 1..=3 {
        let message = gcm_hyper::gcm_proto::v1::Message::token("t");
        let reply = client.send(&message).await.unwrap_or_else(|e| panic!("send {attempt}: {e}"));
        assert!(matches!(reply.fate, gcm_hyper::gcm_proto::Fate::Delivered { .. }), "{reply:?}");
        // Until the GOAWAY arrives the old connection still looks open: let it.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    // The token endpoint (another origin) kept its one connection.
    assert_eq!(mock.connections(), 1);
}

#[tokio::test]
async fn an_idle_connection_is_replaced_after_the_idle_timeout() {
    let mock = MockServer::start().await.unwrap();
    let key = ServiceAccountKey::from_json(mock.service_account_json().unwrap()).unwrap();
    let fcm = Fcm::new("mock-project").unwrap().with_base_url(&mock.v1_base_url()).unwrap();
    let kept = FcmClient::new(fcm.clone(), key.clone()).unwrap();
    let short = FcmClient::builder(fcm, key).pool_idle_timeout(Duration::from_millis(5)).build().unwrap();
    let message = gcm_hyper::gcm_proto::v1::Message::token("t");
    for _ in 0..3 {
        kept.send(&message).await.unwrap();
    }
    assert_eq!(mock.connections(), 1, "one connection for the token and three sends");
    // The first send also fetches the token: on a busy machine more than 5 ms may pass
    // between the two, and the send then opens a connection of its own. Count from after it.
    short.send(&message).await.unwrap();
    let before = mock.connections();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        short.send(&message).await.unwrap();
    }
    assert_eq!(mock.connections(), before + 3, "a new connection for each send after 20 ms idle");
}

#[tokio::test]
async fn a_multicast_nobody_can_connect_to_stops_with_a_connect_error() {
    let mock = MockServer::start().await.unwrap();
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let key = ServiceAccountKey::from_json(mock.service_account_json().unwrap()).unwrap();
    let fcm = Fcm::new("mock-project").unwrap().with_base_url(&format!("http://127.0.0.1:{port}")).unwrap();
    let client = FcmClient::new(fcm, key).unwrap();
    let tokens: Vec<String> = (0..250).map(|i| format!("t{i}")).collect();
    let stopped = client.send_multicast(&Multicast::new(&tokens)).await.unwrap_err();
    assert!(matches!(stopped.error(), Error::Transport { connect: true, .. }), "{:?}", stopped.error());
    assert!(stopped.error().to_string().to_lowercase().contains("refused"), "{}", stopped.error());
    assert_eq!(stopped.report().outcome.retry().map(|m| m.tokens().len()), Some(250), "no message lost");
}
