//! What an outcome answers and a retry resends: a legacy message, an FCM v1 multicast, or
//! a list of FCM v1 messages.

use std::sync::Arc;

/// What an [`Outcome`](crate::Outcome) answers, and so what its retry resends: a legacy
/// [`Message`](crate::Message), an FCM v1 [`Multicast`](crate::v1::Multicast) or FCM v1
/// [`Messages`](crate::v1::Messages). The outcome keeps it (a multicast without its recipient
/// list), so that a retry is built from the outcome alone and can never be paired with the
/// wrong payload.
pub trait Retryable: Clone + sealed::Sealed {
    /// The recipients, in request order, shared rather than copied.
    fn recipients(&self) -> Arc<[String]>;
    /// The same content to these recipients.
    fn with_recipients(&self, recipients: Vec<String>) -> Self;
    /// What an outcome keeps of the payload: one content for all recipients is kept
    /// without them (the outcome lists them with their fates).
    fn kept(&self) -> Self {
        self.with_recipients(Vec::new())
    }
    /// From what [`kept`](Retryable::kept) kept, the payload to the recipients at
    /// `positions` (named `recipients`).
    fn resend(&self, positions: &[usize], recipients: Vec<String>) -> Self {
        let _ = positions;
        self.with_recipients(recipients)
    }
}

pub(crate) mod sealed {
    /// Implemented beside each [`Retryable`](super::Retryable) type, and nowhere else.
    pub trait Sealed {}
}
