//! Real response bodies (Google's documented examples and bodies other clients met) decoded
//! into outcomes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::time::{Duration, SystemTime};

use gcm_proto::http::Response;
use gcm_proto::{ErrorCode, Fate, Gcm, Message, Outcome, ResponseError, RetryCause};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn now() -> SystemTime {
    httpdate::parse_http_date("Fri, 31 Dec 1999 23:59:00 GMT").unwrap()
}

fn decode(message: &Message, status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> Result<Outcome, ResponseError> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    Gcm::new("k").unwrap().decode(message, &response.body(body).unwrap(), now())
}

fn delivered(id: &str, canonical: Option<&str>) -> Fate {
    Fate::Delivered { message_id: id.into(), canonical: canonical.map(Into::into) }
}

/// Google's example: recipients 4, 8, 15, 16, 23 and 42.
#[test]
fn google_six_recipients() {
    let message = Message::multicast(["4", "8", "15", "16", "23", "42"]).data("score", "5x1");
    let outcome = decode(&message, 200, &[], fixture("google_6_recipients.json")).unwrap();
    assert_eq!(outcome.multicast_id(), Some(216));
    assert_eq!(outcome.success().collect::<Vec<_>>(), [("4", "1:0408"), ("16", "1:1516"), ("23", "1:2342")]);
    assert_eq!(outcome.canonical().collect::<Vec<_>>(), [("23", "32")]);
    assert_eq!(outcome.not_registered().collect::<Vec<_>>(), ["42"]);
    assert_eq!(outcome.failed().collect::<Vec<_>>(), [("15", &ErrorCode::InvalidRegistration)]);
    assert_eq!(outcome.to_retry().collect::<Vec<_>>(), [("8", &RetryCause::Error(ErrorCode::Unavailable))]);
    assert!(outcome.needs_retry());
    assert_eq!(outcome.retry().unwrap(), Message::multicast(["8"]).data("score", "5x1"));
    assert_eq!(outcome.retry_after(), None);
    assert_eq!(outcome.len(), 6);
    assert_eq!(outcome.fates().map(|(t, _)| t).collect::<Vec<_>>(), ["4", "8", "15", "16", "23", "42"]);
}

#[test]
fn google_one_recipient_and_the_key_check_example() {
    let outcome = decode(&Message::to("4"), 200, &[], fixture("google_1_recipient.json")).unwrap();
    assert_eq!(outcome.fate("4"), Some(&delivered("1:08", None)));
    assert!(!outcome.needs_retry());
    let outcome = decode(&Message::multicast(["ABC"]), 200, &[], fixture("google_invalid_registration.json")).unwrap();
    assert_eq!(outcome.multicast_id(), Some(6_782_339_717_028_231_855));
    assert_eq!(outcome.fate("ABC"), Some(&Fate::Failed(ErrorCode::InvalidRegistration)));
}

#[test]
fn multicast_ids_are_64_bit_signed_integers() {
    let one = Message::multicast(["a"]);
    assert_eq!(decode(&one, 200, &[], fixture("negative_multicast_id.json")).unwrap().multicast_id(), Some(-1));
    let outcome = decode(&one, 200, &[], fixture("max_multicast_id.json")).unwrap();
    assert_eq!(outcome.multicast_id(), Some(i64::MAX));
    assert_eq!(outcome.fate("a"), Some(&delivered("0:1429899784497926%9ea3c721f9fd7ecd", None)));
    for body in [
        r#"{"multicast_id":9223372036854775808,"results":[{"message_id":"x"}]}"#,
        r#"{"multicast_id":1.5,"results":[{"message_id":"x"}]}"#,
        r#"{"multicast_id":"12","results":[{"message_id":"x"}]}"#,
    ] {
        assert!(matches!(decode(&one, 200, &[], body.into()), Err(ResponseError::Malformed { .. })), "{body}");
    }
}

