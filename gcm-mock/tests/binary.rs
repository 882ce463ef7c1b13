//! The `gcm-mock` binary: the URL on the first stdout line, a scenario file, clean exit on
//! SIGTERM, and clear errors for a bad scenario file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gcm-mock");

fn example() -> String {
    format!("{}/scenario.example.toml", env!("CARGO_MANIFEST_DIR"))
}

/// Starts the binary with these arguments and environment; returns it and the URL it printed.
async fn start(args: &[&str], env: &[(&str, &str)]) -> (tokio::process::Child, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
    (child, url)
}

#[tokio::test]
async fn prints_the_url_serves_the_scenario_and_exits_on_sigterm() {
    let example = example();
    let args = ["--listen", "127.0.0.1:0", "--api-key", KEY, "--scenario", &example, "--seed", "3"];
    let (mut child, url) = start(&args, &[]).await;
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/gcm/send"), "{url}");

    // The example scenario starts with two 503s and a 500, then per-token rules.
    for status in [503, 503, 500] {
        assert_eq!(send_json(&url, r#"{"to":"a"}"#).await.status, status);
    }
    let answer = send_json(&url, r#"{"registration_ids":["tok-canonical","tok-gone","tok-flaky"]}"#).await;
    assert!(answer.body.contains(r#""registration_id":"tok-canonical-new""#), "{}", answer.body);
    assert!(answer.body.contains(r#"{"error":"NotRegistered"},{"error":"Unavailable"}"#), "{}", answer.body);

    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().await.unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn a_bad_scenario_file_names_the_line_and_the_field() {
    let dir = std::env::temp_dir().join(format!("gcm-mock-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "seed = 1\n\n[tokens.a]\nresult = \"vanished\"\n").unwrap();
    let output = Command::new(BIN).args(["--api-key", KEY, "--scenario"]).arg(&path).output().await.unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 4") && stderr.contains("vanished") && stderr.contains("result"), "{stderr}");
    assert!(output.stdout.is_empty());
    let missing = Command::new(BIN).args(["--api-key", KEY, "--scenario", "/nonexistent.toml"]).output().await.unwrap();
    assert_eq!(missing.status.code(), Some(2));
    std::fs::remove_dir_all(dir).unwrap();
}

/// FCM v1 needs no API key; a host name is a listen address; logs redirected to a file
/// carry no colour codes, and `RUST_LOG` chooses what they show.
#[tokio::test]
async fn starts_without_an_api_key_on_a_host_name_with_plain_filtered_logs() {
    let (child, url) = start(&["--listen", "localhost:0"], &[("RUST_LOG", "debug")]).await;
    let base = url.strip_suffix("/gcm/send").unwrap().to_owned();
    let client = client();
    let key_file = request(&client, http::Method::GET, &format!("{base}/_mock/service-account"), &[], "").await;
    assert_eq!(key_file.status, 200);
    assert!(send_json(&url, r#"{"to":"a"}"#).await.body.contains(r#""success":1"#), "any key is accepted");
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().await.unwrap().success());
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains('\x1b'), "colour codes in a file: {stderr:?}");
    assert!(stderr.contains("DEBUG") && stderr.contains("/_mock/service-account"), "RUST_LOG=debug: {stderr}");
    let help = Command::new(BIN).arg("--help").output().await.unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("FCM HTTP v1") && help.contains("RUST_LOG"), "{help}");
}

/// firebase-admin-node 14.x sends `:scheme: https:` (with the colon). The maintained HTTP/2
/// stack the mock runs on (h2) refuses that as a malformed scheme and resets the stream,
/// and no hook lets a server accept it; the binary logs every such stream with h2's reason.
/// These are the frames Node sends, written by hand (the `http` types cannot hold the value).
#[tokio::test]
async fn a_stream_with_a_malformed_scheme_is_reset_and_logged_with_its_reason() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut child = Command::new(BIN).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
    let authority = url.strip_prefix("http://").unwrap().strip_suffix("/gcm/send").unwrap().to_owned();
    let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    // HPACK, literal fields without indexing, names from the static table:
    // :method POST (indexed, 3), :scheme (6) "https:", :path (4), :authority (1).
    let path = "/v1/projects/mock-project/messages:send";
    let mut block = vec![0x83, 0x06, 6];
    block.extend_from_slice(b"https:");
    block.extend_from_slice(&[0x04, path.len() as u8]);
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, authority.len() as u8]);
    block.extend_from_slice(authority.as_bytes());
    let mut frames = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    frames.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]); // SETTINGS, empty
    let len = block.len() as u32;
    // HEADERS on stream 1, END_STREAM | END_HEADERS.
    frames.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, 0x1, 0x5, 0, 0, 0, 1]);
    frames.extend_from_slice(&block);
    stream.write_all(&frames).await.unwrap();
    // Read frames until the stream is reset: RST_STREAM (type 3) on stream 1, PROTOCOL_ERROR.
    let mut reset = None;
    let mut head = [0u8; 9];
    while reset.is_none() {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut head)).await;
        let Ok(Ok(_)) = read else { break };
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).await.unwrap();
        let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        if head[3] == 0x3 && stream_id == 1 {
            reset = Some(u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]));
        }
    }
    assert_eq!(reset, Some(0x1), "the stream is reset with PROTOCOL_ERROR");
    drop(stream);
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().await.unwrap().success());
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("malformed scheme") && stderr.contains("https:"), "the reason is logged: {stderr}");
}
