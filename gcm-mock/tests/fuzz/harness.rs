//! What each fuzz target does with its input, shared by the libFuzzer targets and by the
//! regression test that replays `tests/fuzz/regressions/` in `cargo test`. Each function panics
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
pub(crate) fn decode_response(data: &[u8]) {
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
pub(crate) fn plain_text(data: &[u8]) {
    let message = Message::plain_text("p");
    let gcm = Gcm::new("k").unwrap();
    let Ok(outcome) = gcm.decode_parts(&message, StatusCode::OK, &HeaderMap::new(), data, now()) else { return };
    // Nothing is invented: an id, a canonical id and an error code are all in the body.
    let body = String::from_utf8_lossy(data);
    match outcome.fate("p").expect("the one recipient has a fate") {
        gcm_proto::Fate::Delivered { message_id, canonical } => {
            assert!(!message_id.is_empty() && body.contains(&format!("id={message_id}")), "{message_id:?} in {body:?}");
            if let Some(canonical) = canonical {
                assert!(body.contains(&format!("registration_id={canonical}")), "{canonical:?} in {body:?}");
            }
        }
        fate => {
            // An error's fate is the one its code gives.
            let code = body.lines().find_map(|line| line.trim().strip_prefix("Error="));
            let code = code.unwrap_or_else(|| panic!("{fate:?} without an error in {body:?}"));
            let expected = gcm_proto::Fate::from_error(gcm_proto::ErrorCode::parse(code.trim_end_matches('\r')));
            assert_eq!(fate, &expected, "{body:?}");
        }
    }
}

/// Any header value as `Retry-After`: delta-seconds read back exactly, an HTTP-date in the
/// past gives no delay and a future one the time until it, anything else nothing.
pub(crate) fn retry_after(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else { return };
    let parsed = gcm_proto::parse_retry_after(&value, now());
    let Ok(text) = value.to_str() else { return assert_eq!(parsed, None) };
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = text.parse::<u64>().unwrap_or(u64::MAX);
        assert_eq!(parsed, Some(Duration::from_secs(seconds)), "{text:?}");
    } else if let Ok(date) = httpdate::parse_http_date(text) {
        let expected = date.duration_since(now()).unwrap_or(Duration::ZERO);
        assert_eq!(parsed, Some(expected), "{text:?}: a past date is no delay");
    } else {
        assert_eq!(parsed, None, "{text:?} is neither seconds nor a date");
    }
}

/// Any text as a TOML and as a JSON scenario: a scenario that loads serializes back to one
/// that loads the same.
pub(crate) fn scenario(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for loaded in [gcm_mock::Scenario::from_toml(&text), gcm_mock::Scenario::from_json(&text)] {
        let Ok(scenario) = loaded else { continue };
        let json = serde_json::to_string(&scenario).expect("a scenario serializes");
        let again = gcm_mock::Scenario::from_json(&json).unwrap_or_else(|e| panic!("{json} does not load: {e}"));
        assert_eq!(again, scenario, "{json}");
    }
}

/// An FCM v1 answer (status from two bytes, then headers and body), read as a send's
/// reply and as a token response: never a panic; a reply's fate matches its status.
pub(crate) fn v1_response(data: &[u8]) {
    let [hi, lo, rest @ ..] = data else { return };
    let Ok(status) = StatusCode::from_u16(100 + u16::from_be_bytes([*hi, *lo]) % 900) else { return };
    let (head, body) = split(rest);
    let headers = headers(head);
    let fcm = gcm_proto::v1::Fcm::new("p").unwrap();
    if let Ok(reply) = fcm.decode_parts(status, &headers, body, now()) {
        let delivered = matches!(reply.fate, gcm_proto::Fate::Delivered { .. });
        assert_eq!(delivered, status == StatusCode::OK, "only a 200 delivers");
    }
    let mut response = gcm_proto::http::Response::new(body);
    *response.status_mut() = status;
    if let Ok(token) = gcm_proto::oauth::decode_token_response(&response, now()) {
        assert!(status.is_success() && !token.secret().is_empty());
    }
}

/// A token-endpoint form with an assertion the mock accepts at `now()` (signed once).
fn token_form() -> &'static [u8] {
    static FORM: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    FORM.get_or_init(|| {
        let key = gcm_proto::oauth::ServiceAccountKey::from_json(gcm_mock::MOCK_SERVICE_ACCOUNT_JSON).unwrap();
        key.with_token_uri("http://mock/token").unwrap().token_request(now()).unwrap().into_body()
    })
}

/// A request to the mock (method and path from the first byte, content type from the
/// second, then headers and body), twice: the same bytes give the same answer. FCM v1
/// sends carry a token the engine just issued.
pub(crate) fn mock_request(data: &[u8]) {
    let [route, kind, rest @ ..] = data else { return };
    let (method, path) = match route % 9 {
        0..=2 => ("POST", "/gcm/send"),
        3 => ("POST", "/fcm/send"),
        4 => ("GET", "/_mock/inbox"),
        5 => ("POST", "/_mock/reset"),
        6 => ("POST", "/v1/projects/mock-project/messages:send"),
        7 => ("POST", "/token"),
        _ => ("GET", "/_mock/service-account"),
    };
    let (head, body) = split(rest);
    let mut request = Request::builder().method(method).uri(path).body(body.to_vec()).unwrap();
    *request.headers_mut() = headers(head);
    request.headers_mut().insert("authorization", HeaderValue::from_static("key=k"));
    request.headers_mut().insert("host", HeaderValue::from_static("mock"));
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
            if path.starts_with("/v1/") {
                let mint = Request::post("/token").header("host", "mock").body(token_form().to_vec()).unwrap();
                let minted = engine.handle_at(&mint, 1, now());
                let token =
                    gcm_proto::oauth::decode_token_response(&minted, now()).expect("the mock's own key is accepted");
                let bearer = HeaderValue::from_str(&format!("Bearer {}", token.secret())).unwrap();
                request.headers_mut().insert("authorization", bearer);
            }
            let response = engine.handle_at(&request, 1, now());
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
