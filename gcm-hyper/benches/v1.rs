//! FCM HTTP v1 end to end on loopback: `FcmClient::send_multicast` sending one content to N
//! tokens (one request each, up to 100 in flight over one HTTP/2 connection) to gcm-mock,
//! beside a baseline in the same run — a minimal hyper-util HTTP/2 client doing serde_json
//! both ways with the same concurrency against a minimal HTTP/2 server answering a fixed
//! body. A third row sends with `FcmClient` to that fixed server: the client's own cost.
//!
//! Every server runs in a child process (this executable started again). Group
//! `v1-client-cpu`: the CPU time this process (the client alone) spends on a 1000-message
//! fan-out and on a one-message fan-out to gcm-mock, with `FcmClient`'s own HTTP/2
//! connections and with a hyper-util pool (what it sent with before, and what
//! `FcmClient::from_hyper` still takes), beside a legacy 1-token send to the same mock; and
//! on 1000 messages to the fixed server, beside the hyper-util baseline client and a raw h2
//! client doing the same (the generic limits one layer apart).
//!
//! `cargo bench -p gcm-hyper --bench v1` (time per fan-out; messages/s = N / time).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group};
use futures_util::StreamExt as _;
use gcm_hyper::gcm_proto::oauth::ServiceAccountKey;
use gcm_hyper::gcm_proto::v1::{Content, Fcm, Multicast};
use gcm_hyper::{Client, FcmClient, Gcm, Message};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

use gcm_mock::baseline::{ChildServer, child_role, data, run_child_server, token};

const CONCURRENCY: usize = 100;
/// Answers both a send (`name`) and a token request (`access_token`, `expires_in`), so
/// that `FcmClient` can talk to the fixed server too.
const FIXED_BODY: &str = r#"{"name":"projects/mock-project/messages/0:1400000000000001%e220a8397b1dcdaf","access_token":"ya29.fixed","expires_in":3599,"token_type":"Bearer"}"#;

#[derive(Serialize)]
struct BaselineSend<'a> {
    message: BaselineMessage<'a>,
}

#[derive(Serialize)]
struct BaselineMessage<'a> {
    token: &'a str,
    data: &'a BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct BaselineName {
    #[allow(dead_code)]
    name: String,
}

/// A baseline's request: the body by serde_json.
fn baseline_request(url: &http::Uri, token: &str, data: &BTreeMap<String, String>) -> http::Request<Bytes> {
    let body = serde_json::to_vec(&BaselineSend { message: BaselineMessage { token, data } }).unwrap();
    http::Request::post(url.clone())
        .header("authorization", "Bearer ya29.fixed")
        .header("content-type", "application/json")
        .body(Bytes::from(body))
        .unwrap()
}

/// The baseline: serde_json both ways over a plain HTTP/2 hyper-util client.
async fn baseline(
    http: &HyperClient<HttpConnector, Full<Bytes>>,
    url: &http::Uri,
    tokens: &[String],
    data: &BTreeMap<String, String>,
) {
    let answers = futures_util::stream::iter(tokens)
        .map(|token| async move {
            let request = baseline_request(url, token, data).map(Full::new);
            let response = http.request(request).await.unwrap();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            serde_json::from_slice::<BaselineName>(&bytes).unwrap()
        })
        .buffer_unordered(CONCURRENCY);
    assert_eq!(answers.count().await, tokens.len());
}