#[test]
fn plain_text_bodies() {
    let message = Message::plain_text("23");
    let outcome = decode(&message, 200, &[], fixture("google_plain_id.txt")).unwrap();
    assert_eq!(outcome.fate("23"), Some(&delivered("1:08", None)));
    let outcome = decode(&message, 200, &[], fixture("google_plain_canonical.txt")).unwrap();
    assert_eq!(outcome.fate("23"), Some(&delivered("1:2342", Some("32"))));
    let outcome = decode(&message, 200, &[], fixture("google_plain_error.txt")).unwrap();
    assert_eq!(outcome.fate("23"), Some(&Fate::Failed(ErrorCode::InvalidRegistration)));

    let cases: [(&str, Fate); 6] = [
        ("Error=NotRegistered", Fate::NotRegistered),
        ("Error=Unavailable\r\n", Fate::Retry(RetryCause::Error(ErrorCode::Unavailable))),
        ("Error=DeviceMessageRateExceeded", Fate::Retry(RetryCause::Error(ErrorCode::DeviceMessageRateExceeded))),
        ("Error=SomethingNew", Fate::Failed(ErrorCode::Other("SomethingNew".into()))),
        ("id=0:1%a=b\r\nregistration_id=x=y\r\n", delivered("0:1%a=b", Some("x=y"))),
        ("id=23436576", delivered("23436576", None)),
    ];
    for (body, fate) in cases {
        let outcome = decode(&message, 200, &[], body.into()).unwrap();
        assert_eq!(outcome.fate("23"), Some(&fate), "{body:?}");
    }
    for body in ["", "\n", "ok", "Error=A\nregistration_id=b", "id=1\nerror=x", "id=1\nregistration_id=2\nid=3"] {
        assert!(matches!(decode(&message, 200, &[], body.into()), Err(ResponseError::Malformed { .. })), "{body:?}");
    }
    let err = decode(&message, 200, &[], b"id=\xff".to_vec()).unwrap_err();
    assert_eq!(err.body().as_bytes(), b"id=\xff");
}

