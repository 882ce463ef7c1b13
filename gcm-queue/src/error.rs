//! What can go wrong around a send: the queue, the result store, the configuration.

use std::fmt;

/// A boxed error from a backend (sqlx, redis, apalis).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a queue operation failed. Sending problems are not errors: they are fates.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The result store failed; the attempt is not settled and will run again.
    Store(BoxError),
    /// The queue refused a job (push, connect, set-up).
    Queue(BoxError),
    /// The configuration cannot work: an unknown URL scheme, no client for a job's kind.
    Config(String),
    /// The FCM client could not be built (credentials, TLS).
    Client(gcm_hyper::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(error) => write!(f, "result store: {error}"),
            Self::Queue(error) => write!(f, "job queue: {error}"),
            Self::Config(text) => f.write_str(text),
            Self::Client(error) => write!(f, "FCM client: {error}"),
        }
    }
}

impl Error {
    /// The innermost error of the chain: what the backend or the network said.
    pub fn root_cause(&self) -> String {
        let mut cause: &(dyn std::error::Error + 'static) = self;
        while let Some(source) = cause.source() {
            cause = source;
        }
        cause.to_string()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(error) | Self::Queue(error) => Some(error.as_ref()),
            Self::Config(_) => None,
            Self::Client(error) => Some(error),
        }
    }
}

impl From<gcm_hyper::Error> for Error {
    fn from(error: gcm_hyper::Error) -> Self {
        Self::Client(error)
    }
}
