//! The FCM v1 message model: every field the REST reference types is typed here, written on
//! the wire byte for byte as FCM reads it, and nothing a caller writes is dropped — any JSON
//! object `Content` accepts serializes back to the same JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::time::Duration;

use gcm_proto::v1::{
    AndroidConfig, AndroidFcmOptions, AndroidNotification, AndroidPriority, ApnsConfig, ApnsFcmOptions, Aps, ApsAlert,
    Color, Content, CriticalSound, FcmOptions, InterruptionLevel, LightSettings, Message, Multicast, Notification,
    NotificationPriority, Problem, Proxy, Target, Visibility, WebpushAction, WebpushConfig, WebpushFcmOptions,
    WebpushNotification, check, encode_body,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Every platform block built with its setters gives the exact bytes FCM's REST reference
/// describes (fields in the struct's order, durations as `"3600s"`, APNs' hyphenated keys).
#[test]
fn every_platform_block_is_typed_and_written_as_fcm_reads_it() {
    let android = AndroidConfig::new()
        .collapse_key("score")
        .priority(AndroidPriority::High)
        .ttl(Duration::from_millis(3_600_500))
        .restricted_package_name("com.example")
        .data("k", "android")
        .notification(
            AndroidNotification::new("t", "b")
                .icon("ic")
                .color("#112233")
                .sound("default")
                .tag("tag")
                .click_action("OPEN")
                .body_loc_key("bk")
                .body_loc_args(vec!["b1".to_owned()])
                .title_loc_key("tk")
                .title_loc_args(vec!["t1".to_owned()])
                .channel_id("news")
                .ticker("tick")
                .sticky(true)
                .event_time("2024-05-01T12:00:00Z")
                .local_only(false)
                .notification_priority(NotificationPriority::Max)
                .default_sound(true)
                .default_vibrate_timings(false)
                .default_light_settings(false)
                .vibrate_timings(vec![Duration::from_millis(500), Duration::from_secs(1)])
                .visibility(Visibility::Private)
                .notification_count(3)
                .light_settings(
                    LightSettings::default()
                        .color(Color::from_hex("#ff000080").unwrap())
                        .light_on_duration(Duration::from_millis(200))
                        .light_off_duration(Duration::from_micros(1)),
                )
                .image("https://example.com/a.png")
                .proxy(Proxy::Deny),
        )
        .fcm_options(AndroidFcmOptions::default().analytics_label("a"))
        .direct_boot_ok(true)
        .bandwidth_constrained_ok(true)
        .restricted_satellite_ok(false);
    let apns = ApnsConfig::new()
        .header("apns-priority", "10")
        .aps(
            Aps::new()
                .alert(ApsAlert::default().title("t").subtitle("s").body("b").loc_key("lk").loc_args(vec!["x".into()]))
                .badge(7)
                .sound(CriticalSound::new("alarm.caf", 0.5))
                .thread_id("thread")
                .category("INVITE")
                .content_available()
                .mutable_content()
                .interruption_level(InterruptionLevel::TimeSensitive)
                .relevance_score(0.75),
        )
        .fcm_options(ApnsFcmOptions::default().analytics_label("i").image("https://example.com/i.png"))
        .live_activity_token("lat");
    let webpush = WebpushConfig::new().header("Urgency", "high").data("k", "web").notification(
        WebpushNotification::new("t", "b")
            .icon("/i.png")
            .require_interaction(true)
            .vibrate(vec![100, 50])
            .timestamp(1_700_000_000_000_i64)
            .action(WebpushAction::new("like", "Like").icon("/like.png")),
    );
    let webpush = webpush.fcm_options(WebpushFcmOptions::default().link("https://example.com").analytics_label("w"));
    let message = Message::token("tok")
        .data("k", "v")
        .notification(Notification::new("Hello", "World"))
        .android(android)
        .apns(apns)
        .webpush(webpush)
        .fcm_options(FcmOptions::default())
        .analytics_label("all");

    let expected = concat!(
        r##"{"message":{"token":"tok","data":{"k":"v"},"notification":{"title":"Hello","body":"World"},"##,
        r##""android":{"collapse_key":"score","priority":"HIGH","ttl":"3600.500s","restricted_package_name":"com.example","##,
        r##""data":{"k":"android"},"notification":{"title":"t","body":"b","icon":"ic","color":"#112233","sound":"default","##,
        r##""tag":"tag","click_action":"OPEN","body_loc_key":"bk","body_loc_args":["b1"],"title_loc_key":"tk","##,
        r##""title_loc_args":["t1"],"channel_id":"news","ticker":"tick","sticky":true,"event_time":"2024-05-01T12:00:00Z","##,
        r##""local_only":false,"notification_priority":"PRIORITY_MAX","default_sound":true,"default_vibrate_timings":false,"##,
        r##""default_light_settings":false,"vibrate_timings":["0.500s","1s"],"visibility":"PRIVATE","notification_count":3,"##,
        r##""light_settings":{"color":{"red":1.0,"green":0.0,"blue":0.0,"alpha":0.5019607843137255},"##,
        r##""light_on_duration":"0.200s","light_off_duration":"0.000001s"},"image":"https://example.com/a.png","proxy":"DENY"},"##,
        r##""fcm_options":{"analytics_label":"a"},"direct_boot_ok":true,"bandwidth_constrained_ok":true,"restricted_satellite_ok":false},"##,
        r##""apns":{"headers":{"apns-priority":"10"},"payload":{"aps":{"alert":{"title":"t","subtitle":"s","body":"b","##,
        r##""loc-key":"lk","loc-args":["x"]},"badge":7,"sound":{"critical":1,"name":"alarm.caf","volume":0.5},"##,
        r##""thread-id":"thread","category":"INVITE","content-available":1,"mutable-content":1,"##,
        r##""interruption-level":"time-sensitive","relevance-score":0.75}},"##,
        r##""fcm_options":{"analytics_label":"i","image":"https://example.com/i.png"},"live_activity_token":"lat"},"##,
        r##""webpush":{"headers":{"Urgency":"high"},"data":{"k":"web"},"notification":{"title":"t","body":"b","icon":"/i.png","##,
        r##""requireInteraction":true,"timestamp":1700000000000,"vibrate":[100,50],"actions":[{"action":"like","title":"Like","icon":"/like.png"}]},"##,
        r##""fcm_options":{"link":"https://example.com","analytics_label":"w"}},"##,
        r##""fcm_options":{"analytics_label":"all"}}}"##,
    );
    assert_eq!(String::from_utf8(encode_body(&message)).unwrap(), expected);
    // And it reads back as the same message.
    let body: Value = serde_json::from_str(expected).unwrap();
    let mut fields = body["message"].as_object().unwrap().clone();
    fields.remove("token");
    let content: Content = serde_json::from_value(Value::Object(fields)).unwrap();
    assert_eq!(content, message.content);
    assert!(check(&message).is_empty(), "{:?}", check(&message));
}

/// "What was seen" 2: unknown fields, at the top or nested, are kept and sent.
#[test]
fn unknown_fields_survive_at_every_level() {
    let json = json!({
        "dta": {"k": "v"},
        "notification": {"titel": "x"},
        "android": {"priorty": "HIGH", "notification": {"chanel_id": "c"}, "fcm_options": {"x": 1}},
        "apns": {"payload": {"aps": {"alert": {"title": "t", "new-key": 1}, "future": true}, "custom": [1]}},
        "webpush": {"notification": {"dir": "rtl", "someday": {}}}
    });
    let content: Content = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&content).unwrap(), json);
    let message = Message::new(Target::Token("t".into()), content);
    let body: Value = serde_json::from_slice(&encode_body(&message)).unwrap();
    assert_eq!(body["message"]["android"]["notification"]["chanel_id"], "c");
    assert_eq!(body["message"]["dta"]["k"], "v");
    // check names them as FCM does; the APNs payload and the web notification are passed on
    // by FCM unchecked, so their unknown keys are not violations.
    let unknown: Vec<_> = check(&message)
        .into_iter()
        .map(|v| match v.problem {
            Problem::UnknownField { name } => format!("{}.{name}", v.field),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        unknown,
        [
            "message.dta",
            "message.notification.titel",
            "message.android.priorty",
            "message.android.notification.chanel_id",
            "message.android.fcm_options.x"
        ]
    );
}

