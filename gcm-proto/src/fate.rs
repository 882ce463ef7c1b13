//! What happened to one recipient ([`Fate`]) and, for a retry, why ([`RetryCause`]).

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, ErrorKind};

/// What happened to one recipient. Every recipient of a request has exactly one fate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Accepted for delivery.
    Delivered {
        /// The server's id for the message (a topic's numeric id as decimal text).
        message_id: String,
        /// The token to store instead of this one from now on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        canonical: Option<String>,
    },
    /// The token is no longer valid: remove it from your database.
    NotRegistered,
    /// Unrecoverable for this request (bad token, wrong sender, payload too big…).
    Failed(ErrorCode),
    /// Not delivered yet; resend after [`Outcome::delay`](crate::Outcome::delay).
    Retry(RetryCause),
}

impl Fate {
    /// The fate an error code gives a recipient.
    pub fn from_error(code: ErrorCode) -> Self {
        match code.kind() {
            ErrorKind::NotRegistered => Self::NotRegistered,
            ErrorKind::Retry | ErrorKind::RateLimited => Self::Retry(RetryCause::Error(code)),
            ErrorKind::Fatal => Self::Failed(code),
        }
    }

    /// True for every fate but [`Fate::Retry`]: nothing about this recipient will change.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Retry(_))
    }
}

/// Why a recipient must be retried.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryCause {
    /// The server reported a recoverable code for this recipient (`Unavailable`,
    /// `InternalServerError`) or a rate limit (`DeviceMessageRateExceeded`,
    /// `TopicsMessageRateExceeded`).
    Error(ErrorCode),
    /// The whole request failed with this 5xx status.
    Status(u16),
    /// No answer for this recipient: the request failed in transit or timed out, or was
    /// refused as a whole (the error that came with it says which).
    Unanswered,
}
