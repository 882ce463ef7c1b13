//! The opt-in retry loop's settings and limits, for both protocols: send, wait what the
//! outcome suggests, resend the recipients that need it, merge every attempt. Each
//! protocol's loop lives beside its client (`legacy/retry.rs`, `fcm/retry.rs`).

use std::future::Future;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_core::Rng;

/// Waits before a retry. [`TokioSleep`] is the default; a closure
/// `|delay| async move { … }` works too.
pub trait Sleeper {
    /// Waits `delay`.
    fn sleep(&mut self, delay: Duration) -> impl Future<Output = ()> + Send;
}

/// `tokio::time::sleep`: real time, or the paused clock of a `start_paused` test.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioSleep;

impl Sleeper for TokioSleep {
    fn sleep(&mut self, delay: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(delay)
    }
}

impl<F, Fut> Sleeper for F
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = ()> + Send,
{
    fn sleep(&mut self, delay: Duration) -> impl Future<Output = ()> + Send {
        self(delay)
    }
}

/// Sends a message until every token has a final fate, or until `max_attempts` requests,
/// the deadline, or a delay longer than `max_delay`. Between attempts it waits
/// [`Outcome::delay`](gcm_proto::Outcome::delay) (the server's `Retry-After` as a lower bound, else exponential
/// backoff with jitter and per-cause floors) and resends only the tokens that need it. Transport failures and timeouts are retried like a 5xx (set
/// [`retry_transport_errors`](RetryLoop::retry_transport_errors) to `false` to stop on them,
/// since the request may have reached the server).
///
/// The random generator and the sleeper are injectable, so a test runs it on a paused
/// tokio clock with a seeded generator.
#[derive(Debug)]
pub struct RetryLoop<R = StdRng, S = TokioSleep> {
    max_attempts: u32,
    deadline: Option<Duration>,
    max_delay: Duration,
    pub(crate) retry_transport_errors: bool,
    pub(crate) rng: R,
    pub(crate) sleeper: S,
}

/// Default number of requests (the first send and 5 retries, as most GCM clients do).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;

/// Default longest single wait of a [`RetryLoop`].
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(15 * 60);

impl RetryLoop {
    /// Six attempts, no deadline, a generator seeded from the OS, `tokio::time::sleep`.
    pub fn new() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            deadline: None,
            max_delay: DEFAULT_MAX_DELAY,
            retry_transport_errors: true,
            rng: StdRng::from_rng(&mut rand::rng()),
            sleeper: TokioSleep,
        }
    }
}

impl Default for RetryLoop {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Rng, S: Sleeper> RetryLoop<R, S> {
    /// At most this many requests (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Gives up rather than wait past this much time after the first send.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Whether transport failures and timeouts are retried (default true).
    pub fn retry_transport_errors(mut self, retry: bool) -> Self {
        self.retry_transport_errors = retry;
        self
    }

    /// Draws jitter from this generator.
    pub fn rng<R2: Rng>(self, rng: R2) -> RetryLoop<R2, S> {
        RetryLoop {
            max_attempts: self.max_attempts,
            deadline: self.deadline,
            max_delay: self.max_delay,
            retry_transport_errors: self.retry_transport_errors,
            rng,
            sleeper: self.sleeper,
        }
    }

    /// Waits with this sleeper.
    pub fn sleeper<S2: Sleeper>(self, sleeper: S2) -> RetryLoop<R, S2> {
        RetryLoop {
            max_attempts: self.max_attempts,
            deadline: self.deadline,
            max_delay: self.max_delay,
            retry_transport_errors: self.retry_transport_errors,
            rng: self.rng,
            sleeper,
        }
    }

    /// Never waits longer than this before one attempt (default 15 minutes): a longer
    /// delay (a server's `Retry-After`, a backoff) ends the loop with the tokens pending
    /// and the delay in the report, for the caller to schedule.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// True when waiting `delay` before attempt `attempts + 1` breaks a limit.
    pub(crate) fn gives_up(&self, started: tokio::time::Instant, attempts: u32, delay: Duration) -> bool {
        let past_deadline = self.deadline.is_some_and(|deadline| {
            // A huge Retry-After must not overflow: past the deadline either way.
            started.elapsed().checked_add(delay).is_none_or(|end| end > deadline)
        });
        let gives_up = attempts >= self.max_attempts || delay > self.max_delay || past_deadline;
        if gives_up {
            tracing::warn!(
                attempts,
                ?delay,
                "retry loop gave up with recipients pending: schedule them after the delay"
            );
        }
        gives_up
    }
}
