//! Error types: one per stage (building a request, reading a response, one token's error code).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a request could not be built. Only what cannot be represented on the wire is
/// rejected here; everything the server judges (TTL range, payload size, reserved keys,
/// token count) is left to the server, or to [`Message::check_limits`](crate::Message::check_limits).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The endpoint is not an absolute `http` or `https` URL.
    InvalidEndpoint {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The API key contains characters that cannot appear in an HTTP header.
    /// (The key itself is never part of the error.)
    InvalidApiKey,
    /// A multicast message without any registration token.
    NoRecipients,
    /// The FCM v1 access token contains characters that cannot appear in an HTTP header.
    /// (The token itself is never part of the error.)
    InvalidAccessToken,
    /// The Firebase project id is empty or has characters a project id cannot have.
    InvalidProjectId,
    /// A plain-text message needs exactly one registration token.
    PlainTextTarget {
        /// What the message targets instead.
        reason: String,
    },
    /// A plain-text message carries only scalar values; this one has an array or object.
    PlainTextNested {
        /// The offending field, e.g. `data.items`.
        field: String,
    },
    /// A field that the plain-text format has no way to carry (e.g. `notification`).
    PlainTextUnsupported {
        /// The field's name.
        field: String,
    },
    /// An extra option repeats a field that the message already sets.
    DuplicateField {
        /// The field's name.
        field: String,
    },
    /// More tokens than one request takes (1000 for a topic subscription).
    TooManyTokens {
        /// How many were given.
        count: usize,
        /// How many one request takes.
        max: usize,
    },
    /// A topic name outside `[a-zA-Z0-9-_.~%]{1,900}`.
    InvalidTopic {
        /// The name as given.
        topic: String,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidEndpoint { url, reason } => write!(f, "invalid endpoint {url:?}: {reason}"),
            Self::InvalidApiKey => f.write_str("the API key is empty or has characters not allowed in an HTTP header"),
            Self::NoRecipients => f.write_str("a multicast message needs at least one registration token"),
            Self::TooManyTokens { count, max } => write!(f, "{count} tokens, at most {max} in one request"),
            Self::InvalidTopic { topic } => write!(f, "invalid topic name {topic:?}: 1 to 900 of [a-zA-Z0-9-_.~%]"),
            Self::InvalidAccessToken => {
                f.write_str("the access token contains characters not allowed in an HTTP header")
            }
            Self::InvalidProjectId => {
                f.write_str("the project id must be non-empty letters, digits, '-', '.', ':' or '_'")
            }
            Self::PlainTextTarget { reason } => {
                write!(f, "a plain-text message needs exactly one registration token: {reason}")
            }
            Self::PlainTextNested { field } => {
                write!(f, "plain-text messages carry scalar values only, but {field} is an array or object")
            }
            Self::PlainTextUnsupported { field } => {
                write!(f, "the plain-text format cannot carry {field}; send the message as JSON")
            }
            Self::DuplicateField { field } => {
                write!(f, "the extra option {field:?} repeats a field the message already sets")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// A response body kept verbatim inside an error, so that nothing the server said is lost.
/// `Debug` and `Display` show it as (lossy) UTF-8 text.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct RawBody(pub Vec<u8>);

impl RawBody {
    /// The exact bytes the server sent.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The body as text; invalid UTF-8 is replaced by U+FFFD.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl fmt::Debug for RawBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text(), f)
    }
}

impl fmt::Display for RawBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().trim_end())
    }
}

/// Why a response could not be turned into an [`Outcome`](crate::Outcome).
/// Every variant keeps the body the server sent.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// HTTP 400: the server could not parse the request or found an invalid field.
    /// The body is the server's one-line reason. Do not retry unchanged.
    BadRequest {
        /// The server's reason, e.g. `"registration_ids" field cannot be empty`.
        body: RawBody,
    },
    /// HTTP 401: the API key is missing, wrong, or not allowed to send. Do not retry.
    Authentication {
        /// Usually an HTML page.
        body: RawBody,
    },
    /// A status outside the protocol (not 200, 400, 401 or 5xx), such as a redirect or 404.
    UnexpectedStatus {
        /// The HTTP status code.
        status: u16,
        /// The body as sent.
        body: RawBody,
    },
    /// A 200 response whose body does not have the protocol's shape.
    Malformed {
        /// What is wrong with it.
        reason: String,
        /// The body as sent.
        body: RawBody,
    },
}

