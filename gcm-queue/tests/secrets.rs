//! API keys, database passwords and webhook secrets appear in no log line (JSON, at TRACE),
//! error, `Debug` or answer of `gcm-worker serve` (and `run`, which signs the webhooks),
//! whatever requests it gets and whatever fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::net::SocketAddr;
use std::sync::Arc;

use gcm_queue::http::{Api, ApiKeys};
use gcm_queue::{Metrics, Queue};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};

const KEY: &str = "api-key-secret-0123456789abcdef0123";
const NEAR_KEY: &str = "api-key-secret-0123456789abcdef0124";
#[cfg(feature = "postgres")]
const DB_PASSWORD: &str = "db-password-secret-42";

/// Runs `gcm-worker serve` on `queue` with the key in `GCM_API_KEYS`, logging everything as
/// JSON; `visit` gets its address; returns everything it wrote once it has stopped.
async fn serve_and_collect<F: std::future::Future<Output = ()>>(
    queue: &str,
    visit: impl FnOnce(SocketAddr) -> F,
) -> String {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gcm-worker"))
        .args(["--log-format", "json", "serve", "--queue", queue, "--listen", "127.0.0.1:0", "--exit-on-unreachable"])
        .env("GCM_API_KEYS", format!("app:send,read,metrics:{KEY}"))
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut logs = String::new();
    let mut addr = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        logs.push_str(&line);
        logs.push('\n');
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if let Some(found) = entry["fields"]["addr"].as_str() {
            addr = Some(found.parse().unwrap());
            break;
        }
    }
    if let Some(addr) = addr {
        visit(addr).await;
        let pid = i32::try_from(child.id().unwrap()).unwrap();
        let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    }
    while let Some(line) = lines.next_line().await.unwrap() {
        logs.push_str(&line);
        logs.push('\n');
    }
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).await.unwrap();
    child.wait().await.unwrap();
    logs + &stdout
}

/// Requests a careless or hostile client sends: the key right, wrong by a character, in the
/// wrong header form, in the query string, and bodies that fail.
async fn every_kind_of_request(addr: SocketAddr) {
    let requests = [
        format!("GET /jobs/x HTTP/1.1\r\nconnection: close\r\nhost: localhost\r\nauthorization: Bearer {KEY}\r\n\r\n"),
        format!(
            "GET /results?key={KEY} HTTP/1.1\r\nconnection: close\r\nhost: localhost\r\nauthorization: Bearer {NEAR_KEY}\r\n\r\n"
        ),
        format!("GET /metrics HTTP/1.1\r\nconnection: close\r\nhost: localhost\r\nauthorization: {KEY}\r\n\r\n"),
        format!(
            "POST /jobs HTTP/1.1\r\nconnection: close\r\nhost: localhost\r\nauthorization: Bearer {KEY}\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n{{\"tokens\""
        ),
        format!(
            "POST /jobs HTTP/1.1\r\nconnection: close\r\nhost: evil\r\nauthorization: Bearer {KEY}\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}"
        ),
        format!("GET /readyz HTTP/1.1\r\nconnection: close\r\nhost: localhost\r\nauthorization: Bearer {KEY}\r\n\r\n"),
        // The dashboard's login form, the key in its body (and no CSRF token: refused).
        format!(
            "POST /ui/login HTTP/1.1\r\nconnection: close\r\nhost: localhost\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\nkey={KEY}",
            KEY.len() + 4
        ),
    ];
    for request in requests {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer).await;
        assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
        assert!(!answer.contains(KEY) && !answer.contains(NEAR_KEY), "an answer shows a key: {answer}");
    }
}

