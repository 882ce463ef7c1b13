//! The mock's protocol behaviour over real HTTP on loopback, with exact response bodies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use common::*;
use gcm_mock::{Behaviour, Engine, Faults, MockServer, Reply, Scenario, TokenRule, UNAUTHORIZED_HTML};
use http::Method;
use serde_json::json;

/// With seed 0 every message id ends in this suffix.
const SUFFIX: &str = "e220a8397b1dcdaf";

fn id(n: u64) -> String {
    format!("0:{}%{SUFFIX}", 1_400_000_000_000_000 + n)
}

async fn server(scenario: Scenario) -> MockServer {
    MockServer::builder().api_key(KEY).scenario(scenario).start().await.unwrap()
}

#[tokio::test]
async fn json_multicast_with_every_kind_of_result() {
    let scenario = Scenario::default()
        .token("c", TokenRule::canonical("c2"))
        .token("g", TokenRule::new(Behaviour::NotRegistered))
        .token("i", TokenRule::new(Behaviour::Invalid))
        .token("m", TokenRule::new(Behaviour::MismatchSender))
        .token("u", TokenRule::new(Behaviour::Unavailable))
        .token("e", TokenRule::new(Behaviour::InternalError))
        .token("r", TokenRule::new(Behaviour::RateLimited))
        .token("x", TokenRule::error("SomethingNew"));
    let server = server(scenario).await;
    let answer =
        send_json(&server.url(), r#"{"registration_ids":["a","c","g","i","m","u","e","r","x"],"data":{"k":"v"}}"#)
            .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["content-type"], "application/json; charset=UTF-8");
    assert!(answer.headers.get("date").is_none());
    assert_eq!(
        answer.body,
        format!(
            concat!(
                r#"{{"multicast_id":4073552104164651884,"success":2,"failure":7,"canonical_ids":1,"results":["#,
                r#"{{"message_id":"{}"}},{{"message_id":"{}","registration_id":"c2"}},{{"error":"NotRegistered"}},"#,
                r#"{{"error":"InvalidRegistration"}},{{"error":"MismatchSenderId"}},{{"error":"Unavailable"}},"#,
                r#"{{"error":"InternalServerError"}},{{"error":"DeviceMessageRateExceeded"}},{{"error":"SomethingNew"}}]}}"#
            ),
            id(1),
            id(2)
        )
    );
    let inbox = server.inbox();
    assert_eq!(inbox.iter().map(|d| d.token.as_str()).collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(*inbox[0].data, *json!({"k": "v"}).as_object().unwrap());
    assert_eq!((inbox[0].attempt, inbox[0].request), (1, 1));
}

#[tokio::test]
async fn the_fcm_path_speaks_the_same_protocol() {
    let server = server(Scenario::default()).await;
    let answer = send_json(&server.fcm_url(), r#"{"to":"a"}"#).await;
    assert_eq!(
        answer.body,
        format!(
            r#"{{"multicast_id":4073552104164651884,"success":1,"failure":0,"canonical_ids":0,"results":[{{"message_id":"{}"}}]}}"#,
            id(1)
        )
    );
}

#[tokio::test]
async fn plain_text_requests() {
    let scenario = Scenario::default()
        .token("c", TokenRule::canonical("c2"))
        .token("g", TokenRule::new(Behaviour::NotRegistered))
        .token("u", TokenRule::new(Behaviour::Unavailable).retry_after("7"));
    let server = server(scenario).await;
    let answer = send_form(&server.url(), "registration_id=a&data.score=3x1&collapse_key=k&delay_while_idle=1").await;
    assert_eq!((answer.status.as_u16(), answer.body.as_str()), (200, format!("id={}\n", id(1)).as_str()));
    assert_eq!(answer.headers["content-type"], "text/plain; charset=UTF-8");
    let answer = send_form(&server.url(), "registration_id=c").await;
    assert_eq!(answer.body, format!("id={}\nregistration_id=c2\n", id(2)));
    assert_eq!(send_form(&server.url(), "registration_id=g").await.body, "Error=NotRegistered\n");
    assert_eq!(send_form(&server.url(), "data.x=1").await.body, "Error=MissingRegistration\n");
    assert_eq!(send_form(&server.url(), "registration_id=a&time_to_live=abc").await.body, "Error=InvalidTtl\n");
    assert_eq!(send_form(&server.url(), "registration_id=a&data.from=x").await.body, "Error=InvalidDataKey\n");
    // Plain text never says Error=Unavailable: the service answers 500.
    let answer = send_form(&server.url(), "registration_id=u").await;
    assert_eq!((answer.status.as_u16(), answer.body.as_str()), (500, ""));
    assert_eq!(answer.headers["retry-after"], "7");
    let inbox = server.inbox();
    assert_eq!(inbox.len(), 2);
    assert_eq!(*inbox[0].data, *json!({"score": "3x1"}).as_object().unwrap());
    assert_eq!(*inbox[0].options, *json!({"collapse_key": "k", "delay_while_idle": "1"}).as_object().unwrap());
}

#[tokio::test]
async fn a_missing_content_type_is_read_as_plain_text() {
    let server = server(Scenario::default()).await;
    let client = client();
    let auth = format!("key={KEY}");
    let answer =
        request(&client, Method::POST, &server.url(), &[("authorization", &auth)], "registration_id=a".to_owned())
            .await;
    assert_eq!(answer.body, format!("id={}\n", id(1)));
    // A JSON body without the header is parsed as a form: no registration_id in it.
    let answer =
        request(&client, Method::POST, &server.url(), &[("authorization", &auth)], r#"{"to":"a"}"#.to_owned()).await;
    assert_eq!(answer.body, "Error=MissingRegistration\n");
}

#[tokio::test]
async fn authentication() {
    let server = server(Scenario::default()).await;
    let client = client();
    for headers in [vec![], vec![("authorization", "key=wrong")], vec![("authorization", "Bearer test-key")]] {
        let answer = request(&client, Method::POST, &server.url(), &headers, r#"{"to":"a"}"#.to_owned()).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.body, UNAUTHORIZED_HTML);
        assert_eq!(answer.headers["content-type"], "text/html; charset=UTF-8");
    }
    assert!(server.inbox().is_empty());
    assert!(server.requests().iter().all(|r| !r.authorized));
    // Without a configured key, any key is accepted.
    let open = MockServer::start().await.unwrap();
    let answer =
        request(&client, Method::POST, &open.url(), &[("authorization", "key=anything")], "registration_id=a").await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn bad_requests_get_a_one_line_reason() {
    let server = server(Scenario::default()).await;
    let many: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
    let cases = [
        ("{", "JSON_PARSING_ERROR: EOF while parsing an object at line 1 column 1\n".to_owned()),
        ("[1]", "JSON_PARSING_ERROR: the request body is not a JSON object\n".to_owned()),
        (r#"{"registration_ids":"a"}"#, "\"registration_ids\" field is not a JSON array\n".to_owned()),
        (r#"{"registration_ids":[]}"#, "\"registration_ids\" field cannot be empty\n".to_owned()),
        (
            r#"{"registration_ids":["a",1]}"#,
            "Field \"registration_ids\" must be a JSON array of strings: [\"a\",1]\n".to_owned(),
        ),
        (r#"{"to":"a","time_to_live":"60"}"#, "Field \"time_to_live\" must be a JSON number: \"60\"\n".to_owned()),
        (r#"{"to":"a","dry_run":"true"}"#, "Field \"dry_run\" must be a JSON boolean: \"true\"\n".to_owned()),
        (r#"{"to":"a","data":"x"}"#, "Field \"data\" must be a JSON object: \"x\"\n".to_owned()),
        (r#"{"to":5}"#, "Field \"to\" must be a JSON string: 5\n".to_owned()),
        (
            r#"{"to":"a","registration_ids":["b"]}"#,
            "Must use either \"registration_ids\" field or \"to\", not both\n".to_owned(),
        ),
        (
            &*Box::leak(json!({"registration_ids": many}).to_string().into_boxed_str()),
            "Number of messages on bulk (1001) exceeds maximum allowed (1000)\n".to_owned(),
        ),
    ];
    for (body, reason) in cases {
        let answer = send_json(&server.url(), body).await;
        assert_eq!((answer.status.as_u16(), answer.body), (400, reason), "{body:.60}");
    }
    assert!(server.inbox().is_empty());
}

#[tokio::test]
async fn message_errors_are_per_token_in_a_200() {
    let scenario = Scenario::default().token("pkg", TokenRule::default().package("com.other"));
    let server = server(scenario).await;
    let big = "x".repeat(4096);
    let cases = [
        (r#"{"data":{"k":"v"}}"#.to_owned(), r#"[{"error":"MissingRegistration"}]"#),
        (r#"{"to":"","data":{"k":"v"}}"#.to_owned(), r#"[{"error":"MissingRegistration"}]"#),
        (
            r#"{"registration_ids":["a","b"],"time_to_live":2419201}"#.to_owned(),
            r#"[{"error":"InvalidTtl"},{"error":"InvalidTtl"}]"#,
        ),
        (r#"{"to":"a","time_to_live":-1}"#.to_owned(), r#"[{"error":"InvalidTtl"}]"#),
        (format!(r#"{{"to":"a","data":{{"k":"{big}"}}}}"#), r#"[{"error":"MessageTooBig"}]"#),
        (r#"{"to":"a","data":{"google.x":"1"}}"#.to_owned(), r#"[{"error":"InvalidDataKey"}]"#),
        (r#"{"to":"a","data":{"gcm_x":"1"}}"#.to_owned(), r#"[{"error":"InvalidDataKey"}]"#),
        (r#"{"to":"pkg","restricted_package_name":"com.example"}"#.to_owned(), r#"[{"error":"InvalidPackageName"}]"#),
    ];
    for (body, results) in cases {
        let answer = send_json(&server.url(), &body).await;
        assert_eq!(answer.status, 200, "{body:.60}");
        assert!(answer.body.ends_with(&format!(r#""results":{results}}}"#)), "{body:.60} → {}", answer.body);
    }
    assert!(server.inbox().is_empty());
    // Exactly at the limits is fine, and the right package too.
    let at_limit = format!(
        r#"{{"to":"pkg","time_to_live":2419200,"restricted_package_name":"com.other","data":{{"k":"{}"}}}}"#,
        "x".repeat(4095)
    );
    assert!(send_json(&server.url(), &at_limit).await.body.contains("message_id"));
}

#[tokio::test]
async fn topics_conditions_and_dry_run() {
    let scenario = Scenario::default().token("/topics/busy", TokenRule::new(Behaviour::RateLimited).retry_after("60"));
    let server = server(scenario).await;
    assert_eq!(send_json(&server.url(), r#"{"to":"/topics/news"}"#).await.body, r#"{"message_id":416658607536}"#);
    assert_eq!(
        send_json(&server.url(), r#"{"condition":"'a' in topics"}"#).await.body,
        r#"{"message_id":416658607537}"#
    );
    let answer = send_json(&server.url(), r#"{"to":"/topics/busy"}"#).await;
    assert_eq!(answer.body, r#"{"error":"TopicsMessageRateExceeded"}"#);
    assert_eq!(answer.headers["retry-after"], "60");
    let answer = send_json(&server.url(), r#"{"registration_ids":["a","b"],"dry_run":true}"#).await;
    assert_eq!(
        answer.body,
        r#"{"multicast_id":-1,"success":2,"failure":0,"canonical_ids":0,"results":[{"message_id":"fake_message_id"},{"message_id":"fake_message_id"}]}"#
    );
    let tokens: Vec<String> = server.inbox().into_iter().map(|d| d.token).collect();
    assert_eq!(tokens, ["/topics/news", "'a' in topics"]);
}

#[tokio::test]
async fn scripted_replies_come_first_in_order() {
    let scenario = Scenario::default()
        .reply(Reply::status(503).retry_after("30").repeat(2))
        .reply(Reply::status(500).retry_after("Fri, 31 Dec 1999 23:59:59 GMT"))
        .reply(Reply::status(401))
        .reply(Reply { body: Some("oops".into()), ..Reply::status(400) });
    let server = server(scenario).await;
    let mut seen = Vec::new();
    for _ in 0..6 {
        let answer = send_json(&server.url(), r#"{"to":"a"}"#).await;
        let retry_after = answer.headers.get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        seen.push((answer.status.as_u16(), retry_after, answer.body.len()));
    }
    assert_eq!(
        seen,
        [
            (503, Some("30".into()), 0),
            (503, Some("30".into()), 0),
            (500, Some("Fri, 31 Dec 1999 23:59:59 GMT".into()), 0),
            (401, None, UNAUTHORIZED_HTML.len()),
            (400, None, 4),
            (200, None, 143),
        ]
    );
    assert_eq!(server.inbox().len(), 1);
    assert_eq!(server.inbox()[0].request, 6);
}

#[tokio::test]
async fn unavailable_n_times_then_delivered_once() {
    let server = server(Scenario::default().token("f", TokenRule::unavailable_times(2))).await;
    let mut bodies = Vec::new();
    for _ in 0..3 {
        bodies.push(send_json(&server.url(), r#"{"registration_ids":["f","ok"]}"#).await.body);
    }
    assert!(bodies[0].contains(r#"{"error":"Unavailable"}"#) && bodies[1].contains("Unavailable"));
    assert!(!bodies[2].contains("error"));
    let f: Vec<(u32, u64)> = server.inbox().iter().filter(|d| d.token == "f").map(|d| (d.attempt, d.request)).collect();
    assert_eq!(f, [(3, 3)]);
    assert_eq!(server.inbox().iter().filter(|d| d.token == "ok").count(), 3);
}

#[tokio::test]
async fn seeded_faults_are_reproducible() {
    let scenario = Scenario {
        faults: Faults { unavailable: 0.3, server_error: 0.2, retry_after: Some("2".into()), ..Faults::default() },
        ..Scenario::default()
    };
    let tokens: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
    let body = json!({ "registration_ids": tokens }).to_string();
    let mut runs = Vec::new();
    for seed in [7, 7, 8] {
        let server = MockServer::builder().api_key(KEY).scenario(scenario.clone()).seed(seed).start().await.unwrap();
        let mut answers = Vec::new();
        for _ in 0..10 {
            let answer = send_json(&server.url(), &body).await;
            answers.push((answer.status.as_u16(), answer.body));
        }
        runs.push(answers);
    }
    assert_eq!(runs[0], runs[1]);
    assert_ne!(runs[0], runs[2]);
    let statuses: Vec<u16> = runs[0].iter().map(|(s, _)| *s).collect();
    assert!(statuses.contains(&503) && statuses.contains(&200), "{statuses:?}");
    assert!(runs[0].iter().any(|(_, b)| b.contains("Unavailable")));
}

#[tokio::test]
async fn inbox_and_requests_over_http() {
    let server = server(Scenario::default()).await;
    send_json(&server.url(), r#"{"registration_ids":["a","b"],"collapse_key":"k","data":{"x":"1"}}"#).await;
    let client = client();
    let inbox = request(&client, Method::GET, &format!("{}/_mock/inbox", server.base_url()), &[], "").await;
    assert_eq!(
        inbox.body,
        format!(
            concat!(
                r#"[{{"index":1,"token":"a","message_id":"{}","data":{{"x":"1"}},"options":{{"collapse_key":"k"}},"attempt":1,"request":1}},"#,
                r#"{{"index":2,"token":"b","message_id":"{}","data":{{"x":"1"}},"options":{{"collapse_key":"k"}},"attempt":1,"request":1}}]"#
            ),
            id(1),
            id(2)
        )
    );
    // Pages: the deliveries after a number, at most a limit.
    for (query, token) in [("after=1&limit=5", "b"), ("after=0&limit=1", "a")] {
        let url = format!("{}/_mock/inbox?{query}", server.base_url());
        let page: serde_json::Value =
            serde_json::from_str(&request(&client, Method::GET, &url, &[], "").await.body).unwrap();
        assert_eq!((page.as_array().unwrap().len(), &page[0]["token"]), (1, &serde_json::json!(token)), "{query}");
    }
    let stats = request(&client, Method::GET, &format!("{}/_mock/stats", server.base_url()), &[], "").await;
    let stats: serde_json::Value = serde_json::from_str(&stats.body).unwrap();
    assert_eq!((&stats["inbox_entries"], &stats["inbox_dropped"]), (&2.into(), &0.into()), "{stats}");
    let requests = request(&client, Method::GET, &format!("{}/_mock/requests", server.base_url()), &[], "").await;
    let requests: serde_json::Value = serde_json::from_str(&requests.body).unwrap();
    assert_eq!(requests[0]["status"], 200);
    assert_eq!(requests[0]["authorized"], true);
    assert!(!requests.to_string().contains(KEY), "the API key must not be logged");
    let cleared = request(&client, Method::DELETE, &format!("{}/_mock/inbox", server.base_url()), &[], "").await;
    assert_eq!(cleared.body, "[]");
    assert!(server.inbox().is_empty());
    send_json(&server.url(), r#"{"to":"a"}"#).await;
    request(&client, Method::POST, &format!("{}/_mock/reset", server.base_url()), &[], "").await;
    assert!(server.inbox().is_empty() && server.requests().is_empty());
    // After a reset the ids start again.
    assert!(send_json(&server.url(), r#"{"to":"a"}"#).await.body.contains(&id(1)));
    let wrong = request(&client, Method::GET, &server.url(), &[], "").await;
    assert_eq!((wrong.status.as_u16(), wrong.headers["allow"].to_str().unwrap()), (405, "POST"));
    assert_eq!(request(&client, Method::GET, &format!("{}/nope", server.base_url()), &[], "").await.status, 404);
}

/// "Not registered, then canonical, then ok": each attempt of a token gets its step, and
/// the last step repeats. Every behaviour mixes, including a Retry-After per step.
#[tokio::test]
async fn a_token_follows_its_steps_and_the_last_repeats() {
    use gcm_mock::Step;
    let steps = TokenRule::steps([
        Step::new(Behaviour::NotRegistered),
        Step::new(Behaviour::Unavailable).retry_after("7"),
        Step::canonical("moved-new"),
        Step::new(Behaviour::Ok),
    ]);
    let server = server(Scenario::default().token("moved", steps)).await;
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let answer = send_json(&server.url(), r#"{"registration_ids":["moved"]}"#).await;
        let retry_after = answer.headers.get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        bodies.push((answer.body, retry_after));
    }
    assert!(bodies[0].0.contains(r#"{"error":"NotRegistered"}"#), "{:?}", bodies[0]);
    assert!(bodies[1].0.contains(r#"{"error":"Unavailable"}"#) && bodies[1].1.as_deref() == Some("7"));
    assert!(bodies[2].0.contains(r#""registration_id":"moved-new""#), "{:?}", bodies[2]);
    for (body, retry_after) in &bodies[3..] {
        assert!(body.contains(r#""success":1,"failure":0,"canonical_ids":0"#) && retry_after.is_none(), "{body}");
    }
    assert_eq!(server.inbox().iter().map(|d| d.attempt).collect::<Vec<_>>(), [3, 4, 5]);
    // From a file, too; steps with `times` are refused.
    let file = "[tokens.t]\nsteps = [{ result = \"not_registered\" }, { result = \"ok\" }]\n";
    assert_eq!(Scenario::from_toml(file).unwrap().tokens["t"].steps.len(), 2);
    let both = Scenario::from_toml("[tokens.t]\ntimes = 2\nsteps = [{ result = \"ok\" }]\n").unwrap_err();
    assert!(both.to_string().contains("steps"), "{both}");
}

/// A Retry-After HTTP-date computed when answering: a client that reads it 30 s ahead.
#[tokio::test]
async fn a_retry_after_date_is_computed_at_response_time() {
    let rule = TokenRule::new(Behaviour::Unavailable).retry_after_date_in(30);
    let scenario = Scenario::default().token("busy", rule).reply(Reply::status(503).retry_after_date_in(30));
    let server = server(scenario).await;
    let gcm = gcm_proto::Gcm::new(KEY).unwrap();
    let message = gcm_proto::Message::multicast(["busy"]);
    for _ in 0..2 {
        // First the scripted 503, then the token's Unavailable: both carry a date.
        let answer = send_json(&server.url(), r#"{"registration_ids":["busy"]}"#).await;
        let mut response = http::Response::new(answer.body.clone());
        *response.status_mut() = answer.status;
        *response.headers_mut() = answer.headers.clone();
        let date = answer.headers["retry-after"].to_str().unwrap().to_owned();
        assert!(date.ends_with(" GMT"), "an HTTP-date: {date}");
        let outcome = gcm.decode(&message, &response, std::time::SystemTime::now()).unwrap();
        let wait = outcome.retry_after().expect("a delay from the date").as_secs_f64();
        assert!((29.0..=31.0).contains(&wait), "{date} read as {wait} s");
    }
}

/// An empty token among `registration_ids` gets MissingRegistration, as `to: ""` does.
#[tokio::test]
async fn an_empty_token_in_a_multicast_is_a_missing_registration() {
    let server = server(Scenario::default()).await;
    let answer = send_json(&server.url(), r#"{"registration_ids":["","x"]}"#).await;
    assert!(answer.body.contains(r#""success":1,"failure":1"#), "{}", answer.body);
    assert!(answer.body.contains(r#""results":[{"error":"MissingRegistration"},{"message_id":"#), "{}", answer.body);
    assert_eq!(server.inbox().iter().map(|d| d.token.as_str()).collect::<Vec<_>>(), ["x"]);
}

/// A count far over the limit is refused when loading, not allocated.
#[test]
fn a_huge_repeat_is_refused_with_a_clear_error() {
    let error = Scenario::from_toml("[[replies]]\nstatus = 503\nrepeat = 4294967295\n").unwrap_err().to_string();
    assert!(error.contains("replies[0].repeat = 4294967295") && error.contains("limit"), "{error}");
    let error = Scenario::from_toml("[tokens.t]\nresult = \"unavailable\"\ntimes = 4294967295\n").unwrap_err();
    assert!(error.to_string().contains("times"), "{error}");
}

/// With recording off the data's limits are read from the raw body, not from a map of
/// values: every answer is byte for byte the recording engine's.
#[test]
fn data_limits_read_without_recording_answer_as_with_it() {
    let big = "x".repeat(4090);
    let short = "x".repeat(4079);
    let cases = [
        (r#"{"to":"a","data":{"k":"v"}}"#.to_owned(), "message_id"),
        (format!(r#"{{"to":"a","data":{{"kk":"{big}","k":"xyz"}}}}"#), "message_id"), // 4096: at the limit
        (format!(r#"{{"to":"a","data":{{"kk":"{big}","k":"xyzw"}}}}"#), "MessageTooBig"), // 4097: over it
        // Escapes count decoded: 4090 + 2 + 1 + 3 = 4096 with "\u0041" one byte.
        (format!(r#"{{"to":"a","data":{{"kk":"{big}","k":"\u0041yz"}}}}"#), "message_id"),
        (format!(r#"{{"to":"a","data":{{"kk":"{big}","\u006b":"xyzw"}}}}"#), "MessageTooBig"),
        // A key twice counts once, with its last value (the first alone would be over).
        (format!(r#"{{"to":"a","data":{{"k":"{big}{big}","k":"v"}}}}"#), "message_id"),
        (format!(r#"{{"to":"a","data":{{"k":"v","k":"{big}{big}"}}}}"#), "MessageTooBig"),
        // Values that are not strings count as their compact JSON: 2 + 4079 + 3 + 12 = 4096,
        // and 2 + 4079 + 4 ("n", 1.5) + 5 + 6 = 4096.
        (format!(r#"{{"to":"a","data":{{"kk":"{short}","n":  12 ,"o":{{ "a" : [1, 2] }}}}}}"#), "message_id"),
        (format!(r#"{{"to":"a","data":{{"kk":"{short}","n":1.50,"b":true,"c":"xxxxx"}}}}"#), "message_id"),
        (r#"{"to":"a","data":{"from":"x"}}"#.to_owned(), "InvalidDataKey"),
        (r#"{"to":"a","data":{"google.c":"x"}}"#.to_owned(), "InvalidDataKey"),
        (r#"{"to":"a","data":{"gcm":"x"}}"#.to_owned(), "InvalidDataKey"),
        (r#"{"to":"a","data":{"\u0066rom":"x"}}"#.to_owned(), "InvalidDataKey"),
        (r#"{"to":"a","data":null}"#.to_owned(), "message_id"),
        (r#"{"to":"a","data":{}}"#.to_owned(), "message_id"),
        // Refused: the reason comes before the other checks.
        (r#"{"to":"a","data":"text"}"#.to_owned(), "must be a JSON object"),
        (r#"{"to":"a","registration_ids":["b"],"data":[1]}"#.to_owned(), "must be a JSON object"),
        (r#"{"to":"a","data":{"k":"v",}}"#.to_owned(), "JSON_PARSING_ERROR"),
    ];
    for (body, expect) in cases {
        let request = http::Request::post("/gcm/send")
            .header("authorization", "key=k")
            .header("content-type", "application/json")
            .body(body.clone().into_bytes())
            .unwrap();
        let mut recording = Engine::new(Scenario::default(), Vec::new());
        let mut not_recording = Engine::new(Scenario::default(), Vec::new());
        not_recording.set_recording(false);
        let expected = recording.handle(&request, 1);
        let answer = not_recording.handle(&request, 1);
        assert_eq!(answer.status(), expected.status(), "{body:.80}");
        assert_eq!(answer.body(), expected.body(), "{body:.80}");
        let text = String::from_utf8_lossy(answer.body());
        assert!(text.contains(expect), "{body:.80} → {text}");
    }
}
