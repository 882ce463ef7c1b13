//! The retry loop of a legacy send: resend the recipients that need it, merge every attempt.

use gcm_proto::{Fate, Message, Outcome, RetryCause};
use hyper_util::client::legacy::connect::Connect;
use rand_core::Rng;

use super::client::Client;
use super::report::Report;
use crate::retry::{RetryLoop, Sleeper};

impl<R: Rng, S: Sleeper> RetryLoop<R, S> {
    /// Runs the loop for `message` and returns one merged report.
    pub async fn run<C>(&mut self, client: &Client<C>, message: &Message) -> Report
    where
        C: Connect + Clone + Send + Sync + 'static,
    {
        let started = tokio::time::Instant::now();
        let backoff = client.gcm().backoff();
        let mut merged: Option<Outcome> = None;
        let mut pending = message.clone();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (outcome, error) = match client.send(&pending).await {
                Ok(outcome) => (outcome, None),
                Err(error) if error.is_retryable() && self.retry_transport_errors => {
                    (not_sent(&pending, backoff), Some(error))
                }
                Err(error) => {
                    // Recipients keep what earlier attempts told; with no answer at all,
                    // every one of them is still pending.
                    let outcome = merged.unwrap_or_else(|| not_sent(message, backoff));
                    return Report { outcome, attempts, error: Some(error), next_delay: None };
                }
            };
            let outcome = match merged.take() {
                Some(mut earlier) => {
                    earlier.merge(outcome);
                    earlier
                }
                None => outcome,
            };
            let Some(retry) = outcome.retry() else {
                return Report { outcome, attempts, error, next_delay: None };
            };
            let delay = outcome.delay(attempts - 1, &mut self.rng);
            if self.gives_up(started, attempts, delay) {
                return Report { outcome, attempts, error, next_delay: Some(delay) };
            }
            tracing::debug!(attempt = attempts, ?delay, "gcm retry scheduled");
            self.sleeper.sleep(delay).await;
            merged = Some(outcome);
            pending = retry;
        }
    }
}

/// The outcome of an attempt that got no answer: every recipient still pending.
fn not_sent(message: &Message, backoff: gcm_proto::Backoff) -> Outcome {
    Outcome::for_all(message, Fate::Retry(RetryCause::Unanswered), backoff)
}
