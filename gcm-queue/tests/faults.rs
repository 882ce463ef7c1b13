//! The fault suite: `gcm-worker run` processes sending to gcm-mock (its own tasks) while a
//! backend or FCM fails. Each case ends with every token's fate recorded once, no token
//! delivered twice where no worker died or stalled, and the workers still running.
//!
//! PostgreSQL and Redis run with the `postgres` and `redis` features, against the servers of
//! `scripts/test-servers.sh`; a relay in this process cuts the workers off them (or holds
//! FCM's bytes). The cases that need root run with `root-faults` (CI runs them all): SQLite
//! on a tmpfs made full or read-only, and a worker in its own network namespace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use gcm_hyper::v1::Multicast;
use gcm_mock::{Faults, MockServer, Scenario};
use gcm_queue::{Job, Queue, QueueConfig};

const JOBS: usize = 40;
const TOKENS_PER_JOB: usize = 100;

/// What a case sets up: the mock, the queue as the test reads it, the jobs.
struct Case {
    server: MockServer,
    queue: Arc<Queue>,
    jobs: Vec<String>,
    fleet: Fleet,
    _dir: tempfile::TempDir,
}

/// A mock whose every answer takes `latency`, so that the jobs outlast the fault.
fn slow(latency: Duration) -> Scenario {
    Scenario { faults: Faults { latency_ms: latency.as_millis() as u64, ..Faults::default() }, ..Scenario::default() }
}

/// `JOBS` v1 multicasts on `url` (the test's own connection), and a fleet that reaches the
/// queue at `worker_url`, sending to a mock playing `scenario`.
async fn case(url: &str, worker_url: &str, scenario: Scenario) -> Case {
    let server = mock(scenario).await;
    let dir = tempfile::tempdir().unwrap();
    let queue_name = format!("faults-{}", ulid::Ulid::generate());
    let config = QueueConfig { name: queue_name.clone(), ..QueueConfig::default() };
    let queue = Arc::new(Queue::connect_with(url, &config).await.expect("the queue connects"));
    let mut jobs = Vec::new();
    for chunk in 0..JOBS {
        let tokens = (chunk * TOKENS_PER_JOB..(chunk + 1) * TOKENS_PER_JOB).map(token);
        let job = Job::v1_multicast(Multicast::new(tokens).data("kind", "sync"));
        queue.enqueue(&job).await.unwrap();
        jobs.push(job.id);
    }
    let fleet = Fleet::sending_to(&server, dir.path(), worker_url, queue_name, gcm_queue::DEFAULT_LEASE.as_secs(), 2);
    Case { server, queue, jobs, fleet, _dir: dir }
}

