//! Helpers shared by the integration tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A sleeper that only writes down how long it was asked to wait.
#[allow(dead_code)] // not every test file sleeps
pub fn recorder() -> (Arc<Mutex<Vec<Duration>>>, impl FnMut(Duration) -> std::future::Ready<()>) {
    let delays = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&delays);
    (delays, move |delay| {
        log.lock().unwrap().push(delay);
        std::future::ready(())
    })
}

/// Wall time that follows tokio's clock, so that a paused test moves both the client's
/// and the mock's idea of "now" with `tokio::time::advance`.
#[allow(dead_code)] // not every test file moves time
pub fn tokio_clock() -> impl Fn() -> std::time::SystemTime + Clone + Send + Sync + 'static {
    let base = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let start = tokio::time::Instant::now();
    move || base + start.elapsed()
}
