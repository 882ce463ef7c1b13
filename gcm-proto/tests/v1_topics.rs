//! Topic management (the Instance ID API) at the byte level: the request Firebase Admin
//! sends, and every answer read into the usual buckets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::time::{Duration, SystemTime};

use gcm_proto::v1::{Fcm, MAX_SUBSCRIPTION_TOKENS, Subscription, TopicAction};
use gcm_proto::{BuildError, ErrorCode, Fate, ResponseError, RetryCause};
use http::Response;

fn fcm() -> Fcm {
    Fcm::new("p").unwrap()
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

#[test]
fn a_subscription_is_the_request_firebase_admin_sends() {
    let request =
        fcm().encode_subscription(&Subscription::unsubscribe("/topics/news", ["a", "b\"c"]), "ya29.x").unwrap();
    assert_eq!(request.method(), "POST");
    assert_eq!(request.uri(), "https://iid.googleapis.com/iid/v1:batchRemove");
    let headers: Vec<_> = request.headers().iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap())).collect();
    assert_eq!(
        headers,
        [
            "authorization: Bearer ya29.x",
            "content-type: application/json",
            "content-length: 56",
            "access_token_auth: true"
        ]
    );
    assert_eq!(request.body().as_slice(), br#"{"to":"/topics/news","registration_tokens":["a","b\"c"]}"#);
    assert!(request.headers()["authorization"].is_sensitive());

    let moved = fcm().with_iid_base_url("http://127.0.0.1:9/").unwrap();
    let request = moved.encode_subscription(&Subscription::subscribe("news", ["a"]), "t").unwrap();
    assert_eq!(request.uri(), "http://127.0.0.1:9/iid/v1:batchAdd");
}

#[test]
fn what_one_call_cannot_take_is_refused_before_sending() {
    let tokens: Vec<String> = (0..=MAX_SUBSCRIPTION_TOKENS).map(|i| format!("t{i}")).collect();
    let too_many = Subscription::subscribe("news", tokens.clone());
    assert_eq!(
        fcm().encode_subscription(&too_many, "t").err(),
        Some(BuildError::TooManyTokens { count: 1001, max: 1000 })
    );
    let chunks: Vec<_> = too_many.chunks().collect();
    assert_eq!(chunks.iter().map(|c| c.tokens().len()).collect::<Vec<_>>(), [1000, 1]);
    assert_eq!(chunks[1].tokens(), ["t1000"]);
    assert!(chunks.iter().all(|c| c.topic() == "news" && c.action() == TopicAction::Subscribe));
    assert_eq!(
        fcm().encode_subscription(&Subscription::subscribe("news", Vec::<String>::new()), "t").err(),
        Some(BuildError::NoRecipients)
    );
    assert_eq!(
        fcm().encode_subscription(&Subscription::subscribe("bad topic!", ["a"]), "t").err(),
        Some(BuildError::InvalidTopic { topic: "bad topic!".into() })
    );
}

#[test]
fn every_per_token_answer_lands_in_its_bucket_and_the_retry_is_a_subscription() {
    let subscription = Subscription::subscribe("news", ["ok", "gone", "bad", "full", "fast", "oops"]);
    let answer = Response::new(
        r#"{"results":[{},{"error":"NOT_FOUND"},{"error":"INVALID_ARGUMENT"},{"error":"TOO_MANY_TOPICS"},
            {"error":"TOPICS_SUBSCRIPTION_RATE_EXCEEDED"},{"error":"INTERNAL"}]}"#,
    );
    let outcome = fcm().decode_subscription(&subscription, &answer, now()).unwrap();
    assert_eq!(outcome.success().collect::<Vec<_>>(), [("ok", "/topics/news")]);
    assert_eq!(outcome.not_registered().collect::<Vec<_>>(), ["gone"]);
    let failed: Vec<_> = outcome.failed().map(|(t, c)| (t, c.as_str().to_owned())).collect();
    assert_eq!(failed, [("bad", "INVALID_ARGUMENT".to_owned()), ("full", "TOO_MANY_TOPICS".to_owned())]);
    assert_eq!(outcome.fate("fast"), Some(&Fate::Retry(RetryCause::Error(ErrorCode::TopicsSubscriptionRateExceeded))));
    let retry = outcome.retry().unwrap();
    assert_eq!((retry.topic(), retry.tokens()), ("news", &["fast".to_owned(), "oops".to_owned()][..]));
    // A rate code waits at least the quota floor.
    assert!(outcome.delay(0, &mut rand::rng()) >= Duration::from_secs(60));
}

#[test]
fn whole_call_answers() {
    let subscription = Subscription::subscribe("news", ["a", "b"]);
    let decode = |response: Response<&str>| fcm().decode_subscription(&subscription, &response, now());
    let busy = Response::builder().status(503).header("retry-after", "30").body("<html>").unwrap();
    let outcome = decode(busy).unwrap();
    assert_eq!(outcome.to_retry().count(), 2);
    assert_eq!(outcome.retry_after(), Some(Duration::from_secs(30)));
    let bad = Response::builder().status(400).body(r#"{"error":"InvalidTokenVersion"}"#).unwrap();
    assert!(matches!(decode(bad), Err(ResponseError::BadRequest { .. })));
    let refused = Response::builder().status(401).body("").unwrap();
    assert!(matches!(decode(refused), Err(ResponseError::Authentication { .. })));
    let short = Response::new(r#"{"results":[{}]}"#);
    assert!(matches!(decode(short), Err(ResponseError::Malformed { .. })));
    let garbage = Response::new("not json");
    assert!(matches!(decode(garbage), Err(ResponseError::Malformed { .. })));
}
