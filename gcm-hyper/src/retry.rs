//! An opt-in retry loop built only on `Client::send` and gcm-proto's outcome: send, wait
//! what the outcome suggests, resend the tokens that need it, merge every attempt.

use std::future::Future;
use std::time::Duration;

use gcm_proto::{Fate, Message, Outcome, RetryCause, v1};
use hyper_util::client::legacy::connect::Connect;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_core::Rng;

use crate::client::Client;
use crate::error::Error;
use crate::v1::FcmClient;

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

/// What a retry loop ended with.
#[derive(Debug)]
pub struct Report {
    /// Every attempt merged: successes and canonical ids from every attempt, not
    /// registered, failed, and — as [`Outcome::to_retry`] — the tokens still pending when
    /// the loop stopped. `outcome.retry(&message)` is the message to schedule for them.
    pub outcome: Outcome,
    /// How many requests were sent.
    pub attempts: u32,
    /// The error of the last attempt, if it failed: a fatal one (400, 401, …) stops the
    /// loop at once; a transient one (transport, timeout) was retried until the limits.
    pub error: Option<Error>,
}

/// Sends a message until every token has a final fate, or until `max_attempts` requests
/// or the deadline. Between attempts it waits [`Outcome::delay`] (the server's
/// `Retry-After`, else exponential backoff with jitter) and resends only the tokens that
/// need it. Transport failures and timeouts are retried like a 5xx (set
/// [`retry_transport_errors`](RetryLoop::retry_transport_errors) to `false` to stop on them,
/// since the request may have reached the server).
///
/// The random generator and the sleeper are injectable, so a test runs it on a paused
/// tokio clock with a seeded generator.
#[derive(Debug)]
pub struct RetryLoop<R = StdRng, S = TokioSleep> {
    max_attempts: u32,
    deadline: Option<Duration>,
    retry_transport_errors: bool,
    rng: R,
    sleeper: S,
}

/// Default number of requests (the first send and 5 retries, as most GCM clients do).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;

impl RetryLoop {
    /// Six attempts, no deadline, a generator seeded from the OS, `tokio::time::sleep`.
    pub fn new() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            deadline: None,
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
            retry_transport_errors: self.retry_transport_errors,
            rng: self.rng,
            sleeper,
        }
    }

    /// Runs the loop for `message` and returns one merged report.
    pub async fn run<C>(&mut self, client: &Client<C>, message: &Message) -> Report
    where
        C: Connect + Clone + Send + Sync + 'static,
    {
        let backoff = client.gcm().backoff();
        let retry_transport_errors = self.retry_transport_errors;
        let attempt = |pending: Message| async move {
            match client.send(&pending).await {
                Ok(outcome) => Step::Answered(outcome, None),
                Err(error) if error.is_transient() && retry_transport_errors => {
                    Step::Answered(not_sent(&pending, backoff), Some(error))
                }
                Err(error) => Step::Stop(None, error),
            }
        };
        let unsent = || not_sent(message, backoff);
        self.drive(message.clone(), attempt, |report| report.retry(message), unsent).await
    }

    /// Runs the loop for an FCM v1 fan-out (`messages`, e.g. one message per token) and
    /// returns one merged report, in the order of `messages`. Each attempt resends only the
    /// messages whose recipient still needs it. An error that is not transient (the key
    /// refused, an answer without a JSON body) stops the loop, keeping what that attempt's
    /// other messages learned.
    pub async fn run_v1<C>(&mut self, client: &FcmClient<C>, messages: &[v1::Message]) -> Report
    where
        C: Connect + Clone + Send + Sync + 'static,
    {
        let retry_transport_errors = self.retry_transport_errors;
        let attempt = |pending: Vec<v1::Message>| async move {
            let Report { outcome, error, .. } = client.send_each(&pending).await;
            match error {
                Some(error) if !(error.is_transient() && retry_transport_errors) => Step::Stop(Some(outcome), error),
                error => Step::Answered(outcome, error),
            }
        };
        let unsent = || client.fcm().outcome(messages, Vec::new());
        self.drive(messages.to_vec(), attempt, |report| report.retry_v1(messages), unsent).await
    }

    /// The loop itself: `attempt` sends what is pending, `next` says what the merged
    /// report still needs, `unsent` is the report of a first attempt that got no answer.
    async fn drive<P, A, F>(
        &mut self,
        first: P,
        mut attempt: A,
        next: impl Fn(&Outcome) -> Option<P>,
        unsent: impl FnOnce() -> Outcome,
    ) -> Report
    where
        A: FnMut(P) -> F,
        F: Future<Output = Step>,
    {
        let started = tokio::time::Instant::now();
        let mut merged: Option<Outcome> = None;
        let mut pending = first;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let step = attempt(pending).await;
            let (outcome, error) = match step {
                Step::Answered(outcome, error) => (outcome, error),
                Step::Stop(answered, error) => {
                    // Recipients keep what earlier attempts and this one told; with no
                    // answer at all, every one of them is still pending.
                    let outcome = match (merged, answered) {
                        (Some(earlier), Some(answered)) => merged_with(earlier, answered),
                        (Some(earlier), None) => earlier,
                        (None, Some(answered)) => answered,
                        (None, None) => unsent(),
                    };
                    return Report { outcome, attempts, error: Some(error) };
                }
            };
            let report = match merged.take() {
                Some(earlier) => merged_with(earlier, outcome),
                None => outcome,
            };
            let Some(retry) = next(&report) else {
                return Report { outcome: report, attempts, error };
            };
            let delay = report.delay(attempts - 1, &mut self.rng);
            let out_of_time = self.deadline.is_some_and(|deadline| started.elapsed() + delay > deadline);
            if attempts >= self.max_attempts || out_of_time {
                tracing::debug!(attempts, "gcm retry loop gave up");
                return Report { outcome: report, attempts, error };
            }
            tracing::debug!(attempt = attempts, ?delay, "gcm retry scheduled");
            self.sleeper.sleep(delay).await;
            merged = Some(report);
            pending = retry;
        }
    }
}

/// What one attempt of the loop gave.
enum Step {
    /// An outcome for what was sent (and the transient error that left some unanswered).
    Answered(Outcome, Option<Error>),
    /// A fatal error: stop with what earlier attempts learned, and this one's answers for
    /// the rest of what it sent, if any.
    Stop(Option<Outcome>, Error),
}

fn merged_with(mut earlier: Outcome, later: Outcome) -> Outcome {
    earlier.merge(later);
    earlier
}

/// The outcome of an attempt that got no answer: every recipient still pending.
fn not_sent(message: &Message, backoff: gcm_proto::Backoff) -> Outcome {
    Outcome::for_all(message, Fate::Retry(RetryCause::Unanswered), backoff)
}
