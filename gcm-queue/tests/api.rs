//! The HTTP API (`gcm-worker serve`) and the command line, on a SQLite queue and gcm-mock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use gcm_queue::http::{Api, ApiKeys, Limits, TokenLimits, serve};
use gcm_queue::{Metrics, Processor, Queue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A key of each scope, as `gcm-worker serve` reads them.
const SEND: &str = "sender-secret-0123456789abcdef0123";
const READ: &str = "reader-secret-0123456789abcdef0123";
const METRICS: &str = "metrics-secret-0123456789abcdef012";

fn keys() -> ApiKeys {
    ApiKeys::parse(&format!("app:send,read:{SEND}\nreporting:read:{READ}\nprometheus:metrics:{METRICS}")).unwrap()
}

/// One HTTP/1.1 exchange over a fresh connection, with `headers` (each `name: value`)
/// besides `host: localhost` unless one is given: the status and the body.
async fn call(addr: std::net::SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
    let (status, _, body) = call_with_head(addr, method, path, headers, body).await;
    (status, body)
}

/// [`call`], with the response's head too.
async fn call_with_head(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|header| header.to_ascii_lowercase().starts_with("host:")) {
        head.push_str("host: localhost\r\n");
    }
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    let request = format!("{head}content-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// A JSON exchange with the key `key`.
async fn exchange(addr: std::net::SocketAddr, method: &str, path: &str, key: &str, body: &str) -> (u16, String) {
    let authorization = format!("authorization: Bearer {key}");
    call(addr, method, path, &[&authorization, "content-type: application/json"], body).await
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

async fn sqlite_queue(dir: &tempfile::TempDir) -> Arc<Queue> {
    Arc::new(Queue::connect(&format!("sqlite:{}", dir.path().join("q.db").display())).await.unwrap())
}

async fn start(api: Api) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, api, std::future::pending()));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_over_http_then_read_the_status_the_results_and_the_counters() {
    let server = mock(faulty_scenario(100, 3)).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(&dir).await;
    let metrics = Arc::new(Metrics::default());
    let addr = start(Api::new(Some(queue.clone()), metrics.clone()).keys(keys())).await;

    let tokens: Vec<String> = (0..100).map(token).collect();
    let body =
        serde_json::json!({ "message": { "data": { "kind": "sync" } }, "tokens": tokens, "correlation_id": "web-1" });
    let (status, answer) = exchange(addr, "POST", "/jobs", SEND, &body.to_string()).await;
    assert_eq!(status, 202, "{answer}");
    let job_id = json(&answer)["job_ids"][0].as_str().unwrap().to_owned();
    let (status, answer) = exchange(addr, "GET", &format!("/jobs/{job_id}"), READ, "").await;
    let summary = json(&answer);
    assert_eq!(
        (status, summary["status"].as_str(), summary["pending"].as_u64()),
        (200, Some("queued"), Some(100)),
        "{answer}"
    );

    let (status, text) = exchange(addr, "GET", "/metrics", METRICS, "").await;
    assert_eq!(status, 200);
    let lines = [
        "gcm_queue_jobs{state=\"pending\"} 1",
        "gcm_queue_pending_recipients 100",
        "gcm_queue_webhook_deliveries{state=\"pending\"} 0",
        "gcm_queue_webhook_deliveries{state=\"dead\"} 0",
        "gcm_queue_gauges_read_failed 0",
    ];
    for line in lines {
        assert!(text.contains(line), "{line} in {text}");
    }

    let processor = Processor::new(senders(&server), queue.clone(), queue.clone());
    let worker_metrics = processor.metrics().clone();
    drain(queue.clone(), processor, std::slice::from_ref(&job_id), Duration::from_secs(60)).await;
    let text = worker_metrics.encode();
    assert!(text.contains("# TYPE gcm_queue_send_seconds histogram"), "{text}");
    assert!(!text.contains("gcm_queue_send_seconds_count 0"), "{text}");

    let (_, answer) = exchange(addr, "GET", &format!("/jobs/{job_id}"), READ, "").await;
    let summary = json(&answer);
    assert_eq!(summary["status"], "done", "{answer}");
    let not_registered = (0..100).filter(|&i| is_not_registered(i)).count();
    assert_eq!(summary["not_registered"], not_registered, "{answer}");
    assert_eq!(summary["delivered"], 100 - not_registered, "{answer}");
    assert_eq!((summary["recipients"].as_u64(), summary["correlation_id"].as_str()), (Some(100), Some("web-1")));

    let (status, answer) = exchange(addr, "GET", "/results?since=0&limit=60", READ, "").await;
    assert_eq!(status, 200);
    let page = json(&answer);
    assert_eq!(page["records"].as_array().unwrap().len(), 60);
    assert_eq!(page["records"][0]["correlation_id"], "web-1");
    let next = page["next"].as_u64().unwrap();
    let (_, answer) = exchange(addr, "GET", &format!("/results?since={next}&limit=1000"), READ, "").await;
    assert_eq!(json(&answer)["records"].as_array().unwrap().len(), 40, "the second page has the rest");

    // Attempts are counted one way: records from 1 to the summary's `attempts`.
    let (_, answer) = exchange(addr, "GET", "/results?limit=1000", READ, "").await;
    let attempts: Vec<u64> =
        json(&answer)["records"].as_array().unwrap().iter().map(|r| r["attempt"].as_u64().unwrap()).collect();
    assert_eq!(attempts.iter().min(), Some(&1));
    assert_eq!(attempts.iter().max(), summary["attempts"].as_u64().as_ref(), "{attempts:?} {summary}");

    let (status, text) = exchange(addr, "GET", "/metrics", METRICS, "").await;
    assert_eq!(status, 200);
    for line in ["gcm_queue_enqueued_jobs_total 1", "gcm_queue_pending_recipients 0", "gcm_queue_jobs{state=\"done\"}"]
    {
        assert!(text.contains(line), "{line} in {text}");
    }
    server.shutdown().await;
}

/// Item 1 of the issue: no key, a wrong key, a key without the scope, a form post from a
/// browser, a rebound DNS name: all refused, on every route but `/healthz`.
#[tokio::test]
async fn every_route_but_healthz_needs_a_key_of_its_scope_and_a_known_host() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(Api::new(Some(sqlite_queue(&dir).await), Arc::new(Metrics::default())).keys(keys())).await;
    let body = r#"{"tokens": ["a"]}"#;
    let routes = [
        ("POST", "/jobs"),
        ("GET", "/jobs/01J0000000000000000000000"),
        ("GET", "/results"),
        ("GET", "/metrics"),
        ("GET", "/readyz"),
        ("GET", "/openapi.json"),
        ("GET", "/nowhere"),
        ("DELETE", "/jobs"),
        ("GET", "/campaigns"),
        ("DELETE", "/campaigns/c-1"),
        ("POST", "/campaigns/c-1/requeue"),
    ];
    for (method, path) in routes {
        let (status, answer) = call(addr, method, path, &["content-type: application/json"], body).await;
        assert_eq!(status, 401, "{method} {path} without a key: {answer}");
        let (status, _) = exchange(addr, method, path, "wrong-secret-0123456789abcdef0123456", body).await;
        assert_eq!(status, 401, "{method} {path} with a wrong key");
        let (status, _) = call(addr, method, path, &[&format!("authorization: {SEND}")], body).await;
        assert_eq!(status, 401, "{method} {path} without `Bearer`");
    }
    assert_eq!(call(addr, "GET", "/healthz", &[], "").await, (200, "ok\n".to_owned()));
    assert_eq!(exchange(addr, "POST", "/jobs", READ, body).await.0, 403, "a read key does not send");
    assert_eq!(exchange(addr, "POST", "/campaigns/c-1/requeue", READ, "").await.0, 403, "nor re-queue");
    assert_eq!(exchange(addr, "GET", "/results", METRICS, "").await.0, 403, "a metrics key reads no tokens");
    assert_eq!(exchange(addr, "GET", "/metrics", SEND, "").await.0, 403);
    assert_eq!(exchange(addr, "POST", "/jobs", SEND, body).await.0, 202);
    let text_plain = [format!("authorization: Bearer {SEND}"), "content-type: text/plain".to_owned()];
    let (status, answer) = call(addr, "POST", "/jobs", &text_plain.each_ref().map(String::as_str), body).await;
    assert_eq!(status, 415, "a browser's simple POST: {answer}");
    let rebound = [
        format!("authorization: Bearer {SEND}"),
        "content-type: application/json".to_owned(),
        "host: evil.example:8080".to_owned(),
    ];
    let (status, answer) = call(addr, "POST", "/jobs", &rebound.each_ref().map(String::as_str), body).await;
    assert_eq!(status, 421, "a foreign Host: {answer}");
    assert_eq!(call(addr, "GET", "/healthz", &["host: evil.example"], "").await.0, 200, "the health check is open");

    // `--public-metrics`: /metrics without a key, nothing else.
    let mut api = Api::new(Some(sqlite_queue(&dir).await), Arc::new(Metrics::default())).keys(keys());
    api.public_metrics = true;
    let addr = start(api).await;
    assert_eq!(call(addr, "GET", "/metrics", &[], "").await.0, 200);
    assert_eq!(call(addr, "GET", "/results", &[], "").await.0, 401);
}

