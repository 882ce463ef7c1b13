//! FCM HTTP v1 on the mock's engine (no sockets): the token endpoint's checks of the
//! signed JWT, expiring access tokens, and the real v1 error bodies per scenario rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gcm_mock::{Behaviour, Engine, MOCK_SERVICE_ACCOUNT_JSON, Scenario, TokenRule};
use gcm_proto::oauth::{ServiceAccountKey, decode_token_response};
use http::{Request, Response};

const T0: u64 = 1_700_000_000;
const SEND: &str = "/v1/projects/mock-project/messages:send";

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn key() -> ServiceAccountKey {
    ServiceAccountKey::from_json(MOCK_SERVICE_ACCOUNT_JSON).unwrap().with_token_uri("http://mock.test/token").unwrap()
}

fn token_request(key: &ServiceAccountKey, signed_at: SystemTime) -> Request<Vec<u8>> {
    let mut request = key.token_request(signed_at).unwrap();
    request.headers_mut().insert("host", "mock.test".parse().unwrap());
    request
}

fn body(response: &Response<Bytes>) -> &str {
    std::str::from_utf8(response.body()).unwrap()
}

/// An engine and a fresh access token minted at T0.
fn engine_with_token(scenario: Scenario) -> (Engine, String) {
    let mut engine = Engine::new(scenario, vec![]);
    let response = engine.handle_at(&token_request(&key(), at(T0)), 1, at(T0));
    assert_eq!(response.status(), 200, "{}", body(&response));
    let token = decode_token_response(&response, at(T0)).unwrap();
    assert_eq!(token.expires_at(), at(T0 + 3599));
    (engine, token.secret().to_owned())
}

fn send(engine: &mut Engine, token: &str, body: &str, now: u64) -> Response<Bytes> {
    send_to(engine, SEND, token, body, now)
}

fn send_to(engine: &mut Engine, path: &str, token: &str, body: &str, now: u64) -> Response<Bytes> {
    let request = Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
        .unwrap();
    engine.handle_at(&request, 1, at(now))
}

