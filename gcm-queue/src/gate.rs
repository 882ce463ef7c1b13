//! What holds sending back: a pause after a failure that concerns every message, and a
//! messages-per-minute limit.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};
use tokio::time::Instant;

/// The pause after a failure that concerns every message (credentials refused, no
/// access token, no connection): every job of the process waits before it sends, and the
/// pause doubles while the failure lasts, from `first` to `longest`.
#[derive(Debug)]
pub struct Gate {
    first: Duration,
    longest: Duration,
    state: Mutex<Paused>,
}

#[derive(Debug, Default)]
struct Paused {
    until: Option<Instant>,
    failures: u32,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(300))
    }
}

impl Gate {
    /// Pauses of `first`, doubling up to `longest`.
    pub fn new(first: Duration, longest: Duration) -> Self {
        Self { first, longest, state: Mutex::new(Paused::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Paused> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until no pause is in force.
    pub async fn wait(&self) {
        loop {
            let until = self.lock().until;
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return,
            }
        }
    }

    /// Pauses sending after `error`, unless a pause is already in force (then the jobs
    /// that saw the same failure wait with the others). Logs a WARN per pause.
    pub fn pause(&self, error: &gcm_hyper::Error) {
        let mut state = self.lock();
        let now = Instant::now();
        if state.until.is_some_and(|until| until > now) {
            return;
        }
        let doubling = 2u32.saturating_pow(state.failures.min(31));
        let pause = self.first.saturating_mul(doubling).min(self.longest);
        state.failures = state.failures.saturating_add(1);
        state.until = Some(now + pause);
        tracing::warn!(%error, pause_ms = pause.as_millis() as u64, failures = state.failures, "sending paused: the failure concerns every message");
    }

    /// Ends the backoff: a send got through.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.failures = 0;
        state.until = None;
    }

    /// True while a pause is in force.
    pub fn is_paused(&self) -> bool {
        self.lock().until.is_some_and(|until| until > Instant::now())
    }
}

/// At most so many messages a minute, in bursts of up to a minute's worth.
#[derive(Debug)]
pub struct RateLimit {
    limiter: DefaultDirectRateLimiter,
    burst: NonZeroU32,
}

impl RateLimit {
    /// `None` for 0 (no limit).
    pub fn per_minute(messages: u32) -> Option<Self> {
        let burst = NonZeroU32::new(messages)?;
        Some(Self { limiter: DefaultDirectRateLimiter::direct(Quota::per_minute(burst)), burst })
    }

    /// Waits until `messages` may be sent.
    pub async fn wait_for(&self, messages: usize) {
        let mut left = messages;
        while left > 0 {
            let chunk = left.min(self.burst.get() as usize);
            left -= chunk;
            let cells = NonZeroU32::new(u32::try_from(chunk).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
            // A chunk never exceeds the burst, so the only error (insufficient capacity) cannot happen.
            let _ = self.limiter.until_n_ready(cells).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> gcm_hyper::Error {
        gcm_hyper::Error::Config("credentials refused".into())
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_double_until_a_send_gets_through() {
        let gate = Gate::new(Duration::from_secs(1), Duration::from_secs(5));
        let mut waited = Vec::new();
        for _ in 0..4 {
            gate.pause(&refused());
            let start = Instant::now();
            gate.wait().await;
            waited.push(start.elapsed().as_secs());
        }
        assert_eq!(waited, [1, 2, 4, 5]);
        gate.clear();
        gate.pause(&refused());
        let start = Instant::now();
        gate.wait().await;
        assert_eq!(start.elapsed().as_secs(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_in_force_is_not_extended_by_the_jobs_that_hit_it() {
        let gate = Gate::new(Duration::from_secs(1), Duration::from_secs(60));
        gate.pause(&refused());
        gate.pause(&refused());
        gate.pause(&refused());
        let start = Instant::now();
        gate.wait().await;
        assert_eq!(start.elapsed().as_secs(), 1);
        assert!(!gate.is_paused());
    }
}