impl Case {
    /// Waits until `tokens` of the case's tokens have a recorded fate.
    async fn wait_settled(&self, tokens: usize) {
        let ours: HashSet<&String> = self.jobs.iter().collect();
        let start = std::time::Instant::now();
        loop {
            let settled = all_records(self.queue.as_ref()).await.iter().filter(|r| ours.contains(&r.job_id)).count();
            if settled >= tokens {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "only {settled} tokens settled in 120 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The end state: every job done, one fate per token, each token delivered once.
    async fn check(&self, workers: &mut [tokio::process::Child]) {
        wait_done(self.queue.as_ref(), &self.jobs, Duration::from_secs(180)).await;
        for worker in workers.iter_mut() {
            assert!(worker.try_wait().unwrap().is_none(), "a worker exited: {:?}", worker.try_wait());
        }
        let ours: HashSet<&String> = self.jobs.iter().collect();
        let records: Vec<_> =
            all_records(self.queue.as_ref()).await.into_iter().filter(|r| ours.contains(&r.job_id)).collect();
        let mut fates = BTreeMap::new();
        for record in &records {
            let earlier = fates.insert(record.recipient.clone(), record.fate.clone());
            assert!(earlier.is_none(), "{} has two fates: {earlier:?} and {:?}", record.recipient, record.fate);
        }
        assert_eq!(fates.len(), JOBS * TOKENS_PER_JOB, "every token has a fate");
        let delivered = fates.values().filter(|fate| matches!(fate, gcm_queue::Final::Delivered { .. })).count();
        assert_eq!(delivered, JOBS * TOKENS_PER_JOB, "every token is delivered");
        let twice = deliveries(&self.server).values().filter(|count| **count > 1).count();
        assert_eq!(twice, 0, "tokens delivered more than once with no worker dead or stalled");
        for worker in workers.iter_mut() {
            let status = terminate(worker).await;
            assert!(status.success(), "SIGTERM stops a worker cleanly: {status}");
        }
    }
}

/// The backend at `url` goes away for `outage` (every connection cut, new ones refused)
/// while two workers send, then comes back.
#[cfg(any(feature = "postgres", feature = "redis"))]
async fn backend_outage(url: &str, outage: Duration) {
    let target = host_port(url);
    let relay = Relay::start(target.clone()).await;
    let case = case(url, &relay.url(url, &target), slow(Duration::from_millis(200))).await;
    let mut workers = vec![case.fleet.start("outage-a"), case.fleet.start("outage-b")];
    case.wait_settled(TOKENS_PER_JOB).await;
    relay.cut();
    tokio::time::sleep(outage).await;
    relay.restore();
    case.check(&mut workers).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_20_s() {
    backend_outage(&server_url("GCM_QUEUE_POSTGRES_URL"), Duration::from_secs(20)).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_20_s() {
    backend_outage(&server_url("GCM_QUEUE_REDIS_URL"), Duration::from_secs(20)).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart() {
    // Every session ends at once, as when the server restarts; it answers again a second later.
    backend_outage(&server_url("GCM_QUEUE_POSTGRES_URL"), Duration::from_secs(1)).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_with_its_data_kept() {
    // A restart that keeps the data (AOF or a snapshot): every connection ends at once. A
    // Redis without persistence loses the queue itself on restart; nothing can hold then.
    backend_outage(&server_url("GCM_QUEUE_REDIS_URL"), Duration::from_secs(1)).await;
}

/// FCM failing whole requests (503, then 500) for a while: nothing was delivered by them,
/// so nothing is delivered twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_answering_503_then_500() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("queue.db").display());
    // The first 400 send requests fail (4000 are needed): 200 with 503, then 200 with 500.
    let replies = [gcm_mock::Reply::status(503).repeat(200), gcm_mock::Reply::status(500).repeat(200)];
    let case = case(&url, &url, Scenario { replies: replies.into(), ..slow(Duration::from_millis(50)) }).await;
    let mut workers = vec![case.fleet.start("fcm-a"), case.fleet.start("fcm-b")];
    case.check(&mut workers).await;
}

/// FCM stops answering for 25 s, as a SIGSTOPped server does: requests wait (the client's
/// 30 s timeout is longer), then are answered; the workers' jobs take that long, and no
/// live worker's job may be handed to another meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_frozen_25_s() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("queue.db").display());
    let mut case = case(&url, &url, slow(Duration::from_millis(100))).await;
    let target = host_port(&case.server.url());
    let relay = Relay::start(target.clone()).await;
    case.fleet.v1_endpoint = relay.url(&case.fleet.v1_endpoint, &target);
    case.fleet.legacy_endpoint = relay.url(&case.fleet.legacy_endpoint, &target);
    let mut workers = vec![case.fleet.start("frozen-a"), case.fleet.start("frozen-b")];
    case.wait_settled(TOKENS_PER_JOB).await;
    relay.freeze();
    tokio::time::sleep(Duration::from_secs(25)).await;
    relay.thaw();
    case.check(&mut workers).await;
}

/// A tmpfs of `megabytes`, unmounted when dropped: a filesystem a test may fill or make
/// read-only. Mounting needs root, as CI has; without it the test fails and says so.
#[cfg(feature = "root-faults")]
struct Tmpfs(tempfile::TempDir);

#[cfg(feature = "root-faults")]
impl Tmpfs {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root (this test runs as root in CI)");
        Self(dir)
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }

    fn remount(&self, mode: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount {mode}");
    }
}

#[cfg(feature = "root-faults")]
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// SQLite on a filesystem that fills up for 20 s (a 64 MB tmpfs, a file written until
/// ENOSPC), then has room again.
#[cfg(feature = "root-faults")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_full_filesystem() {
    let tmpfs = Tmpfs::mount(64);
    let url = format!("sqlite:{}", tmpfs.path().join("queue.db").display());
    let case = case(&url, &url, slow(Duration::from_millis(200))).await;
    let mut workers = vec![case.fleet.start("full-a"), case.fleet.start("full-b")];
    case.wait_settled(TOKENS_PER_JOB).await;
    let filler = tmpfs.path().join("filler");
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 1 << 16];
        while file.write_all(&block).is_ok() {}
    }
    tokio::time::sleep(Duration::from_secs(20)).await;
    std::fs::remove_file(&filler).unwrap();
    case.check(&mut workers).await;
}

/// A SQLite queue whose filesystem is read-only: with `--exit-on-unreachable` the worker
/// exits non-zero and names the cause; without it, it waits and starts once it may write.
#[cfg(feature = "root-faults")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_read_only_filesystem() {
    let tmpfs = Tmpfs::mount(64);
    let url = format!("sqlite:{}", tmpfs.path().join("queue.db").display());
    let case = case(&url, &url, Scenario::default()).await;
    case.queue.close().await;
    tmpfs.remount("ro");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_gcm-worker"))
        .args(["run", "--exit-on-unreachable", "--queue", &url, "--api-key", API_KEY])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exits non-zero: {stderr}");
    assert!(stderr.contains("ERROR") && stderr.contains("Read-only file system"), "says why: {stderr}");

