//! Exact request bytes for every option, in both formats.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use gcm_proto::http::{Method, Request};
use gcm_proto::{BuildError, FCM_URL, Gcm, Message, Notification, Priority, Target};
use serde_json::json;

fn gcm() -> Gcm {
    Gcm::new("AIzaSyKEY").unwrap()
}

fn body(request: &Request<Vec<u8>>) -> &str {
    std::str::from_utf8(request.body()).unwrap()
}

fn header<'a>(request: &'a Request<Vec<u8>>, name: &str) -> &'a str {
    request.headers()[name].to_str().unwrap()
}

#[test]
fn json_multicast_head_and_body() {
    let request = gcm().encode(&Message::multicast(["tokA", "tokB"]).data("kind", "sync")).unwrap();
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.uri(), "https://fcm.googleapis.com/fcm/send");
    assert_eq!(header(&request, "authorization"), "key=AIzaSyKEY");
    assert_eq!(header(&request, "content-type"), "application/json");
    assert_eq!(header(&request, "content-length"), request.body().len().to_string());
    assert_eq!(request.headers().len(), 3);
    assert_eq!(body(&request), r#"{"registration_ids":["tokA","tokB"],"data":{"kind":"sync"}}"#);
}

#[test]
fn json_every_option_in_a_stable_order() {
    let message = Message::multicast(["a"])
        .data("n", 3)
        .data("b", true)
        .data("nested", json!({"x": [1, "y"]}))
        .data("a", "é\"\n")
        .notification(Notification {
            color: Some("#ff0000".into()),
            body_loc_args: Some(json!(["1"])),
            extra: [("z_new".to_owned(), json!("v"))].into_iter().collect(),
            ..Notification::new("Hi", "There")
        })
        .collapse_key("inbox")
        .time_to_live(0)
        .delay_while_idle(false)
        .restricted_package_name("com.example")
        .dry_run(true)
        .priority(Priority::High)
        .content_available(true)
        .mutable_content(false)
        .option("fcm_options", json!({"analytics_label": "l"}))
        .option("android_channel_id", "c");
    let request = gcm().encode(&message).unwrap();
    assert_eq!(
        body(&request),
        concat!(
            r#"{"registration_ids":["a"],"collapse_key":"inbox","priority":"high","content_available":true,"#,
            r#""mutable_content":false,"delay_while_idle":false,"time_to_live":0,"#,
            r#""restricted_package_name":"com.example","dry_run":true,"#,
            r#""android_channel_id":"c","fcm_options":{"analytics_label":"l"},"#,
            r#""data":{"a":"é\"\n","b":true,"n":3,"nested":{"x":[1,"y"]}},"#,
            r##""notification":{"title":"Hi","body":"There","color":"#ff0000","body_loc_args":["1"],"z_new":"v"}}"##
        )
    );
}