#[test]
fn topic_and_condition_responses() {
    let topic = Message::topic("news");
    let outcome = decode(&topic, 200, &[], fixture("topic_ok.json")).unwrap();
    assert_eq!(outcome.fate("/topics/news"), Some(&delivered("4815162342", None)));
    assert_eq!(outcome.multicast_id(), None);
    for name in ["topic_rate.json", "topic_rate_shouting.json"] {
        let outcome = decode(&topic, 200, &[("Retry-After", "60")], fixture(name)).unwrap();
        assert_eq!(
            outcome.rate_limited().collect::<Vec<_>>(),
            [("/topics/news", &ErrorCode::TopicsMessageRateExceeded)]
        );
        assert_eq!(outcome.retry_after(), Some(Duration::from_secs(60)));
        assert_eq!(outcome.retry(), Some(topic.clone()));
    }
    let condition = Message::condition("'a' in topics");
    let outcome = decode(&condition, 200, &[], r#"{"message_id":"10"}"#.into()).unwrap();
    assert_eq!(outcome.fate("'a' in topics"), Some(&delivered("10", None)));
    let outcome = decode(&condition, 200, &[], r#"{"error":"InternalServerError"}"#.into()).unwrap();
    assert!(outcome.needs_retry());
    // A topic shape for a multicast cannot be matched to recipients.
    let err = decode(&Message::multicast(["a", "b"]), 200, &[], r#"{"message_id":1}"#.into()).unwrap_err();
    assert!(matches!(err, ResponseError::Malformed { .. }));
}

#[test]
fn every_documented_error_code_lands_in_its_bucket() {
    let codes = [
        "MissingRegistration",
        "InvalidRegistration",
        "NotRegistered",
        "InvalidPackageName",
        "MismatchSenderId",
        "MessageTooBig",
        "InvalidDataKey",
        "InvalidTtl",
        "InvalidParameters",
        "Unavailable",
        "InternalServerError",
        "DeviceMessageRateExceeded",
        "TopicsMessageRateExceeded",
        "InvalidApnsCredential",
        "QuotaExceeded",
        "DeviceQuotaExceeded",
        "MissingCollapseKey",
        "SOME_FUTURE_CODE",
    ];
    let tokens: Vec<String> = (0..codes.len()).map(|i| format!("t{i:02}")).collect();
    let results: Vec<String> = codes.iter().map(|c| format!(r#"{{"error":"{c}"}}"#)).collect();
    let body =
        format!(r#"{{"multicast_id":1,"success":0,"failure":18,"canonical_ids":0,"results":[{}]}}"#, results.join(","));
    let outcome = decode(&Message::multicast(tokens.clone()), 200, &[], body.into_bytes()).unwrap();
    let retried: Vec<&str> = outcome.to_retry().map(|(t, _)| t).collect();
    assert_eq!(retried, ["t09", "t10", "t11", "t12"]);
    assert_eq!(outcome.not_registered().collect::<Vec<_>>(), ["t02"]);
    let failed: Vec<String> = outcome.failed().map(|(_, code)| code.to_string()).collect();
    assert_eq!(
        failed,
        [
            "MissingRegistration",
            "InvalidRegistration",
            "InvalidPackageName",
            "MismatchSenderId",
            "MessageTooBig",
            "InvalidDataKey",
            "InvalidTtl",
            "InvalidParameters",
            "InvalidApnsCredential",
            "QuotaExceeded",
            "DeviceQuotaExceeded",
            "MissingCollapseKey",
            "SOME_FUTURE_CODE"
        ]
    );
}

#[test]
fn status_codes() {
    let message = Message::multicast(["a", "b"]);
    let err = decode(&message, 400, &[], fixture("bad_request_empty.txt")).unwrap_err();
    assert_eq!(err, ResponseError::BadRequest { body: gcm_proto::RawBody(fixture("bad_request_empty.txt")) });
    assert_eq!(err.to_string(), "the server rejected the request (400): \"registration_ids\" field cannot be empty");
    let err = decode(&message, 401, &[], fixture("unauthorized.html")).unwrap_err();
    assert!(matches!(err, ResponseError::Authentication { .. }));
    assert!(err.body().text().contains("<TITLE>Unauthorized</TITLE>"));
    for status in [201, 204, 301, 404, 429] {
        let err = decode(&message, status, &[], b"<html>".to_vec()).unwrap_err();
        assert_eq!(err, ResponseError::UnexpectedStatus { status, body: gcm_proto::RawBody(b"<html>".to_vec()) });
    }
}

#[test]
fn server_errors_retry_everyone_with_either_retry_after_form() {
    let message = Message::multicast(["a", "b"]).data("k", "v");
    for (status, retry_after, expected) in [
        (500, None, None),
        (503, Some("30"), Some(30)),
        (503, Some("Fri, 31 Dec 1999 23:59:59 GMT"), Some(59)),
        (502, Some("Friday, 01-Jan-99 00:00:00 GMT"), Some(0)),
        (599, Some("garbage"), None),
    ] {
        let headers: Vec<(&str, &str)> = retry_after.iter().map(|v| ("Retry-After", *v)).collect();
        let outcome = decode(&message, status, &headers, b"<html>busy</html>".to_vec()).unwrap();
        assert_eq!(
            outcome.to_retry().collect::<Vec<_>>(),
            [("a", &RetryCause::Status(status)), ("b", &RetryCause::Status(status))]
        );
        assert_eq!(outcome.retry_after(), expected.map(Duration::from_secs), "{retry_after:?}");
        assert_eq!(outcome.retry(), Some(message.clone()));
        // Retry-After is a lower bound: it stands where it is longer than the backoff
        // window, and a past date (0 s) still backs off.
        match expected {
            Some(0) => assert_eq!(outcome.delay(3, &mut Counter(0)), outcome.backoff(3, &mut Counter(0))),
            Some(seconds) => assert_eq!(outcome.delay(3, &mut Counter(0)), Duration::from_secs(seconds)),
            None => {}
        }
    }
}

#[test]
fn retry_after_on_a_200_with_unavailable_results() {
    let message = Message::multicast(["a", "b"]);
    let body = r#"{"multicast_id":1,"success":1,"failure":1,"canonical_ids":0,"results":[{"message_id":"1"},{"error":"Unavailable"}]}"#;
    let outcome = decode(&message, 200, &[("retry-after", "120")], body.into()).unwrap();
    assert_eq!(outcome.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(outcome.delay(0, &mut Counter(0)), Duration::from_secs(120));
    let outcome = decode(&message, 200, &[], body.into()).unwrap();
    // No Retry-After: the backoff window of attempt 2 is [3.5, 4.5) s.
    let delay = outcome.delay(2, &mut Counter(0));
    assert_eq!(delay, outcome.backoff(2, &mut Counter(0)));
    assert!(delay >= Duration::from_millis(3500) && delay < Duration::from_millis(4500));
}

#[test]
fn results_must_match_the_recipients() {
    let message = Message::multicast(["a", "b", "c"]);
    let body = r#"{"multicast_id":1,"results":[{"message_id":"1"},{"message_id":"2"}]}"#;
    let err = decode(&message, 200, &[], body.into()).unwrap_err();
    assert_eq!(
        err,
        ResponseError::Malformed { reason: "2 results for 3 recipients".into(), body: gcm_proto::RawBody(body.into()) }
    );
    let body = r#"{"multicast_id":1,"results":[{"message_id":"1"},{},{"error":"x"}]}"#;
    assert!(matches!(decode(&message, 200, &[], body.into()), Err(ResponseError::Malformed { .. })));
}

#[test]
fn a_token_listed_twice_gets_one_fate_per_position() {
    let message = Message::multicast(["a", "a", "b"]);
    let body = r#"{"multicast_id":1,"results":[{"error":"Unavailable"},{"message_id":"1"},{"error":"Unavailable"}]}"#;
    let outcome = decode(&message, 200, &[], body.into()).unwrap();
    let fates: Vec<(&str, bool)> = outcome.fates().map(|(t, f)| (t, f.is_final())).collect();
    assert_eq!(fates, [("a", false), ("a", true), ("b", false)]);
    assert_eq!(outcome.retry().unwrap(), Message::multicast(["a", "b"]));
}

/// A generator that counts: deterministic and cheap.
struct Counter(u64);

impl rand_core::TryRng for Counter {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.iter_mut().for_each(|b| *b = self.0 as u8);
        Ok(())
    }
}

#[test]
fn a_multicast_over_1000_tokens_is_split_and_its_outcomes_appended() {
    fn answer(part: &Message, first: usize) -> http::Response<String> {
        // Every 7th token overall is unavailable, the rest delivered.
        let results: Vec<String> = (0..part.tokens().len())
            .map(|i| match (first + i) % 7 {
                0 => r#"{"error":"Unavailable"}"#.to_owned(),
                _ => format!(r#"{{"message_id":"0:{}"}}"#, first + i),
            })
            .collect();
        http::Response::new(format!(r#"{{"multicast_id":{first},"results":[{}]}}"#, results.join(",")))
    }
    let gcm = Gcm::new("key").unwrap();
    for (count, parts) in [(1000, vec![1000]), (1001, vec![1000, 1]), (2500, vec![1000, 1000, 500])] {
        let message = Message::multicast((0..count).map(|i| format!("t{i:04}"))).data("k", "v");
        let split = message.split();
        assert_eq!(split.iter().map(|m| m.tokens().len()).collect::<Vec<_>>(), parts, "{count}");
        assert!(split.iter().all(|m| m.data == message.data && gcm.encode(m).is_ok() && m.check_limits().is_ok()));
        let mut outcome: Option<gcm_proto::Outcome> = None;
        let mut first = 0;
        for part in &split {
            let decoded = gcm.decode(part, &answer(part, first), SystemTime::now()).unwrap();
            first += part.tokens().len();
            match &mut outcome {
                Some(outcome) => outcome.append(decoded),
                None => outcome = Some(decoded),
            }
        }
        let outcome = outcome.unwrap();
        assert_eq!(outcome.len(), count);
        let tokens: Vec<&str> = outcome.fates().map(|(token, _)| token).collect();
        assert_eq!(tokens, message.tokens().iter().map(String::as_str).collect::<Vec<_>>(), "{count}: in order");
        assert_eq!(outcome.multicast_id(), Some(0));
        let pending = count.div_ceil(7);
        let retry = outcome.retry().unwrap();
        assert_eq!(retry.tokens().len(), pending);
        assert!(retry.tokens().iter().all(|t| t[1..].parse::<usize>().unwrap() % 7 == 0));
        assert_eq!(retry.split().len(), 1, "the retry fits one request");
    }
}
