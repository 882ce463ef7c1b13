//! What can go wrong with a send, told apart so a caller knows what to do.

use std::fmt;
use std::time::Duration;

use gcm_proto::oauth::AuthError;
use gcm_proto::{BuildError, ResponseError};
use http::Uri;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a send returned no outcome. `Display` names the endpoint and the root cause.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The message could not be turned into a request; nothing was sent.
    Build(BuildError),
    /// The client could not be configured (TLS, proxy).
    Config(String),
    /// The connection failed or broke. `source()` is hyper's error.
    Transport {
        /// True when the failure happened while connecting: the request was certainly not
        /// written, so resending it cannot deliver anything twice.
        connect: bool,
        /// Where the request was going.
        endpoint: Uri,
        /// hyper's error.
        source: BoxError,
    },
    /// No complete response within the request timeout.
    Timeout {
        /// Where the request was going.
        endpoint: Uri,
        /// The request timeout.
        after: Duration,
    },
    /// The response body is larger than the configured cap.
    BodyTooLarge {
        /// The cap, in bytes.
        limit: usize,
        /// The response's status.
        status: u16,
    },
    /// FCM v1: a credential file that cannot be used, or a token endpoint's answer that
    /// refuses or cannot be read (see [`AuthError`]).
    Auth(AuthError),
    /// FCM v1: no access token, so no message was sent. `source` names the credentials
    /// (and their endpoint); `cause` is why the token could not be had (shared by every
    /// send that asked while the refresh backs off).
    Credentials {
        /// What the credentials are, as `Credentials::describe` (feature `v1`) says.
        source: String,
        /// Why there is no token.
        cause: std::sync::Arc<Error>,
    },
    /// The server answered, but not with an outcome: 400, 401, an unexpected status, or a
    /// malformed body (see [`ResponseError`]).
    Response(ResponseError),
}

impl Error {
    /// False only when the request was certainly never sent (a build error, a
    /// configuration error, no access token, or a failure to connect): then a resend cannot duplicate a
    /// delivery. Everything else may have reached the server.
    pub fn may_have_reached_server(&self) -> bool {
        !matches!(
            self,
            Self::Build(_)
                | Self::Config(_)
                | Self::Auth(_)
                | Self::Credentials { .. }
                | Self::Transport { connect: true, .. }
        )
    }

    /// True for failures worth retrying unchanged after a delay: transport failures,
    /// timeouts, truncated responses, and a token endpoint that answered 5xx or 429.
    /// 400, 401, other statuses and malformed bodies are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Auth(error) => error.is_transient(),
            Self::Credentials { cause, .. } => cause.is_retryable(),
            _ => false,
        }
    }

    /// The [`AuthError`] behind this error, if a credential is what failed.
    pub fn auth_error(&self) -> Option<&AuthError> {
        match self {
            Self::Auth(error) => Some(error),
            Self::Credentials { cause, .. } => cause.auth_error(),
            _ => None,
        }
    }

    /// True when the credentials were refused: the server answered 401 to the API key or
    /// access token, or the token endpoint refused the service account (not a 5xx or 429).
    /// Nothing sent with these credentials will succeed: fix them, do not retry.
    pub fn is_authentication(&self) -> bool {
        match self {
            Self::Response(ResponseError::Authentication { .. }) => true,
            Self::Auth(error @ AuthError::TokenRefused { .. }) => !error.is_transient(),
            Self::Credentials { cause, .. } => cause.is_authentication(),
            _ => false,
        }
    }

    /// True for a failure no single message caused, so that every message sent now would
    /// meet it: refused credentials, no access token, no connection to the endpoint.
    /// Pause sending (or fix the cause) instead of retrying message by message.
    pub fn is_systemic(&self) -> bool {
        matches!(self, Self::Auth(_) | Self::Credentials { .. } | Self::Transport { connect: true, .. })
            || self.is_authentication()
    }

    pub(crate) fn transport(endpoint: &Uri, connect: bool, source: BoxError) -> Self {
        Self::Transport { connect, endpoint: endpoint.clone(), source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Build(e) => write!(f, "cannot build the request: {e}"),
            Self::Config(reason) => write!(f, "invalid client configuration: {reason}"),
            Self::Transport { connect, endpoint, source } => {
                let what = if *connect { "cannot connect to" } else { "the connection failed to" };
                write!(f, "{what} {endpoint}: ")?;
                write_root_cause(f, source.as_ref())
            }
            Self::Timeout { endpoint, after } => write!(f, "no complete answer from {endpoint} within {after:?}"),
            Self::BodyTooLarge { limit, status } => {
                write!(f, "the response body (status {status}) is larger than {limit} bytes")
            }
            Self::Auth(e) => write!(f, "FCM credentials: {e}"),
            Self::Credentials { source, cause } => {
                write!(f, "no FCM access token from {source}, so nothing was sent: {cause}")
            }
            Self::Response(e) => e.fmt(f),
        }
    }
}

/// The causes below hyper-util's generic "client error (Connect)", joined by ": ":
/// `tcp connect error: Connection refused (os error 111)`.
fn write_root_cause(f: &mut fmt::Formatter<'_>, error: &(dyn std::error::Error + 'static)) -> fmt::Result {
    let generic = error.is::<hyper_util::client::legacy::Error>() && error.source().is_some();
    let mut cause = if generic { error.source() } else { Some(error) };
    let mut first = true;
    while let Some(error) = cause {
        if !first {
            f.write_str(": ")?;
        }
        write!(f, "{error}")?;
        first = false;
        cause = error.source();
    }
    Ok(())
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Build(e) => Some(e),
            Self::Transport { source, .. } => Some(source.as_ref()),
            Self::Response(e) => Some(e),
            Self::Auth(e) => Some(e),
            Self::Credentials { cause, .. } => Some(cause.as_ref()),
            _ => None,
        }
    }
}

impl From<BuildError> for Error {
    fn from(e: BuildError) -> Self {
        Self::Build(e)
    }
}

impl From<ResponseError> for Error {
    fn from(e: ResponseError) -> Self {
        Self::Response(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_every_message_meets_are_systemic() {
        let endpoint = Uri::from_static("https://fcm.googleapis.com/");
        let refused: BoxError = "connection refused".into();
        assert!(Error::transport(&endpoint, true, refused).is_systemic(), "no connection");
        let reset: BoxError = "connection reset".into();
        assert!(!Error::transport(&endpoint, false, reset).is_systemic(), "one request's connection failed");
        assert!(!Error::Timeout { endpoint, after: Duration::from_secs(1) }.is_systemic());
        assert!(!Error::Config("bad".into()).is_systemic());
    }
}
