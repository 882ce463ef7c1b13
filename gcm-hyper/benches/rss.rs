//! Peak memory of a process that sends 1000 multicasts of 1000 tokens with gcm-hyper.
//! The server (gcm-mock, recording off) runs in a child process, so the figure is the
//! client's alone: `VmHWM` from /proc/self/status, beside `VmHWM` before the first send.
//!
//! `cargo bench -p gcm-hyper --bench rss`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use gcm_hyper::{Client, Gcm, Message};

const SENDS: usize = 1000;
const TOKENS: usize = 1000;

fn peak_kib() -> u64 {
    gcm_mock::baseline::status_kib("VmHWM")
}

fn main() {
    if std::env::var_os("GCM_RSS_SERVER").is_some() {
        return serve();
    }
    let mut server = Command::new(std::env::current_exe().unwrap())
        .env("GCM_RSS_SERVER", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut url).unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tokens: Vec<String> = (0..TOKENS).map(|i| format!("{i:08}:APA91bH{}", "x".repeat(137))).collect();
    let message = Message::multicast(tokens).data("title", "Hello").data("body", "You have 3 new messages");
    let client = Client::new(Gcm::new("k").unwrap().with_endpoint(url.trim()).unwrap()).unwrap();
    let before = peak_kib();
    let delivered: usize = runtime.block_on(async {
        let mut delivered = 0;
        for _ in 0..SENDS {
            delivered += client.send(&message).await.unwrap().success().count();
        }
        delivered
    });
    let after = peak_kib();
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(delivered, SENDS * TOKENS);
    println!(
        "peak RSS after {SENDS} sends of {TOKENS} tokens: {:.1} MB (before the first send: {:.1} MB)",
        after as f64 / 1024.0,
        before as f64 / 1024.0
    );
}

fn serve() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = gcm_mock::MockServer::builder().recording(false).start().await.unwrap();
        println!("{}", server.url());
        std::future::pending::<()>().await;
    });
}
