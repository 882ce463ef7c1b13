//! Invariants over generated inputs: every token lands in exactly one bucket, merging never
//! loses a canonical id, messages and outcomes round-trip through serde, and no input panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::time::{Duration, SystemTime};

use gcm_proto::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use gcm_proto::{Format, Gcm, Message, Outcome, Priority};
use proptest::prelude::*;
use serde_json::{Value, json};

fn gcm() -> Gcm {
    Gcm::new("k").unwrap()
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// One result object of a 200 JSON body.
fn result_entry() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[0-9a-f:%]{1,12}".prop_map(|id| json!({ "message_id": id })),
        ("[0-9a-f:%]{1,12}", "[a-z]{1,6}").prop_map(|(id, new)| json!({ "message_id": id, "registration_id": new })),
        prop::sample::select(vec![
            "Unavailable",
            "InternalServerError",
            "NotRegistered",
            "InvalidRegistration",
            "DeviceMessageRateExceeded",
            "MismatchSenderId",
            "Whatever",
        ])
        .prop_map(|code| json!({ "error": code })),
    ]
}

/// Tokens (some repeated) with one result each.
fn multicast() -> impl Strategy<Value = (Vec<String>, Vec<Value>)> {
    prop::collection::vec(("[a-e]{1,2}", result_entry()), 1..40).prop_map(|pairs| pairs.into_iter().unzip())
}

fn body(results: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({"multicast_id": 1, "success": 0, "failure": 0, "canonical_ids": 0, "results": results}))
        .unwrap()
}

fn decode_ok(message: &Message, results: &[Value]) -> Outcome {
    let response = Response::builder().status(200).body(body(results)).unwrap();
    gcm().decode(message, &response, now()).unwrap()
}

