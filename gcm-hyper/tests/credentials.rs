//! FCM v1 credentials end to end against gcm-mock: every credential source, discovery in
//! Google's order, and a token endpoint that hangs, fails or answers odd lifetimes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gcm_hyper::gcm_proto::oauth::{AuthError, ServiceAccountKey};
use gcm_hyper::gcm_proto::v1::{Fcm, Message, Multicast};
use gcm_hyper::{Credentials, Error, FcmClient};
use gcm_mock::{MockServer, Reply, Scenario, TokenReply};
use serde_json::json;

use common::tokio_clock;

fn fcm(server: &MockServer) -> Fcm {
    Fcm::new("mock-project").unwrap().with_base_url(&server.v1_base_url()).unwrap()
}

fn key(server: &MockServer) -> ServiceAccountKey {
    ServiceAccountKey::from_json(server.service_account_json().unwrap()).unwrap()
}

fn delivered(reply: &gcm_hyper::gcm_proto::v1::Reply) -> bool {
    matches!(reply.fate, gcm_hyper::gcm_proto::Fate::Delivered { .. })
}

/// A directory of its own under the system's temporary directory.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gcm-hyper-credentials-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn env_of(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    move |name| vars.get(name).cloned()
}

/// A loopback port nobody listens on.
async fn closed_port() -> u16 {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn a_key_file_as_text_as_a_path_and_from_the_environment() {
    let server = MockServer::start().await.unwrap();
    let json = server.service_account_json().unwrap().to_owned();
    let dir = temp_dir("key");
    let path = dir.join("sa.json");
    std::fs::write(&path, &json).unwrap();

    let from_text = FcmClient::from_service_account(&json).unwrap().base_url(&server.v1_base_url()).unwrap();
    let from_path = FcmClient::from_key_file(&path).unwrap().base_url(&server.v1_base_url()).unwrap();
    let env = env_of(&[("GOOGLE_APPLICATION_CREDENTIALS", path.display().to_string())]);
    let from_env = FcmClient::application_default_from(&env).await.unwrap().base_url(&server.v1_base_url()).unwrap();
    for client in [from_text, from_path, from_env] {
        assert_eq!(client.fcm().project_id(), "mock-project");
        assert!(delivered(&client.send(&Message::token("a")).await.unwrap()));
    }

    // A path where the JSON belongs, and a missing file: errors that say what is wrong.
    let error = FcmClient::from_service_account(&path.display().to_string()).unwrap_err();
    assert!(error.to_string().contains("looks like a file path"), "{error}");
    let error = FcmClient::from_key_file(dir.join("missing.json")).unwrap_err();
    assert!(error.to_string().contains("missing.json"), "{error}");
}

#[tokio::test]
async fn gclouds_user_file_exchanges_its_refresh_token() {
    let server = MockServer::start().await.unwrap();
    let file = json!({
        "type": "authorized_user",
        "client_id": "1.apps.googleusercontent.com",
        "client_secret": "mock-client-secret",
        "refresh_token": gcm_mock::MOCK_REFRESH_TOKEN,
        "quota_project_id": "mock-project",
        "token_uri": format!("{}/token", server.base_url()),
    });
    let credentials = Credentials::from_json(&file.to_string()).unwrap();
    let client = FcmClient::new(fcm(&server), credentials).unwrap();
    assert!(delivered(&client.send(&Message::token("a")).await.unwrap()));
    let asked = server.requests().into_iter().find(|r| r.path == "/token").unwrap();
    assert!(asked.body.contains("grant_type=refresh_token"), "{}", asked.body);
    assert!(!asked.body.contains("mock-refresh-token") && !asked.body.contains("mock-client-secret"), "{}", asked.body);
    // A refresh token the server does not know is refused, not retried.
    let wrong = file.to_string().replace(gcm_mock::MOCK_REFRESH_TOKEN, "1//revoked");
    let client = FcmClient::new(fcm(&server), Credentials::from_json(&wrong).unwrap()).unwrap();
    let error = client.send(&Message::token("a")).await.unwrap_err();
    assert!(error.is_authentication() && !error.may_have_reached_server(), "{error}");
}

#[tokio::test]
async fn the_metadata_server_gives_tokens_and_the_project() {
    let server = MockServer::start().await.unwrap();
    let credentials = Credentials::metadata_server_at(&server.base_url()).unwrap();
    assert!(credentials.describe().contains("metadata server"), "{}", credentials.describe());
    let client = FcmClient::new(fcm(&server), credentials).unwrap();
    assert!(delivered(&client.send(&Message::token("a")).await.unwrap()));
    assert_eq!(server.tokens_issued(), 1);
    let asked = server.requests().into_iter().find(|r| r.path.starts_with("/computeMetadata/")).unwrap();
    assert_eq!(asked.path, "/computeMetadata/v1/instance/service-accounts/default/token");
    assert_eq!(asked.status, 200);

    // A scenario makes the metadata server fail too: the error names it.
    let failing =
        MockServer::builder().scenario(Scenario::default().token_reply(TokenReply::status(503))).start().await.unwrap();
    let credentials = Credentials::metadata_server_at(&failing.base_url()).unwrap();
    let client = FcmClient::new(fcm(&failing), credentials).unwrap();
    let error = client.send(&Message::token("a")).await.unwrap_err();
    assert!(error.is_retryable() && !error.may_have_reached_server(), "{error:?}");
    assert!(error.to_string().contains("the metadata server"), "{error}");

    // Without `Metadata-Flavor: Google` the server refuses, as Google's does.
    let mut engine = gcm_mock::Engine::new(Scenario::default(), Vec::new());
    for path in
        ["/computeMetadata/v1/instance/service-accounts/default/token", "/computeMetadata/v1/project/project-id"]
    {
        let bare = http::Request::get(path).body(Vec::new()).unwrap();
        assert_eq!(engine.handle(&bare, 1).status(), 403, "{path}");
        let flavored = http::Request::get(path).header("metadata-flavor", "Google").body(Vec::new()).unwrap();
        assert_eq!(engine.handle(&flavored, 1).status(), 200, "{path}");
    }
}

#[tokio::test]
async fn discovery_follows_googles_order_and_lists_what_it_tried() {
    let server = MockServer::start().await.unwrap();
    let json = server.service_account_json().unwrap().to_owned();
    let home = temp_dir("home");
    let gcloud = home.join(".config").join("gcloud");
    std::fs::create_dir_all(&gcloud).unwrap();
    let explicit = home.join("explicit.json");
    std::fs::write(&explicit, json.replace("mock-project", "explicit-project")).unwrap();
    let well_known = gcloud.join("application_default_credentials.json");
    std::fs::write(&well_known, json.replace("mock-project", "well-known-project")).unwrap();
    let metadata = server.base_url();
    let home_text = home.display().to_string();

    // 1. The environment variable wins over everything.
    let env = env_of(&[
        ("GOOGLE_APPLICATION_CREDENTIALS", explicit.display().to_string()),
        ("HOME", home_text.clone()),
        ("GCE_METADATA_HOST", metadata.clone()),
    ]);
    assert_eq!(FcmClient::application_default_from(&env).await.unwrap().fcm().project_id(), "explicit-project");
    // 2. Then gcloud's well-known file.
    let env = env_of(&[("HOME", home_text.clone()), ("GCE_METADATA_HOST", metadata.clone())]);
    assert_eq!(FcmClient::application_default_from(&env).await.unwrap().fcm().project_id(), "well-known-project");
    // 3. Then the metadata server, whose project id it asks for.
    std::fs::remove_file(&well_known).unwrap();
    let client = FcmClient::application_default_from(&env).await.unwrap();
    assert_eq!(client.fcm().project_id(), "mock-project");
    let client = client.base_url(&server.v1_base_url()).unwrap();
    assert!(delivered(&client.send(&Message::token("a")).await.unwrap()));
    // 4. Nothing anywhere: the error lists what was tried.
    let nowhere = format!("127.0.0.1:{}", closed_port().await);
    let env = env_of(&[("HOME", home_text), ("GCE_METADATA_HOST", nowhere.clone())]);
    let error = FcmClient::application_default_from(&env).await.unwrap_err().to_string();
    assert!(error.contains("GOOGLE_APPLICATION_CREDENTIALS is not set"), "{error}");
    assert!(error.contains("application_default_credentials.json (no such file)"), "{error}");
    assert!(error.contains(&format!("the metadata server at {nowhere}")), "{error}");
    // A variable that names a missing file is an error, not a reason to look elsewhere.
    let env = env_of(&[("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/sa.json".into())]);
    let error = FcmClient::application_default_from(&env).await.unwrap_err().to_string();
    assert!(error.contains("/nonexistent/sa.json"), "{error}");
}

#[tokio::test]
async fn a_hanging_token_endpoint_fails_every_waiting_send_at_once() {
    // The first token is issued; then every send is refused (401) and the token endpoint hangs.
    let mut scenario =
        Scenario::default().token_reply(TokenReply::default()).token_reply(TokenReply::hang().repeat(100));
    for _ in 0..10 {
        scenario = scenario.reply(Reply::status(401));
    }
    let server = MockServer::builder().scenario(scenario).start().await.unwrap();
    let client =
        FcmClient::builder(fcm(&server), key(&server)).request_timeout(Duration::from_secs(1)).build().unwrap();
    let multicast = Multicast::new((0..10).map(|i| format!("t{i}")));

    let token_requests = || server.requests().iter().filter(|r| r.path == "/token").count();
    let stopped = client.send_multicast(&multicast).await.unwrap_err();
    // 10 messages wait for one refresh, not ten (each would ask the endpoint again).
    assert_eq!(token_requests(), 2, "one good, one hung");
    // Truthful: nothing was sent with a token, the error names the source and the endpoint.
    let error = stopped.error();
    assert!(!error.may_have_reached_server(), "{error:?}");
    assert!(error.is_retryable());
    let text = error.to_string();
    assert!(text.contains("service account") && text.contains(&format!("{}/token", server.base_url())), "{text}");
    assert_eq!(stopped.report().outcome.to_retry().count(), 10);
    assert!(!format!("{stopped:?} {stopped}").contains("ya29."), "no token in the error");
    // A single send in the same state: the remembered failure, without asking again, and
    // truthful.
    let error = client.send(&Message::token("x")).await.unwrap_err();
    assert_eq!(token_requests(), 2, "the failure is remembered while the refresh backs off");
    assert!(matches!(error, Error::Credentials { .. }) && !error.may_have_reached_server(), "{error:?}");
}

#[tokio::test]
async fn a_failing_token_endpoint_is_asked_once_per_backoff_window_not_once_per_message() {
    let mut scenario =
        Scenario::default().token_reply(TokenReply::default()).token_reply(TokenReply::status(500).repeat(10_000));
    for _ in 0..1000 {
        scenario = scenario.reply(Reply::status(401));
    }
    let server = MockServer::builder().scenario(scenario).start().await.unwrap();
    let client = FcmClient::new(fcm(&server), key(&server)).unwrap();
    let multicast = Multicast::new((0..1000).map(|i| format!("t{i:04}")));

    let started = Instant::now();
    let stopped = client.send_multicast(&multicast).await.unwrap_err();
    let seconds = started.elapsed().as_secs();
    let token_requests = server.requests().iter().filter(|r| r.path == "/token").count();
    // One good request, then at most one per backoff window (1 s, 2 s, 4 s…) of the fan-out.
    let bound = 2 + usize::try_from(seconds).unwrap();
    assert!(token_requests <= bound, "{token_requests} token requests in {seconds} s (bound {bound})");
    assert!(matches!(stopped.error().auth_error(), Some(AuthError::TokenRefused { status: 500, .. })));
    assert_eq!(stopped.report().outcome.to_retry().count(), 1000, "every message pending, none lost");
}

#[tokio::test]
async fn odd_lifetimes_behave_as_documented() {
    // 60 s: one token serves a burst (the margin shrinks to 30 s), not one per message.
    let server = MockServer::builder().token_lifetime(Duration::from_secs(60)).start().await.unwrap();
    let client = FcmClient::new(fcm(&server), key(&server)).unwrap();
    let report = client.send_multicast(&Multicast::new((0..50).map(|i| format!("t{i}")))).await.unwrap();
    assert_eq!(report.outcome.success().count(), 50);
    assert_eq!(server.tokens_issued(), 1);

    // A huge expires_in is taken as a day; it works and is not "expired now".
    let huge = Scenario::default().token_reply(TokenReply::expires_in(json!(u64::MAX)));
    let server = MockServer::builder().scenario(huge).start().await.unwrap();
    let client = FcmClient::new(fcm(&server), key(&server)).unwrap();
    for token in ["a", "b", "c"] {
        assert!(delivered(&client.send(&Message::token(token)).await.unwrap()));
    }
    assert_eq!(server.tokens_issued(), 1);

    // 0 and malformed values: no token, every message pending, no secret in the error.
    for odd in [json!(0), json!(-1), json!(1.5), json!("3600")] {
        let server = MockServer::builder()
            .scenario(Scenario::default().token_reply(TokenReply::expires_in(odd.clone())))
            .start()
            .await
            .unwrap();
        let client = FcmClient::new(fcm(&server), key(&server)).unwrap();
        let stopped = client.send_multicast(&Multicast::new(["a", "b"])).await.unwrap_err();
        assert!(
            matches!(stopped.error().auth_error(), Some(AuthError::MalformedTokenResponse { .. })),
            "{odd}: {stopped}"
        );
        assert_eq!(stopped.report().outcome.to_retry().count(), 2, "{odd}");
        assert!(!format!("{stopped:?} {stopped}").contains("ya29."), "{odd}");
        assert!(server.inbox().is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn a_day_of_sends_with_one_hour_tokens_asks_for_24_tokens() {
    let server =
        MockServer::builder().token_lifetime(Duration::from_secs(3600)).clock(tokio_clock()).start().await.unwrap();
    let client = FcmClient::builder(fcm(&server), key(&server)).clock(tokio_clock()).build().unwrap();
    // A send every 10 minutes for 24 hours. Each token is replaced at the first send past
    // its refresh time (300 s before expiry): every hour here.
    for _ in 0..(24 * 6) {
        assert!(delivered(&client.send(&Message::token("a")).await.unwrap()));
        tokio::time::advance(Duration::from_secs(600)).await;
    }
    assert_eq!(server.tokens_issued(), 24);
    assert!(server.requests().iter().all(|r| r.status != 401), "no send with an expired token");
}

#[tokio::test]
async fn your_own_token_source() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use gcm_hyper::gcm_proto::oauth::{AccessToken, decode_token_response};
    use gcm_hyper::{BoxFuture, TokenSource};
    use http_body_util::BodyExt;

    /// Fetches from the metadata route with a client of its own, as gcp_auth would.
    struct Own {
        url: String,
        calls: Arc<AtomicUsize>,
    }
    impl TokenSource for Own {
        fn describe(&self) -> String {
            "my own source".into()
        }
        fn fetch(&self) -> BoxFuture<'_, Result<AccessToken, Error>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async {
                let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<http_body_util::Empty<bytes::Bytes>>();
                let request = http::Request::get(self.url.as_str())
                    .header("metadata-flavor", "Google")
                    .body(Default::default())
                    .unwrap();
                let response = http.request(request).await.map_err(|e| Error::Config(e.to_string()))?;
                let (parts, body) = response.into_parts();
                let body = body.collect().await.map_err(|e| Error::Config(e.to_string()))?.to_bytes();
                decode_token_response(&http::Response::from_parts(parts, body), std::time::SystemTime::now())
                    .map_err(Error::Auth)
            })
        }
    }
    let server = MockServer::start().await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let url = format!("{}/computeMetadata/v1/instance/service-accounts/default/token", server.base_url());
    let client = FcmClient::new(fcm(&server), Credentials::custom(Own { url, calls: Arc::clone(&calls) })).unwrap();
    let report = client.send_multicast(&Multicast::new(["a", "b", "c"])).await.unwrap();
    assert_eq!(report.outcome.success().count(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the client caches what the source gives");
    assert!(format!("{client:?}").contains("my own source"));
}

#[tokio::test(flavor = "current_thread")]
async fn what_needs_a_human_is_a_warning_and_a_finished_send_is_info_with_its_counts() {
    let (captured, _guard) = common::capture(tracing::Level::INFO);
    let server = MockServer::start().await.unwrap();
    let client = FcmClient::new(fcm(&server), key(&server)).unwrap();
    client.send_multicast(&Multicast::new(["a", "b"])).await.unwrap();

    // A key the mock refuses, and a retry loop that gives up with a message pending.
    let mut file: serde_json::Value = serde_json::from_str(server.service_account_json().unwrap()).unwrap();
    file["client_email"] = "stranger@example.com".into();
    let refused = FcmClient::new(fcm(&server), ServiceAccountKey::from_json(&file.to_string()).unwrap()).unwrap();
    refused.send_multicast(&Multicast::new(["a"])).await.unwrap_err();
    let busy = MockServer::builder()
        .scenario(Scenario::default().reply(Reply::status(503).retry_after("4000")))
        .start()
        .await
        .unwrap();
    let client = FcmClient::new(fcm(&busy), key(&busy)).unwrap();
    gcm_hyper::RetryLoop::new().run_multicast(&client, &Multicast::new(["a"])).await.unwrap();

    let logs = captured.text();
    let line = |needle: &str| {
        logs.lines().find(|line| line.contains(needle)).unwrap_or_else(|| panic!("no {needle:?} in {logs}"))
    };
    let done = line("fcm multicast done");
    assert!(done.contains("INFO") && done.contains("success=2") && done.contains("tokens=2"), "{done}");
    assert!(line("fcm credentials refused").contains("WARN"));
    assert!(line("stranger@example.com").contains("WARN"), "the warning names the credentials");
    assert!(line("retry loop gave up").contains("WARN"));
    assert!(!logs.contains("DEBUG"), "nothing below the level asked for");
}

#[tokio::test(flavor = "current_thread")]
async fn a_per_message_event_names_the_message_index() {
    let (captured, _guard) = common::capture(tracing::Level::DEBUG);
    let scenario = Scenario::default().token("bad", gcm_mock::TokenRule::new(gcm_mock::Behaviour::Invalid));
    let server = MockServer::builder().scenario(scenario).start().await.unwrap();
    let client = FcmClient::new(fcm(&server), key(&server)).unwrap();
    client.send_multicast(&Multicast::new(["ok", "bad", "ok-too"])).await.unwrap();
    let logs = captured.text();
    let reply = logs.lines().find(|line| line.contains("fcm error reply")).unwrap_or_else(|| panic!("{logs}"));
    assert!(reply.contains("index=1"), "{reply}");
}
