//! What a legacy retry loop ends with: the merged outcome, and what it cannot hold (the
//! last error, the delay the loop did not wait).

use std::time::Duration;

use gcm_proto::Outcome;

use crate::error::Error;

/// What a legacy retry loop ended with.
#[derive(Debug)]
pub struct Report {
    /// Every attempt merged: successes and canonical ids from every attempt, not
    /// registered, failed, and — as [`Outcome::to_retry`] — the tokens still pending when
    /// the loop stopped. `outcome.retry()` is the message to schedule for them.
    pub outcome: Outcome,
    /// How many requests were sent.
    pub attempts: u32,
    /// The error of the last attempt, if it failed: a fatal one (400, 401, …) stops the
    /// loop at once; a retryable one (transport, timeout) was retried until the limits.
    pub error: Option<Error>,
    /// When the loop stopped with tokens pending because of its limits: the delay it would
    /// have waited before the next attempt (the server's `Retry-After` if that was the
    /// longer). Schedule `outcome.retry()` after it.
    pub next_delay: Option<Duration>,
}
