//! Reads FCM v1 messages as another client wrote them (one JSON object a line, e.g. what
//! firebase-admin encodes) and checks that each survives gcm-proto's `v1::Content`: read,
//! written back, the same JSON — key order aside, numbers by value, and durations by value
//! (`"3600.500000000s"` is written `"3600.500s"`, as protobuf's JSON printer writes it) —
//! and that `v1::check` finds nothing FCM would refuse, so no field is left untyped.
//!
//! ```sh
//! cargo run --example v1_roundtrip -- messages.jsonl
//! ```
//!
//! Exit status: 0 when every message round-trips, 1 otherwise (each difference printed).

use std::process::ExitCode;

use gcm_proto::v1::{Content, Message, Target, check, duration};
use serde_json::{Map, Value};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: v1_roundtrip MESSAGES.jsonl");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("{path}: {error}");
            return ExitCode::from(2);
        }
    };
    let mut failures = 0;
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    for (number, line) in lines.iter().enumerate() {
        if let Err(problem) = round_trip(line) {
            eprintln!("{path}:{}: {problem}", number + 1);
            failures += 1;
        }
    }
    println!("{} message(s) read, {} round-trip through v1::Content", lines.len(), lines.len() - failures);
    if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn round_trip(line: &str) -> Result<(), String> {
    let Value::Object(mut fields) = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))? else {
        return Err("not a JSON object".into());
    };
    let target = ["token", "topic", "condition", "fid"]
        .into_iter()
        .find_map(|name| Some((name, fields.remove(name)?.as_str()?.to_owned())))
        .ok_or("no target")?;
    let content: Content = serde_json::from_value(Value::Object(fields.clone())).map_err(|e| e.to_string())?;
    let written = serde_json::to_value(&content).map_err(|e| e.to_string())?;
    let (sent, back) = (normalized(&Value::Object(fields)), normalized(&written));
    if sent != back {
        return Err(format!("changed by the round trip:\n  sent {sent}\n  back {back}"));
    }
    let target = match target {
        ("topic", name) => Target::Topic(name),
        ("condition", text) => Target::Condition(text),
        ("fid", id) => Target::Fid(id),
        (_, token) => Target::Token(token),
    };
    let violations = check(&Message::new(target, content));
    match violations.first() {
        Some(first) => Err(format!("{}: {first}", first.field)),
        None => Ok(()),
    }
}

/// Numbers by value, durations by value.
fn normalized(value: &Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or(Value::Null, |f| Value::String(format!("{f:.11e}"))),
        Value::String(text) => match duration::parse(text) {
            Some(duration) => Value::String(duration::text(duration)),
            None => value.clone(),
        },
        Value::Array(items) => items.iter().map(normalized).collect(),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), normalized(v))).collect::<Map<_, _>>())
        }
        other => other.clone(),
    }
}