/// "What was seen" 5: v1's limits, each named by its field.
#[test]
fn check_names_every_limit_fcm_enforces() {
    let problems = |message: &Message| -> Vec<(String, Problem)> {
        check(message).into_iter().map(|v| (v.field, v.problem)).collect()
    };
    assert_eq!(
        problems(&Message::topic("bad topic!")),
        [("message.topic".into(), Problem::TopicName { name: "bad topic!".into() })]
    );
    assert!(check(&Message::topic("/topics/news")).is_empty());
    assert!(matches!(
        &problems(&Message::condition("this is not a condition"))[..],
        [(field, Problem::ConditionSyntax { .. })] if field == "message.condition"
    ));
    let six = (1..=6).map(|i| format!("'t{i}' in topics")).collect::<Vec<_>>().join(" || ");
    assert_eq!(problems(&Message::condition(six)), [("message.condition".into(), Problem::TooManyTopics { count: 6 })]);
    assert!(check(&Message::condition("'a' in topics && !('b' in topics)")).is_empty());

    let reserved =
        Message::token("t").data("from", "x").data("message_type", "x").data("google.x", "x").data("gcm.n", "x");
    let keys: Vec<_> = problems(&reserved)
        .into_iter()
        .map(|(_, p)| match p {
            Problem::ReservedDataKey { key } => key,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(keys, ["from", "gcm.n", "google.x", "message_type"]);
    assert!(check(&Message::token("t").data("googlex", "x").data("fromage", "x")).is_empty());

    let big = "x".repeat(4095);
    assert!(check(&Message::token("t").data("k", big.clone())).is_empty());
    assert_eq!(
        problems(&Message::token("t").data("k", big.clone() + "y")),
        [("message.data".into(), Problem::PayloadTooBig { bytes: 4097, limit: 4096 })]
    );
    assert_eq!(
        problems(&Message::topic("news").data("k", "x".repeat(2048))),
        [("message.data".into(), Problem::PayloadTooBig { bytes: 2049, limit: 2048 })]
    );

    assert!(check(&Message::token("t").android_ttl(Duration::from_secs(2_419_200))).is_empty());
    assert_eq!(
        problems(&Message::token("t").android_ttl(Duration::from_millis(2_419_200_001))),
        [("message.android.ttl".into(), Problem::TtlTooLong { ttl: "2419200.001s".into() })]
    );
    // Google reads enum names in any case: firebase-admin-python sends "high".
    assert!(check(&Message::token("t").android_priority("high".into())).is_empty());
    let priority: AndroidPriority = "URGENT".into();
    assert_eq!(
        problems(&Message::token("t").android_priority(priority)),
        [("message.android.priority".into(), Problem::UnknownValue { value: "URGENT".into() })]
    );
}

/// "What was seen" 4: a multicast to Firebase installation ids sends `fid`, not `token`.
#[test]
fn a_multicast_to_installation_ids_sends_fid() {
    let multicast = Multicast::fids(["fid-1"]).data("k", "v");
    let body = encode_body(&multicast.message(0).unwrap());
    assert_eq!(body, br#"{"message":{"fid":"fid-1","data":{"k":"v"}}}"#);
    let template = gcm_proto::v1::Template::of(&multicast);
    assert_eq!(template.body("fid-1"), body);
    let back: Multicast = serde_json::from_value(serde_json::to_value(&multicast).unwrap()).unwrap();
    assert_eq!(back, multicast);
}

// ---- nothing dropped: a property over generated JSON ----

/// What a field holds, as the REST reference types it.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Int,
    Float,
    Duration,
    Durations,
    Strings,
    StringMap,
    Millis,
    Enum(&'static [&'static str]),
    Object(&'static [(&'static str, Kind)]),
    /// A text, or this object.
    TextOr(&'static [(&'static str, Kind)]),
    Json,
}

