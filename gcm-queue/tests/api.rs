//! The HTTP API (`gcm-worker serve`) and the command line, on a SQLite queue and gcm-mock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use gcm_queue::http::{Api, serve};
use gcm_queue::{Metrics, Processor, Queue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 exchange over a fresh connection: the status and the body.
async fn exchange(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_over_http_then_read_the_status_the_results_and_the_counters() {
    let server = mock(faulty_scenario(100, 3)).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(Queue::connect(&format!("sqlite:{}", dir.path().join("q.db").display())).await.unwrap());
    let metrics = Arc::new(Metrics::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, Api { queue: Some(queue.clone()), metrics: metrics.clone() }, std::future::pending()));

    let tokens: Vec<String> = (0..100).map(token).collect();
    let body =
        serde_json::json!({ "message": { "data": { "kind": "sync" } }, "tokens": tokens, "correlation_id": "web-1" });
    let (status, answer) = exchange(addr, "POST", "/jobs", &body.to_string()).await;
    assert_eq!(status, 202, "{answer}");
    let job_id = json(&answer)["job_id"].as_str().unwrap().to_owned();
    let (status, answer) = exchange(addr, "GET", &format!("/jobs/{job_id}"), "").await;
    assert_eq!((status, json(&answer)["status"].as_str()), (200, Some("queued")), "{answer}");

    let processor = Processor::new(senders(&server), queue.clone(), queue.clone());
    drain(queue.clone(), processor, std::slice::from_ref(&job_id), Duration::from_secs(60)).await;

    let (_, answer) = exchange(addr, "GET", &format!("/jobs/{job_id}"), "").await;
    let summary = json(&answer);
    assert_eq!(summary["status"], "done", "{answer}");
    let not_registered = (0..100).filter(|&i| is_not_registered(i)).count();
    assert_eq!(summary["not_registered"], not_registered, "{answer}");
    assert_eq!(summary["delivered"], 100 - not_registered, "{answer}");

    let (status, answer) = exchange(addr, "GET", "/results?since=0&limit=60", "").await;
    assert_eq!(status, 200);
    let page = json(&answer);
    assert_eq!(page["records"].as_array().unwrap().len(), 60);
    assert_eq!(page["records"][0]["correlation_id"], "web-1");
    let next = page["next"].as_u64().unwrap();
    let (_, answer) = exchange(addr, "GET", &format!("/results?since={next}&limit=1000"), "").await;
    assert_eq!(json(&answer)["records"].as_array().unwrap().len(), 40, "the second page has the rest");

    let (status, text) = exchange(addr, "GET", "/metrics", "").await;
    assert_eq!(status, 200);
    assert!(text.contains("gcm_queue_enqueued_jobs_total 1"), "{text}");

    let too_many: Vec<String> = (0..1001).map(token).collect();
    let legacy = serde_json::json!({ "kind": "legacy", "tokens": too_many });
    let (status, answer) = exchange(addr, "POST", "/jobs", &legacy.to_string()).await;
    assert_eq!(status, 400);
    assert!(answer.contains("at most 1000 tokens"), "{answer}");
    let (status, answer) = exchange(addr, "POST", "/jobs", r#"{"tokens": [], "colour": 1}"#).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(exchange(addr, "GET", "/results?since=x", "").await.0, 400);
    server.shutdown().await;
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
        .args(["enqueue", "--queue", &url, "--chunk", "20", "--message"])
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

    let mut worker = tokio::process::Command::new(bin)
        .args(["run", "--queue", &url, "--v1-endpoint", &server.v1_base_url(), "--backoff-ms", "100", "--credentials"])
        .arg(&credentials)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let queue = Queue::connect(&url).await.unwrap();
    wait_done(&queue, &jobs, Duration::from_secs(60)).await;
    worker.start_kill().unwrap();

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
