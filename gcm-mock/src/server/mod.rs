//! The HTTP side, by job: [`builder`] (the settings, and starting), [`serve`] (the hyper
//! loop that hands each request to the engine), and here the running [`MockServer`]: its
//! addresses and what a test inspects (inbox, requests, tokens issued).

mod builder;
mod serve;
#[cfg(feature = "tls")]
mod tls;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use builder::Builder;
#[cfg(feature = "tls")]
pub use tls::{GOOGLE_HOSTS, Tls};

use crate::engine::{Delivery, Engine, ReceivedRequest, RecordingStats};

/// Largest request body accepted by default (a 1000-token multicast with a full payload is
/// well under 300 KiB); larger bodies get 413.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// How long a request's body may take to arrive by default; a slower one gets 408 and its
/// memory back.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Concurrent HTTP/2 streams per connection by default (Google's endpoints allow 100).
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 100;

/// The mock's notion of the current time (FCM v1 tokens expire by it).
type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

struct Shared {
    engine: Mutex<Engine>,
    connections: AtomicU64,
    body_limit: usize,
    body_timeout: Duration,
    clock: Clock,
    /// While true, answers are decided but not sent (see [`MockServer::hold_answers`]).
    hold: tokio::sync::watch::Sender<bool>,
    /// How many answers are being held.
    held: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    fn engine(&self) -> MutexGuard<'_, Engine> {
        // The engine never panics while locked; if it ever did, keep serving.
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running mock GCM server on a loopback port. One per test; it stops when dropped or
/// when [`shutdown`](MockServer::shutdown) is awaited.
pub struct MockServer {
    addr: SocketAddr,
    /// `http`, or `https` with TLS.
    scheme: &'static str,
    shared: Arc<Shared>,
    service_account_json: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl MockServer {
    /// A builder, for API keys, a scenario, a seed or an address.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Starts a server that accepts any API key and delivers to every token.
    pub async fn start() -> io::Result<Self> {
        Builder::default().start().await
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The GCM send URL, `http://127.0.0.1:PORT/gcm/send`.
    pub fn url(&self) -> String {
        format!("{}/gcm/send", self.base_url())
    }

    /// The FCM legacy send URL, `http://127.0.0.1:PORT/fcm/send` (same protocol).
    pub fn fcm_url(&self) -> String {
        format!("{}/fcm/send", self.base_url())
    }

    /// FCM v1: the built-in service account's key file, its `token_uri` pointing at this
    /// server. Hand it to a v1 client as you would the file from Firebase. `None` when the
    /// builder was given another service account.
    pub fn service_account_json(&self) -> Option<&str> {
        self.service_account_json.as_deref()
    }

    /// FCM v1: the base URL to send to (`/v1/projects/{project}/messages:send` is below it).
    /// Same as [`base_url`](MockServer::base_url).
    pub fn v1_base_url(&self) -> String {
        self.base_url()
    }

    /// FCM v1: how many access tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.engine().tokens_issued()
    }

    /// Every delivery the inbox holds, in order.
    pub fn inbox(&self) -> Vec<Delivery> {
        self.inbox_page(0, usize::MAX)
    }

    /// The deliveries numbered after `after` ([`Delivery::index`]), at most `limit`; they
    /// are built after the engine's lock is released.
    pub fn inbox_page(&self, after: u64, limit: usize) -> Vec<Delivery> {
        let page = self.shared.engine().inbox_page(after, limit);
        page.deliveries().collect()
    }

    /// What the inbox and the request log hold, and what they dropped to stay within
    /// their limits.
    pub fn recording_stats(&self) -> RecordingStats {
        self.shared.engine().recording_stats()
    }

    /// Each topic with the tokens subscribed to it, in order.
    pub fn topics(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        self.shared.engine().topics()
    }

    /// Empties the inbox.
    pub fn clear_inbox(&self) {
        self.shared.engine().clear_inbox();
    }

    /// The requests received so far (the most recent, within the log's limits), oldest first.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.engine().requests()
    }

    /// How many TCP connections the server has accepted.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Holds every answer from now on: requests are read and decided (the inbox fills) but
    /// nothing is sent back until [`release_answers`](Self::release_answers), so that a
    /// test can see how many requests a client keeps in flight, and on how many connections,
    /// without depending on timing.
    pub fn hold_answers(&self) {
        self.shared.hold.send_replace(true);
    }

    /// Sends the held answers, and every later one at once.
    pub fn release_answers(&self) {
        self.shared.hold.send_replace(false);
    }

    /// Waits until at least `count` answers are held.
    pub async fn wait_held(&self, count: u64) {
        let mut held = self.shared.held.subscribe();
        let _ = held.wait_for(|held| *held >= count).await;
    }

    /// Back to the state right after start: inbox, log, attempts, replies, ids and faults;
    /// FCM v1 access tokens are forgotten, so a client's next send is refused with 401.
    pub fn reset(&self) {
        self.shared.engine().reset();
    }

    /// Stops accepting, lets requests in flight finish (up to 5 s), and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
