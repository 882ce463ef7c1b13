//! An optional local check of the limits the server enforces, for callers who want to fail
//! before sending. Encoding never applies it: the server stays the judge.

use std::fmt;

use serde_json::{Map, Value};

use crate::message::{MAX_REGISTRATION_IDS, Message, Target};

/// Longest `time_to_live`, in seconds (28 days).
pub const MAX_TIME_TO_LIVE: u32 = 2_419_200;
/// Most payload bytes: the keys and values of `data`.
pub const MAX_PAYLOAD_BYTES: usize = 4096;

/// A limit the server would reject a message for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitViolation {
    /// More than [`MAX_REGISTRATION_IDS`] tokens (the server answers 400).
    TooManyRecipients {
        /// How many the message has.
        count: usize,
    },
    /// `time_to_live` above [`MAX_TIME_TO_LIVE`] (`InvalidTtl`).
    TimeToLive {
        /// The value set.
        seconds: u32,
    },
    /// The payload is over [`MAX_PAYLOAD_BYTES`] (`MessageTooBig`).
    PayloadTooBig {
        /// The payload's size as the server counts it.
        bytes: usize,
    },
    /// A `data` key the server reserves (`InvalidDataKey`): `from`, or one starting with
    /// `google` or `gcm`.
    ReservedDataKey {
        /// The key.
        key: String,
    },
}

impl fmt::Display for LimitViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyRecipients { count } => {
                write!(f, "{count} registration tokens, at most {MAX_REGISTRATION_IDS} allowed")
            }
            Self::TimeToLive { seconds } => {
                write!(f, "time_to_live {seconds} s is above {MAX_TIME_TO_LIVE} s")
            }
            Self::PayloadTooBig { bytes } => {
                write!(f, "payload of {bytes} bytes is above {MAX_PAYLOAD_BYTES} bytes")
            }
            Self::ReservedDataKey { key } => write!(f, "data key {key:?} is reserved"),
        }
    }
}

impl std::error::Error for LimitViolation {}

/// The payload size as the server counts it: the UTF-8 bytes of every `data` key plus its
/// value (strings as they are, other values as their JSON text).
pub fn payload_size(data: &Map<String, Value>) -> usize {
    data.iter()
        .map(|(key, value)| {
            key.len()
                + match value {
                    Value::String(s) => s.len(),
                    other => other.to_string().len(),
                }
        })
        .sum()
}

/// True for `data` keys the server rejects with `InvalidDataKey`.
pub fn is_reserved_data_key(key: &str) -> bool {
    key == "from" || key.starts_with("google") || key.starts_with("gcm")
}

impl Message {
    /// Checks the limits the server enforces, without sending. Returns every violation.
    ///
    /// ```
    /// use gcm_proto::{LimitViolation, Message};
    ///
    /// let message = Message::to("token").data("from", "me").time_to_live(3_000_000);
    /// assert_eq!(
    ///     message.check_limits(),
    ///     Err(vec![
    ///         LimitViolation::TimeToLive { seconds: 3_000_000 },
    ///         LimitViolation::ReservedDataKey { key: "from".into() },
    ///     ])
    /// );
    /// ```
    pub fn check_limits(&self) -> Result<(), Vec<LimitViolation>> {
        let mut violations = Vec::new();
        if let Target::RegistrationIds(tokens) = &self.target {
            if tokens.len() > MAX_REGISTRATION_IDS {
                violations.push(LimitViolation::TooManyRecipients { count: tokens.len() });
            }
        }
        if let Some(seconds) = self.options.time_to_live.filter(|&s| s > MAX_TIME_TO_LIVE) {
            violations.push(LimitViolation::TimeToLive { seconds });
        }
        let bytes = payload_size(&self.data);
        if bytes > MAX_PAYLOAD_BYTES {
            violations.push(LimitViolation::PayloadTooBig { bytes });
        }
        violations.extend(
            self.data
                .keys()
                .filter(|key| is_reserved_data_key(key))
                .map(|key| LimitViolation::ReservedDataKey { key: key.clone() }),
        );
        if violations.is_empty() { Ok(()) } else { Err(violations) }
    }
}
