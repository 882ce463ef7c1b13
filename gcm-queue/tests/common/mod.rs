//! What the queue's tests share: a gcm-mock with the faults, clients with a short
//! backoff, and a worker run until every job is settled.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gcm_hyper::gcm_proto::{Backoff, Gcm};
use gcm_hyper::v1::Fcm;
use gcm_hyper::{Client, Credentials, FcmClient};
use gcm_mock::{Behaviour, Faults, MockServer, Scenario, TokenRule};
use gcm_queue::{Final, Processor, Queue, Record, ResultReader, Senders, WorkerOptions};

pub(crate) const API_KEY: &str = "queue-test-key";

/// Windows of 100 ms doubling to 2 s, the v1 floors kept: retries come fast in tests.
pub(crate) fn fast_backoff() -> Backoff {
    Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(2), ..Backoff::fcm_v1() }
}

/// Token `i` of a test: which ones are canonical, not registered or rate limited is a
/// function of `i`, so the checks know what to expect.
pub(crate) fn token(i: usize) -> String {
    format!("device-{i:06}")
}

pub(crate) fn canonical_of(i: usize) -> Option<String> {
    (i % 20 == 7).then(|| format!("device-{i:06}-new"))
}

pub(crate) fn is_not_registered(i: usize) -> bool {
    i % 33 == 5 && canonical_of(i).is_none()
}

/// The faults: 15 % `Unavailable`, 10 % of requests 503 with `Retry-After: 1`,
/// quota errors once for every 50th token, 5 % canonical, 3 % not registered.
pub(crate) fn faulty_scenario(tokens: usize, seed: u64) -> Scenario {
    let mut scenario = Scenario {
        seed,
        faults: Faults { unavailable: 0.15, server_error: 0.10, retry_after: Some("1".into()), ..Faults::default() },
        ..Scenario::default()
    };
    let mut rules = BTreeMap::new();
    for i in 0..tokens {
        if let Some(canonical) = canonical_of(i) {
            rules.insert(token(i), TokenRule::canonical(canonical));
        } else if is_not_registered(i) {
            rules.insert(token(i), TokenRule::new(Behaviour::NotRegistered));
        } else if i % 50 == 11 {
            rules.insert(token(i), TokenRule::new(Behaviour::RateLimited).times(1).retry_after("1"));
        }
    }
    scenario.tokens = rules;
    scenario
}

pub(crate) async fn mock(scenario: Scenario) -> MockServer {
    MockServer::builder().api_key(API_KEY).scenario(scenario).start().await.expect("gcm-mock starts on loopback")
}

pub(crate) fn senders(server: &MockServer) -> Senders {
    let json = server.service_account_json().expect("the mock has a service account");
    let credentials = Credentials::from_json(json).expect("the mock's service account reads");
    let project = credentials.project_id().expect("a project id").to_owned();
    let fcm = Fcm::new(&project).unwrap().with_base_url(&server.v1_base_url()).unwrap().with_backoff(fast_backoff());
    let gcm = Gcm::new(API_KEY).unwrap().with_endpoint(&server.url()).unwrap().with_backoff(fast_backoff());
    Senders { fcm: Some(FcmClient::new(fcm, credentials).unwrap()), legacy: Some(Client::new(gcm).unwrap()) }
}

/// How many times each token reached the mock.
pub(crate) fn deliveries(server: &MockServer) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for delivery in server.inbox() {
        *count.entry(delivery.token).or_insert(0) += 1;
    }
    count
}

/// Every record of the store, in cursor order.
pub(crate) async fn all_records(reader: &dyn ResultReader) -> Vec<Record> {
    let mut records = Vec::new();
    let mut cursor = 0;
    loop {
        let page = reader.since(cursor, 5000).await.expect("the store reads");
        let Some((last, _)) = page.last() else { return records };
        cursor = *last;
        records.extend(page.into_iter().map(|(_, record)| record));
    }
}