    let mut workers = vec![case.fleet.start("read-only")];
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(workers[0].try_wait().unwrap().is_none(), "the worker waits for its queue");
    tmpfs.remount("rw");
    let reopened = Arc::new(
        Queue::connect_with(&url, &QueueConfig { name: case.fleet.queue_name.clone(), ..QueueConfig::default() })
            .await
            .unwrap(),
    );
    let case = Case { queue: reopened, ..case };
    case.check(&mut workers).await;
}

/// No fault at all: two workers on one SQLite file (CI runs this beside a CPU hog, where
/// apalis's stalled heartbeat handed live workers' jobs to each other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_and_no_fault() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("queue.db").display());
    let case = case(&url, &url, slow(Duration::from_millis(20))).await;
    let mut workers = vec![case.fleet.start("calm-a"), case.fleet.start("calm-b")];
    case.check(&mut workers).await;
}

/// A network namespace with veth links to this one (`10.<200 + link>.<id>.0/30`: the host
/// end is `.1`, the namespace's `.2`), deleted when dropped. Needs root, as CI has.
#[cfg(all(feature = "root-faults", feature = "postgres"))]
struct Netns {
    name: String,
    id: u32,
}

#[cfg(all(feature = "root-faults", feature = "postgres"))]
impl Netns {
    fn ip(args: &[&str]) {
        let status = std::process::Command::new("ip").args(args).status().expect("ip (iproute2) runs");
        assert!(status.success(), "ip {args:?} (network namespaces need root, as CI has)");
    }

    fn create(links: u32) -> Self {
        let id = std::process::id() % 250 + 1;
        let name = format!("gcmq{id}");
        let _ = std::process::Command::new("ip").args(["netns", "del", &name]).status();
        Self::ip(&["netns", "add", &name]);
        Self::ip(&["-n", &name, "link", "set", "lo", "up"]);
        let netns = Self { name, id };
        for link in 0..links {
            let (host, inner) = (netns.interface(link), format!("gq{id}n{link}"));
            Self::ip(&["link", "add", &host, "type", "veth", "peer", "name", &inner]);
            Self::ip(&["link", "set", &inner, "netns", &netns.name]);
            Self::ip(&["addr", "add", &format!("{}/30", netns.host_ip(link)), "dev", &host]);
            Self::ip(&["link", "set", &host, "up"]);
            Self::ip(&["-n", &netns.name, "addr", "add", &format!("10.{}.{id}.2/30", 200 + link), "dev", &inner]);
            Self::ip(&["-n", &netns.name, "link", "set", &inner, "up"]);
        }
        netns
    }

    fn interface(&self, link: u32) -> String {
        format!("gq{}h{link}", self.id)
    }

    /// This side's address on `link`: what the namespace reaches.
    fn host_ip(&self, link: u32) -> std::net::IpAddr {
        std::net::Ipv4Addr::new(10, u8::try_from(200 + link).unwrap(), u8::try_from(self.id).unwrap(), 1).into()
    }

    fn set_link(&self, link: u32, up: bool) {
        Self::ip(&["link", "set", &self.interface(link), if up { "up" } else { "down" }]);
    }
}

#[cfg(all(feature = "root-faults", feature = "postgres"))]
impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Across hosts: a worker in its own network namespace reaches PostgreSQL over one link and
/// FCM over another; the PostgreSQL link goes down for 20 s (packets dropped, no reset), then
/// comes back. A second worker, on this side, carries on meanwhile.
#[cfg(all(feature = "root-faults", feature = "postgres"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_cut_from_postgres_by_its_link_for_20_s() {
    let url = server_url("GCM_QUEUE_POSTGRES_URL");
    let netns = Netns::create(2);
    let database = host_port(&url);
    let database_relay = Relay::start_on(netns.host_ip(0), database.clone()).await;
    let mut case = case(&url, &database_relay.url(&url, &database), slow(Duration::from_millis(200))).await;
    let fcm = host_port(&case.server.url());
    let fcm_relay = Relay::start_on(netns.host_ip(1), fcm.clone()).await;
    case.fleet.v1_endpoint = fcm_relay.url(&case.fleet.v1_endpoint, &fcm);
    case.fleet.legacy_endpoint = fcm_relay.url(&case.fleet.legacy_endpoint, &fcm);
    // The token endpoint named in the credentials, reached over the FCM link too.
    let credentials = std::fs::read_to_string(&case.fleet.credentials).unwrap();
    std::fs::write(&case.fleet.credentials, fcm_relay.url(&credentials, &fcm)).unwrap();
    case.fleet.netns = Some(netns.name.clone());
    let mut workers = vec![case.fleet.start("inside")];
    case.fleet.netns = None;
    case.fleet.url = url.clone();
    workers.push(case.fleet.start("outside"));
    case.wait_settled(TOKENS_PER_JOB).await;
    netns.set_link(0, false);
    tokio::time::sleep(Duration::from_secs(20)).await;
    netns.set_link(0, true);
    case.check(&mut workers).await;
}
