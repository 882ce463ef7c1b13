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

/// A `serve` on a fresh SQLite queue, without keys on loopback, with short timeouts.
struct Server {
    child: tokio::process::Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

async fn serve(extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("q.db").display());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gcm-worker"))
        .args(["--log-format", "json", "serve", "--queue", &url, "--no-auth", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "warn,gcm_worker=info")
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
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server { child, addr, _dir: dir }
}

impl Server {
    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id().unwrap())).unwrap();
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
