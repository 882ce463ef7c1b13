//! The queue path beside direct sending, in the same run: N v1 multicasts of T tokens sent
//! by `FcmClient::send_multicast` directly (4 multicasts in flight), and the same N enqueued
//! as jobs and drained by one worker (concurrency 4) on SQLite, PostgreSQL and Redis, to
//! gcm-mock with recording off. Each criterion iteration is one job (time per job; jobs/s =
//! 1 / time); the queue's overhead per job is the difference. Each backend's group has its
//! own direct row, measured while only that backend's worker runs.
//!
//! `cargo bench -p gcm-queue --bench queue` (SQLite only); with the servers of
//! `scripts/test-servers.sh` running, `cargo bench -p gcm-queue --features postgres,redis
//! --bench queue` adds their rows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use gcm_hyper::v1::{Fcm, Multicast};
use gcm_hyper::{Credentials, FcmClient};
use gcm_mock::MockServer;
use gcm_queue::{Job, Processor, Queue, QueueConfig, Senders, WorkerOptions};
use tokio::runtime::Runtime;

const IN_FLIGHT: usize = 4;

fn multicast(tokens: usize) -> Multicast {
    Multicast::new((0..tokens).map(|i| format!("bench-token-{i:06}-{}", "x".repeat(130)))).data("kind", "sync")
}

/// A queue with a worker draining it, and the count of jobs the worker has settled.
struct Drained {
    queue: Arc<Queue>,
    settled: prometheus_client::metrics::counter::Counter,
    stop: tokio::sync::oneshot::Sender<()>,
    worker: tokio::task::JoinHandle<Result<(), gcm_queue::Error>>,
}

async fn drained(url: &str, name: &str, client: &FcmClient) -> Drained {
    let config = QueueConfig { name: name.to_owned(), poll: Duration::from_millis(10), ..QueueConfig::default() };
    let queue = Arc::new(Queue::connect_with(url, &config).await.expect("the queue connects"));
    let senders = Senders { fcm: Some(client.clone()), legacy: None };
    let processor = Processor::new(senders, queue.clone(), queue.clone());
    let settled = processor.metrics().jobs.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn({
        let queue = queue.clone();
        async move {
            let options = WorkerOptions { concurrency: IN_FLIGHT, ..WorkerOptions::default() };
            queue
                .work(processor, &options, async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    Drained { queue, settled, stop, worker }
}

impl Drained {
    /// Enqueues `jobs` copies of `multicast` and waits until the worker settled them all.
    async fn run(&self, jobs: u64, multicast: &Multicast) -> Duration {
        let target = self.settled.get() + jobs;
        let started = Instant::now();
        for _ in 0..jobs {
            self.queue.enqueue(&Job::v1_multicast(multicast.clone())).await.unwrap();
        }
        while self.settled.get() < target {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        started.elapsed()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.worker.await;
    }
}

async fn direct(client: &FcmClient, jobs: u64, multicast: &Multicast) -> Duration {
    let started = Instant::now();
    let mut left = jobs;
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    loop {
        while left > 0 && in_flight.len() < IN_FLIGHT {
            left -= 1;
            in_flight.push(client.send_multicast(multicast));
        }
        match futures_util::StreamExt::next(&mut in_flight).await {
            Some(report) => assert!(report.is_ok()),
            None => return started.elapsed(),
        }
    }
}

/// A server URL from the environment or the file `scripts/test-servers.sh` writes.
fn server_url(variable: &str) -> Option<String> {
    std::env::var(variable).ok().or_else(|| {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/test-servers.env")).ok()?;
        text.lines().find_map(|line| line.strip_prefix(&format!("{variable}="))).map(str::to_owned)
    })
}

fn bench(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (server, client) = runtime.block_on(async {
        let server = MockServer::builder().recording(false).start().await.unwrap();
        let credentials = Credentials::from_json(server.service_account_json().unwrap()).unwrap();
        let fcm = Fcm::new(credentials.project_id().unwrap()).unwrap().with_base_url(&server.v1_base_url()).unwrap();
        (server, FcmClient::new(fcm, credentials).unwrap())
    });
    let mut backends = vec![("sqlite", format!("sqlite:{}", dir.path().join("bench.db").display()))];
    let servers = [
        ("postgres", "GCM_QUEUE_POSTGRES_URL", cfg!(feature = "postgres")),
        ("redis", "GCM_QUEUE_REDIS_URL", cfg!(feature = "redis")),
    ];
    for (name, variable, enabled) in servers {
        match server_url(variable) {
            Some(url) if enabled => backends.push((name, url)),
            _ => eprintln!(
                "queue bench: no {name} row (needs --features {name} and `bash scripts/test-servers.sh start`)"
            ),
        }
    }
    // One backend at a time, each beside its own direct rows: the other backends' idle
    // workers would poll and heartbeat in the same process.
    let run_name = format!("bench-{}", std::process::id());
    for (name, url) in &backends {
        let queue = runtime.block_on(drained(url, &run_name, &client));
        for tokens in [1usize, 1000] {
            let multicast = multicast(tokens);
            let mut group = c.benchmark_group(format!("queue-{name}-v1-{tokens}-tokens"));
            group.sample_size(10).measurement_time(Duration::from_secs(if tokens == 1 { 5 } else { 15 }));
            group.bench_function("direct send_multicast", |b| {
                b.to_async(&runtime).iter_custom(|jobs| direct(&client, jobs, &multicast));
            });
            group.bench_function("queue", |b| {
                b.to_async(&runtime).iter_custom(|jobs| queue.run(jobs, &multicast));
            });
            group.finish();
        }
        runtime.block_on(queue.stop());
    }
    runtime.block_on(server.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
