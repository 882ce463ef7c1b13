//! The retry loop of an FCM v1 multicast: per message, on the same limits as the legacy loop.

use gcm_proto::v1::Multicast;
use hyper_util::client::legacy::connect::Connect;
use rand_core::Rng;

use super::FcmClient;
use super::report::{MulticastReport, Problem, Stopped};
use crate::error::Error;
use crate::retry::{RetryLoop, Sleeper};

impl<R: Rng, S: Sleeper> RetryLoop<R, S> {
    /// Runs the loop for an FCM v1 multicast and returns one merged report, in token
    /// order. Each round resends only the messages that need it and may succeed: a
    /// message whose answer could not be read (a 200 without `name`, an unexpected
    /// status) stays pending with its error and is not resent, whatever its neighbours
    /// got. A failure that concerns every message ([`Stopped`]) ends the loop at once when
    /// it is not retryable (credentials refused), keeping what earlier rounds learned.
    pub async fn run_multicast<C>(
        &mut self,
        client: &FcmClient<C>,
        multicast: &Multicast,
    ) -> Result<MulticastReport, Stopped>
    where
        C: Connect + Clone + Send + Sync + 'static,
    {
        let started = tokio::time::Instant::now();
        let mut merged: Option<MulticastReport> = None;
        let mut pending = multicast.clone();
        let mut positions: Vec<usize> = (0..multicast.tokens().len()).collect();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (report, systemic) = match client.send_multicast(&pending).await {
                Ok(report) => (report, None),
                Err(stopped) => {
                    let (error, report) = stopped.into_parts();
                    (report, Some(error))
                }
            };
            let mut report = match merged.take() {
                Some(mut earlier) => {
                    earlier.absorb(&positions, report);
                    earlier
                }
                None => report,
            };
            report.attempts = attempts;
            let finish = |report: MulticastReport, systemic: Option<Error>| match systemic {
                Some(error) => Err(Stopped::new(error, report)),
                None => Ok(report),
            };
            let retryable = |error: &Error| error.is_retryable() && self.retry_transport_errors;
            if systemic.as_ref().is_some_and(|error| !retryable(error)) {
                return finish(report, systemic);
            }
            let next = report.outcome.retry_where(|position, _| match report.problems.get(&position) {
                Some(Problem::Error(error)) => retryable(error),
                _ => true,
            });
            let Some((retry, retry_positions)) = next else {
                return finish(report, systemic);
            };
            let delay = report.outcome.delay(attempts - 1, &mut self.rng);
            if self.gives_up(started, attempts, delay) {
                report.next_delay = Some(delay);
                return finish(report, systemic);
            }
            tracing::debug!(attempt = attempts, ?delay, messages = retry_positions.len(), "fcm retry scheduled");
            self.sleeper.sleep(delay).await;
            merged = Some(report);
            pending = retry;
            positions = retry_positions;
        }
    }
}