/// Items 3 and 4: token lists bounded and cut into jobs, each token checked; unknown fields
/// of a message kept and sent (the server names them), never dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_bounded_checked_and_cut_into_jobs_and_unknown_fields_reach_the_server() {
    let server = mock(gcm_mock::Scenario::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(&dir).await;
    let limits =
        Limits { tokens: TokenLimits { per_request: 10_000, per_job: 1000 }, max_body: 1 << 20, ..Limits::default() };
    let addr = start(Api::new(Some(queue.clone()), Arc::new(Metrics::default())).keys(keys()).limits(limits)).await;

    let empty = format!(r#"{{"tokens": [{}""]}}"#, "\"\",".repeat(400_000));
    let (status, answer) = exchange(addr, "POST", "/jobs", SEND, &empty).await;
    assert_eq!(status, 413, "a body over the limit: {answer}");
    let too_many: Vec<String> = (0..10_001).map(|i| format!("t{i}")).collect();
    let (status, answer) =
        exchange(addr, "POST", "/jobs", SEND, &serde_json::json!({"tokens": too_many}).to_string()).await;
    assert_eq!((status, json(&answer)["path"].as_str()), (400, Some("$.tokens")), "{answer}");
    for (tokens, path) in [
        (r#"["a", ""]"#, "$.tokens[1]"),
        (r#"["  "]"#, "$.tokens[0]"),
        (r#"["a\u0000"]"#, "$.tokens[0]"),
        (r#"["a\r\nb"]"#, "$.tokens[0]"),
    ] {
        let (status, answer) = exchange(addr, "POST", "/jobs", SEND, &format!(r#"{{"tokens": {tokens}}}"#)).await;
        assert_eq!((status, json(&answer)["path"].as_str()), (400, Some(path)), "{tokens}: {answer}");
    }
    let (status, answer) =
        exchange(addr, "POST", "/jobs", SEND, r#"{"tokens": ["a"], "message": {"android": {"ttl": []}}}"#).await;
    assert_eq!((status, json(&answer)["path"].as_str()), (400, Some("$.message.android.ttl")), "{answer}");

    let tokens: Vec<String> = (0..10_000).map(token).collect();
    let (status, answer) =
        exchange(addr, "POST", "/jobs", SEND, &serde_json::json!({"tokens": tokens}).to_string()).await;
    assert_eq!(status, 202, "{answer}");
    let answer = json(&answer);
    let jobs: Vec<String> =
        answer["job_ids"].as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_owned()).collect();
    assert_eq!((jobs.len(), answer["recipients"].as_u64()), (10, Some(10_000)), "one job per 1000 tokens");
    let campaign = answer["campaign_id"].as_str().unwrap().to_owned();

    let typo = r#"{"tokens": ["typo-token"], "message": {"dta": {"k": "v"}, "notification": {"titel": "x"}}}"#;
    let (status, answer) = exchange(addr, "POST", "/jobs", SEND, typo).await;
    assert_eq!(status, 202, "{answer}");
    let typo_job = json(&answer)["job_ids"][0].as_str().unwrap().to_owned();

    let processor = Processor::new(senders(&server), queue.clone(), queue.clone());
    let all: Vec<String> = jobs.iter().cloned().chain([typo_job.clone()]).collect();
    drain(queue.clone(), processor, &all, Duration::from_secs(120)).await;
    let (_, page) = exchange(addr, "GET", &format!("/results?job={typo_job}"), READ, "").await;
    let record = &json(&page)["records"][0];
    assert_eq!(
        (record["fate"].as_str(), record["code"].as_str()),
        (Some("failed"), Some("INVALID_ARGUMENT")),
        "{page}"
    );
    assert!(record["detail"].as_str().unwrap().contains("dta"), "the server named the typo: {page}");
    let (_, page) = exchange(addr, "GET", &format!("/results?campaign={campaign}&limit=10000"), READ, "").await;
    assert_eq!(json(&page)["records"].as_array().unwrap().len(), 10_000, "the campaign's records");
    server.shutdown().await;
}

/// A POST repeated with its `Idempotency-Key` answers as the first did and enqueues nothing
/// new; the same key with another body is refused; another caller's key is its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_post_with_an_idempotency_key_answers_as_the_first_and_sends_once() {
    let server = mock(gcm_mock::Scenario::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(&dir).await;
    let keys = ApiKeys::parse(&format!("app:send,read:{SEND}\nother:send:{READ}")).unwrap();
    let limits = Limits { tokens: TokenLimits { per_request: 100, per_job: 2 }, ..Limits::default() };
    let addr = start(Api::new(Some(queue.clone()), Arc::new(Metrics::default())).keys(keys).limits(limits)).await;
    let post = |key: &'static str, idempotency: &'static str, body: String| async move {
        let headers = [
            format!("authorization: Bearer {key}"),
            "content-type: application/json".to_owned(),
            format!("idempotency-key: {idempotency}"),
        ];
        call_with_head(addr, "POST", "/jobs", &headers.each_ref().map(String::as_str), &body).await
    };
    let body = serde_json::json!({"tokens": ["i-1", "i-2", "i-3"]}).to_string();
    let (status, head, first) = post(SEND, "order-42", body.clone()).await;
    assert_eq!(status, 202, "{first}");
    assert!(!head.contains("idempotent-replayed"), "{head}");
    let (status, head, again) = post(SEND, "order-42", body.clone()).await;
    assert_eq!((status, json(&again)), (202, json(&first)), "the first answer");
    assert!(head.contains("idempotent-replayed: true"), "{head}");
    let (status, _, refused) = post(SEND, "order-42", serde_json::json!({"tokens": ["x"]}).to_string()).await;
    assert_eq!(status, 422, "the same key with another body: {refused}");
    let (status, _, theirs) = post(READ, "order-42", serde_json::json!({"tokens": ["o-1"]}).to_string()).await;
    assert_eq!(status, 202, "another caller's key: {theirs}");
    let (status, _, bad) = post(SEND, "with space", body.clone()).await;
    assert_eq!(status, 400, "{bad}");

    let jobs: Vec<String> = [&first, &theirs]
        .iter()
        .flat_map(|answer| json(answer)["job_ids"].as_array().unwrap().clone())
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(jobs.len(), 3, "two jobs of two tokens at most, and the other caller's");
    let processor = Processor::new(senders(&server), queue.clone(), queue.clone());
    drain(queue.clone(), processor, &jobs, Duration::from_secs(60)).await;
    let sent = deliveries(&server);
    assert_eq!(sent.values().copied().collect::<Vec<_>>(), [1, 1, 1, 1], "each token once: {sent:?}");
    server.shutdown().await;
}

/// Item 5: unknown jobs are 404, a job being sent says so, queries are parsed as queries.
#[tokio::test]
async fn the_api_answers_truthfully() {
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(&dir).await;
    let addr = start(Api::new(Some(queue.clone()), Arc::new(Metrics::default())).keys(keys())).await;
    for path in ["/jobs/01J0000000000000000000000", "/jobs/..%2F..%2Fetc%2Fpasswd", "/jobs/../../etc/passwd"] {
        let (status, answer) = exchange(addr, "GET", path, READ, "").await;
        assert_eq!(status, 404, "{path}: {answer}");
    }
    let job = gcm_queue::Job::v1_multicast(gcm_queue::gcm_hyper::v1::Multicast::new(["a", "b"]));
    queue.enqueue(&job).await.unwrap();
    let state = |answer: &str| json(answer)["status"].as_str().unwrap().to_owned();
    assert_eq!(state(&exchange(addr, "GET", &format!("/jobs/{}", job.id), READ, "").await.1), "queued");
    // A worker's live claim on the attempt: the job is being sent, both tokens pending.
    gcm_queue::ResultStore::claim(queue.as_ref(), &job.id, 0, "worker-1", Duration::from_secs(60)).await.unwrap();
    let (_, answer) = exchange(addr, "GET", &format!("/jobs/{}", job.id), READ, "").await;
    assert_eq!((state(&answer), json(&answer)["pending"].as_u64()), ("sending".to_owned(), Some(2)), "{answer}");

    let (status, answer) = exchange(addr, "DELETE", &format!("/jobs/{}", job.id), SEND, "").await;
    assert_eq!(
        (status, json(&answer)["status"].as_str()),
        (200, Some("sending")),
        "the attempt being sent finishes: {answer}"
    );

    // Cancelled while queued: recorded at once on SQL, and never sent.
    let queued = gcm_queue::Job::v1_multicast(gcm_queue::gcm_hyper::v1::Multicast::new(["q1", "q2"]));
    queue.enqueue(&queued).await.unwrap();
    assert_eq!(
        exchange(addr, "DELETE", &format!("/jobs/{}", queued.id), READ, "").await.0,
        403,
        "cancelling takes `send`"
    );
    let (status, answer) = exchange(addr, "DELETE", &format!("/jobs/{}", queued.id), SEND, "").await;
    let summary = json(&answer);
    assert_eq!(
        (status, summary["status"].as_str(), summary["cancelled"].as_u64(), summary["pending"].as_u64()),
        (200, Some("cancelled"), Some(2), Some(0)),
        "{answer}"
    );
    let (_, page) = exchange(addr, "GET", &format!("/results?job={}", queued.id), READ, "").await;
    let fates: Vec<_> =
        json(&page)["records"].as_array().unwrap().iter().map(|r| r["fate"].as_str().unwrap().to_owned()).collect();
    assert_eq!(fates, ["cancelled", "cancelled"], "{page}");
    assert_eq!(exchange(addr, "DELETE", "/jobs/01J0000000000000000000000", SEND, "").await.0, 404);

    // A finished job has nothing to cancel.
    let done = gcm_queue::Job::v1_multicast(gcm_queue::gcm_hyper::v1::Multicast::new(["d"]));
    queue.enqueue(&done).await.unwrap();
    let delivered = gcm_queue::Record {
        job_id: done.id.clone(),
        attempt: 0,
        recipient: "d".into(),
        correlation_id: None,
        campaign_id: None,
        project: None,
        fate: gcm_queue::Final::Delivered { message_id: "m".into(), canonical: None },
    };
    let settlement = gcm_queue::Settlement {
        job_id: done.id.clone(),
        attempt: 0,
        records: vec![delivered],
        retry: None,
        audience: None,
        webhook: None,
    };
    gcm_queue::ResultStore::settle(queue.as_ref(), &settlement).await.unwrap();
    assert_eq!(exchange(addr, "DELETE", &format!("/jobs/{}", done.id), SEND, "").await.0, 409);

    let later = gcm_queue::Job::v1_multicast(gcm_queue::gcm_hyper::v1::Multicast::new(["c"]));
    queue.enqueue_at(&later, Some(u64::MAX / 2)).await.unwrap();
    assert_eq!(state(&exchange(addr, "GET", &format!("/jobs/{}", later.id), READ, "").await.1), "scheduled");

    for (query, expected) in [
        ("since=%31", 200),
        ("%73ince=5", 200),
        ("since=1&since=2", 400),
        ("since=x", 400),
        ("limit=0", 400),
        ("limit=10001", 400),
        ("colour=red", 400),
        ("job=a&campaign=b&correlation_id=c", 200),
    ] {
        let (status, answer) = exchange(addr, "GET", &format!("/results?{query}"), READ, "").await;
        assert_eq!(status, expected, "{query}: {answer}");
    }
}

/// `serve` starts with keys, or without on loopback only; `/openapi.json` lists every route.
#[tokio::test]
async fn serve_refuses_to_start_open_on_a_network_and_describes_its_api() {
    let bin = env!("CARGO_BIN_EXE_gcm-worker");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("q.db").display());
    for (args, expected) in [
        (vec!["serve", "--queue", &url], "no API keys"),
        (vec!["serve", "--queue", &url, "--no-auth", "--listen", "0.0.0.0:0"], "only a loopback address"),
        (
            vec!["serve", "--queue", &url, "--no-auth", "--max-body-bytes", "2048", "--body-memory-bytes", "1024"],
            "--body-memory-bytes",
        ),
        (vec!["run", "--queue", &url, "--api-key", "k", "--metrics", "127.0.0.1:0"], "no API keys"),
    ] {
        let output = tokio::process::Command::new(bin).args(&args).env_remove("GCM_API_KEYS").output().await.unwrap();
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && error.contains(expected), "{args:?}: {error}");
    }
    let document = serde_json::to_value(gcm_queue::http::openapi_document()).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"), "{document}");
    let paths: Vec<&str> = document["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let expected = [
        "/audiences/{name}",
        "/audiences/{name}/changes",
        "/audiences/{name}/tokens",
        "/campaigns",
        "/campaigns/{id}",
        "/campaigns/{id}/requeue",
        "/healthz",
        "/jobs",
        "/jobs/{id}",
        "/metrics",
        "/openapi.json",
        "/readyz",
        "/results",
        "/webhooks",
        "/webhooks/replay",
    ];
    assert_eq!(paths, expected);
    let methods: Vec<&str> = document["paths"]["/jobs/{id}"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(methods, ["delete", "get"]);
    // The request body's hand-written schemas are in, and every reference resolves.
    let text = document.to_string();
    for name in ["EnqueueRequest", "V1Message", "LegacyMessage", "LegacyOptions", "Tokens", "Summary", "ResultsPage"] {
        assert!(document["components"]["schemas"][name].is_object(), "{name}");
    }
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(document["components"]["schemas"][name].is_object(), "a reference to {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_enqueues_from_stdin_runs_and_reads_the_results() {
    let server = mock(faulty_scenario(50, 5)).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("q.db").display());
    let message = dir.path().join("message.json");
    std::fs::write(&message, r#"{"data": {"kind": "sync"}}"#).unwrap();
    let credentials = dir.path().join("sa.json");
    std::fs::write(&credentials, server.service_account_json().unwrap()).unwrap();
    let bin = env!("CARGO_BIN_EXE_gcm-worker");

    let mut enqueue = tokio::process::Command::new(bin)
        .args(["enqueue", "--queue", &url, "--tokens-per-job", "20", "--correlation-id", "web-7", "--message"])
        .arg(&message)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tokens: String = (0..50).map(|i| token(i) + "\n").collect();
    enqueue.stdin.take().unwrap().write_all(tokens.as_bytes()).await.unwrap();
    let output = enqueue.wait_with_output().await.unwrap();
    assert!(output.status.success());
    let jobs: Vec<String> = String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(jobs.len(), 3, "50 tokens in jobs of 20");

    let logs = dir.path().join("worker.log");
    let mut worker = tokio::process::Command::new(bin)
        .args([
            "--log-format",
            "json",
            "run",
            "--queue",
            &url,
            "--v1-endpoint",
            &server.v1_base_url(),
            "--backoff-ms",
            "100",
            "--credentials",
        ])
        .arg(&credentials)
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&logs).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let queue = Queue::connect(&url).await.unwrap();
    wait_done(&queue, &jobs, Duration::from_secs(60)).await;
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
    // Every line of a job names it, its campaign and its correlation id.
    let logs = std::fs::read_to_string(&logs).unwrap();
    let settled: Vec<serde_json::Value> =
        logs.lines().map(json).filter(|line| line["fields"]["message"] == "attempt settled").collect();
    assert!(settled.len() >= 3, "one line per attempt: {logs}");
    for line in &settled {
        let span = &line["span"];
        assert_eq!((span["name"].as_str(), span["correlation"].as_str()), (Some("job"), Some("web-7")), "{line}");
        assert!(jobs.contains(&span["id"].as_str().unwrap().to_owned()) && span["campaign"].is_string(), "{line}");
    }

    let summary =
        tokio::process::Command::new(bin).args(["results", "--queue", &url, "--job", &jobs[0]]).output().await.unwrap();
    assert_eq!(json(std::str::from_utf8(&summary.stdout).unwrap())["status"], "done");
    let results =
        tokio::process::Command::new(bin).args(["results", "--queue", &url, "--since", "0"]).output().await.unwrap();
    let lines: Vec<serde_json::Value> = std::str::from_utf8(&results.stdout).unwrap().lines().map(json).collect();
    assert_eq!(lines.len(), 50, "one final fate per token");
    assert!(lines.windows(2).all(|pair| pair[0]["cursor"].as_u64() < pair[1]["cursor"].as_u64()));

    let refused = tokio::process::Command::new(bin).args(["run", "--queue", &url]).output().await.unwrap();
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("no credentials"), "{error}");
    server.shutdown().await;
}

/// Every flag from a TOML file (top-level keys for every command, a table per command) and
/// from `GCM_*` variables: the command line wins over the environment, which wins over the
/// file; unknown settings and invalid values are refused with a message.
#[tokio::test]
async fn settings_come_from_the_command_line_the_environment_and_a_file_in_that_order() {
    let bin = env!("CARGO_BIN_EXE_gcm-worker");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("q.db").display());
    let config = dir.path().join("gcm-worker.toml");
    // A global flag, another command's flag, and a boolean: all taken.
    let file = format!(
        "log-format = \"json\"\nqueue = {url:?}\nlisten = \"127.0.0.1:1\"\n[enqueue]\ntokens-per-job = 2\nlegacy = true\n"
    );
    std::fs::write(&config, file).unwrap();
    let enqueue = |args: Vec<&'static str>, env: Option<&'static str>| {
        let mut command = tokio::process::Command::new(bin);
        command
            .arg("--config")
            .arg(&config)
            .arg("enqueue")
            .args(args)
            .env_remove("GCM_TOKENS_PER_JOB")
            .env_remove("GCM_QUEUE_URL");
        if let Some(value) = env {
            command.env("GCM_TOKENS_PER_JOB", value);
        }
        command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        async move {
            let mut child = command.spawn().unwrap();
            // A command that refuses its arguments exits without reading: a broken pipe then.
            let _ = child.stdin.take().unwrap().write_all(b"a\nb\nc\nd\ne\n").await;
            let output = child.wait_with_output().await.unwrap();
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).lines().count(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
    };
    assert_eq!(enqueue(vec![], None).await.1, 3, "the file: 5 tokens in jobs of 2");
    assert_eq!(enqueue(vec![], Some("4")).await.1, 2, "the environment over the file");
    assert_eq!(enqueue(vec!["--tokens-per-job", "5"], Some("4")).await.1, 1, "the command line over both");
    let (ok, _, error) = enqueue(vec![], Some("0")).await;
    assert!(!ok && error.contains("tokens-per-job"), "0 is refused, not clamped: {error}");

    std::fs::write(&config, format!("queue = {url:?}\nqueu-name = \"x\"\n[enqueue]\ntokens-per-jbo = 2\n")).unwrap();
    let (ok, _, error) = enqueue(vec![], None).await;
    assert!(!ok && error.contains("unknown settings queu-name, [enqueue] tokens-per-jbo"), "{error}");
}

/// Values that make no sense are refused with a message, not clamped; a flag is offered only
/// where it means something; `--help` shows no environment values.
#[tokio::test]
async fn the_command_line_refuses_what_it_cannot_honour() {
    let bin = env!("CARGO_BIN_EXE_gcm-worker");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("q.db").display());
    let refused = [
        (vec!["run", "--queue", &url, "--heartbeat", "1"], "--heartbeat"),
        (vec!["run", "--queue", &url, "--concurrency", "0"], "--concurrency"),
        (vec!["run", "--queue", &url, "--max-attempts", "0"], "--max-attempts"),
        (vec!["run", "--queue", &url, "--lease", "0"], "--lease"),
        (
            vec!["run", "--queue", &url, "--api-key", "k", "--backoff-ms", "2000", "--backoff-max-ms", "1000"],
            "--backoff-max-ms",
        ),
        (vec!["enqueue", "--queue", &url, "--heartbeat", "5"], "--heartbeat"),
        (vec!["serve", "--queue", &url, "--heartbeat", "5"], "--heartbeat"),
    ];
    let short_secret = dir.path().join("secret");
    std::fs::write(&short_secret, "too-short\n").unwrap();
    let short_secret = short_secret.display().to_string();
    let serve_with_short_secret = vec!["serve", "--queue", &url, "--no-auth", "--session-secret-file", &short_secret];
    let refused = refused.into_iter().chain([(serve_with_short_secret, "at least 32 characters")]);
    for (args, named) in refused {
        let output = tokio::process::Command::new(bin).args(&args).output().await.unwrap();
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && error.contains(named), "{args:?}: {error}");
    }
    let help = tokio::process::Command::new(bin)
        .args(["run", "--help"])
        .env("GOOGLE_APPLICATION_CREDENTIALS", "/secret/path.json")
        .output()
        .await
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[env: GOOGLE_APPLICATION_CREDENTIALS]") && !help.contains("/secret/path.json"), "{help}");
}

/// PostgreSQL's notices at set-up ("schema \"apalis\" already exists, skipping") are not
/// logged at every start.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_start_on_a_set_up_postgres_database_logs_no_notices() {
    let bin = env!("CARGO_BIN_EXE_gcm-worker");
    let url = server_url("GCM_QUEUE_POSTGRES_URL");
    for _ in 0..2 {
        let output = tokio::process::Command::new(bin)
            .args(["results", "--queue", &url, "--since", "0", "--limit", "1"])
            .env_remove("RUST_LOG")
            .output()
            .await
            .unwrap();
        let logs = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success() && !logs.contains("already exists"), "{logs}");
    }
}

/// The dashboard's guards, request by request: the login page for a request without the
/// session cookie, a login post refused without its CSRF token, an `HttpOnly`,
/// `SameSite=Strict` session, a forged or truncated one refused, a cancel refused without
/// its token, and the `Host` check kept. (The pages are driven in Chromium by `.ci/ui.mjs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_needs_a_session_and_a_csrf_token_for_each_form() {
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(&dir).await;
    let addr = start(Api::new(Some(queue.clone()), Arc::new(Metrics::default())).keys(keys())).await;
    let form = "content-type: application/x-www-form-urlencoded";
    let status = |answer: &str| answer[9..12].to_owned();
    let header = |answer: &str, name: &str| {
        let head = answer.split("\r\n\r\n").next().unwrap();
        head.lines().find_map(|line| line.strip_prefix(name)).map(str::to_owned)
    };
    let csrf =
        |answer: &str| answer.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();

    let answer = raw(addr, "GET", "/ui", &[], "").await;
    assert_eq!((status(&answer), header(&answer, "location: ")), ("303".into(), Some("/ui/login".into())));
    let login = raw(addr, "GET", "/ui/login", &[], "").await;
    let nonce_cookie = header(&login, "set-cookie: ").unwrap();
    assert!(nonce_cookie.contains("HttpOnly") && nonce_cookie.contains("SameSite=Strict"), "{nonce_cookie}");
    assert!(header(&login, "content-security-policy: ").unwrap().starts_with("default-src 'none'"), "{login}");
    let nonce = format!("cookie: {}", nonce_cookie.split(';').next().unwrap());
    let token = csrf(&login);

    // Without the token, or with another nonce's: refused before the key is looked at.
    let refused = raw(addr, "POST", "/ui/login", &[form, &nonce], &format!("key={SEND}")).await;
    assert_eq!(status(&refused), "403");
    let other = "cookie: gcm_login=AAAAAAAAAAAAAAAAAAAAAA";
    let refused = raw(addr, "POST", "/ui/login", &[form, other], &format!("key={SEND}&csrf={token}")).await;
    assert_eq!(status(&refused), "403");
    let wrong = raw(addr, "POST", "/ui/login", &[form, &nonce], &format!("key=wrong&csrf={token}")).await;
    assert_eq!(status(&wrong), "401", "an unknown key: the form again");
    let logged_in = raw(addr, "POST", "/ui/login", &[form, &nonce], &format!("key={SEND}&csrf={token}")).await;
    assert_eq!(status(&logged_in), "303");
    let line = header(&logged_in, "set-cookie: ").unwrap();
    assert!(line.contains("HttpOnly") && line.contains("SameSite=Strict") && line.contains("Path=/ui"), "{line}");
    let session = format!("cookie: {}", line.split(';').next().unwrap());

    let overview = raw(addr, "GET", "/ui", &[&session], "").await;
    assert!(status(&overview) == "200" && overview.contains("Jobs by state"), "{overview}");
    // A session whose name or signature is changed is no session.
    let forged = session.replacen("gcm_session=", "gcm_session=cmVwb3J0aW5n", 1);
    assert_eq!(header(&raw(addr, "GET", "/ui", &[&forged], "").await, "location: ").as_deref(), Some("/ui/login"));
    let truncated = &session[..session.len() - 2];
    assert_eq!(status(&raw(addr, "GET", "/ui", &[truncated], "").await), "303");
    // /ui asks for no Bearer key, but still for a Host this server answers to.
    let (code, _) = call(addr, "GET", "/ui", &[&session, "host: evil.example"], "").await;
    assert_eq!(code, 421);

    // A cancel: refused without the token; with the page's, the scheduled job is cancelled.
    let job = gcm_queue::Job::legacy(gcm_hyper::Message::multicast(["ui-t1"]));
    queue.enqueue_at(&job, Some(u64::MAX / 2)).await.unwrap();
    let cancel = format!("/ui/jobs/{}/cancel", job.id);
    assert_eq!(status(&raw(addr, "POST", &cancel, &[form, &session], "").await), "403");
    let page = raw(addr, "GET", &format!("/ui/jobs/{}", job.id), &[&session], "").await;
    assert!(page.contains("id=\"cancel\""), "a send key sees the button: {page}");
    let cancelled = raw(addr, "POST", &cancel, &[form, &session], &format!("csrf={}", csrf(&page))).await;
    assert_eq!(header(&cancelled, "location: "), Some(format!("/ui/jobs/{}", job.id)), "{cancelled}");
    let summary = gcm_queue::ResultReader::summary(queue.as_ref(), &job.id).await.unwrap().unwrap();
    assert_eq!(summary.status, gcm_queue::JobStatus::Cancelled);
}