/// The same with h2's own client handle, one connection: no pool, no task per request.
async fn raw_h2(
    h2: &h2::client::SendRequest<Bytes>,
    url: &http::Uri,
    tokens: &[String],
    data: &BTreeMap<String, String>,
) {
    let answers = futures_util::stream::iter(tokens)
        .map(|token| async move {
            let (head, body) = baseline_request(url, token, data).into_parts();
            let mut h2 = h2.clone().ready().await.unwrap();
            let (response, mut stream) = h2.send_request(http::Request::from_parts(head, ()), false).unwrap();
            stream.send_data(body, true).unwrap();
            let mut body = response.await.unwrap().into_body();
            let mut bytes = Vec::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.unwrap();
                let _ = body.flow_control().release_capacity(chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            serde_json::from_slice::<BaselineName>(&bytes).unwrap()
        })
        .buffer_unordered(CONCURRENCY);
    assert_eq!(answers.count().await, tokens.len());
}

fn v1(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let mut group = c.benchmark_group("v1");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    let mock = ChildServer::start("mock", &[]).unwrap();
    let fixed = ChildServer::start("fixed-h2", FIXED_BODY.as_bytes()).unwrap();
    let key = ServiceAccountKey::from_json(gcm_mock::MOCK_SERVICE_ACCOUNT_JSON)
        .unwrap()
        .with_token_uri(&format!("{}/token", mock.url()))
        .unwrap();
    let to_mock = runtime.block_on(async {
        let fcm = Fcm::new("mock-project").unwrap().with_base_url(mock.url()).unwrap();
        FcmClient::new(fcm, key.clone()).unwrap()
    });
    let fixed_base = fixed.url().to_owned();
    let to_fixed = runtime.block_on(async {
        let fcm = Fcm::new("mock-project").unwrap().with_base_url(&fixed_base).unwrap();
        FcmClient::new(fcm, key.clone().with_token_uri(&format!("{fixed_base}/token")).unwrap()).unwrap()
    });
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true); // as gcm-hyper's
    let http = HyperClient::builder(TokioExecutor::new()).http2_only(true).build(connector);
    // FcmClient on the transport it had before its own HTTP/2 connections: a hyper-util
    // pool (what `FcmClient::from_hyper` still takes).
    let to_mock_pooled = runtime.block_on(async {
        let fcm = Fcm::new("mock-project").unwrap().with_base_url(mock.url()).unwrap();
        FcmClient::from_hyper(fcm, key.clone(), http.clone()).unwrap()
    });
    let url: http::Uri = format!("{fixed_base}/v1/projects/mock-project/messages:send").parse().unwrap();
    let data = Arc::new(data());

    for n in [100, 1000] {
        let tokens: Vec<String> = (0..n).map(token).collect();
        let multicast = Multicast::with_content(Content { data: (*data).clone(), ..Content::default() }, &tokens);
        let id = format!("{n}-tokens");
        for (name, client) in [("fcm-hyper+gcm-mock", &to_mock), ("fcm-hyper+fixed-server", &to_fixed)] {
            group.bench_function(BenchmarkId::new(name, &id), |b| {
                b.iter(|| {
                    let report = runtime.block_on(client.send_multicast(&multicast)).unwrap();
                    assert_eq!(report.outcome.success().count(), n, "{:?}", report.problems);
                })
            });
        }
        group.bench_function(BenchmarkId::new("baseline-pair", &id), |b| {
            b.iter(|| runtime.block_on(baseline(&http, &url, &tokens, &data)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("v1-client-cpu");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    for n in [1000, 1] {
        let tokens: Vec<String> = (0..n).map(token).collect();
        let multicast = Multicast::with_content(Content { data: (*data).clone(), ..Content::default() }, &tokens);
        let id = format!("{n}-tokens");
        cpu_per_fan_out(&mut group, &runtime, BenchmarkId::new("fcm-hyper+gcm-mock", &id), &to_mock, &multicast);
        let name = BenchmarkId::new("fcm-hyper-on-hyper-util+gcm-mock", &id);
        cpu_per_fan_out(&mut group, &runtime, name, &to_mock_pooled, &multicast);
    }
    // The same 1000 messages from the baseline client to the fixed server, and from
    // FcmClient to it: the client's CPU beside the generic limit's, in this run.
    let tokens: Vec<String> = (0..1000).map(token).collect();
    let multicast = Multicast::with_content(Content { data: (*data).clone(), ..Content::default() }, &tokens);
    cpu_per_fan_out(
        &mut group,
        &runtime,
        BenchmarkId::new("fcm-hyper+fixed-server", "1000-tokens"),
        &to_fixed,
        &multicast,
    );
    group.bench_function(BenchmarkId::new("baseline-pair", "1000-tokens"), |b| {
        b.iter_custom(|iters| {
            common::cpu_of(|| {
                for _ in 0..iters {
                    runtime.block_on(baseline(&http, &url, &tokens, &data));
                }
            })
        })
    });
    let h2 = runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(fixed_base.trim_start_matches("http://")).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let (send, conn) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(conn);
        send
    });
    group.bench_function(BenchmarkId::new("raw-h2", "1000-tokens"), |b| {
        b.iter_custom(|iters| {
            common::cpu_of(|| {
                for _ in 0..iters {
                    runtime.block_on(raw_h2(&h2, &url, &tokens, &data));
                }
            })
        })
    });
    let legacy =
        Client::new(Gcm::new("k").unwrap().with_endpoint(&format!("{}/gcm/send", mock.url())).unwrap()).unwrap();
    let mut message = Message::multicast([token(0)]);
    for (k, v) in data.iter() {
        message = message.data(k.clone(), v.clone());
    }
    group.bench_function("legacy-gcm-hyper+gcm-mock/1-tokens", |b| {
        b.iter_custom(|iters| {
            common::cpu_of(|| {
                for _ in 0..iters {
                    assert_eq!(runtime.block_on(legacy.send(&message)).unwrap().success().count(), 1);
                }
            })
        })
    });
    group.finish();
}

/// A row of client CPU time per `send_multicast` of `multicast`, every message delivered.
fn cpu_per_fan_out<C>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    runtime: &Runtime,
    id: BenchmarkId,
    client: &FcmClient<C>,
    multicast: &Multicast,
) where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            common::cpu_of(|| {
                for _ in 0..iters {
                    let report = runtime.block_on(client.send_multicast(multicast)).unwrap();
                    assert_eq!(report.outcome.success().count(), multicast.tokens().len(), "{:?}", report.problems);
                }
            })
        })
    });
}

criterion_group!(benches, v1);

fn main() {
    if let Some(role) = child_role() {
        return run_child_server(&role).unwrap();
    }
    benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}