use Kind::*;

const COLOR: &[(&str, Kind)] = &[("red", Float), ("green", Float), ("blue", Float), ("alpha", Float)];
const LIGHT: &[(&str, Kind)] =
    &[("color", Object(COLOR)), ("light_on_duration", Duration), ("light_off_duration", Duration)];
const ANDROID_NOTIFICATION: &[(&str, Kind)] = &[
    ("title", Str),
    ("body", Str),
    ("icon", Str),
    ("color", Str),
    ("sound", Str),
    ("tag", Str),
    ("click_action", Str),
    ("body_loc_key", Str),
    ("body_loc_args", Strings),
    ("title_loc_key", Str),
    ("title_loc_args", Strings),
    ("channel_id", Str),
    ("ticker", Str),
    ("sticky", Bool),
    ("event_time", Str),
    ("local_only", Bool),
    ("notification_priority", Enum(&["PRIORITY_MIN", "PRIORITY_HIGH", "PRIORITY_FUTURE"])),
    ("default_sound", Bool),
    ("default_vibrate_timings", Bool),
    ("default_light_settings", Bool),
    ("vibrate_timings", Durations),
    ("visibility", Enum(&["PUBLIC", "SECRET", "SOMEDAY"])),
    ("notification_count", Int),
    ("light_settings", Object(LIGHT)),
    ("image", Str),
    ("proxy", Enum(&["ALLOW", "IF_PRIORITY_LOWERED", "LATER"])),
];
const LABEL: &[(&str, Kind)] = &[("analytics_label", Str)];
const ANDROID: &[(&str, Kind)] = &[
    ("collapse_key", Str),
    ("priority", Enum(&["NORMAL", "HIGH", "URGENT"])),
    ("ttl", Duration),
    ("restricted_package_name", Str),
    ("data", StringMap),
    ("notification", Object(ANDROID_NOTIFICATION)),
    ("fcm_options", Object(LABEL)),
    ("direct_boot_ok", Bool),
    ("bandwidth_constrained_ok", Bool),
    ("restricted_satellite_ok", Bool),
];
const ALERT: &[(&str, Kind)] = &[
    ("title", Str),
    ("subtitle", Str),
    ("body", Str),
    ("launch-image", Str),
    ("title-loc-key", Str),
    ("title-loc-args", Strings),
    ("subtitle-loc-key", Str),
    ("subtitle-loc-args", Strings),
    ("loc-key", Str),
    ("loc-args", Strings),
    ("action-loc-key", Str),
];
const SOUND: &[(&str, Kind)] = &[("critical", Int), ("name", Str), ("volume", Float)];
const APS: &[(&str, Kind)] = &[
    ("alert", TextOr(ALERT)),
    ("badge", Int),
    ("sound", TextOr(SOUND)),
    ("thread-id", Str),
    ("category", Str),
    ("content-available", Int),
    ("mutable-content", Int),
    ("target-content-id", Str),
    ("interruption-level", Enum(&["passive", "critical", "louder"])),
    ("relevance-score", Float),
    ("filter-criteria", Str),
    ("timestamp", Int),
    ("event", Str),
    ("content-state", Json),
    ("stale-date", Int),
    ("dismissal-date", Int),
];
const PAYLOAD: &[(&str, Kind)] = &[("aps", Object(APS))];
const APNS: &[(&str, Kind)] = &[
    ("headers", StringMap),
    ("payload", Object(PAYLOAD)),
    ("fcm_options", Object(&[("analytics_label", Str), ("image", Str)])),
    ("live_activity_token", Str),
];
const ACTION: &[(&str, Kind)] = &[("action", Str), ("title", Str), ("icon", Str)];
const WEB_NOTIFICATION: &[(&str, Kind)] = &[
    ("title", Str),
    ("body", Str),
    ("icon", Str),
    ("badge", Str),
    ("image", Str),
    ("lang", Str),
    ("tag", Str),
    ("dir", Str),
    ("renotify", Bool),
    ("requireInteraction", Bool),
    ("silent", Bool),
    ("timestamp", Int),
    ("vibrate", Millis),
    ("actions", Object(ACTION)),
    ("data", Json),
];
const WEBPUSH: &[(&str, Kind)] = &[
    ("headers", StringMap),
    ("data", StringMap),
    ("notification", Object(WEB_NOTIFICATION)),
    ("fcm_options", Object(&[("link", Str), ("analytics_label", Str)])),
];
const CONTENT: &[(&str, Kind)] = &[
    ("data", StringMap),
    ("notification", Object(&[("title", Str), ("body", Str), ("image", Str)])),
    ("android", Object(ANDROID)),
    ("apns", Object(APNS)),
    ("webpush", Object(WEBPUSH)),
    ("fcm_options", Object(LABEL)),
];

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z ]{0,6}".prop_map(Value::from),
        (-1e6..1e6f64).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn value(kind: Kind) -> BoxedStrategy<Value> {
    match kind {
        Str => "[a-zA-Z0-9 #:/._-]{0,12}".prop_map(Value::from).boxed(),
        Bool => any::<bool>().prop_map(Value::from).boxed(),
        Int => any::<i32>().prop_map(Value::from).boxed(),
        Float => (0.0..1.0f64).prop_map(Value::from).boxed(),
        Duration => duration().prop_map(Value::from).boxed(),
        Durations => prop::collection::vec(duration(), 0..3).prop_map(Value::from).boxed(),
        Strings => prop::collection::vec("[a-z]{0,5}", 0..3).prop_map(Value::from).boxed(),
        StringMap => prop::collection::btree_map("[a-zA-Z-]{1,8}", "[a-z]{0,5}", 1..3)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, Value::from(v))).collect()))
            .boxed(),
        Millis => prop::collection::vec(0..10_000u64, 0..4).prop_map(Value::from).boxed(),
        Enum(values) => prop::sample::select(values).prop_map(Value::from).boxed(),
        Object(fields) if fields.as_ptr() == ACTION.as_ptr() => {
            prop::collection::vec(object(ACTION), 0..3).prop_map(Value::from).boxed()
        }
        Object(fields) => object(fields).boxed(),
        TextOr(fields) => prop_oneof!["[a-z]{0,6}".prop_map(Value::from), object(fields)].boxed(),
        Json => any_json().prop_filter("a value, not null", |v| !v.is_null()).boxed(),
    }
}