/// One exchange, the answer as it came (its head's case kept: cookies are case-sensitive).
async fn raw(addr: std::net::SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

/// A chunked body's bytes (a streamed answer).
fn unchunked(mut body: &str) -> String {
    let mut text = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size, 16).unwrap();
        if size == 0 {
            return text;
        }
        text.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// A session for `key`: the login form's nonce and token, then the session cookie, as a
/// `cookie:` header.
async fn session(addr: std::net::SocketAddr, key: &str) -> String {
    let login = raw(addr, "GET", "/ui/login", &[], "").await;
    let nonce = login.lines().find_map(|line| line.strip_prefix("set-cookie: ")).unwrap().split(';').next().unwrap();
    let nonce = format!("cookie: {nonce}");
    let form = "content-type: application/x-www-form-urlencoded";
    let answer = raw(addr, "POST", "/ui/login", &[form, &nonce], &format!("key={key}&csrf={}", csrf_of(&login))).await;
    let cookie = answer.lines().find_map(|line| line.strip_prefix("set-cookie: ")).unwrap();
    format!("cookie: {}", cookie.split(';').next().unwrap())
}

/// The CSRF token of a page's first form.
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
}

/// A campaign's page, its buckets, its CSV and its actions: 120 tokens not registered (two
/// pages of them, and a search), one given up and re-queued with the page's token (refused
/// without it, and to a read key), the rest cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_page_shows_its_buckets_and_acts_with_its_token() {
    use gcm_mock::{Behaviour, Scenario, TokenRule};
    let mut scenario = Scenario::default();
    let gone: Vec<String> = (0..120).map(|i| format!("gone-{i}")).collect();
    for token in &gone {
        scenario.tokens.insert(token.clone(), TokenRule::new(Behaviour::NotRegistered));
    }
    scenario.tokens.insert("flaky".to_owned(), TokenRule::new(Behaviour::Unavailable).times(1));
    let server = mock(scenario).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(&dir).await;
    let one_attempt = Processor::new(senders(&server), queue.clone(), queue.clone())
        .policy(gcm_queue::Policy { max_attempts: 1, ..gcm_queue::Policy::default() });
    let job = |tokens: Vec<String>| {
        gcm_queue::Job::v1_multicast(gcm_hyper::v1::Multicast::new(tokens).data("k", "v")).campaign_id("c-ui")
    };
    let (sent, later) = (
        job(gone.iter().cloned().chain(["ok-0".to_owned(), "flaky".to_owned()]).collect()),
        job(vec!["later".to_owned()]),
    );
    queue.enqueue(&sent).await.unwrap();
    queue.enqueue_at(&later, Some(u64::MAX / 2)).await.unwrap();
    one_attempt.process(&sent).await.unwrap();
    let addr = start(Api::new(Some(queue.clone()), Arc::new(Metrics::default())).keys(keys())).await;
    let sender = session(addr, SEND).await;
    let get = |path: String, cookie: &str| {
        let cookie = cookie.to_owned();
        async move { raw(addr, "GET", &path, &[&cookie], "").await }
    };
    let rows = |page: &str| page.matches("<td class=\"token\">").count();

    // The overview's chart: the 122 recipients sent this minute; no worker registered.
    let overview = get("/ui".into(), &sender).await;
    assert!(overview.contains("id=\"peak\">122<") && overview.contains("id=\"no-workers\""), "{overview}");
    let list = get("/ui/campaigns".into(), &sender).await;
    assert!(list.contains("href=\"/ui/campaigns/c-ui\"") && list.contains("class=\"bar\""), "{list}");
    let page = get("/ui/campaigns/c-ui".into(), &sender).await;
    assert!(page.contains("id=\"not-registered\">120<") && page.contains("id=\"given-up\">1<"), "{page}");
    assert!(page.contains("<code>Unavailable</code>"), "the given-up cause among the fates by code: {page}");
    assert_eq!(rows(&page), 100, "the not-registered bucket, first page");
    assert!(page.contains("page 1 of 2"), "{page}");
    assert_eq!(rows(&get("/ui/campaigns/c-ui?fate=not_registered&page=2".into(), &sender).await), 20);
    assert_eq!(rows(&get("/ui/campaigns/c-ui?fate=not_registered&q=gone-7".into(), &sender).await), 11);
    assert_eq!(rows(&get("/ui/campaigns/c-ui?fate=delivered".into(), &sender).await), 1);

    let csv = get("/ui/campaigns/c-ui/results.csv".into(), &sender).await;
    let (head, body) = csv.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("content-type: text/csv") && head.contains("transfer-encoding: chunked"), "{head}");
    let body = unchunked(body);
    assert_eq!(body.lines().next(), Some("job_id,attempt,token,fate,code,detail"));
    assert_eq!(body.lines().count(), 1 + 122, "a row per record");
    assert!(body.lines().any(|line| line.starts_with(&format!("{},1,flaky,given_up,Unavailable,", sent.id))), "{body}");

    // Re-queued: refused without the token, and to a read key; then once with the page's.
    let form = "content-type: application/x-www-form-urlencoded";
    let requeue = "/ui/campaigns/c-ui/requeue";
    assert_eq!(&raw(addr, "POST", requeue, &[form, &sender], "").await[9..12], "403");
    let reader = session(addr, READ).await;
    let read_page = get("/ui/campaigns/c-ui".into(), &reader).await;
    assert!(!read_page.contains("id=\"requeue\"") && !read_page.contains("id=\"cancel\""), "{read_page}");
    let refused = raw(addr, "POST", requeue, &[form, &reader], &format!("csrf={}", csrf_of(&read_page))).await;
    assert_eq!(&refused[9..12], "403", "a read key acts on nothing");
    assert!(page.contains("id=\"requeue\""), "{page}");
    let token = format!(
        "csrf={}",
        page.split("/requeue\"><input type=\"hidden\" name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
    );
    let done = raw(addr, "POST", requeue, &[form, &sender], &token).await;
    assert!(done.contains("location: /ui/campaigns/c-ui"), "{done}");
    let requeued = format!("{}-r0", sent.id);
    let summary = gcm_queue::ResultReader::summary(queue.as_ref(), &requeued).await.unwrap().unwrap();
    assert_eq!((summary.recipients, summary.campaign_id.as_deref()), (1, Some("c-ui")));

    // The API says the same: the list, the campaign, a second re-queue that enqueues nothing.
    let (status, listed) = exchange(addr, "GET", "/campaigns", SEND, "").await;
    let listed = json(&listed);
    assert_eq!((status, listed["campaigns"][0]["campaign_id"].as_str()), (200, Some("c-ui")), "{listed}");
    assert_eq!(listed["campaigns"][0]["jobs"], 3);
    let (status, read) = exchange(addr, "GET", "/campaigns/c-ui", READ, "").await;
    let read = json(&read);
    assert_eq!((status, &read["totals"]["not_registered"]), (200, &json("120")), "{read}");
    assert!(read["jobs"].as_array().unwrap().iter().any(|job| job["job_id"] == sent.id.as_str()), "{read}");
    let (status, again) = exchange(addr, "POST", "/campaigns/c-ui/requeue", SEND, "").await;
    assert_eq!(
        (status, json(&again)),
        (200, serde_json::json!({"jobs": [{"job_id": requeued, "recipients": 1}], "lost": []}))
    );
    assert_eq!(exchange(addr, "GET", "/campaigns/c-none", READ, "").await.0, 404);
    assert_eq!(exchange(addr, "GET", "/campaigns/c%20ui", READ, "").await.0, 404);
    assert_eq!(exchange(addr, "GET", "/campaigns?limit=0", READ, "").await.0, 400);

    // Cancelled: the scheduled job and the re-queued one, not yet sent.
    let cancelled = raw(addr, "POST", "/ui/campaigns/c-ui/cancel", &[form, &sender], &token).await;
    assert!(cancelled.contains("location: /ui/campaigns/c-ui"), "{cancelled}");
    let campaign = queue.campaign("c-ui").await.unwrap().unwrap();
    assert_eq!(
        (campaign.totals.status, campaign.totals.cancelled, campaign.totals.pending),
        (gcm_queue::JobStatus::Cancelled, 2, 0)
    );
    server.shutdown().await;
}

