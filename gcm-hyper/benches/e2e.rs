//! End to end on loopback: gcm-hyper sending to gcm-mock, beside a baseline pair in the
//! same run — a minimal hyper server answering a fixed body of the same size, and a minimal
//! hyper-util client that encodes and decodes the same JSON with serde_json.
//!
//! `cargo bench -p gcm-hyper --bench e2e` (time per send; sends/s = 1 / time).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use gcm_hyper::{Client, Gcm, Message};
use gcm_mock::MockServer;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

const KEY: &str = "AIzaSyBenchmarkKey0123456789";

fn token(i: usize) -> String {
    format!("{i:08}:APA91bH{}", "x".repeat(137))
}

fn data() -> BTreeMap<String, String> {
    [
        ("title", "Hello"),
        ("body", "You have 3 new messages"),
        ("kind", "sync"),
        ("id", "123456789"),
        ("url", "https://example.com/inbox"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[derive(Serialize)]
struct BaselineRequest<'a> {
    registration_ids: &'a [String],
    data: &'a BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct BaselineResponse {
    multicast_id: i64,
    success: u32,
    failure: u32,
    canonical_ids: u32,
    results: Vec<BaselineResult>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct BaselineResult {
    message_id: Option<String>,
    registration_id: Option<String>,
    error: Option<String>,
}

/// A minimal hyper server that answers every request with `body`.
async fn fixed_server(body: Bytes) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/gcm/send", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        let _ = request.into_body().collect().await;
                        let mut response = http::Response::new(Full::new(body));
                        response
                            .headers_mut()
                            .insert("content-type", "application/json; charset=UTF-8".parse().unwrap());
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    url
}

/// The baseline client: serde_json both ways over a plain hyper-util client.
#[derive(Clone)]
struct Baseline {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    url: http::Uri,
    tokens: Arc<Vec<String>>,
    data: Arc<BTreeMap<String, String>>,
}

impl Baseline {
    async fn send(&self) -> BaselineResponse {
        let body = serde_json::to_vec(&BaselineRequest { registration_ids: &self.tokens, data: &self.data }).unwrap();
        let request = http::Request::post(self.url.clone())
            .header("authorization", format!("key={KEY}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = self.http.request(request).await.unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }
}

/// Runs `iters` sends split over `in_flight` concurrent tasks; the wall time.
async fn run<F, Fut>(iters: u64, in_flight: u64, send: F) -> Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let per_task = iters.div_ceil(in_flight);
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let send = send.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                send().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed().mul_f64(iters as f64 / (per_task * in_flight) as f64)
}

fn end_to_end(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let mut group = c.benchmark_group("e2e");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    for (tokens, in_flight) in [(1000usize, 1u64), (1, 1), (1, 16)] {
        let id = format!("{tokens}-tokens-{in_flight}-in-flight");
        let token_list: Vec<String> = (0..tokens).map(token).collect();
        let mut message = Message::multicast(token_list.iter().cloned());
        for (k, v) in data() {
            message = message.data(k, v);
        }
        let message = Arc::new(message);

        let (mock, client, fixed_body) = runtime.block_on(async {
            let mock = MockServer::builder().api_key(KEY).recording(false).start().await.unwrap();
            let client = Client::new(Gcm::new(KEY).unwrap().with_endpoint(&mock.url()).unwrap()).unwrap();
            // The baseline server answers with a body of the same size as the mock's.
            let probe = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let request = http::Request::post(mock.url())
                .header("authorization", format!("key={KEY}"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(
                    serde_json::to_vec(&BaselineRequest { registration_ids: &token_list, data: &data() }).unwrap(),
                )))
                .unwrap();
            let body = probe.request(request).await.unwrap().into_body().collect().await.unwrap().to_bytes();
            (mock, client, body)
        });
        group.bench_function(BenchmarkId::new("gcm-hyper+gcm-mock", &id), |b| {
            b.iter_custom(|iters| {
                let (client, message) = (client.clone(), Arc::clone(&message));
                runtime.block_on(run(iters, in_flight, move || {
                    let (client, message) = (client.clone(), Arc::clone(&message));
                    async move {
                        let outcome = client.send(&message).await.unwrap();
                        assert_eq!(outcome.len(), message.tokens().len());
                    }
                }))
            })
        });

        let baseline = runtime.block_on(async {
            let url = fixed_server(fixed_body).await;
            Baseline {
                http: HyperClient::builder(TokioExecutor::new()).build_http(),
                url: url.parse().unwrap(),
                tokens: Arc::new(token_list.clone()),
                data: Arc::new(data()),
            }
        });
        // The same client against the fixed server: the client's own cost, without the mock's.
        let fixed_client =
            Client::new(Gcm::new(KEY).unwrap().with_endpoint(&baseline.url.to_string()).unwrap()).unwrap();
        group.bench_function(BenchmarkId::new("gcm-hyper+fixed-server", &id), |b| {
            b.iter_custom(|iters| {
                let (client, message) = (fixed_client.clone(), Arc::clone(&message));
                runtime.block_on(run(iters, in_flight, move || {
                    let (client, message) = (client.clone(), Arc::clone(&message));
                    async move {
                        let outcome = client.send(&message).await.unwrap();
                        assert_eq!(outcome.len(), message.tokens().len());
                    }
                }))
            })
        });
        group.bench_function(BenchmarkId::new("baseline-pair", &id), |b| {
            b.iter_custom(|iters| {
                let baseline = baseline.clone();
                runtime.block_on(run(iters, in_flight, move || {
                    let baseline = baseline.clone();
                    async move {
                        let response = baseline.send().await;
                        assert_eq!(response.results.len(), baseline.tokens.len());
                    }
                }))
            })
        });
        drop(mock);
    }
    group.finish();
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