#[test]
fn json_single_targets() {
    let encode = |m: Message| String::from_utf8(gcm().encode(&m).unwrap().into_body()).unwrap();
    assert_eq!(encode(Message::to("tok").time_to_live(60)), r#"{"to":"tok","time_to_live":60}"#);
    assert_eq!(encode(Message::topic("news")), r#"{"to":"/topics/news"}"#);
    assert_eq!(
        encode(Message::condition("'a' in topics && 'b' in topics").priority(Priority::Normal)),
        r#"{"condition":"'a' in topics && 'b' in topics","priority":"normal"}"#
    );
}

#[test]
fn plain_text_every_option() {
    let message = Message::plain_text("tok/+=&é")
        .data("score", "3x1")
        .data("n", 5)
        .data("flag", true)
        .data("skipped", serde_json::Value::Null)
        .collapse_key("a b")
        .time_to_live(108)
        .delay_while_idle(true)
        .restricted_package_name("com.example")
        .dry_run(false)
        .priority(Priority::High)
        .content_available(true)
        .mutable_content(false)
        .option("new_flag", true)
        .option("new_number", 7);
    let request = gcm().encode(&message).unwrap();
    assert_eq!(header(&request, "content-type"), "application/x-www-form-urlencoded;charset=UTF-8");
    assert_eq!(header(&request, "content-length"), request.body().len().to_string());
    assert_eq!(
        body(&request),
        concat!(
            "registration_id=tok%2F%2B%3D%26%C3%A9&collapse_key=a+b&priority=high&content_available=1",
            "&mutable_content=0&delay_while_idle=1&time_to_live=108&restricted_package_name=com.example",
            "&dry_run=0&new_flag=1&new_number=7&data.flag=true&data.n=5&data.score=3x1"
        )
    );
}

#[test]
fn plain_text_to_a_one_token_multicast() {
    let mut message = Message::multicast(["tok"]);
    message.format = gcm_proto::Format::PlainText;
    assert_eq!(body(&gcm().encode(&message).unwrap()), "registration_id=tok");
}

#[test]
fn only_what_cannot_be_represented_is_rejected() {
    let gcm = gcm();
    let gcm = |m: &Message| gcm.encode(m).map(Request::into_body);
    let plain = |m: Message| Message { format: gcm_proto::Format::PlainText, ..m };
    assert_eq!(gcm(&Message::multicast(Vec::<String>::new())), Err(BuildError::NoRecipients));
    assert!(matches!(gcm(&plain(Message::multicast(["a", "b"]))), Err(BuildError::PlainTextTarget { .. })));
    assert!(matches!(gcm(&plain(Message::condition("c"))), Err(BuildError::PlainTextTarget { .. })));
    assert_eq!(
        gcm(&Message::plain_text("t").data("list", json!([1]))),
        Err(BuildError::PlainTextNested { field: "data.list".into() })
    );
    assert_eq!(
        gcm(&Message::plain_text("t").option("obj", json!({}))),
        Err(BuildError::PlainTextNested { field: "obj".into() })
    );
    assert_eq!(
        gcm(&Message::plain_text("t").notification(Notification::new("a", "b"))),
        Err(BuildError::PlainTextUnsupported { field: "notification".into() })
    );
    assert_eq!(
        gcm(&Message::to("t").option("time_to_live", 5)),
        Err(BuildError::DuplicateField { field: "time_to_live".into() })
    );
    assert_eq!(
        gcm(&Message::to("t").option("registration_ids", json!(["x"]))),
        Err(BuildError::DuplicateField { field: "registration_ids".into() })
    );
}

#[test]
fn the_server_judges_its_own_limits() {
    let many: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
    let message = Message::multicast(many).time_to_live(u32::MAX).data("from", "x".repeat(5000));
    let request = gcm().encode(&message).unwrap();
    assert!(body(&request).contains(r#""time_to_live":4294967295"#));
    assert_eq!(message.check_limits().unwrap_err().len(), 4);
}

#[test]
fn endpoints_and_keys() {
    let fcm = gcm().with_endpoint(FCM_URL).unwrap();
    assert_eq!(fcm.encode(&Message::to("t")).unwrap().uri(), FCM_URL);
    let mock = gcm().with_endpoint("http://127.0.0.1:4000/gcm/send").unwrap();
    assert_eq!(mock.encode(&Message::to("t")).unwrap().uri(), "http://127.0.0.1:4000/gcm/send");
    for bad in ["", "/gcm/send", "ftp://host/x", "not a url", "http://"] {
        assert!(matches!(gcm().with_endpoint(bad), Err(BuildError::InvalidEndpoint { .. })), "{bad:?}");
    }
    assert_eq!(Gcm::new("bad\nkey").unwrap_err(), BuildError::InvalidApiKey);
}

#[test]
fn the_api_key_stays_out_of_debug_output() {
    let gcm = gcm();
    assert!(!format!("{gcm:?}").contains("AIzaSyKEY"));
    let request = gcm.encode(&Message::to("t")).unwrap();
    assert!(!format!("{request:?}").contains("AIzaSyKEY"));
    assert!(request.headers()["authorization"].is_sensitive());
}

#[test]
fn encoding_is_deterministic() {
    let message = Message::with_target(Target::To("t".into())).data("z", 1).data("a", 2).option("y", 1).option("b", 2);
    let first = gcm().encode(&message).unwrap();
    assert_eq!(body(&first), r#"{"to":"t","b":2,"y":1,"data":{"a":2,"z":1}}"#);
    assert_eq!(first.body(), gcm().encode(&message.clone()).unwrap().body());
}

#[test]
fn an_empty_api_key_is_refused() {
    for key in ["", "   "] {
        assert!(matches!(Gcm::new(key), Err(gcm_proto::BuildError::InvalidApiKey)), "{key:?}");
    }
}
