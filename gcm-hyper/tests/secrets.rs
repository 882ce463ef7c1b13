//! The API key appears in no `Debug`, `Display`, error or tracing output of any crate:
//! gcm-proto's sender and requests, gcm-hyper's client, errors and retry reports, and
//! gcm-mock's request log, inbox and logs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::time::Duration;

use gcm_hyper::{Client, Gcm, Message, RetryLoop};
use gcm_mock::{MockServer, Reply, Scenario};

const SECRET: &str = "AIzaSy-very-secret-0123456789";

#[tokio::test(flavor = "current_thread")]
async fn the_api_key_never_shows() {
    let (captured, _guard) = common::capture(tracing::Level::TRACE);

    let mut shown: Vec<String> = Vec::new();
    let scenario = Scenario::default()
        .reply(Reply::status(400))
        .reply(Reply { body: Some("x".repeat(100)), ..Reply::status(500) })
        .reply(Reply::status(404))
        .reply(Reply { body: Some("{not json".into()), ..Reply::status(200) })
        .reply(Reply::status(503).retry_after("1"));
    let mock = MockServer::builder().api_key(SECRET).scenario(scenario).start().await.unwrap();
    let gcm = Gcm::new(SECRET).unwrap().with_endpoint(&mock.url()).unwrap();
    shown.push(format!("{gcm:?}"));
    let request = gcm.encode(&Message::to("a")).unwrap();
    shown.push(format!("{request:?}"));
    shown.push(format!("{:?}", request.headers()));

    let client = Client::builder(gcm.clone()).max_response_body(50).build().unwrap();
    shown.push(format!("{client:?}"));
    // 400, body too large, 404, malformed: every error, in both forms.
    for _ in 0..4 {
        let error = client.send(&Message::to("a")).await.unwrap_err();
        shown.push(format!("{error:?}"));
        shown.push(error.to_string());
    }
    let report = RetryLoop::new().sleeper(|_| std::future::ready(())).run(&client, &Message::to("a")).await;
    shown.push(format!("{report:?}"));

    // A wrong key, a timeout, a refused connection.
    let wrong = Client::new(Gcm::new("wrong").unwrap().with_endpoint(&mock.url()).unwrap()).unwrap();
    shown.push(format!("{:?}", wrong.send(&Message::to("a")).await.unwrap_err()));
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/gcm/send", silent.local_addr().unwrap());
    let slow = Client::builder(Gcm::new(SECRET).unwrap().with_endpoint(&silent_url).unwrap())
        .request_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let timeout = slow.send(&Message::to("a")).await.unwrap_err();
    shown.push(format!("{timeout:?} {timeout}"));
    drop(silent);
    let refused = Client::new(Gcm::new(SECRET).unwrap().with_endpoint(&silent_url).unwrap()).unwrap();
    let error = refused.send(&Message::to("a")).await.unwrap_err();
    shown.push(format!("{error:?} {error}"));

    // Once the scripted replies are used up, a normal send: its tracing fields.
    let outcome = Client::new(gcm).unwrap().send(&Message::multicast(["a", "b"])).await.unwrap();
    assert_eq!(outcome.success().count(), 2);

    // The mock keeps requests and deliveries without the key.
    shown.push(serde_json::to_string(&mock.requests()).unwrap());
    shown.push(serde_json::to_string(&mock.inbox()).unwrap());
    shown.push(format!("{mock:?}"));

    shown.push(captured.text());
    let logs = shown.last().unwrap();
    for field in ["gcm.send", "status=200", "success=2", "status=401", "status=503", "retry=1"] {
        assert!(logs.contains(field), "tracing shows {field}: {logs}");
    }
    assert!(shown.len() > 15);
    for text in &shown {
        assert!(!text.contains(SECRET), "the API key leaked into: {text}");
        assert!(!text.contains("very-secret"), "part of the API key leaked into: {text}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_private_key_assertions_and_access_tokens_never_show() {
    use gcm_hyper::FcmClient;
    use gcm_hyper::gcm_proto::oauth::ServiceAccountKey;
    use gcm_hyper::gcm_proto::v1::{Fcm, Message as V1Message, Multicast};

    let (captured, _guard) = common::capture(tracing::Level::TRACE);

    let mock = MockServer::start().await.unwrap();
    let key_file = mock.service_account_json().unwrap().to_owned();
    let file: serde_json::Value = serde_json::from_str(&key_file).unwrap();
    // A line from the middle of the PEM: the key's material.
    let pem_line = file["private_key"].as_str().unwrap().lines().nth(5).unwrap().to_owned();
    let key = ServiceAccountKey::from_json(&key_file).unwrap();
    // Every assertion starts with this header, base64url of `{"alg":"RS256",`.
    let assertion_start = "eyJhbGciOiJSUzI1NiIs";
    assert!(key.assertion(std::time::SystemTime::now()).unwrap().starts_with(assertion_start));

    let mut shown = vec![format!("{key:?}")];
    let fcm = Fcm::new("mock-project").unwrap().with_base_url(&mock.v1_base_url()).unwrap();
    let client = FcmClient::new(fcm.clone(), key.clone()).unwrap();
    shown.push(format!("{client:?}"));
    let multicast = Multicast::new(["a", "b"]);
    shown.push(format!("{:?}", client.send_multicast(&multicast).await));
    let message = V1Message::token("a");
    mock.reset(); // the next send is refused with 401 and the token refreshed
    shown.push(format!("{:?}", client.send(&message).await.unwrap()));
    shown.push(format!("{:?}", fcm.encode(&message, "ya29.mock.1.0123").unwrap()));
    // A key the mock does not know: the refusal, in both forms.
    let stranger = key_file.replace(&file["client_email"].as_str().unwrap().to_owned(), "stranger@example.com");
    let refused = FcmClient::new(fcm, ServiceAccountKey::from_json(&stranger).unwrap()).unwrap();
    let error = refused.send(&message).await.unwrap_err();
    shown.push(format!("{error:?} {error}"));
    let stopped = refused.send_multicast(&multicast).await.unwrap_err();
    shown.push(format!("{stopped:?} {stopped}"));
    shown.push(serde_json::to_string(&mock.requests()).unwrap());
    shown.push(serde_json::to_string(&mock.inbox()).unwrap());
    shown.push(captured.text());

    let logs = shown.last().unwrap();
    assert!(logs.contains("fcm access token refreshed"), "{logs}");
    assert!(mock.requests().iter().any(|r| r.path == "/token" && r.body.contains("assertion=%3Credacted%3E")));
    for text in &shown {
        assert!(!text.contains(&pem_line), "the private key leaked into: {text}");
        assert!(!text.contains(assertion_start), "a signed assertion leaked into: {text}");
        assert!(!text.contains("ya29.mock."), "an access token leaked into: {text}");
    }
}

/// Every public type that holds a key, an assertion, an access token or a proxy credential
/// keeps it out of `Debug` and `Display`: gcm-proto's token errors, gcm-hyper's builder,
/// gcm-mock's engine.
#[test]
fn debug_of_every_type_holding_a_secret_redacts_it() {
    use gcm_hyper::gcm_proto::oauth::{ServiceAccountKey, decode_token_response};
    use gcm_mock::{Engine, MOCK_SERVICE_ACCOUNT_JSON};

    let now = std::time::SystemTime::now();
    let mut shown = Vec::new();

    // A token response that is malformed (expires_in as a string) but holds a token.
    let body = r#"{"access_token":"ya29.leaked-token","expires_in":"3599","token_type":"Bearer"}"#;
    let error = decode_token_response(&http::Response::new(body), now).unwrap_err();
    shown.push(format!("{error:?} {error}"));

    // A builder with a proxy that wants credentials (in the header and in the URL).
    let authorization = http::HeaderValue::from_static("Basic c2VjcmV0LXByb3h5LXBhc3N3b3Jk");
    let proxy: http::Uri = "http://user:secret-proxy-password@127.0.0.1:3128".parse().unwrap();
    let builder = Client::builder(Gcm::new(SECRET).unwrap()).proxy_with_authorization(proxy, authorization);
    shown.push(format!("{builder:?}"));

    // The mock's engine, holding API keys and an access token it issued.
    let mut engine = Engine::new(Scenario::default(), vec![SECRET.to_owned()]);
    let key = ServiceAccountKey::from_json(MOCK_SERVICE_ACCOUNT_JSON).unwrap();
    let issued = engine.handle(&key.token_request(now).unwrap(), 1);
    let issued = String::from_utf8(issued.body().to_vec()).unwrap();
    assert!(issued.contains("ya29.mock."), "the engine issued a token: {issued}");
    shown.push(format!("{engine:?}"));

    // gcloud's user file: a client secret and a refresh token, as a KeyFile and as Credentials.
    let user = r#"{"client_id":"1.apps.googleusercontent.com","client_secret":"ya29.client-secret","refresh_token":"ya29.refresh","type":"authorized_user"}"#;
    shown.push(format!("{:?}", gcm_hyper::gcm_proto::oauth::KeyFile::from_json(user).unwrap()));
    let credentials = gcm_hyper::Credentials::from_json(user).unwrap();
    shown.push(format!("{credentials:?} {}", credentials.describe()));

    for text in &shown {
        assert!(!text.contains("ya29."), "an access token leaked into: {text}");
        assert!(!text.contains("c2VjcmV0"), "the proxy's authorization leaked into: {text}");
        assert!(!text.contains("secret-proxy-password"), "the proxy URL's password leaked into: {text}");
        assert!(!text.contains("very-secret"), "the API key leaked into: {text}");
    }
    assert!(shown[1].contains("127.0.0.1:3128"), "the proxy is still named: {}", shown[1]);
}
