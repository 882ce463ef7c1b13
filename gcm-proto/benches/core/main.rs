//! gcm-proto against in-run baselines: encoding beside `serde_json::to_vec` of a plain serde
//! struct of the same shape plus building the same `http::Request`, decoding beside
//! `serde_json::from_slice` into a plain owned struct of the response shape.
//!
//! `cargo bench -p gcm-proto --bench core`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::hint::black_box;
use std::time::{Duration, SystemTime};

mod shapes;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gcm_proto::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use gcm_proto::http::{HeaderValue, Method, Request, Response};
use gcm_proto::{Gcm, Message};
use shapes::{BaselineRequest, BaselineResponse, data, token};

fn message(tokens: &[String]) -> Message {
    let mut message = Message::multicast(tokens.iter().cloned());
    for (k, v) in data() {
        message = message.data(k, v);
    }
    message
}

/// A 200 body for `n` recipients: 35-character message ids, ~5% canonical ids, ~3% errors.
fn response_body(n: usize) -> String {
    let results: Vec<String> = (0..n)
        .map(|i| match i % 100 {
            0..=2 => r#"{"error":"NotRegistered"}"#.to_owned(),
            3..=7 => format!(r#"{{"message_id":"0:{:016}%9ea3c721f9fd7ecd","registration_id":"{}"}}"#, i, token(i + n)),
            _ => format!(r#"{{"message_id":"0:{:016}%9ea3c721f9fd7ecd"}}"#, i),
        })
        .collect();
    format!(
        r#"{{"multicast_id":6782339717028231855,"success":{},"failure":{},"canonical_ids":{},"results":[{}]}}"#,
        n,
        0,
        0,
        results.join(",")
    )
}

fn baseline_encode(body: &BaselineRequest<'_>, uri: &gcm_proto::http::Uri, auth: &HeaderValue) -> Request<Vec<u8>> {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut request = Request::new(Vec::new());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri.clone();
    request.headers_mut().insert(AUTHORIZATION, auth.clone());
    request.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    request.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    *request.body_mut() = bytes;
    request
}

fn encode(c: &mut Criterion) {
    let gcm = Gcm::new("AIzaSyBenchmarkKey0123456789").unwrap();
    let auth = HeaderValue::from_static("key=AIzaSyBenchmarkKey0123456789");
    let data = data();
    let mut group = c.benchmark_group("encode");
    for n in [1usize, 100, 1000] {
        let tokens: Vec<String> = (0..n).map(token).collect();
        let message = message(&tokens);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("gcm-proto", n), &message, |b, m| {
            b.iter(|| gcm.encode(black_box(m)).unwrap())
        });
        let body = BaselineRequest { registration_ids: &tokens, data: &data };
        group.bench_with_input(BenchmarkId::new("baseline", n), &body, |b, body| {
            b.iter(|| baseline_encode(black_box(body), gcm.endpoint(), &auth))
        });
    }
    let plain = Message::plain_text(token(0)).data("title", "Hello").data("kind", "sync");
    group.bench_function("gcm-proto/plain-text", |b| b.iter(|| gcm.encode(black_box(&plain)).unwrap()));
    group.finish();
}

fn decode(c: &mut Criterion) {
    let gcm = Gcm::new("k").unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut group = c.benchmark_group("decode");
    for n in [1usize, 1000] {
        let tokens: Vec<String> = (0..n).map(token).collect();
        let message = message(&tokens);
        let response = Response::new(response_body(n).into_bytes());
        group.throughput(Throughput::Bytes(response.body().len() as u64));
        group.bench_with_input(BenchmarkId::new("gcm-proto", n), &response, |b, r| {
            b.iter(|| gcm.decode(&message, black_box(r), now).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("baseline", n), &response, |b, r| {
            b.iter(|| serde_json::from_slice::<BaselineResponse>(black_box(r.body())).unwrap())
        });
    }
    let plain = Message::plain_text(token(0));
    let response = Response::new(b"id=0:1429899784497926%9ea3c721f9fd7ecd\nregistration_id=abc\n".to_vec());
    group.bench_function("gcm-proto/plain-text", |b| b.iter(|| gcm.decode(&plain, black_box(&response), now).unwrap()));
    group.finish();
}

#[derive(serde::Serialize)]
struct V1Send<'a> {
    message: V1Message<'a>,
}

#[derive(serde::Serialize)]
struct V1Message<'a> {
    token: &'a str,
    data: &'a std::collections::BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct V1Error {
    error: V1Status,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct V1Status {
    code: u16,
    message: String,
    status: String,
    details: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// What a plain client builds around a v1 body: the same request as `Fcm::encode`.
fn baseline_request(fcm: &gcm_proto::v1::Fcm, auth: &HeaderValue, bytes: Vec<u8>) -> Request<Vec<u8>> {
    let mut request = Request::new(Vec::new());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = fcm.send_url().clone();
    request.headers_mut().insert(AUTHORIZATION, auth.clone());
    request.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    request.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    *request.body_mut() = bytes;
    request
}

/// FCM v1: one message to one token (encode), a multicast to 1000, and one error reply (decode).
fn v1(c: &mut Criterion) {
    use gcm_proto::http::StatusCode;
    use gcm_proto::v1::{Fcm, Message as V1};

    let fcm = Fcm::new("my-project").unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let data = data();
    let tok = token(0);
    let mut group = c.benchmark_group("v1-codec");
    let mut message = V1::token(tok.clone());
    message.content.data = data.clone();
    group.bench_function("gcm-proto/encode", |b| b.iter(|| fcm.encode(black_box(&message), "ya29.token").unwrap()));
    let auth = HeaderValue::from_static("Bearer ya29.token");
    group.bench_function("baseline/encode", |b| {
        b.iter(|| {
            let body = V1Send { message: V1Message { token: &tok, data: &data } };
            baseline_request(&fcm, &auth, serde_json::to_vec(black_box(&body)).unwrap())
        })
    });
    // A multicast to 1000 tokens with a 1 KB payload: the content encoded once and each
    // token spliced in, beside what the old `fan_out` did (a whole message per token,
    // encoded in full) and serde_json of the same body per token.
    let tokens: Vec<String> = (0..1000).map(token).collect();
    let mut big = data.clone();
    big.insert("blob".into(), "p".repeat(1000));
    let multicast = gcm_proto::v1::Multicast::with_content(
        gcm_proto::v1::Content { data: big.clone(), ..Default::default() },
        tokens.iter(),
    );
    group.throughput(Throughput::Elements(tokens.len() as u64));
    group.bench_function("gcm-proto/multicast-encode-1000", |b| {
        b.iter(|| {
            let template = gcm_proto::v1::Template::new(black_box(&multicast).content());
            for token in multicast.tokens() {
                black_box(fcm.encode_token(&template, token, "ya29.token").unwrap());
            }
        })
    });
    group.bench_function("fan-out/encode-1000", |b| {
        b.iter(|| {
            for index in 0..multicast.tokens().len() {
                let message = black_box(&multicast).message(index).unwrap();
                black_box(fcm.encode(&message, "ya29.token").unwrap());
            }
        })
    });
    group.bench_function("baseline/encode-1000", |b| {
        b.iter(|| {
            for token in &tokens {
                let body = V1Send { message: V1Message { token, data: &big } };
                black_box(baseline_request(&fcm, &auth, serde_json::to_vec(black_box(&body)).unwrap()));
            }
        })
    });
    group.throughput(Throughput::Elements(1));

    let body = br#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#;
    let headers = gcm_proto::http::HeaderMap::new();
    group.bench_function("gcm-proto/decode-error", |b| {
        b.iter(|| fcm.decode_parts(StatusCode::NOT_FOUND, &headers, black_box(body), now).unwrap())
    });
    group.bench_function("baseline/decode-error", |b| {
        b.iter(|| serde_json::from_slice::<V1Error>(black_box(body)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, encode, decode, v1);
criterion_main!(benches);