/// A duration as FCM's JSON printer writes it.
fn duration() -> impl Strategy<Value = String> {
    (0..3_000_000u64, prop_oneof![Just(0u32), (1..1000u32).prop_map(|m| m * 1_000_000), 1..1_000_000_000u32])
        .prop_map(|(s, n)| gcm_proto::v1::duration::text(std::time::Duration::new(s, n)))
}

/// Some of `fields`, and up to two unknown ones holding any JSON (null included).
fn object(fields: &'static [(&'static str, Kind)]) -> BoxedStrategy<Value> {
    let known: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
        .iter()
        .map(|&(name, kind)| prop::option::of(value(kind).prop_map(move |v| (name.to_owned(), v))).boxed())
        .collect();
    let unknown = prop::collection::btree_map("zz_[a-z]{1,5}", prop_oneof![Just(Value::Null), any_json()], 0..2);
    (known, unknown)
        .prop_map(|(known, unknown)| {
            let mut object: Map<String, Value> = known.into_iter().flatten().collect();
            object.extend(unknown);
            Value::Object(object)
        })
        .boxed()
}

/// JSON as proto3 reads it: numbers by value (`1` and `1.0` are one number), to 12
/// significant digits (serde_json's default float parser may be one ulp off), and
/// durations by value (`"0.5s"` is written `"0.500s"`).
fn normalized(value: &Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or(Value::Null, |f| json!(format!("{f:.11e}"))),
        Value::String(text) => match gcm_proto::v1::duration::parse(text) {
            Some(duration) => json!(gcm_proto::v1::duration::text(duration)),
            None => value.clone(),
        },
        Value::Array(items) => items.iter().map(normalized).collect(),
        Value::Object(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), normalized(v))).collect()),
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_object_content_accepts_serializes_back_to_itself(json in object(CONTENT)) {
        let content: Content = serde_json::from_value(json.clone()).unwrap();
        let back = serde_json::to_value(&content).unwrap();
        prop_assert_eq!(normalized(&back), normalized(&json));
        // The wire body carries the same fields beside the target.
        let body: Value = serde_json::from_slice(&encode_body(&Message::new(Target::Topic("t".into()), content))).unwrap();
        let mut fields = body["message"].as_object().unwrap().clone();
        fields.remove("topic");
        prop_assert_eq!(normalized(&Value::Object(fields)), normalized(&json));
    }
}

