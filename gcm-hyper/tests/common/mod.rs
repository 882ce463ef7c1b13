//! Helpers shared by the integration tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A sleeper that only writes down how long it was asked to wait.
#[allow(dead_code)] // not every test file sleeps
pub(crate) fn recorder() -> (Arc<Mutex<Vec<Duration>>>, impl FnMut(Duration) -> std::future::Ready<()>) {
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
pub(crate) fn tokio_clock() -> impl Fn() -> std::time::SystemTime + Clone + Send + Sync + 'static {
    let base = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let start = tokio::time::Instant::now();
    move || base + start.elapsed()
}

#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// What was written so far.
    #[allow(dead_code)]
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything `tracing` writes at `level` and above on this thread, until the guard drops.
#[allow(dead_code)] // not every test file reads the logs
pub(crate) fn capture(level: tracing::Level) -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber =
        tracing_subscriber::fmt().with_max_level(level).with_ansi(false).with_writer(move || sink.clone()).finish();
    (captured, tracing::subscriber::set_default(subscriber))
}