/// Replicas behind one address, given one session secret, accept each other's sessions and
/// forms; a replica with another secret, or none, does not. The secret shows in no `Debug`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_one_session_secret_share_their_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let queue = sqlite_queue(&dir).await;
    let secret = "a-secret-the-replicas-share-0123456789";
    let replica = |secret: Option<&str>| {
        let mut api = Api::new(Some(queue.clone()), Arc::new(Metrics::default())).keys(keys());
        api.session_secret = secret.map(|secret| gcm_queue::http::SessionSecret::new(secret).unwrap());
        api
    };
    assert!(!format!("{:?}", replica(Some(secret))).contains(secret), "the secret is kept out of Debug");
    let (first, second) = (start(replica(Some(secret))).await, start(replica(Some(secret))).await);
    let (other, unshared) = (start(replica(Some(&secret.replace('a', "b")))).await, start(replica(None)).await);
    let cookie = session(first, SEND).await;
    let page = raw(second, "GET", "/ui", &[&cookie], "").await;
    assert_eq!(&page[9..12], "200", "the second replica knows the first one's session: {page}");
    // A form the first replica served, posted to the second: its CSRF token holds there too.
    let form = "content-type: application/x-www-form-urlencoded";
    let served = raw(first, "GET", "/ui", &[&cookie], "").await;
    let logout = raw(second, "POST", "/ui/logout", &[form, &cookie], &format!("csrf={}", csrf_of(&served))).await;
    assert!(logout.contains("location: /ui/login") && logout.contains("gcm_session=;"), "{logout}");
    for (name, addr) in [("another secret", other), ("no secret", unshared)] {
        let refused = raw(addr, "GET", "/ui", &[&cookie], "").await;
        assert!(refused.contains("location: /ui/login"), "{name}: {refused}");
    }
    assert!(gcm_queue::http::SessionSecret::new("short").is_err());
}
