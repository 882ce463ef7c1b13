//! FCM HTTP v1 at the sans-IO level: exact request bytes, every error class from real
//! response bodies, the fan-out outcome and the legacy conversion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gcm_proto::v1::{
    AndroidPriority, ApnsConfig, Content, Converted, Fcm, Message, Multicast, Reply, Target, Template,
};
use gcm_proto::{
    Backoff, ErrorCode, Fate, Notification as LegacyNotification, Outcome, Priority, ResponseError, RetryCause,
};

const NOW: u64 = 1_700_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn fcm() -> Fcm {
    Fcm::new("mock-project").unwrap()
}

fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Result<Reply, ResponseError> {
    let mut response = http::Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    fcm().decode(&response.body(body.to_owned()).unwrap(), now())
}

fn fcm_error(code: u16, status: &str, message: &str, error_code: &str) -> String {
    format!(
        r#"{{"error":{{"code":{code},"message":"{message}","status":"{status}","details":[{{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"{error_code}"}}]}}}}"#
    )
}

#[test]
fn encodes_the_exact_request() {
    let message = Message::token("tokA")
        .data("b", "2")
        .data("a", "1")
        .notification(gcm_proto::v1::Notification::new("Hi", "there"))
        .android_priority(AndroidPriority::High)
        .android_ttl(Duration::from_secs(3600))
        .analytics_label("campaign")
        .validate_only(true);
    let request = fcm().encode(&message, "ya29.token").unwrap();
    assert_eq!(request.method(), "POST");
    assert_eq!(request.uri(), "https://fcm.googleapis.com/v1/projects/mock-project/messages:send");
    assert_eq!(request.headers()["authorization"], "Bearer ya29.token");
    assert!(request.headers()["authorization"].is_sensitive());
    assert_eq!(request.headers()["content-type"], "application/json");
    let body = r#"{"message":{"token":"tokA","data":{"a":"1","b":"2"},"notification":{"title":"Hi","body":"there"},"android":{"priority":"HIGH","ttl":"3600s"},"fcm_options":{"analytics_label":"campaign"}},"validate_only":true}"#;
    assert_eq!(std::str::from_utf8(request.body()).unwrap(), body);
    assert_eq!(request.headers()["content-length"], body.len().to_string().as_str());
}