#[test]
fn the_token_endpoint_issues_expiring_tokens_for_a_valid_assertion() {
    let (mut engine, token) = engine_with_token(Scenario::default());
    assert!(token.starts_with("ya29.mock.1."), "{token}");
    assert_eq!(engine.tokens_issued(), 1);
    let ok = send(&mut engine, &token, r#"{"message":{"token":"a","data":{"k":"v"}}}"#, T0 + 10);
    assert_eq!(ok.status(), 200);
    assert_eq!(body(&ok), r#"{"name":"projects/mock-project/messages/0:1400000000000001%e220a8397b1dcdaf"}"#);
    let inbox = engine.inbox();
    assert_eq!((inbox[0].token.as_str(), inbox[0].data["k"].as_str()), ("a", Some("v")));

    // An hour later the same token is refused with the service's 401.
    let expired = send(&mut engine, &token, r#"{"message":{"token":"a"}}"#, T0 + 3599);
    assert_eq!(expired.status(), 401);
    assert_eq!(
        body(&expired),
        r#"{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.","status":"UNAUTHENTICATED"}}"#
    );
    let wrong = send(&mut engine, "ya29.forged", r#"{"message":{"token":"a"}}"#, T0 + 10);
    assert_eq!(wrong.status(), 401);
}

#[test]
fn the_token_endpoint_refuses_bad_assertions() {
    let mut engine = Engine::new(Scenario::default(), vec![]);
    let refused = |engine: &mut Engine, request: &Request<Vec<u8>>, now: u64| {
        let response = engine.handle_at(request, 1, at(now));
        assert_eq!(response.status(), 400);
        body(&response).to_owned()
    };
    // Signed by another key.
    let other_pem = include_str!("fixtures/other-key.pem");
    let other = MOCK_SERVICE_ACCOUNT_JSON.replace(
        &serde_json::from_str::<serde_json::Value>(MOCK_SERVICE_ACCOUNT_JSON).unwrap()["private_key"]
            .as_str()
            .unwrap()
            .replace('\n', "\\n"),
        &other_pem.replace('\n', "\\n"),
    );
    let other = ServiceAccountKey::from_json(&other).unwrap().with_token_uri("http://mock.test/token").unwrap();
    assert_eq!(
        refused(&mut engine, &token_request(&other, at(T0)), T0),
        r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#
    );
    // Too old, or from the future.
    let stale = refused(&mut engine, &token_request(&key(), at(T0)), T0 + 3600);
    assert!(stale.contains("Check your iat and exp values"), "{stale}");
    assert!(refused(&mut engine, &token_request(&key(), at(T0 + 120)), T0).contains("iat and exp"));
    // For another audience (Google's own is accepted, as google-auth always names it).
    let elsewhere = key().with_token_uri("https://example.com/token").unwrap();
    let mut request = elsewhere.token_request(at(T0)).unwrap();
    request.headers_mut().insert("host", "mock.test".parse().unwrap());
    assert!(refused(&mut engine, &request, T0).contains("audience"));
    // A tampered body.
    let mut request = token_request(&key(), at(T0));
    let last = request.body().len() - 2;
    request.body_mut()[last] ^= 1;
    assert!(refused(&mut engine, &request, T0).contains("Invalid JWT Signature"));
    // Another grant.
    let mut request = token_request(&key(), at(T0));
    *request.body_mut() = b"grant_type=client_credentials".to_vec();
    assert_eq!(
        refused(&mut engine, &request, T0),
        r#"{"error":"unsupported_grant_type","error_description":"Invalid grant_type: client_credentials"}"#
    );
    assert_eq!(engine.tokens_issued(), 0);
    let google = key().with_token_uri("https://oauth2.googleapis.com/token").unwrap();
    let mut request = google.token_request(at(T0)).unwrap();
    *request.uri_mut() = "/token".parse().unwrap();
    assert_eq!(engine.handle_at(&request, 1, at(T0)).status(), 200);
}

#[test]
fn scenario_rules_give_the_real_v1_error_bodies() {
    let scenario = Scenario::default()
        .token("gone", TokenRule::new(Behaviour::NotRegistered))
        .token("bad", TokenRule::new(Behaviour::Invalid))
        .token("busy", TokenRule::unavailable_times(1).retry_after("10"))
        .token("oops", TokenRule::new(Behaviour::InternalError))
        .token("hot", TokenRule::new(Behaviour::RateLimited).retry_after("60"))
        .token("other", TokenRule::new(Behaviour::MismatchSender))
        .token("apns", TokenRule::error("THIRD_PARTY_AUTH_ERROR"));
    let (mut engine, token) = engine_with_token(scenario);
    let mut answer = |target: &str| {
        let response = send(&mut engine, &token, &format!(r#"{{"message":{{"token":"{target}"}}}}"#), T0);
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        (response.status().as_u16(), body(&response).to_owned(), retry_after)
    };
    let fcm = |code: u16, message: &str, status: &str, error_code: &str| {
        format!(
            r#"{{"error":{{"code":{code},"message":"{message}","status":"{status}","details":[{{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"{error_code}"}}]}}}}"#
        )
    };
    assert_eq!(answer("gone"), (404, fcm(404, "Requested entity was not found.", "NOT_FOUND", "UNREGISTERED"), None));
    assert_eq!(
        answer("bad"),
        (400, r#"{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"The registration token is not a valid FCM registration token"}]}]}}"#.to_owned(), None)
    );
    assert_eq!(
        answer("busy"),
        (503, fcm(503, "The service is currently unavailable.", "UNAVAILABLE", "UNAVAILABLE"), Some("10".into()))
    );
    assert_eq!(answer("busy").0, 200, "unavailable once, then delivered");
    assert_eq!(answer("oops"), (500, fcm(500, "Internal error encountered.", "INTERNAL", "INTERNAL"), None));
    let (status, text, retry_after) = answer("hot");
    assert_eq!((status, retry_after.as_deref()), (429, Some("60")));
    assert!(
        text.contains(r#""status":"RESOURCE_EXHAUSTED""#) && text.contains(r#""errorCode":"QUOTA_EXCEEDED""#),
        "{text}"
    );
    assert!(text.contains("google.rpc.QuotaFailure"), "{text}");
    assert_eq!(answer("other"), (403, fcm(403, "SenderId mismatch", "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), None));
    assert_eq!(
        answer("apns"),
        (401, fcm(401, "Auth error from APNS or Web Push Service", "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"), None)
    );
}

#[test]
fn the_message_is_validated_like_the_service() {
    let (mut engine, token) = engine_with_token(Scenario::default());
    let mut reject = |body: &str| {
        let response = send(&mut engine, &token, body, T0);
        assert_eq!(response.status(), 400, "{body}");
        let text = std::str::from_utf8(response.body()).unwrap().to_owned();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["error"]["status"], "INVALID_ARGUMENT");
        value["error"]["message"].as_str().unwrap().to_owned()
    };
    assert_eq!(reject(r#"{"message":{}}"#), "Recipient of the message is not set.");
    assert_eq!(
        reject(r#"{"message":{"token":"a","foo":1}}"#),
        "Invalid JSON payload received. Unknown name \"foo\" at 'message': Cannot find field."
    );
    assert_eq!(
        reject(r#"{"message":{"token":"a","data":{"n":1}}}"#),
        "Invalid value at 'message.data[0].value' (TYPE_STRING), 1"
    );
    assert!(reject(r#"{"message":{"token":"a","topic":"b"}}"#).contains("oneof field 'target' is already set"));
    assert!(reject(r#"{"message":{"token":"a","android":{"ttl":"2419201s"}}}"#).contains("message.android.ttl"));
    assert!(reject(r#"{"message":{"token":"a","data":{"from":"x"}}}"#).contains("Invalid data key"));
    assert!(reject("not json").starts_with("Invalid JSON payload received."));

    // A topic, a dry run, and a project that is not the service account's.
    let topic = send(&mut engine, &token, r#"{"message":{"topic":"news"}}"#, T0);
    assert_eq!(topic.status(), 200);
    assert_eq!(engine.inbox().last().unwrap().token, "/topics/news");
    let dry = send(&mut engine, &token, r#"{"message":{"token":"a"},"validate_only":true}"#, T0);
    assert_eq!(body(&dry), r#"{"name":"projects/mock-project/messages/fake_message_id"}"#);
    let elsewhere =
        send_to(&mut engine, "/v1/projects/other/messages:send", &token, r#"{"message":{"token":"a"}}"#, T0);
    assert_eq!(elsewhere.status(), 403);
    assert!(body(&elsewhere).contains("PERMISSION_DENIED"));
}

#[test]
fn clients_in_other_languages_fetch_the_key_file_with_the_mock_token_uri() {
    let mut engine = Engine::new(Scenario::default(), vec![]);
    let request = Request::get("/_mock/service-account").header("host", "127.0.0.1:4000").body(Vec::new()).unwrap();
    let response = engine.handle_at(&request, 1, at(T0));
    assert_eq!(response.status(), 200);
    let key = ServiceAccountKey::from_json(body(&response)).unwrap();
    assert_eq!(key.token_uri(), "http://127.0.0.1:4000/token");
    assert_eq!(key.project_id(), Some("mock-project"));
    // With another account configured the mock has no private key to hand out.
    engine.set_service_account(&key);
    assert_eq!(engine.handle_at(&request, 1, at(T0)).status(), 404);
}

#[test]
fn token_replies_read_from_a_scenario_file() {
    let scenario = gcm_mock::Scenario::from_toml(
        "[[token_replies]]\nstatus = 503\nrepeat = 2\n[[token_replies]]\nhang = true\n[[token_replies]]\nexpires_in = \"3600\"\n",
    )
    .unwrap();
    assert_eq!(
        scenario.token_replies,
        [
            gcm_mock::TokenReply::status(503).repeat(2),
            gcm_mock::TokenReply::hang(),
            gcm_mock::TokenReply::expires_in(serde_json::json!("3600")),
        ]
    );
    assert!(gcm_mock::Scenario::from_toml("[[token_replies]]\nhnag = true\n").is_err(), "unknown fields are refused");
}

/// What firebase-admin-node 14.x sends as is (`fcmOptions`, and `validateOnly` from other
/// clients; its `imageUrl` it renames `image` itself): Google's parser reads lowerCamelCase and snake_case names alike, and so does
/// the mock. Free-form maps keep their keys.
#[test]
fn field_names_in_lower_camel_case_are_read_as_google_reads_them() {
    let (mut engine, token) = engine_with_token(Scenario::default());
    let node = r#"{"message":{"token":"tok-node","notification":{"title":"Hi","image":"https://x/i.png"},"fcmOptions":{"analyticsLabel":"launch"},"android":{"collapseKey":"inbox","restrictedPackageName":"com.example","data":{"someKey":"v"},"fcmOptions":{"analyticsLabel":"a"}},"apns":{"headers":{"apns-priority":"10"},"payload":{"aps":{"contentAvailable":1}}},"webpush":{"headers":{"TTL":"60"},"notification":{"requireInteraction":true}}}}"#;
    let response = send(&mut engine, &token, node, T0 + 1);
    assert_eq!(response.status(), 200, "{}", body(&response));
    let options = &engine.inbox()[0].options;
    assert_eq!(options["fcm_options"]["analytics_label"], "launch");
    assert_eq!(options["notification"]["image"], "https://x/i.png");
    assert_eq!(options["android"]["collapse_key"], "inbox");
    assert_eq!(options["android"]["fcm_options"]["analytics_label"], "a");
    assert_eq!(options["android"]["data"]["someKey"], "v", "data keys are free-form");
    assert_eq!(options["apns"]["payload"]["aps"]["contentAvailable"], 1, "the APNs payload is free-form");
    assert_eq!(options["webpush"]["headers"]["TTL"], "60");
    assert_eq!(options["webpush"]["notification"]["requireInteraction"], true, "so is Web Push's notification");
    // The package check reads the camelCase name too.
    let rule = TokenRule::new(Behaviour::Ok).package("com.other");
    let (mut strict, strict_token) = engine_with_token(Scenario::default().token("tok-node", rule));
    let refused = send(&mut strict, &strict_token, node, T0 + 1);
    assert_eq!(refused.status(), 400, "{}", body(&refused));
    // A top-level validateOnly is a dry run, as validate_only is.
    let dry = send(&mut engine, &token, r#"{"validateOnly":true,"message":{"token":"t"}}"#, T0 + 2);
    assert_eq!(dry.status(), 200, "{}", body(&dry));
    assert_eq!(engine.inbox().len(), 1, "a dry run delivers nothing");
    // A name that is unknown in both spellings is still refused, as sent.
    let unknown = send(&mut engine, &token, r#"{"message":{"token":"t","fcmOption":{}}}"#, T0 + 3);
    assert_eq!(unknown.status(), 400);
    assert!(body(&unknown).contains(r#"Unknown name \"fcmOption\""#), "{}", body(&unknown));
}

/// The `fid` target (a Firebase installation id), which firebase-admin-python 7.x prefers
/// to `token`: delivered, and scripted like a token.
#[test]
fn a_firebase_installation_id_is_a_target() {
    let scenario = Scenario::default().token("fid-gone", TokenRule::new(Behaviour::NotRegistered));
    let (mut engine, token) = engine_with_token(scenario);
    let python = r#"{"message": {"fid": "fid-1", "data": {"k": "v"}}, "validate_only": false}"#;
    let response = send(&mut engine, &token, python, T0 + 1);
    assert_eq!(response.status(), 200, "{}", body(&response));
    assert_eq!(engine.inbox()[0].token, "fid-1");
    let gone = send(&mut engine, &token, r#"{"message":{"fid":"fid-gone"}}"#, T0 + 2);
    assert_eq!(gone.status(), 404, "{}", body(&gone));
    let both = send(&mut engine, &token, r#"{"message":{"fid":"f","token":"t"}}"#, T0 + 3);
    assert_eq!(both.status(), 400, "one target only: {}", body(&both));
}

/// The legacy rules' behaviours reach v1 tokens too, with the v1 bodies: steps, and a
/// Retry-After computed at response time.
#[test]
fn steps_and_relative_dates_apply_to_v1_tokens() {
    use gcm_mock::Step;
    let steps = TokenRule::steps([
        Step::new(Behaviour::NotRegistered),
        Step::new(Behaviour::RateLimited).retry_after_date_in(30),
        Step::new(Behaviour::Ok),
    ]);
    let (mut engine, token) = engine_with_token(Scenario::default().token("t", steps));
    let message = r#"{"message":{"token":"t"}}"#;
    assert_eq!(send(&mut engine, &token, message, T0 + 1).status(), 404);
    let limited = send(&mut engine, &token, message, T0 + 2);
    assert_eq!(limited.status(), 429, "{}", body(&limited));
    let date = httpdate::parse_http_date(limited.headers()["retry-after"].to_str().unwrap()).unwrap();
    assert_eq!(date, at(T0 + 2 + 30), "30 s after the engine's time of answer");
    assert_eq!(send(&mut engine, &token, message, T0 + 3).status(), 200);
}

/// "What was seen" 6: unknown names nested at any level FCM types are refused, all of them
/// listed as Google's parser lists them; the APNs payload and the web notification, which
/// FCM passes on, are not checked.
#[test]
fn nested_unknown_fields_are_refused_as_fcm_refuses_them() {
    let (mut engine, token) = engine_with_token(Scenario::default());
    let typo = r#"{"message":{"token":"t","notification":{"titel":"x"},"android":{"priorty":"HIGH","notification":{"chanel_id":"c"}}}}"#;
    let response = send(&mut engine, &token, typo, T0 + 1);
    assert_eq!(response.status(), 400, "{}", body(&response));
    let error: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    let violations: Vec<(&str, &str)> = error["error"]["details"][0]["fieldViolations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["field"].as_str().unwrap(), v["description"].as_str().unwrap()))
        .collect();
    assert_eq!(
        violations,
        [
            (
                "message.notification",
                "Invalid JSON payload received. Unknown name \"titel\" at 'message.notification': Cannot find field."
            ),
            (
                "message.android",
                "Invalid JSON payload received. Unknown name \"priorty\" at 'message.android': Cannot find field."
            ),
            (
                "message.android.notification",
                "Invalid JSON payload received. Unknown name \"chanel_id\" at 'message.android.notification': Cannot find field."
            ),
        ]
    );
    assert_eq!(error["error"]["message"].as_str().unwrap().lines().count(), 3);
    // A value FCM does not enumerate is the parser's refusal too (in any case, "high" is HIGH).
    let urgent = send(&mut engine, &token, r#"{"message":{"token":"t","android":{"priority":"URGENT"}}}"#, T0 + 1);
    assert_eq!(urgent.status(), 400);
    assert!(body(&urgent).contains(r#""fieldViolations":[{"field":"message.android.priority""#), "{}", body(&urgent));
    assert!(!body(&urgent).contains("errorCode"), "{}", body(&urgent));
    let high = send(&mut engine, &token, r#"{"message":{"token":"t","android":{"priority":"high"}}}"#, T0 + 1);
    assert_eq!(high.status(), 200, "{}", body(&high));
    // A value of the wrong type names its field.
    let wrong =
        send(&mut engine, &token, r#"{"message":{"token":"t","android":{"notification":{"sticky":"yes"}}}}"#, T0 + 1);
    assert_eq!(wrong.status(), 400);
    assert!(body(&wrong).contains(r#""field":"message.android.notification.sticky""#), "{}", body(&wrong));
    let free = r#"{"message":{"token":"t","apns":{"payload":{"aps":{"alert":"a","new-key":1},"custom":{}}},"webpush":{"notification":{"someday":1}}}}"#;
    let response = send(&mut engine, &token, free, T0 + 2);
    assert_eq!(response.status(), 200, "{}", body(&response));
    assert_eq!(engine.inbox().len(), 2, "only the valid sends were delivered");
}

/// "What was seen" 6: a bad topic name or condition is refused with FCM's INVALID_ARGUMENT,
/// naming the field.
#[test]
fn bad_topics_and_conditions_are_refused() {
    let (mut engine, token) = engine_with_token(Scenario::default());
    for (message, field) in [
        (r#"{"topic":"bad topic!"}"#, "message.topic"),
        (r#"{"condition":"this is not a condition"}"#, "message.condition"),
        (
            r#"{"condition":"'a' in topics || 'b' in topics || 'c' in topics || 'd' in topics || 'e' in topics || 'f' in topics"}"#,
            "message.condition",
        ),
        (r#"{"token":"t","data":{"google.x":"v"}}"#, "message.data"),
        (r#"{"topic":"news","data":{"k":"TWO_KB"}}"#, "message.data"),
    ] {
        let message = message.replace("TWO_KB", &"x".repeat(2048));
        let response = send(&mut engine, &token, &format!(r#"{{"message":{message}}}"#), T0 + 1);
        assert_eq!(response.status(), 400, "{message}: {}", body(&response));
        let error: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(error["error"]["details"][0]["errorCode"], "INVALID_ARGUMENT", "{error}");
        assert_eq!(error["error"]["details"][1]["fieldViolations"][0]["field"], field, "{error}");
    }
    assert!(engine.inbox().is_empty());
}

fn topic_call(engine: &mut Engine, token: &str, action: &str, body: &str) -> Response<Bytes> {
    let request = Request::post(format!("/iid/v1:{action}"))
        .header("authorization", format!("Bearer {token}"))
        .header("access_token_auth", "true")
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
        .unwrap();
    engine.handle_at(&request, 1, at(T0 + 1))
}

/// "What was seen" 3 and 6: the mock serves topic management, keeps who subscribed, and a
/// send to a topic or condition reaches them (the inbox names the topic they got it by).
#[test]
fn subscriptions_are_kept_and_topic_sends_reach_the_subscribers() {
    let scenario = Scenario::default()
        .token("gone", TokenRule::new(Behaviour::NotRegistered))
        .token("bad", TokenRule::new(Behaviour::Invalid))
        .token("busy", TokenRule::new(Behaviour::RateLimited).times(1))
        .token("down", TokenRule::new(Behaviour::InternalError).times(1));
    let (mut engine, token) = engine_with_token(scenario);
    // A rule with `times` fails the token's first topic calls, then lets it through.
    let flaky = r#"{"to":"/topics/later","registration_tokens":["busy","down"]}"#;
    let first = topic_call(&mut engine, &token, "batchAdd", flaky);
    assert_eq!(body(&first), r#"{"results":[{"error":"TOPICS_SUBSCRIPTION_RATE_EXCEEDED"},{"error":"INTERNAL"}]}"#);
    let second = topic_call(&mut engine, &token, "batchRemove", flaky);
    assert_eq!(body(&second), r#"{"results":[{},{}]}"#);
    let add = topic_call(
        &mut engine,
        &token,
        "batchAdd",
        r#"{"to":"/topics/news","registration_tokens":["a","b","gone","bad",""]}"#,
    );
    assert_eq!(add.status(), 200);
    assert_eq!(
        body(&add),
        r#"{"results":[{},{},{"error":"NOT_FOUND"},{"error":"INVALID_ARGUMENT"},{"error":"INVALID_ARGUMENT"}]}"#
    );
    let sports = topic_call(&mut engine, &token, "batchAdd", r#"{"to":"sports","registration_tokens":["b","c"]}"#);
    assert_eq!(body(&sports), r#"{"results":[{},{}]}"#);
    let removed =
        topic_call(&mut engine, &token, "batchRemove", r#"{"to":"/topics/news","registration_tokens":["a"]}"#);
    assert_eq!(body(&removed), r#"{"results":[{}]}"#);
    let listing = engine.handle_at(&Request::get("/_mock/topics").body(Vec::new()).unwrap(), 1, at(T0 + 1));
    assert_eq!(body(&listing), r#"{"news":["b"],"sports":["b","c"]}"#);

    assert_eq!(send(&mut engine, &token, r#"{"message":{"topic":"sports","data":{"k":"v"}}}"#, T0 + 2).status(), 200);
    let condition = r#"{"message":{"condition":"'sports' in topics && !('news' in topics)"}}"#;
    assert_eq!(send(&mut engine, &token, condition, T0 + 3).status(), 200);
    let inbox: Vec<(String, Option<String>)> = engine.inbox().into_iter().map(|d| (d.token, d.via)).collect();
    let via = |s: &str| Some(s.to_owned());
    let condition_text = "'sports' in topics && !('news' in topics)";
    assert_eq!(
        inbox,
        [
            ("/topics/sports".to_owned(), None),
            ("b".to_owned(), via("/topics/sports")),
            ("c".to_owned(), via("/topics/sports")),
            (condition_text.to_owned(), None),
            ("c".to_owned(), via(condition_text)),
        ]
    );

    // Whole-call refusals: no access_token_auth, a bad topic, too many tokens.
    let mut plain = Request::post("/iid/v1:batchAdd")
        .header("authorization", format!("Bearer {token}"))
        .body(br#"{"to":"news","registration_tokens":["a"]}"#.to_vec())
        .unwrap();
    assert_eq!(engine.handle_at(&plain, 1, at(T0 + 4)).status(), 401);
    plain.headers_mut().insert("access_token_auth", "true".parse().unwrap());
    assert_eq!(engine.handle_at(&plain, 1, at(T0 + 4)).status(), 200);
    assert_eq!(
        topic_call(&mut engine, &token, "batchAdd", r#"{"to":"bad topic!","registration_tokens":["a"]}"#).status(),
        400
    );
    let many: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
    let many = serde_json::json!({"to": "news", "registration_tokens": many}).to_string();
    assert_eq!(topic_call(&mut engine, &token, "batchAdd", &many).status(), 400);
}

/// A token may hold at most 2000 topics, as FCM documents: the next gets TOO_MANY_TOPICS.
#[test]
fn a_token_holds_at_most_2000_topics() {
    let (mut engine, token) = engine_with_token(Scenario::default());
    for i in 0..gcm_mock::MAX_TOPICS_PER_TOKEN {
        let added =
            topic_call(&mut engine, &token, "batchAdd", &format!(r#"{{"to":"t{i}","registration_tokens":["a"]}}"#));
        assert_eq!(body(&added), r#"{"results":[{}]}"#);
    }
    let again = topic_call(&mut engine, &token, "batchAdd", r#"{"to":"t0","registration_tokens":["a"]}"#);
    assert_eq!(body(&again), r#"{"results":[{}]}"#, "subscribing again changes nothing");
    let over = topic_call(&mut engine, &token, "batchAdd", r#"{"to":"one-more","registration_tokens":["a","b"]}"#);
    assert_eq!(body(&over), r#"{"results":[{"error":"TOO_MANY_TOPICS"},{}]}"#);
}