impl ResponseError {
    /// The body the server sent with this error.
    pub fn body(&self) -> &RawBody {
        match self {
            Self::BadRequest { body }
            | Self::Authentication { body }
            | Self::UnexpectedStatus { body, .. }
            | Self::Malformed { body, .. } => body,
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRequest { body } => write!(f, "the server rejected the request (400): {body}"),
            Self::Authentication { .. } => {
                f.write_str("authentication failed (401): the server refused the API key or access token")
            }
            Self::UnexpectedStatus { status, .. } => write!(f, "unexpected HTTP status {status}"),
            Self::Malformed { reason, .. } => write!(f, "malformed response body: {reason}"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// An error code the server reported for one token (a result's `error`, a topic response's
/// `error`, or a plain-text `Error=` line).
///
/// The set is open: a code this crate does not know is kept verbatim in [`ErrorCode::Other`].
/// Parsing also accepts the `SHOUTING_CASE` spelling the FCM endpoint has been seen to send.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No target in the request.
    MissingRegistration,
    /// Malformed registration token.
    InvalidRegistration,
    /// The token is no longer valid: remove it.
    NotRegistered,
    /// The token's package does not match `restricted_package_name`.
    InvalidPackageName,
    /// The token belongs to another sender.
    MismatchSenderId,
    /// The payload is over 4096 bytes.
    MessageTooBig,
    /// A reserved `data` key was used.
    InvalidDataKey,
    /// `time_to_live` outside 0..=2419200.
    InvalidTtl,
    /// Wrong parameter name or type (FCM).
    InvalidParameters,
    /// Server busy for this token: retry with backoff.
    Unavailable,
    /// Server error for this token: retry with backoff.
    InternalServerError,
    /// Too many messages to this device: slow down for this token.
    DeviceMessageRateExceeded,
    /// Too many messages to this topic: slow down for this topic.
    TopicsMessageRateExceeded,
    /// The APNs credentials of the project are missing or expired (FCM, iOS targets).
    InvalidApnsCredential,
    /// FCM HTTP v1 `UNREGISTERED`: the token is no longer valid; remove it.
    Unregistered,
    /// FCM HTTP v1 `INVALID_ARGUMENT`: a malformed token or field (the error names it).
    InvalidArgument,
    /// FCM HTTP v1 `SENDER_ID_MISMATCH`: the token belongs to another sender.
    SenderIdMismatch,
    /// FCM HTTP v1 `THIRD_PARTY_AUTH_ERROR`: the APNs certificate or web push key is
    /// missing or invalid.
    ThirdPartyAuthError,
    /// FCM HTTP v1 `QUOTA_EXCEEDED`: a message, device or topic rate quota is exceeded.
    QuotaExceeded,
    /// FCM HTTP v1 canonical status `RESOURCE_EXHAUSTED` without an FCM code (a project
    /// quota, e.g. send requests per minute).
    ResourceExhausted,
    /// FCM HTTP v1 `UNAVAILABLE` is [`ErrorCode::Unavailable`]; `INTERNAL` is this.
    Internal,
    /// Instance ID API `TOPICS_SUBSCRIPTION_RATE_EXCEEDED`: too many subscription changes
    /// for this app instance; slow down.
    TopicsSubscriptionRateExceeded,
    /// Any other code, kept as the server sent it.
    Other(String),
}

/// What a sender should do about an [`ErrorCode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Remove the token from your database.
    NotRegistered,
    /// Transient: resend to this token after a delay.
    Retry,
    /// Rate-limited: resend later, and slow down for this target.
    RateLimited,
    /// Unrecoverable for this request: do not resend it unchanged.
    Fatal,
}

const KNOWN: [(&str, ErrorCode); 22] = [
    ("MissingRegistration", ErrorCode::MissingRegistration),
    ("InvalidRegistration", ErrorCode::InvalidRegistration),
    ("NotRegistered", ErrorCode::NotRegistered),
    ("InvalidPackageName", ErrorCode::InvalidPackageName),
    ("MismatchSenderId", ErrorCode::MismatchSenderId),
    ("MessageTooBig", ErrorCode::MessageTooBig),
    ("InvalidDataKey", ErrorCode::InvalidDataKey),
    ("InvalidTtl", ErrorCode::InvalidTtl),
    ("InvalidParameters", ErrorCode::InvalidParameters),
    ("Unavailable", ErrorCode::Unavailable),
    ("InternalServerError", ErrorCode::InternalServerError),
    ("DeviceMessageRateExceeded", ErrorCode::DeviceMessageRateExceeded),
    ("TopicsMessageRateExceeded", ErrorCode::TopicsMessageRateExceeded),
    ("InvalidApnsCredential", ErrorCode::InvalidApnsCredential),
    // FCM HTTP v1 spells its codes in SHOUTING_CASE only (`UNAVAILABLE` is the legacy
    // `Unavailable` above); the legacy C2DM `QuotaExceeded` stays unknown.
    ("UNREGISTERED", ErrorCode::Unregistered),
    ("INVALID_ARGUMENT", ErrorCode::InvalidArgument),
    ("SENDER_ID_MISMATCH", ErrorCode::SenderIdMismatch),
    ("THIRD_PARTY_AUTH_ERROR", ErrorCode::ThirdPartyAuthError),
    ("QUOTA_EXCEEDED", ErrorCode::QuotaExceeded),
    ("RESOURCE_EXHAUSTED", ErrorCode::ResourceExhausted),
    ("INTERNAL", ErrorCode::Internal),
    ("TOPICS_SUBSCRIPTION_RATE_EXCEEDED", ErrorCode::TopicsSubscriptionRateExceeded),
];

impl ErrorCode {
    /// Reads a code as the server sent it. Known codes match in their documented
    /// `PascalCase` spelling and in `SHOUTING_CASE` (`NOT_REGISTERED`); anything else is
    /// [`ErrorCode::Other`].
    pub fn parse(code: &str) -> Self {
        for (name, known) in &KNOWN {
            if *name == code || is_shouting_case_of(code, name) {
                return known.clone();
            }
        }
        Self::Other(code.to_owned())
    }

    /// The code's documented spelling (or the verbatim text of an unknown code).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(code) => code,
            known => KNOWN.iter().find(|(_, k)| k == known).map_or("", |(name, _)| name),
        }
    }

