//! One quota for the fleet: a token bucket per name (an FCM project) kept in the backend,
//! so that every worker of every machine draws from it. A worker takes a job's messages in
//! one round trip and waits what the bucket says before it sends them; the bucket may go
//! into debt, and each taker waits its turn to pay it back. FCM's `QUOTA_EXCEEDED` holds the
//! bucket empty until its `Retry-After`.
//!
//! Times are the backend's clock, so that workers' clocks may differ. A new bucket starts
//! empty; a full one holds a second of messages.

use std::time::Duration;

use super::BoxFuture;
use crate::error::Error;

/// A fleet-wide rate: messages a minute, in bursts of up to a second's worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    per_minute: std::num::NonZeroU32,
}

impl Rate {
    /// `None` for 0 (no limit).
    pub fn per_minute(messages: u32) -> Option<Self> {
        std::num::NonZeroU32::new(messages).map(|per_minute| Self { per_minute })
    }

    /// Messages a minute.
    pub fn messages_per_minute(&self) -> u32 {
        self.per_minute.get()
    }

    /// Messages a millisecond: the refill.
    pub(crate) fn per_ms(&self) -> f64 {
        f64::from(self.per_minute.get()) / 60_000.0
    }

    /// The most a bucket holds: a second's worth, at least one message.
    pub(crate) fn burst(&self) -> f64 {
        (f64::from(self.per_minute.get()) / 60.0).max(1.0)
    }

    /// How long a taker waits: the pause left (`paused_ms`), then the time the bucket
    /// takes to pay back its debt (`tokens` below 0).
    pub(crate) fn wait(&self, tokens: f64, paused_ms: i64) -> Duration {
        let paused = Duration::from_millis(u64::try_from(paused_ms).unwrap_or(0));
        let debt_ms = if tokens < 0.0 { (-tokens / self.per_ms()).ceil() } else { 0.0 };
        // Saturates: a debt beyond u64 milliseconds is a wait without end, not a panic.
        paused.saturating_add(Duration::from_millis(debt_ms as u64))
    }
}

/// A store of fleet-wide buckets.
pub trait Quota: Send + Sync + 'static {
    /// Takes `messages` from bucket `bucket` refilled at `rate`; returns how long to wait
    /// before sending them.
    fn take<'a>(&'a self, bucket: &'a str, rate: &'a Rate, messages: u64) -> BoxFuture<'a, Result<Duration, Error>>;

    /// Holds bucket `bucket` empty for `pause`: FCM said the project's quota is spent.
    fn pause<'a>(&'a self, bucket: &'a str, pause: Duration) -> BoxFuture<'a, Result<(), Error>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debt_is_paid_back_at_the_rate_after_the_pause() {
        let rate = Rate::per_minute(6000).unwrap(); // 100 a second
        assert_eq!(rate.burst(), 100.0);
        assert_eq!(rate.wait(5.0, 0), Duration::ZERO);
        assert_eq!(rate.wait(-50.0, 0), Duration::from_millis(500));
        assert_eq!(rate.wait(-50.0, 2000), Duration::from_millis(2500));
        assert_eq!(rate.wait(-50.0, -20), Duration::from_millis(500), "a pause that ended");
        assert_eq!(rate.wait(-1e300, 0), Duration::from_millis(u64::MAX), "saturates");
        assert_eq!(Rate::per_minute(0), None);
        assert_eq!(Rate::per_minute(1).unwrap().burst(), 1.0);
    }
}