#[test]
fn encodes_topics_conditions_and_platform_blocks() {
    let topic = Message::topic("/topics/news");
    assert_eq!(topic.target, Target::Topic("news".into()));
    assert_eq!(gcm_proto::v1::encode_body(&topic), br#"{"message":{"topic":"news"}}"#);
    let installation = Message::fid("fid-1").data("k", "v");
    assert_eq!(installation.target.recipient(), "fid-1");
    assert_eq!(gcm_proto::v1::encode_body(&installation), br#"{"message":{"fid":"fid-1","data":{"k":"v"}}}"#);
    let mut apns = ApnsConfig::default();
    apns.headers.insert("apns-priority".into(), "5".into());
    apns.payload = Some(serde_json::from_str(r#"{"aps":{"content-available":1}}"#).unwrap());
    let condition = Message::condition("'a' in topics").apns(apns);
    assert_eq!(
        gcm_proto::v1::encode_body(&condition),
        br#"{"message":{"condition":"'a' in topics","apns":{"headers":{"apns-priority":"5"},"payload":{"aps":{"content-available":1}}}}}"#
    );
    let mock = fcm().with_base_url("http://127.0.0.1:8080/").unwrap();
    assert_eq!(mock.send_url(), "http://127.0.0.1:8080/v1/projects/mock-project/messages:send");
    assert!(Fcm::new("bad/project").is_err());
    assert!(fcm().with_base_url("ftp://x").is_err());
    assert!(fcm().encode(&topic, "bad\ntoken").is_err());
}

#[test]
fn messages_round_trip_through_serde() {
    let message = Message::token("t").data("k", "v").android_ttl(Duration::from_secs(60)).validate_only(true);
    let text = serde_json::to_string(&message).unwrap();
    assert_eq!(serde_json::from_str::<Message>(&text).unwrap(), message);
}

#[test]
fn success_keeps_the_name() {
    let ok =
        reply(200, &[], r#"{"name": "projects/mock-project/messages/0:1500415314455276%31bd1c9631bd1c96"}"#).unwrap();
    assert_eq!(
        ok.fate,
        Fate::Delivered {
            message_id: "projects/mock-project/messages/0:1500415314455276%31bd1c9631bd1c96".into(),
            canonical: None
        }
    );
    assert!(matches!(reply(200, &[], "{}"), Err(ResponseError::Malformed { .. })));
}

#[test]
fn unregistered_reads_the_details_before_the_status() {
    // As firebase-admin's PR #218 quotes it: NOT_FOUND on top, UNREGISTERED in the details.
    let body = fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED");
    assert_eq!(reply(404, &[], &body).unwrap().fate, Fate::NotRegistered);
    // The older detail type name of firebase-admin-node PR #246.
    let old = body.replace("FcmError", "FcmErrorCode");
    assert_eq!(reply(404, &[], &old).unwrap().fate, Fate::NotRegistered);
    // A NOT_FOUND without an FCM code (a wrong project) never deletes tokens.
    let bare = r#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}}"#;
    assert_eq!(reply(404, &[], bare).unwrap().fate, Fate::Failed(ErrorCode::Other("NOT_FOUND".into())));
}

#[test]
fn unavailable_internal_and_quota_are_retried_with_retry_after() {
    let unavailable = fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE");
    let r = reply(503, &[("retry-after", "10")], &unavailable).unwrap();
    assert_eq!(r.fate, Fate::Retry(RetryCause::Error(ErrorCode::Unavailable)));
    assert_eq!(r.retry_after, Some(Duration::from_secs(10)));

    let internal = fcm_error(500, "INTERNAL", "Internal error encountered.", "INTERNAL");
    assert_eq!(reply(500, &[], &internal).unwrap().fate, Fate::Retry(RetryCause::Error(ErrorCode::Internal)));

    let quota = r#"{"error":{"code":429,"message":"Message rate exceeded for the device.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"QUOTA_EXCEEDED"},{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"subject":"device","description":"Device message rate exceeded."}]}]}}"#;
    let r = reply(429, &[("retry-after", "Tue, 14 Nov 2023 22:14:20 GMT")], quota).unwrap();
    assert_eq!(r.fate, Fate::Retry(RetryCause::Error(ErrorCode::QuotaExceeded)));
    assert_eq!(r.retry_after, Some(Duration::from_secs(60)));

    // A project-wide quota has no FCM code, only the canonical status (firebase-admin-go#719).
    let project = r#"{"error":{"code":429,"message":"Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' of service 'fcm.googleapis.com' for consumer 'project_number:1'.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","domain":"googleapis.com"}]}}"#;
    assert_eq!(reply(429, &[], project).unwrap().fate, Fate::Retry(RetryCause::Error(ErrorCode::ResourceExhausted)));

    // A proxy's HTML 502 is a retry too.
    assert_eq!(reply(502, &[], "<html>Bad Gateway</html>").unwrap().fate, Fate::Retry(RetryCause::Status(502)));
}

#[test]
fn the_rest_fails_with_the_code_and_the_field() {
    let invalid = r#"{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"The registration token is not a valid FCM registration token"}]}]}}"#;
    let r = reply(400, &[], invalid).unwrap();
    assert_eq!(r.fate, Fate::Failed(ErrorCode::InvalidArgument));
    assert_eq!(
        r.detail.as_deref(),
        Some(
            "The registration token is not a valid FCM registration token; field message.token: The registration token is not a valid FCM registration token"
        )
    );
    // An unknown field: a BadRequest detail only, no FCM code.
    let unknown = r#"{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"foo\" at 'message': Cannot find field.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message","description":"Invalid JSON payload received. Unknown name \"foo\" at 'message': Cannot find field."}]}]}}"#;
    assert_eq!(reply(400, &[], unknown).unwrap().fate, Fate::Failed(ErrorCode::InvalidArgument));
    let mismatch = fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH");
    assert_eq!(reply(403, &[], &mismatch).unwrap().fate, Fate::Failed(ErrorCode::SenderIdMismatch));
    let apns = fcm_error(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", "THIRD_PARTY_AUTH_ERROR");
    assert_eq!(reply(401, &[], &apns).unwrap().fate, Fate::Failed(ErrorCode::ThirdPartyAuthError));
    let novel = fcm_error(400, "FAILED_PRECONDITION", "new", "SOMETHING_NEW");
    assert_eq!(reply(400, &[], &novel).unwrap().fate, Fate::Failed(ErrorCode::Other("SOMETHING_NEW".into())));
}

#[test]
fn a_refused_access_token_is_an_authentication_error() {
    let body = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.","status":"UNAUTHENTICATED"}}"#;
    assert!(matches!(reply(401, &[], body), Err(ResponseError::Authentication { .. })));
    assert!(matches!(reply(400, &[], "Bad Request"), Err(ResponseError::BadRequest { .. })));
    assert!(matches!(reply(302, &[], ""), Err(ResponseError::UnexpectedStatus { status: 302, .. })));
    assert!(matches!(reply(404, &[], r#"{"error":{}}"#), Err(ResponseError::UnexpectedStatus { status: 404, .. })));
}

#[test]
fn a_multicast_folds_into_one_outcome_whose_retry_needs_no_argument() {
    let multicast = Multicast::new(["a", "b", "c", "d"]).data("k", "v");
    let ok = reply(200, &[], r#"{"name":"projects/p/messages/1"}"#).unwrap();
    let gone = reply(404, &[], &fcm_error(404, "NOT_FOUND", "x", "UNREGISTERED")).unwrap();
    let busy = reply(503, &[("retry-after", "7")], &fcm_error(503, "UNAVAILABLE", "x", "UNAVAILABLE")).unwrap();
    let outcome = fcm().outcome(&multicast, vec![ok, gone, busy, Reply::unanswered()]);
    assert_eq!(outcome.len(), 4);
    assert_eq!(outcome.success().collect::<Vec<_>>(), [("a", "projects/p/messages/1")]);
    assert_eq!(outcome.not_registered().collect::<Vec<_>>(), ["b"]);
    assert_eq!(outcome.retry_after(), Some(Duration::from_secs(7)));
    let retry = outcome.retry().unwrap();
    assert_eq!(retry.tokens(), ["c", "d"]);
    assert_eq!(retry.content(), multicast.content());

    // The retry's outcome merges in; nothing learned before is lost.
    let mut merged = outcome;
    let ok2 = reply(200, &[], r#"{"name":"projects/p/messages/2"}"#).unwrap();
    merged.merge(fcm().outcome(&retry, vec![ok2])); // "d" got no answer this time
    assert_eq!(merged.success().count(), 2);
    assert_eq!(merged.not_registered().count(), 1);
    // The message still pending is the one the merged outcome resends, and only it.
    let again = merged.retry().expect("d is still pending");
    assert_eq!(again.tokens(), ["d"]);
    assert_eq!(again.content(), multicast.content());

    // Stored and read back (a job queue, another process), it resends the same.
    let text = serde_json::to_string(&merged).unwrap();
    let stored: Outcome<Multicast> = serde_json::from_str(&text).unwrap();
    assert_eq!(stored, merged);
    assert_eq!(stored.retry(), Some(again));
    // The stored form keeps one copy of the content, not one per token.
    assert_eq!(text.matches(r#""k":"v""#).count(), 1, "{text}");
}

#[test]
fn messages_sent_together_retry_the_pending_ones_by_position_with_their_own_content() {
    use gcm_proto::v1::Messages;
    // Two messages to the same token with different contents: names alone cannot tell them apart.
    let messages = Messages::new([
        Message::token("a").data("n", "1"),
        Message::token("a").data("n", "2"),
        Message::topic("news"),
        Message::token("b"),
    ]);
    let ok = reply(200, &[], r#"{"name":"projects/p/messages/1"}"#).unwrap();
    let busy = reply(503, &[("retry-after", "3")], &fcm_error(503, "UNAVAILABLE", "x", "UNAVAILABLE")).unwrap();
    let outcome = fcm().outcome(&messages, vec![ok.clone(), busy, ok.clone()]);
    assert_eq!(outcome.fates().map(|(recipient, _)| recipient).collect::<Vec<_>>(), ["a", "a", "/topics/news", "b"]);
    let retry = outcome.retry().expect("the second message and the unanswered fourth");
    assert_eq!(retry.as_slice(), [messages.as_slice()[1].clone(), messages.as_slice()[3].clone()]);
    assert!(outcome.delay(0, &mut rand::rng()) >= Duration::from_secs(3), "Retry-After is a lower bound");

    // Stored and read back, the outcome resends the same messages; merged, nothing is lost.
    let stored: Outcome<Messages> = serde_json::from_str(&serde_json::to_string(&outcome).unwrap()).unwrap();
    assert_eq!(stored.retry().as_ref(), Some(&retry));
    let (again, positions) = stored.retry_where(|_, _| true).unwrap();
    assert_eq!((again, positions.as_slice()), (retry.clone(), &[1, 3][..]));
    let mut merged = stored;
    merged.merge_at(&positions, fcm().outcome(&retry, vec![ok.clone(), ok]));
    assert!(!merged.needs_retry());
    assert_eq!(merged.success().count(), 4);
}

#[test]
fn a_retry_of_chosen_positions_merges_back_into_those_positions() {
    // The same token twice: position 1 is not to be resent, position 3 is.
    let multicast = Multicast::new(["a", "x", "b", "x"]);
    let outcome = fcm().outcome(&multicast, vec![Reply::unanswered(); 4]);
    let (retry, positions) = outcome.retry_where(|position, _| position != 1).unwrap();
    assert_eq!(retry.tokens(), ["a", "b", "x"]);
    assert_eq!(positions, [0, 2, 3]);
    let ok = reply(200, &[], r#"{"name":"projects/p/messages/1"}"#).unwrap();
    let mut merged = outcome.clone();
    merged.merge_at(&positions, fcm().outcome(&retry, vec![ok.clone(), ok.clone(), ok]));
    let finals: Vec<bool> = merged.fates().map(|(_, fate)| fate.is_final()).collect();
    assert_eq!(finals, [true, false, true, true]);
    assert_eq!(merged.retry().unwrap().tokens(), ["x"]);
}

#[test]
fn a_multicast_template_gives_the_bytes_of_each_message() {
    let mut apns = ApnsConfig::default();
    apns.headers.insert("apns-priority".into(), "10".into());
    let contents = [
        Multicast::new(["t"]),
        Multicast::new(["t"]).validate_only(true),
        Multicast::new(["t"])
            .data("k", "v")
            .android_ttl(Duration::from_secs(60))
            .apns(apns)
            .analytics_label("l")
            .validate_only(true),
        Multicast::new(["t"]).notification(gcm_proto::v1::Notification::new("\"Hi\"", "\u{e9}\n")),
    ];
    for multicast in contents {
        let template = Template::new(multicast.content());
        for token in ["tokA", "", "with \"quotes\" and \\ and \u{1}", "\u{1F600}"] {
            let message = Message::new(Target::Token(token.into()), multicast.content().clone());
            let expected = fcm().encode(&message, "ya29.t").unwrap();
            let spliced = fcm().encode_token(&template, token, "ya29.t").unwrap();
            assert_eq!(std::str::from_utf8(spliced.body()).unwrap(), std::str::from_utf8(expected.body()).unwrap());
            assert_eq!(spliced.headers(), expected.headers());
        }
    }
    assert_eq!(Template::new(&Content::new()).body("tokA"), br#"{"message":{"token":"tokA"}}"#.to_vec());
}

/// "Let the server validate": fields this crate does not name, in the message and in its
/// notification and `fcm_options`, are read, kept and sent verbatim, not dropped.
#[test]
fn unknown_fields_of_a_content_are_kept_and_sent_verbatim() {
    let text = r#"{"dta":{"k":"v"},"notification":{"titel":"x","title":"T"},"fcm_options":{"analytics_label":"l","new_option":1},"data":{"a":"b"}}"#;
    let content: Content = serde_json::from_str(text).unwrap();
    assert_eq!(content.extra["dta"], serde_json::json!({"k": "v"}));
    assert_eq!(content.notification.as_ref().unwrap().extra["titel"], "x");
    let expected = br#"{"message":{"token":"tokA","data":{"a":"b"},"notification":{"title":"T","titel":"x"},"fcm_options":{"analytics_label":"l","new_option":1},"dta":{"k":"v"}}}"#;
    assert_eq!(
        std::str::from_utf8(&Template::new(&content).body("tokA")).unwrap(),
        std::str::from_utf8(expected).unwrap()
    );
    let message = Message::new(Target::Token("tokA".into()), content.clone());
    assert_eq!(fcm().encode(&message, "ya29.t").unwrap().body(), &expected.to_vec());
    assert_eq!(serde_json::from_str::<Content>(&serde_json::to_string(&content).unwrap()).unwrap(), content);
    let message: Message = serde_json::from_str(&serde_json::to_string(&message).unwrap()).unwrap();
    assert_eq!((message.target, message.content), (Target::Token("tokA".into()), content));
}

#[test]
fn quota_and_server_errors_wait_their_floor_without_retry_after() {
    let multicast = Multicast::new(["t"]);
    let delay = |reply: Reply, attempt| fcm().outcome(&multicast, vec![reply]).delay(attempt, &mut Zero);
    let quota = || reply(429, &[], &fcm_error(429, "RESOURCE_EXHAUSTED", "x", "QUOTA_EXCEEDED")).unwrap();
    let unavailable = || reply(503, &[], &fcm_error(503, "UNAVAILABLE", "x", "UNAVAILABLE")).unwrap();
    let internal = || reply(500, &[], &fcm_error(500, "INTERNAL", "x", "INTERNAL")).unwrap();
    let html_502 = || reply(502, &[], "<html>bad gateway</html>").unwrap();
    // At least 60 s (10 s), plus the exponential window (0.5 s at attempt 0 with a zero draw).
    assert_eq!(delay(quota(), 0), Duration::from_millis(60_500));
    assert_eq!(delay(quota(), 2), Duration::from_millis(63_500));
    assert_eq!(delay(unavailable(), 0), Duration::from_millis(10_500));
    assert_eq!(delay(internal(), 0), Duration::from_millis(10_500));
    assert_eq!(delay(html_502(), 0), Duration::from_millis(10_500));
    // A transport failure has no floor.
    assert_eq!(delay(Reply::unanswered(), 0), Duration::from_millis(500));
    // A Retry-After wins over the floor; it is a lower bound for the backoff.
    let told = reply(429, &[("retry-after", "5")], &fcm_error(429, "RESOURCE_EXHAUSTED", "x", "QUOTA_EXCEEDED"));
    assert_eq!(delay(told.unwrap(), 0), Duration::from_secs(5));
    // The floors are the sender's to change.
    let custom = Backoff { rate_limited_floor: Duration::from_secs(120), ..Backoff::fcm_v1() };
    let outcome = fcm().with_backoff(custom).outcome(&multicast, vec![quota()]);
    assert_eq!(outcome.delay(0, &mut Zero), Duration::from_millis(120_500));
}

#[test]
fn a_retry_after_of_zero_still_backs_off_exponentially() {
    let multicast = Multicast::new(["t"]);
    let zero = || reply(503, &[("retry-after", "0")], "").unwrap();
    let delays: Vec<u128> =
        (0..5).map(|attempt| fcm().outcome(&multicast, vec![zero()]).delay(attempt, &mut Zero).as_millis()).collect();
    assert_eq!(delays, [500, 1500, 3500, 7500, 15_500]);
}

#[test]
fn quota_failure_and_bad_request_details_are_kept() {
    let body = r#"{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"QUOTA_EXCEEDED"},{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"subject":"device_message_rate","description":"Device message rate exceeded."}]}]}}"#;
    assert_eq!(
        reply(429, &[], body).unwrap().detail.as_deref(),
        Some("Quota exceeded.; quota device_message_rate: Device message rate exceeded.")
    );
}

/// A generator that always draws 0: the bottom of each backoff window.
struct Zero;

impl rand_core::TryRng for Zero {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(0);
        Ok(())
    }
}

#[test]
fn a_legacy_multicast_becomes_one_v1_multicast() {
    let mut notification = LegacyNotification::new("Title", "Body");
    notification.android_channel_id = Some("news".into());
    notification.badge = Some("3".into());
    let legacy = gcm_proto::Message::multicast(["a", "b"])
        .data("text", "hi")
        .data("count", 2)
        .notification(notification)
        .collapse_key("inbox")
        .priority(Priority::High)
        .time_to_live(60)
        .content_available(true)
        .dry_run(true);
    let Converted::Multicast(multicast) = Converted::from_legacy(&legacy).unwrap() else { panic!("a multicast") };
    assert_eq!(multicast.tokens(), ["a", "b"]);
    assert_eq!(
        std::str::from_utf8(&gcm_proto::v1::encode_body(&multicast.message(0).unwrap())).unwrap(),
        r#"{"message":{"token":"a","data":{"count":"2","text":"hi"},"notification":{"title":"Title","body":"Body"},"android":{"collapse_key":"inbox","priority":"HIGH","ttl":"60s","notification":{"channel_id":"news"}},"apns":{"headers":{"apns-collapse-id":"inbox","apns-priority":"10"},"payload":{"aps":{"badge":3,"content-available":1}}}},"validate_only":true}"#
    );

    let single = |legacy: &gcm_proto::Message| match Converted::from_legacy(legacy).unwrap() {
        Converted::Message(message) => *message,
        other => panic!("a single message, got {other:?}"),
    };
    let topic = single(&gcm_proto::Message::topic("news").data("k", "v"));
    assert_eq!(topic.target, Target::Topic("news".into()));
    assert_eq!(topic.target.recipient(), "/topics/news");
    let condition = single(&gcm_proto::Message::condition("'a' in topics"));
    assert_eq!(condition.target, Target::Condition("'a' in topics".into()));
    let to_token = Converted::from_legacy(&gcm_proto::Message::to("t")).unwrap();
    assert!(matches!(to_token, Converted::Multicast(m) if m.tokens() == ["t"]));
    let extra = gcm_proto::Message::to("t").option("notification_key_name", "x");
    assert_eq!(Converted::from_legacy(&extra).unwrap_err().field, "notification_key_name");
}