    /// How a sender should react to this code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotRegistered | Self::Unregistered => ErrorKind::NotRegistered,
            Self::Unavailable | Self::InternalServerError | Self::Internal => ErrorKind::Retry,
            Self::DeviceMessageRateExceeded
            | Self::TopicsMessageRateExceeded
            | Self::QuotaExceeded
            | Self::ResourceExhausted
            | Self::TopicsSubscriptionRateExceeded => ErrorKind::RateLimited,
            _ => ErrorKind::Fatal,
        }
    }
}

/// `NOT_REGISTERED` for `NotRegistered`: compare letters case-insensitively, with an `_`
/// before each inner capital of the PascalCase name.
fn is_shouting_case_of(code: &str, pascal: &str) -> bool {
    let mut code = code.bytes();
    for (i, c) in pascal.bytes().enumerate() {
        if i > 0 && c.is_ascii_uppercase() && code.next() != Some(b'_') {
            return false;
        }
        if code.next() != Some(c.to_ascii_uppercase()) {
            return false;
        }
    }
    code.next().is_none()
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ErrorCode {
    fn from(code: &str) -> Self {
        Self::parse(code)
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Self::parse(&code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_round_trips_in_both_spellings() {
        for (name, code) in &KNOWN {
            assert_eq!(&ErrorCode::parse(name), code);
            assert_eq!(code.as_str(), *name);
        }
        assert_eq!(ErrorCode::parse("TOPICS_MESSAGE_RATE_EXCEEDED"), ErrorCode::TopicsMessageRateExceeded);
        assert_eq!(ErrorCode::parse("NOT_REGISTERED"), ErrorCode::NotRegistered);
        assert_eq!(ErrorCode::parse("UNAVAILABLE"), ErrorCode::Unavailable);
        assert_eq!(ErrorCode::parse("INVALID_TTL"), ErrorCode::InvalidTtl);
    }

    #[test]
    fn unknown_and_near_miss_codes_are_kept_verbatim() {
        for code in ["QuotaExceeded", "NOT_REGISTERED_", "NOTREGISTERED", "notregistered", "", "Unavailable "] {
            assert_eq!(ErrorCode::parse(code), ErrorCode::Other(code.to_owned()), "{code:?}");
        }
    }

    #[test]
    fn kinds_follow_the_reference() {
        assert_eq!(ErrorCode::NotRegistered.kind(), ErrorKind::NotRegistered);
        assert_eq!(ErrorCode::Unavailable.kind(), ErrorKind::Retry);
        assert_eq!(ErrorCode::InternalServerError.kind(), ErrorKind::Retry);
        assert_eq!(ErrorCode::DeviceMessageRateExceeded.kind(), ErrorKind::RateLimited);
        assert_eq!(ErrorCode::TopicsMessageRateExceeded.kind(), ErrorKind::RateLimited);
        assert_eq!(ErrorCode::InvalidRegistration.kind(), ErrorKind::Fatal);
        assert_eq!(ErrorCode::parse("UNREGISTERED").kind(), ErrorKind::NotRegistered);
        assert_eq!(ErrorCode::parse("INTERNAL").kind(), ErrorKind::Retry);
        assert_eq!(ErrorCode::parse("QUOTA_EXCEEDED").kind(), ErrorKind::RateLimited);
        assert_eq!(ErrorCode::parse("INVALID_ARGUMENT").kind(), ErrorKind::Fatal);
        assert_eq!(ErrorCode::parse("QUOTA_EXCEEDED").as_str(), "QUOTA_EXCEEDED");
        assert_eq!(ErrorCode::Other("Whatever".into()).kind(), ErrorKind::Fatal);
    }
}
