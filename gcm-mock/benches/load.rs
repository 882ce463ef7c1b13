//! gcm-mock under load beside a minimal hyper server with the same fixed answers, driven
//! by the same load generator: 16 keep-alive connections, each sending the same request
//! back to back. Time per request; requests/s = 1 / time.
//!
//! `cargo bench -p gcm-mock --bench load`

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gcm_mock::MockServer;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

use gcm_mock::baseline::fixed_server;
use gcm_mock::baseline::{BaselineRequest, data, token};

const CONNECTIONS: u64 = 16;

fn request_body(n: usize) -> Bytes {
    let tokens: Vec<String> = (0..n).map(token).collect();
    Bytes::from(serde_json::to_vec(&BaselineRequest { registration_ids: &tokens, data: &data() }).unwrap())
}

/// `iters` requests over `CONNECTIONS` keep-alive connections; the wall time.
async fn load(addr: std::net::SocketAddr, body: Bytes, iters: u64) -> Duration {
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
                let request = http::Request::post("/gcm/send")
                    .header("host", "127.0.0.1")
                    .header("authorization", "key=k")
                    .header("content-type", "application/json")
                    .body(Full::new(body.clone()))
                    .unwrap();
                sender.ready().await.unwrap();
                let response = sender.send_request(request).await.unwrap();
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
        let (mock, fixed) = runtime.block_on(async {
            let mock = MockServer::builder().api_key("k").recording(false).start().await.unwrap();
            // The minimal server answers with the mock's answer to the same request.
            let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let request = http::Request::post(mock.url())
                .header("authorization", "key=k")
                .header("content-type", "application/json")
                .body(Full::new(body.clone()))
                .unwrap();
            let answer = client.request(request).await.unwrap().into_body().collect().await.unwrap().to_bytes();
            let fixed = fixed_server(answer).await.unwrap();
            (mock, fixed)
        });
        let id = format!("{tokens}-tokens");
        group.bench_function(BenchmarkId::new("gcm-mock", &id), |b| {
            b.iter_custom(|iters| runtime.block_on(load(mock.addr(), body.clone(), iters)))
        });
        group.bench_function(BenchmarkId::new("minimal-server", &id), |b| {
            b.iter_custom(|iters| runtime.block_on(load(fixed, body.clone(), iters)))
        });
    }
    group.finish();
}

criterion_group!(benches, under_load);
criterion_main!(benches);
