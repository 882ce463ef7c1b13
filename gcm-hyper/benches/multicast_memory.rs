//! The heap of a 10 000-token FCM v1 multicast with a 1 KB payload: what holding it costs,
//! and what sending it allocates, beside the per-token messages the old `fan_out` built.
//! Counted by dhat's allocator; the server (gcm-mock, recording off) runs in a child
//! process, so the figures are the client's alone.
//!
//! `cargo bench -p gcm-hyper --bench multicast_memory`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use gcm_hyper::FcmClient;
use gcm_hyper::gcm_proto::v1::{Message, Multicast, Target};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const TOKENS: usize = 10_000;

fn heap() -> dhat::HeapStats {
    dhat::HeapStats::get()
}

fn kib(bytes: usize) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}

fn main() {
    if std::env::var_os("GCM_MEMORY_SERVER").is_some() {
        return serve();
    }
    let mut server = Command::new(std::env::current_exe().unwrap())
        .env("GCM_MEMORY_SERVER", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let (base_url, key_file) = line.trim().split_once(' ').unwrap();
    let key_file = String::from_utf8(hex_decode(key_file)).unwrap();

    let _profiler = dhat::Profiler::builder().testing().build();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = FcmClient::from_service_account(&key_file).unwrap().base_url(base_url).unwrap();

    let before_tokens = heap().curr_bytes;
    let tokens: Vec<String> = (0..TOKENS).map(|i| format!("{i:08}:APA91bH{}", "x".repeat(137))).collect();
    let token_bytes = heap().curr_bytes - before_tokens;
    let multicast = Multicast::new(tokens).data("kind", "sync").data("blob", "p".repeat(1000));
    let held = heap().curr_bytes - before_tokens;
    let payload = multicast.content().data.values().map(String::len).sum::<usize>();

    // Sending: what the send allocates in total, and its peak above what was held before.
    let before = heap();
    let report = runtime.block_on(client.send_multicast(&multicast)).unwrap();
    let after = heap();
    assert_eq!(report.outcome.success().count(), TOKENS);
    let allocated = usize::try_from(after.total_bytes - before.total_bytes).unwrap();
    let peak = after.max_bytes.saturating_sub(before.curr_bytes);
    let report_bytes = after.curr_bytes - before.curr_bytes;
    drop(report);

    // What the old fan_out held: one whole message per token.
    let before_fan_out = heap().curr_bytes;
    let fan_out: Vec<Message> = multicast
        .tokens()
        .iter()
        .map(|token| Message::new(Target::Token(token.clone()), multicast.content().clone()))
        .collect();
    let fan_out_bytes = heap().curr_bytes - before_fan_out;
    let stored_multicast = serde_json::to_vec(&multicast).unwrap().len();
    let stored_fan_out = serde_json::to_vec(&fan_out).unwrap().len();

    server.kill().unwrap();
    server.wait().unwrap();
    println!("{TOKENS} tokens ({} of token text), payload {payload} B", kib(token_bytes));
    println!("held:   multicast {} (tokens + one content) | per-token messages {}", kib(held), kib(fan_out_bytes));
    println!("stored: multicast {} of JSON | per-token messages {}", kib(stored_multicast), kib(stored_fan_out));
    println!(
        "send:   peak above what was held {} (of which the report {}), {} allocated in total ({} B per token)",
        kib(peak),
        kib(report_bytes),
        kib(allocated),
        allocated / TOKENS
    );
}

fn serve() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = gcm_mock::MockServer::builder().recording(false).start().await.unwrap();
        let key_file = server.service_account_json().unwrap();
        println!("{} {}", server.v1_base_url(), hex_encode(key_file.as_bytes()));
        std::future::pending::<()>().await;
    });
}

/// Hex, to pass the key file on one line.
fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}