/// The tokens of each bucket, in request order: success, not registered, failed, retry.
fn buckets(outcome: &Outcome) -> [Vec<String>; 4] {
    let own = |it: &mut dyn Iterator<Item = &str>| it.map(str::to_owned).collect::<Vec<_>>();
    [
        own(&mut outcome.success().map(|(t, _)| t)),
        own(&mut outcome.not_registered()),
        own(&mut outcome.failed().map(|(t, _)| t)),
        own(&mut outcome.to_retry().map(|(t, _)| t)),
    ]
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

proptest! {
    #[test]
    fn every_recipient_lands_in_exactly_one_bucket((tokens, results) in multicast()) {
        let message = Message::multicast(tokens.clone());
        let outcome = decode_ok(&message, &results);
        // One fate per position, in request order.
        let named: Vec<&str> = outcome.fates().map(|(t, _)| t).collect();
        prop_assert_eq!(&named, &tokens.iter().map(String::as_str).collect::<Vec<_>>());
        // The buckets partition the request's recipients.
        let buckets = buckets(&outcome);
        prop_assert_eq!(sorted(buckets.concat()), sorted(tokens.clone()));
        // Canonical ids only ever accompany successes.
        for (token, _) in outcome.canonical() {
            prop_assert!(buckets[0].iter().any(|t| t == token));
        }
        // The retry message holds exactly the retry bucket, in order.
        let retry: Vec<String> =
            outcome.retry().map(|m| m.tokens().iter().map(|t| t.to_string()).collect()).unwrap_or_default();
        prop_assert_eq!(&retry, &buckets[3]);
    }

    #[test]
    fn merged_attempts_never_lose_a_canonical_id_or_a_success(
        (tokens, first) in multicast(),
        later in prop::collection::vec(prop::collection::vec(result_entry(), 40), 1..4),
    ) {
        let message = Message::multicast(tokens.clone());
        let mut report = decode_ok(&message, &first);
        let owned = |it: &mut dyn Iterator<Item = (&str, &str)>| it.map(|(a, b)| (a.to_owned(), b.to_owned())).collect::<Vec<_>>();
        let mut known_canonical = owned(&mut report.canonical());
        let mut known_success = owned(&mut report.success());
        for results in later {
            let Some(retry) = report.retry() else { break };
            let attempt = decode_ok(&retry, &results[..retry.tokens().len()]);
            known_canonical.extend(owned(&mut attempt.canonical()));
            known_success.extend(owned(&mut attempt.success()));
            report.merge(attempt);
        }
        prop_assert_eq!(sorted(owned(&mut report.canonical())), sorted(known_canonical));
        prop_assert_eq!(sorted(owned(&mut report.success())), sorted(known_success));
        prop_assert_eq!(sorted(buckets(&report).concat()), sorted(tokens));
    }

    #[test]
    fn outcomes_round_trip_through_json((tokens, results) in multicast(), retry_after in prop::option::of(0u64..100_000)) {
        let mut outcome = decode_ok(&Message::multicast(tokens), &results);
        outcome.set_retry_after(retry_after.map(Duration::from_secs));
        let text = serde_json::to_string(&outcome).unwrap();
        prop_assert_eq!(serde_json::from_str::<Outcome>(&text).unwrap(), outcome);
    }

    #[test]
    fn messages_round_trip_through_json(
        tokens in prop::collection::vec("\\PC{0,8}", 1..5),
        data in prop::collection::btree_map("\\PC{1,6}", prop_oneof![
            "\\PC{0,8}".prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(json!({"nested": [1, "x", null]})),
        ], 0..5),
        ttl in prop::option::of(any::<u32>()),
        flags in prop::collection::vec(prop::option::of(any::<bool>()), 5),
        plain in any::<bool>(),
        extra in prop::option::of(("[a-z_]{1,8}", any::<i32>())),
    ) {
        let mut message = Message::multicast(tokens);
        message.data = data.into_iter().collect();
        message.options.time_to_live = ttl;
        message.options.dry_run = flags[0];
        message.options.delay_while_idle = flags[1];
        message.options.content_available = flags[2];
        message.options.mutable_content = flags[3];
        message.options.priority = flags[4].map(|high| if high { Priority::High } else { Priority::Normal });
        if let Some((name, value)) = extra {
            message = message.option(name, value);
        }
        if plain {
            message.format = Format::PlainText;
        }
        let text = serde_json::to_string(&message).unwrap();
        let back: Message = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&back, &message);
        // The same message encodes to the same bytes after the round trip.
        prop_assert_eq!(gcm().encode(&back).map(|r| r.into_body()), gcm().encode(&message).map(|r| r.into_body()));
    }

    #[test]
    fn arbitrary_bytes_and_headers_never_panic(
        status in 100u16..1000,
        body in prop::collection::vec(any::<u8>(), 0..200),
        headers in prop::collection::vec(("[a-zA-Z-]{1,12}", prop::collection::vec(any::<u8>(), 0..40)), 0..4),
        retry_after in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        plain in any::<bool>(),
        n in 1usize..4,
    ) {
        let mut map = HeaderMap::new();
        let retry_after = retry_after.map(|v| ("retry-after".to_owned(), v));
        for (name, value) in headers.iter().chain(retry_after.iter()) {
            if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_bytes(value)) {
                map.append(name, value);
            }
        }
        let message = if plain { Message::plain_text("t") } else { Message::multicast((0..n).map(|i| i.to_string())) };
        let status = StatusCode::from_u16(status).unwrap();
        let _ = gcm().decode_parts(&message, status, &map, &body, now());
    }

    #[test]
    fn json_shaped_garbage_never_panics(value in json_value(3)) {
        let bytes = serde_json::to_vec(&value).unwrap();
        for message in [Message::multicast(["a", "b"]), Message::topic("t"), Message::plain_text("p")] {
            let response = Response::builder().status(200).body(bytes.clone()).unwrap();
            if let Ok(outcome) = gcm().decode(&message, &response, now()) {
                // Whatever was accepted accounts for every recipient.
                prop_assert_eq!(outcome.len(), message.tokens().len());
            }
        }
    }
}

/// JSON values shaped like GCM bodies, with wrong types and huge numbers mixed in.
fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let key =
        prop::sample::select(vec!["multicast_id", "results", "message_id", "error", "registration_id", "success", "x"]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(depth, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone().prop_map(str::to_owned), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
