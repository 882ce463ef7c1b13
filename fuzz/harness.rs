//! What each fuzz target does with its input, shared by the libFuzzer targets and by the
//! regression test that replays `fuzz/regressions/` in `cargo test`. Each function panics
//! only when an invariant breaks (that is the finding).

use std::time::{Duration, SystemTime};

use gcm_proto::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use gcm_proto::{Gcm, Message};

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Splits `data` at the first `\n\n` (or not at all): a head and a body.
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (&[], data),
    }
}

/// Head lines `Name: value` become headers; unreadable lines are skipped.
fn headers(head: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        if let Some(colon) = line.iter().position(|b| *b == b':') {
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value.trim_ascii())) {
                map.append(name, value);
            }
        }
    }
    map
}

/// Status (two bytes), message shape (one byte), then headers and body: decoding either
/// accounts for every recipient or returns an error.
pub fn decode_response(data: &[u8]) {
    let [hi, lo, shape, rest @ ..] = data else { return };
    let Ok(status) = StatusCode::from_u16(100 + u16::from_be_bytes([*hi, *lo]) % 900) else { return };
    let message = match shape % 5 {
        0 => Message::multicast(["a", "b", "c"]),
        1 => Message::multicast(["a", "a"]),
        2 => Message::topic("news"),
        3 => Message::condition("'a' in topics"),
        _ => Message::plain_text("p"),
    };
    let (head, body) = split(rest);
    let gcm = Gcm::new("k").unwrap();
    if let Ok(outcome) = gcm.decode_parts(&message, status, &headers(head), body, now()) {
        assert_eq!(outcome.len(), message.tokens().len(), "every recipient accounted for");
        let text = serde_json::to_string(&outcome).unwrap();
        assert_eq!(serde_json::from_str::<gcm_proto::Outcome>(&text).unwrap(), outcome, "outcome round trip");
    }
}

/// A 200 plain-text body for a plain-text message.
pub fn plain_text(data: &[u8]) {
    let message = Message::plain_text("p");
    let gcm = Gcm::new("k").unwrap();
    if let Ok(outcome) = gcm.decode_parts(&message, StatusCode::OK, &HeaderMap::new(), data, now()) {
        assert_eq!(outcome.len(), 1);
    }
}

/// Any header value as `Retry-After`: never a panic, never a delay in the past.
pub fn retry_after(data: &[u8]) {
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let _ = gcm_proto::parse_retry_after(&value, now());
    }
}

/// Any text as a TOML and as a JSON scenario.
pub fn scenario(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = gcm_mock::Scenario::from_toml(&text);
    let _ = gcm_mock::Scenario::from_json(&text);
}

/// A request to the mock (method and path from the first byte, content type from the
/// second, then headers and body), twice: the same bytes give the same answer.
pub fn mock_request(data: &[u8]) {
    let [route, kind, rest @ ..] = data else { return };
    let (method, path) = match route % 6 {
        0..=2 => ("POST", "/gcm/send"),
        3 => ("POST", "/fcm/send"),
        4 => ("GET", "/_mock/inbox"),
        _ => ("POST", "/_mock/reset"),
    };
    let (head, body) = split(rest);
    let mut request = Request::builder().method(method).uri(path).body(body.to_vec()).unwrap();
    *request.headers_mut() = headers(head);
    request.headers_mut().insert("authorization", HeaderValue::from_static("key=k"));
    match kind % 3 {
        0 => drop(request.headers_mut().insert("content-type", HeaderValue::from_static("application/json"))),
        1 => drop(
            request.headers_mut().insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded")),
        ),
        _ => {}
    }
    let scenario = gcm_mock::Scenario::from_toml(
        "seed = 3\n[tokens.c]\nresult = \"canonical\"\ncanonical = \"c2\"\n[tokens.f]\nresult = \"unavailable\"\ntimes = 1\n[faults]\nunavailable = 0.2\n",
    )
    .unwrap();
    let answers: Vec<_> = (0..2)
        .map(|_| {
            let mut engine = gcm_mock::Engine::new(scenario.clone(), vec!["k".into()]);
            let response = engine.handle(&request, 1);
            if response.status() == 200
                && response.headers()["content-type"].to_str().unwrap().starts_with("application/json")
            {
                serde_json::from_slice::<serde_json::Value>(response.body()).expect("a 200 JSON answer is JSON");
            }
            (response.status(), response.body().clone())
        })
        .collect();
    assert_eq!(answers[0], answers[1], "deterministic");
}
