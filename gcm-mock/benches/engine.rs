//! The mock's request handling without IO: a 1000-token and a 1-token JSON send, and a
//! plain-text send, through `Engine::handle` with recording off (as under load).
//!
//! `cargo bench -p gcm-mock --bench engine`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gcm_mock::baseline::{BaselineRequest, data, token};
use gcm_mock::{Engine, Scenario};
use http::Request;

fn json_request(n: usize) -> Request<Vec<u8>> {
    let tokens: Vec<String> = (0..n).map(token).collect();
    Request::post("/gcm/send")
        .header("authorization", "key=k")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&BaselineRequest { registration_ids: &tokens, data: &data() }).unwrap())
        .unwrap()
}

fn engine(c: &mut Criterion) {
    let mut engine = Engine::new(Scenario::default(), vec!["k".into()]);
    engine.set_recording(false);
    let mut group = c.benchmark_group("engine");
    for n in [1, 1000] {
        let request = json_request(n);
        group.bench_function(format!("json-{n}-tokens"), |b| b.iter(|| engine.handle(black_box(&request), 1)));
    }
    let plain = Request::post("/gcm/send")
        .header("authorization", "key=k")
        .body(format!("registration_id={}&data.title=Hello", token(0)).into_bytes())
        .unwrap();
    group.bench_function("plain-text", |b| b.iter(|| engine.handle(black_box(&plain), 1)));
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