/// Waits until every job of `jobs` is done, failing after `limit`.
pub(crate) async fn wait_done(reader: &dyn ResultReader, jobs: &[String], limit: Duration) {
    let start = Instant::now();
    loop {
        let mut pending = Vec::new();
        for job in jobs {
            let summary = reader.summary(job).await.expect("the store reads").unwrap_or_default();
            if summary.status != "done" {
                pending.push((job.clone(), summary));
            }
        }
        if pending.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{} jobs not done after {limit:?}: {:?}",
            pending.len(),
            &pending[..pending.len().min(3)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs a worker in this process on `queue` until `jobs` are done.
pub(crate) async fn drain(queue: Arc<Queue>, processor: Processor, jobs: &[String], limit: Duration) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = {
        let queue = queue.clone();
        tokio::spawn(async move {
            let options = WorkerOptions { concurrency: 4, ..WorkerOptions::default() };
            queue
                .work(processor, &options, async move {
                    let _ = stopped.await;
                })
                .await
        })
    };
    wait_done(queue.as_ref(), jobs, limit).await;
    let _ = stop.send(());
    worker.await.expect("the worker does not panic").expect("the worker stops cleanly");
}

/// Checks the end state for tokens `0..tokens`: one final fate each, the right one
/// for the scripted tokens, every canonical id reported; returns the records by token.
pub(crate) fn check_fates(records: &[Record], tokens: usize) -> BTreeMap<String, Final> {
    let mut fates = BTreeMap::new();
    for record in records {
        let previous = fates.insert(record.recipient.clone(), record.fate.clone());
        assert!(previous.is_none(), "{} has two final fates: {previous:?} and {:?}", record.recipient, record.fate);
    }
    assert_eq!(fates.len(), tokens, "every token has a final fate");
    for i in 0..tokens {
        let fate = &fates[&token(i)];
        if is_not_registered(i) {
            assert_eq!(fate, &Final::NotRegistered, "{}", token(i));
        } else {
            let Final::Delivered { canonical, .. } = fate else { panic!("{} ended {fate:?}", token(i)) };
            // Canonical ids exist in the legacy protocol only; v1 jobs deliver them plainly.
            if canonical.is_some() {
                assert_eq!(canonical, &canonical_of(i), "{}", token(i));
            }
        }
    }
    fates
}

/// The URL of a test server named by `variable`, or by `target/test-servers.env`
/// (`scripts/test-servers.sh start` writes it); a test that needs one and finds none fails.
pub(crate) fn server_url(variable: &str) -> String {
    if let Ok(url) = std::env::var(variable) {
        return url;
    }
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/test-servers.env");
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let line = text.lines().find_map(|line| line.strip_prefix(&format!("{variable}=")));
    line.map(str::to_owned).unwrap_or_else(|| {
        panic!("{variable} is not set and {file} does not name it: start the servers with `bash scripts/test-servers.sh start`")
    })
}

/// A worker of `queue` running in this process until the sender is used or dropped.
pub(crate) fn spawn_worker(
    queue: Arc<Queue>,
    processor: Processor,
    options: WorkerOptions,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), gcm_queue::Error>>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(async move {
        queue
            .work(processor, &options, async move {
                let _ = stopped.await;
            })
            .await
    });
    (stop, worker)
}

/// A TCP relay to a server that a test can cut (every connection closed at once and new
/// ones refused until restored, as when a database restarts or a link goes down) or
/// freeze (bytes held both ways, connections kept, as when the server is SIGSTOPped).
pub(crate) struct Relay {
    addr: std::net::SocketAddr,
    down: Arc<std::sync::atomic::AtomicBool>,
    cuts: tokio::sync::watch::Sender<u64>,
    frozen: tokio::sync::watch::Sender<bool>,
}

impl Relay {
    /// Relays 127.0.0.1:<port 0> to `target` (`host:port`).
    pub(crate) async fn start(target: String) -> Self {
        Self::start_on(std::net::Ipv4Addr::LOCALHOST.into(), target).await
    }

    /// Relays `ip`:<port 0> to `target` (`host:port`).
    pub(crate) async fn start_on(ip: std::net::IpAddr, target: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cuts, _) = tokio::sync::watch::channel(0u64);
        let (frozen, _) = tokio::sync::watch::channel(false);
        let (is_down, cut, freeze) = (down.clone(), cuts.clone(), frozen.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if is_down.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees its connection closed
                }
                let (target, mut cut) = (target.clone(), cut.subscribe());
                let (up, down_frozen) = (freeze.subscribe(), freeze.subscribe());
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(&target).await else { return };
                    let (from_client, to_client) = inbound.into_split();
                    let (from_server, to_server) = outbound.into_split();
                    tokio::select! {
                        _ = pump(from_client, to_server, up) => {}
                        _ = pump(from_server, to_client, down_frozen) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { addr, down, cuts, frozen }
    }

    /// `url` with its `host:port` replaced by the relay's.
    pub(crate) fn url(&self, url: &str, target: &str) -> String {
        url.replacen(target, &self.addr.to_string(), 1)
    }

    /// Closes every relayed connection and refuses new ones.
    pub(crate) fn cut(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        self.cuts.send_modify(|cuts| *cuts += 1);
    }

    /// Relays new connections again.
    pub(crate) fn restore(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Holds every byte, both ways, until [`thaw`](Self::thaw).
    pub(crate) fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Delivers what was held, and relays on.
    pub(crate) fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

/// Copies `from` to `to`, holding each chunk while the relay is frozen.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if frozen.wait_for(|frozen| !frozen).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// The `host:port` of a server URL (`postgres://user@host:port/db`, `redis://host:port/`).
pub(crate) fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// `gcm-worker run` processes on one queue, sending to a gcm-mock.
pub(crate) struct Fleet {
    pub(crate) url: String,
    pub(crate) queue_name: String,
    pub(crate) credentials: std::path::PathBuf,
    pub(crate) v1_endpoint: String,
    pub(crate) legacy_endpoint: String,
    /// Seconds a worker's claim on an attempt lasts.
    pub(crate) lease: u64,
    pub(crate) concurrency: usize,
    /// The network namespace the workers run in (`ip netns exec`), if not this one.
    pub(crate) netns: Option<String>,
}

impl Fleet {
    /// Workers of queue `queue_name` at `url` sending to `server`, whose service account is
    /// written into `dir`: `concurrency` jobs each, claims of `lease` seconds.
    pub(crate) fn sending_to(
        server: &MockServer,
        dir: &std::path::Path,
        url: &str,
        queue_name: String,
        lease: u64,
        concurrency: usize,
    ) -> Self {
        let credentials = dir.join("service-account.json");
        std::fs::write(&credentials, server.service_account_json().expect("the mock has a service account")).unwrap();
        let (v1_endpoint, legacy_endpoint) = (server.v1_base_url(), server.url());
        Self {
            url: url.to_owned(),
            queue_name,
            credentials,
            v1_endpoint,
            legacy_endpoint,
            lease,
            concurrency,
            netns: None,
        }
    }

    pub(crate) fn start(&self, name: &str) -> tokio::process::Child {
        self.start_with(name, &[])
    }

    /// A worker started with `extra` flags besides the fleet's.
    pub(crate) fn start_with(&self, name: &str, extra: &[&str]) -> tokio::process::Child {
        let worker = env!("CARGO_BIN_EXE_gcm-worker");
        let mut command = match &self.netns {
            // `ip netns exec` execs the worker: the child's pid is the worker's.
            Some(netns) => {
                let mut command = tokio::process::Command::new("ip");
                command.args(["netns", "exec", netns, worker]);
                command
            }
            None => tokio::process::Command::new(worker),
        };
        command
            .args(["run", "--queue", &self.url, "--queue-name", &self.queue_name, "--name", name])
            .arg("--credentials")
            .arg(&self.credentials)
            .args([
                "--v1-endpoint",
                &self.v1_endpoint,
                "--api-key",
                API_KEY,
                "--legacy-endpoint",
                &self.legacy_endpoint,
            ])
            // Heartbeats are stored in whole seconds: 2 s (a worker is dead after 3 missed, 6 s)
            // leaves a busy worker a margin that 1 s does not.
            .args(["--concurrency", &self.concurrency.to_string(), "--heartbeat", "2", "--grace", "20"])
            // Enough attempts that no deliverable token is given up to the faults' bad luck.
            .args(["--max-attempts", "20"])
            .args(["--lease", &self.lease.to_string()])
            .args(["--backoff-ms", "100", "--backoff-max-ms", "2000"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("gcm-worker starts")
    }
}

/// SIGTERM, then the exit status within the grace period.
pub(crate) async fn terminate(child: &mut tokio::process::Child) -> std::process::ExitStatus {
    let pid = child.id().expect("still running").to_string();
    let sent = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs");
    assert!(sent.success());
    tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("stops within its grace").unwrap()
}

/// A server that reads requests and never answers: the client's timeout ends them, after
/// they may have reached it.
pub(crate) async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/fcm/send", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}