/// Messages shaped like the examples of FCM's documentation (the REST reference and its
/// "build send requests" guide): each reads into `Content` and writes back as it was, and
/// `check` finds nothing in it.
#[test]
fn messages_shaped_like_fcm_s_documented_examples_round_trip() {
    let examples = [
        json!({"topic": "news", "notification": {"title": "Breaking News", "body": "New news story available."},
               "data": {"story_id": "story_12345"}}),
        json!({"condition": "'dogs' in topics || 'cats' in topics",
               "notification": {"title": "Animal news", "body": "New story available."}}),
        json!({"token": "bk3RNwTe3H0:CI2k_HHwgIpoDKCIZvvDMExUdFQ3P1", "notification": {"title": "Match update",
               "body": "Arsenal goal in added time, score is now 3-0"},
               "android": {"ttl": "86400s", "notification": {"click_action": "OPEN_ACTIVITY_1"}},
               "apns": {"headers": {"apns-priority": "5"}, "payload": {"aps": {"category": "NEW_MESSAGE_CATEGORY"}}},
               "webpush": {"headers": {"TTL": "86400"}}}),
        json!({"topic": "industry-tech", "notification": {"title": "Sparky says hello!"},
               "android": {"notification": {"image": "https://foo.bar.pizza-monster.png"}},
               "apns": {"payload": {"aps": {"mutable-content": 1}}, "fcm_options": {"image": "https://foo.bar.pizza-monster.png"}},
               "webpush": {"headers": {"image": "https://foo.bar.pizza-monster.png"}}}),
        json!({"topic": "news", "notification": {"title": "Breaking News", "body": "New news story available."},
               "android": {"notification": {"icon": "stock_ticker_update", "color": "#7e55c3"}},
               "apns": {"payload": {"aps": {"badge": 42}}},
               "webpush": {"fcm_options": {"link": "https://dummypage.com"}}}),
        json!({"token": "t", "data": {"score": "5x1", "time": "15:10"},
               "apns": {"headers": {"apns-push-type": "background", "apns-priority": "5", "apns-topic": "io.flutter.plugins.firebase.messaging"},
                        "payload": {"aps": {"content-available": 1}}}}),
        json!({"token": "t", "notification": {"title": "t", "body": "b"}, "fcm_options": {"analytics_label": "campaign_1"},
               "android": {"priority": "high", "direct_boot_ok": true, "notification": {"channel_id": "alerts",
               "notification_priority": "PRIORITY_HIGH", "visibility": "PUBLIC", "light_settings": {"color":
               {"red": 1, "green": 0.5, "blue": 0, "alpha": 1}, "light_on_duration": "0.5s", "light_off_duration": "1s"}}}}),
    ];
    for example in examples {
        let mut fields = example.as_object().unwrap().clone();
        let target = ["token", "topic", "condition"]
            .into_iter()
            .find_map(|name| Some((name, fields.remove(name)?.as_str()?.to_owned())))
            .unwrap();
        let content: Content = serde_json::from_value(Value::Object(fields.clone())).unwrap();
        let written = serde_json::to_value(&content).unwrap();
        assert_eq!(normalized(&written), normalized(&Value::Object(fields)), "{example}");
        let target = match target {
            ("topic", name) => Target::Topic(name),
            ("condition", text) => Target::Condition(text),
            (_, token) => Target::Token(token),
        };
        let message = Message::new(target, content);
        assert!(check(&message).is_empty(), "{example}: {:?}", check(&message));
    }
}
