//! `gcm-worker serve` under hostile clients, in its own process: 500 connections that drip
//! their headers, or stall their bodies 1 KB short, are closed by the server's timeouts,
//! while its memory stays under 100 MB and it keeps answering.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const HOSTILE: usize = 500;
const RSS_LIMIT_KB: u64 = 100 * 1024;

/// A `serve` on a fresh SQLite queue, without keys on loopback, with short timeouts; its
/// log lines (JSON) arrive on `logs`.
struct Server {
    child: tokio::process::Child,
    addr: SocketAddr,
    logs: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    _dir: tempfile::TempDir,
}

async fn serve(extra: &[&str]) -> Server {
    serve_with(&[], extra, "warn,gcm_worker=info").await
}

/// [`serve`] run by `wrapper` (e.g. `prlimit`), logging at `filter`.
async fn serve_with(wrapper: &[&str], extra: &[&str], filter: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("q.db").display());
    let bin = env!("CARGO_BIN_EXE_gcm-worker");
    let (program, wrapped) = match wrapper.split_first() {
        Some((program, args)) => (*program, args.iter().copied().chain([bin]).collect::<Vec<_>>()),
        None => (bin, Vec::new()),
    };
    let mut child = tokio::process::Command::new(program)
        .args(wrapped)
        .args(["--log-format", "json", "serve", "--queue", &url, "--no-auth", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", filter)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next_line().await.unwrap().expect("serve logs its address before anything else ends");
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if let Some(addr) = entry["fields"]["addr"].as_str() {
            break addr.parse().unwrap();
        }
    };
    let (sender, logs) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = sender.send(serde_json::from_str(&line).unwrap_or(serde_json::Value::String(line)));
        }
    });
    Server { child, addr, logs, _dir: dir }
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// Waits for a log line whose message contains `text`.
    async fn logged(&mut self, text: &str) -> serde_json::Value {
        loop {
            let line = self.logs.recv().await.unwrap_or_else(|| panic!("serve ended before logging {text:?}"));
            if line["fields"]["message"].as_str().is_some_and(|message| message.contains(text)) {
                return line;
            }
        }
    }

    fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, Iterator::count)
    }

    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    async fn healthz(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(self.addr).await else { return false };
        let request = b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
        if stream.write_all(request).await.is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer).await;
        answer.starts_with("HTTP/1.1 200")
    }

    /// Samples the server's RSS until every hostile connection has ended, or fails after
    /// `limit` (many times the server's own timeouts); returns the largest sample.
    async fn watch(&self, clients: Vec<tokio::task::JoinHandle<()>>, limit: Duration) -> u64 {
        let mut peak = self.rss_kb();
        let deadline = tokio::time::Instant::now() + limit;
        while clients.iter().any(|client| !client.is_finished()) {
            assert!(tokio::time::Instant::now() < deadline, "hostile connections still open after {limit:?}");
            peak = peak.max(self.rss_kb());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for client in clients {
            client.await.unwrap();
        }
        peak.max(self.rss_kb())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_dripped_byte_by_byte_are_cut_off_by_the_header_timeout() {
    let server = serve(&["--header-timeout", "2"]).await;
    let mut clients = Vec::new();
    for _ in 0..HOSTILE {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        clients.push(tokio::spawn(async move {
            let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n").await;
            // One byte of a header every 200 ms, for ever: only the server ends it.
            let (mut reader, mut writer) = stream.into_split();
            let drip = async move {
                loop {
                    if writer.write_all(b"x").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            };
            let closed = async move {
                let mut buffer = [0; 1024];
                while let Ok(n) = reader.read(&mut buffer).await {
                    if n == 0 {
                        return;
                    }
                }
            };
            tokio::select! {
                () = drip => {}
                () = closed => {}
            }
        }));
    }
    assert!(server.healthz().await, "the server answers during the attack");
    let peak = server.watch(clients, Duration::from_secs(120)).await;
    assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} kB with {HOSTILE} dripping connections");
    assert!(server.healthz().await, "the server answers after the attack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_stalled_short_of_their_length_hold_no_more_than_the_body_budget() {
    let server = serve(&["--request-timeout", "3"]).await;
    let before = server.rss_kb();
    const BODY: usize = 2 << 20;
    let mut clients = Vec::new();
    for _ in 0..HOSTILE {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        clients.push(tokio::spawn(async move {
            let head = format!(
                "POST /jobs HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {BODY}\r\n\r\n"
            );
            let (mut reader, mut writer) = stream.split();
            let send = async {
                let _ = writer.write_all(head.as_bytes()).await;
                let _ = writer.write_all(&vec![b' '; BODY - 1024]).await;
                // Stalled 1 KB short: only the server ends it.
                std::future::pending::<()>().await;
            };
            let closed = async {
                let mut buffer = [0; 1024];
                while let Ok(n) = reader.read(&mut buffer).await {
                    if n == 0 {
                        return;
                    }
                }
            };
            tokio::select! {
                () = send => {}
                () = closed => {}
            }
            drop(stream);
        }));
    }
    let peak = server.watch(clients, Duration::from_secs(180)).await;
    let stalled = format!("{HOSTILE} stalled bodies of {BODY} bytes");
    assert!(peak < RSS_LIMIT_KB, "peak RSS {peak} kB (before: {before} kB) with {stalled}");
    assert!(server.healthz().await, "the server answers after the attack");
}

/// Opens `n` connections that send half a request head and wait for the server to close them.
async fn half_heads(addr: SocketAddr, n: usize) -> Vec<tokio::task::JoinHandle<()>> {
    let mut clients = Vec::new();
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        clients.push(tokio::spawn(async move {
            let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n").await;
            let mut buffer = [0; 1024];
            while let Ok(n) = stream.read(&mut buffer).await {
                if n == 0 {
                    return;
                }
            }
        }));
    }
    clients
}

/// 500 connections against a cap of 50: the server holds at most 50 at once (counted in its
/// open files), the others wait in the backlog until the header timeout frees a place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_their_turn() {
    const CAP: usize = 50;
    let server = serve(&["--max-connections", "50", "--header-timeout", "1"]).await;
    let baseline = server.open_files();
    let clients = half_heads(server.addr, HOSTILE).await;
    let mut most = 0;
    while clients.iter().any(|client| !client.is_finished()) {
        most = most.max(server.open_files().saturating_sub(baseline));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(most <= CAP, "{most} connections open at once, the cap is {CAP}");
    assert!(most > CAP / 2, "the attack reached the cap ({most} open at most)");
    assert!(server.healthz().await);
}

/// Out of file descriptors (a limit of 64), `accept` fails: the server says so and goes on,
/// and answers once the header timeout has closed the hostile connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_accept_does_not_end_the_server() {
    let mut server =
        serve_with(&["prlimit", "--nofile=64:64", "--"], &["--header-timeout", "1"], "warn,gcm_worker=info").await;
    let clients = half_heads(server.addr, 200).await;
    let warning = server.logged("cannot accept a connection").await;
    assert!(warning["fields"]["error"].as_str().unwrap_or("").contains("files"), "{warning}");
    for client in clients {
        client.await.unwrap();
    }
    assert!(server.healthz().await, "the server answers after running out of descriptors");
}

/// SIGTERM while a request is being read: the request is answered, then the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_sigterm_is_answered_before_the_server_exits() {
    let mut server = serve_with(&[], &[], "warn,gcm_worker=info,tower_http=debug").await;
    let body = r#"{"tokens": ["in-flight"]}"#;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /jobs HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..5]).await.unwrap();
    server.logged("started processing request").await;
    let pid = server.pid().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    server.logged("shutting down").await;
    stream.write_all(&body.as_bytes()[5..]).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let status = server.child.wait().await.unwrap();
    assert!(status.success(), "{status}");
}
