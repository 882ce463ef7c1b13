//! gcm-mock under load beside a minimal hyper server with the same fixed answers, driven
//! by the same load generator: 16 keep-alive connections, each sending the same request
//! back to back. Each server runs in a child process (this executable started again), so
//! the load generator and the server do not share a scheduler. Time per request;
//! requests/s = 1 / time.
//!
//! `cargo bench -p gcm-mock --bench load`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group};
use gcm_mock::baseline::{BaselineRequest, ChildServer, child_role, data, run_child_server, token};
use gcm_mock::{Engine, Scenario};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

const CONNECTIONS: u64 = 16;

fn request_body(n: usize) -> Bytes {
    let tokens: Vec<String> = (0..n).map(token).collect();
    Bytes::from(serde_json::to_vec(&BaselineRequest { registration_ids: &tokens, data: &data() }).unwrap())
}

fn request(body: Bytes) -> http::Request<Full<Bytes>> {
    http::Request::post("/gcm/send")
        .header("host", "127.0.0.1")
        .header("authorization", "key=k")
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap()
}

/// What gcm-mock answers to `body`: the minimal server's fixed answer.
fn mock_answer(body: &Bytes) -> Bytes {
    let mut engine = Engine::new(Scenario::default(), Vec::new());
    engine.set_recording(false);
    engine.handle(&request(body.clone()).map(|_| body.clone()), 1).into_body()
}

/// `iters` requests over `CONNECTIONS` keep-alive connections; the wall time.
async fn load(url: &str, body: Bytes, iters: u64) -> Duration {
    let addr = url.trim_start_matches("http://");
    let per_connection = iters.div_ceil(CONNECTIONS);
    let mut senders = Vec::new();
    for _ in 0..CONNECTIONS {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        senders.push(sender);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut sender in senders {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_connection {
                sender.ready().await.unwrap();
                let response = sender.send_request(request(body.clone())).await.unwrap();
                assert_eq!(response.status(), 200);
                response.into_body().collect().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed().mul_f64(iters as f64 / (per_connection * CONNECTIONS) as f64)
}

fn under_load(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let mut group = c.benchmark_group("load-16-connections");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    for tokens in [1usize, 1000] {
        let body = request_body(tokens);
        let id = format!("{tokens}-tokens");
        let mock = ChildServer::start("mock", &[]).unwrap();
        group.bench_function(BenchmarkId::new("gcm-mock", &id), |b| {
            b.iter_custom(|iters| runtime.block_on(load(mock.url(), body.clone(), iters)))
        });
        drop(mock);
        let fixed = ChildServer::start("fixed", &mock_answer(&body)).unwrap();
        group.bench_function(BenchmarkId::new("minimal-server", &id), |b| {
            b.iter_custom(|iters| runtime.block_on(load(fixed.url(), body.clone(), iters)))
        });
    }
    group.finish();
}

criterion_group!(benches, under_load);

fn main() {
    if let Some(role) = child_role() {
        return run_child_server(&role).unwrap();
    }
    benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}
