//! Helpers shared by the integration tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A sleeper that only writes down how long it was asked to wait.
pub fn recorder() -> (Arc<Mutex<Vec<Duration>>>, impl FnMut(Duration) -> std::future::Ready<()>) {
    let delays = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&delays);
    (delays, move |delay| {
        log.lock().unwrap().push(delay);
        std::future::ready(())
    })
}
