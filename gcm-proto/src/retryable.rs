//! What an outcome answers and a retry resends: a legacy message or an FCM v1 multicast.

use std::sync::Arc;

/// What an [`Outcome`](crate::Outcome) answers, and so what its retry resends: a legacy
/// [`Message`](crate::Message) or an FCM v1 [`Multicast`](crate::v1::Multicast). The outcome keeps it (without its recipient
/// list), so that a retry is built from the outcome alone and can never be paired with the
/// wrong payload.
pub trait Retryable: Clone + sealed::Sealed {
    /// The recipients, in request order, shared rather than copied.
    fn recipients(&self) -> Arc<[String]>;
    /// The same content to these recipients.
    fn with_recipients(&self, recipients: Vec<String>) -> Self;
}

pub(crate) mod sealed {
    /// Implemented beside each [`Retryable`](super::Retryable) type, and nowhere else.
    pub trait Sealed {}
}
