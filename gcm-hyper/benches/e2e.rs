//! End to end on loopback: gcm-hyper sending to gcm-mock, beside a baseline pair in the
//! same run — a minimal hyper server answering a fixed body of the same size, and a minimal
//! hyper-util client that encodes and decodes the same JSON with serde_json. Every server
//! runs in a child process (this executable started again), so that the client's figures
//! do not depend on how one scheduler placed client and server threads.
//!
//! Group `e2e`: wall time per send (sends/s = 1 / time). Group `e2e-client-cpu`: the CPU
//! time this process (the client alone) spends per send, one in flight.
//!
//! `cargo bench -p gcm-hyper --bench e2e`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group};
use gcm_hyper::{Client, Gcm, Message};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::runtime::Runtime;

use gcm_mock::baseline::{BaselineRequest, BaselineResponse, ChildServer, child_role, data, run_child_server, token};

const KEY: &str = "AIzaSyBenchmarkKey0123456789";

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

/// One gcm-hyper send of `message`, checked, as a repeatable closure for [`run`].
fn sends(
    client: &Client,
    message: &Arc<Message>,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Clone + Send + 'static {
    let (client, message) = (client.clone(), Arc::clone(message));
    move || {
        let (client, message) = (client.clone(), Arc::clone(&message));
        Box::pin(async move {
            let outcome = client.send(&message).await.unwrap();
            assert_eq!(outcome.len(), message.tokens().len());
        })
    }
}

/// The baseline client's sends, as a repeatable closure for [`run`].
fn baseline_sends(
    baseline: &Baseline,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Clone + Send + 'static {
    let baseline = baseline.clone();
    move || {
        let baseline = baseline.clone();
        Box::pin(async move {
            let response = baseline.send().await;
            assert_eq!(response.results.len(), baseline.tokens.len());
        })
    }
}

fn end_to_end(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let mock = ChildServer::start("mock", &[]).unwrap();
    let mock_url = format!("{}/gcm/send", mock.url());
    let mut group = c.benchmark_group("e2e");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    let mut cpu_rows = Vec::new();
    for (tokens, in_flight) in [(1000usize, 1u64), (1, 1), (1, 16)] {
        let id = format!("{tokens}-tokens-{in_flight}-in-flight");
        let token_list: Vec<String> = (0..tokens).map(token).collect();
        let mut message = Message::multicast(token_list.iter().cloned());
        for (k, v) in data() {
            message = message.data(k, v);
        }
        let message = Arc::new(message);

        let (client, fixed_body) = runtime.block_on(async {
            let client = Client::new(Gcm::new(KEY).unwrap().with_endpoint(&mock_url).unwrap()).unwrap();
            // The baseline server answers with a body of the same size as the mock's.
            let probe = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let request = http::Request::post(&mock_url)
                .header("authorization", format!("key={KEY}"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(
                    serde_json::to_vec(&BaselineRequest { registration_ids: &token_list, data: &data() }).unwrap(),
                )))
                .unwrap();
            let body = probe.request(request).await.unwrap().into_body().collect().await.unwrap().to_bytes();
            (client, body)
        });
        group.bench_function(BenchmarkId::new("gcm-hyper+gcm-mock", &id), |b| {
            b.iter_custom(|iters| runtime.block_on(run(iters, in_flight, sends(&client, &message))))
        });

        let fixed = ChildServer::start("fixed", &fixed_body).unwrap();
        let url = format!("{}/gcm/send", fixed.url());
        let baseline = Baseline {
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
            url: url.parse().unwrap(),
            tokens: Arc::new(token_list.clone()),
            data: Arc::new(data()),
        };
        // The same client against the fixed server: the client's own cost, without the mock's.
        let fixed_client = Client::new(Gcm::new(KEY).unwrap().with_endpoint(&url).unwrap()).unwrap();
        group.bench_function(BenchmarkId::new("gcm-hyper+fixed-server", &id), |b| {
            b.iter_custom(|iters| runtime.block_on(run(iters, in_flight, sends(&fixed_client, &message))))
        });
        group.bench_function(BenchmarkId::new("baseline-pair", &id), |b| {
            b.iter_custom(|iters| runtime.block_on(run(iters, in_flight, baseline_sends(&baseline))))
        });
        if in_flight == 1 {
            cpu_rows.push((format!("{tokens}-tokens"), fixed, fixed_client, baseline, message));
        }
    }
    group.finish();

    let mut group = c.benchmark_group("e2e-client-cpu");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    for (id, _fixed, client, baseline, message) in &cpu_rows {
        group.bench_function(BenchmarkId::new("gcm-hyper", id), |b| {
            b.iter_custom(|iters| {
                common::cpu_of(|| {
                    runtime.block_on(run(iters, 1, sends(client, message)));
                })
            })
        });
        group.bench_function(BenchmarkId::new("baseline", id), |b| {
            b.iter_custom(|iters| {
                common::cpu_of(|| {
                    runtime.block_on(run(iters, 1, baseline_sends(baseline)));
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, end_to_end);

fn main() {
    if let Some(role) = child_role() {
        return run_child_server(&role).unwrap();
    }
    benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}