fn assert_hidden(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} shows in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_never_show() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("q.db").display());
    let logs = serve_and_collect(&url, every_kind_of_request).await;
    assert!(logs.contains("\"request\"") && logs.contains("unknown API key"), "the requests were logged: {logs}");
    assert_hidden(&logs, &[KEY, NEAR_KEY]);

    let queue = Arc::new(Queue::connect(&url).await.unwrap());
    let api =
        Api::new(Some(queue), Arc::new(Metrics::default())).keys(ApiKeys::parse(&format!("app:send:{KEY}")).unwrap());
    assert_hidden(&format!("{api:?}"), &[KEY]);
    let refused = ApiKeys::parse(&format!("app:sned:{KEY}")).unwrap_err();
    assert_hidden(&refused, &[KEY]);
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_passwords_never_show() {
    // The test server trusts loopback: any password connects, and is then in the URL.
    let url = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/test-servers.env"))
        .ok()
        .and_then(|text| text.lines().find_map(|line| line.strip_prefix("GCM_QUEUE_POSTGRES_URL=").map(str::to_owned)))
        .or_else(|| std::env::var("GCM_QUEUE_POSTGRES_URL").ok())
        .expect("start the servers with `bash scripts/test-servers.sh start`");
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, host) = rest.split_once('@').unwrap();
    let user = user.split(':').next().unwrap();
    let with_password = format!("{scheme}://{user}:{DB_PASSWORD}@{host}");
    let logs = serve_and_collect(&with_password, every_kind_of_request).await;
    assert!(logs.contains("serving the API"), "{logs}");
    assert_hidden(&logs, &[DB_PASSWORD, KEY, NEAR_KEY]);

    // A server that refuses: the error that ends `serve` names the cause, not the password.
    let unreachable = format!("postgres://{user}:{DB_PASSWORD}@127.0.0.1:1/nowhere");
    let logs = serve_and_collect(&unreachable, |_| async {}).await;
    assert!(logs.contains("gcm-worker failed"), "{logs}");
    assert_hidden(&logs, &[DB_PASSWORD]);
    let queue = Queue::connect(&with_password).await.unwrap();
    assert_hidden(&format!("{queue:?}"), &[DB_PASSWORD]);
    let error = Queue::connect(&unreachable).await.unwrap_err();
    assert_hidden(&format!("{error} {error:?}"), &[DB_PASSWORD]);
}

/// A webhook secret (`whsec_` and its key) shows in no log line of a `run` that signs and
/// posts a delivery at TRACE, nor in the error of a settings file whose secret is mistyped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_secrets_never_show() {
    const SECRET_KEY: &str = "c2VjcmV0LXdlYmhvb2sta2V5LTAxMjM0NTY3"; // 27 bytes
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("q.db").display());
    // A cancelled job's settlement: a delivery to a port where nobody listens.
    let queue = Queue::connect(&url).await.unwrap();
    let mut job = gcm_queue::Job::legacy(gcm_hyper::Message::multicast(["t1"]));
    job.webhook = Some("http://127.0.0.1:9/hooks".to_owned());
    queue.enqueue(&job).await.unwrap();
    queue.cancel(&job.id).await.unwrap();
    queue.close().await;
    let run = |settings: String| {
        let path = dir.path().join("gcm-worker.toml");
        std::fs::write(&path, settings).unwrap();
        tokio::process::Command::new(env!("CARGO_BIN_EXE_gcm-worker"))
            .args([
                "--config",
                path.to_str().unwrap(),
                "--log-format",
                "json",
                "run",
                "--queue",
                &url,
                "--api-key",
                "k",
            ])
            .env("RUST_LOG", "trace")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut worker = run(format!("[webhook]\nsecrets = [\"whsec_{SECRET_KEY}\"]\ntimeout = \"1s\"\n"));
    let mut lines = tokio::io::BufReader::new(worker.stderr.take().unwrap()).lines();
    let mut logs = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        logs.push_str(&line);
        logs.push('\n');
        if line.contains("webhook failed") {
            break;
        }
    }
    assert!(logs.contains("webhook failed") && logs.contains("msg_"), "the try was logged: {logs}");
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
    assert_hidden(&logs, &[SECRET_KEY]);

    let mistyped = run(format!("[webhook]\nsecrets = [\"whsec_{SECRET_KEY}!\"]\n")).wait_with_output().await.unwrap();
    let error = String::from_utf8_lossy(&mistyped.stderr);
    assert!(!mistyped.status.success() && error.contains("a webhook secret is `whsec_` then base64"), "{error}");
    assert_hidden(&error, &[SECRET_KEY]);
}
