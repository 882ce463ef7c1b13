//! The scripted parts of a scenario: whole-request replies and token replies used in
//! order, each for its `repeat` count (kept as a count, never expanded), and `Retry-After`
//! values, fixed or computed when answering.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Response, StatusCode};

use super::Engine;
use super::http::{text, unauthorized, with_retry_after};
use crate::scenario::{Reply, TokenReply};

/// Marks a response the server must never send: the scripted token endpoint hangs.
#[derive(Clone, Copy, Debug)]
pub struct Hang;

/// Scripted replies, each with how many requests it still answers.
#[derive(Debug)]
pub(super) struct Queue<T>(VecDeque<(T, u32)>);

impl<T: Clone> Queue<T> {
    pub(super) fn new<'a>(items: impl IntoIterator<Item = &'a T>, repeat: impl Fn(&T) -> Option<u32>) -> Self
    where
        T: 'a,
    {
        Self(items.into_iter().map(|item| (item.clone(), repeat(item).unwrap_or(1).max(1))).collect())
    }

    /// The next reply, if any is left.
    fn next(&mut self) -> Option<T> {
        let (item, left) = self.0.front_mut()?;
        let item = item.clone();
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.0.pop_front();
        }
        Some(item)
    }
}

impl Engine {
    /// The next scripted token reply, if any is left.
    pub(super) fn next_token_reply(&mut self) -> Option<TokenReply> {
        self.token_replies.next()
    }

    /// The next scripted whole-request reply, as a response, if any is left.
    pub(super) fn next_reply(&mut self, now: SystemTime) -> Option<Response<Bytes>> {
        let reply = self.replies.next()?;
        let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let response = match (&reply.body, status) {
            (None, StatusCode::UNAUTHORIZED) => unauthorized(),
            (body, status) => text(status, body.as_deref().unwrap_or("")),
        };
        let retry_after = retry_after(reply.retry_after.as_deref(), reply.retry_after_date_in, now);
        Some(with_retry_after(response, retry_after.as_deref()))
    }
}

/// The `Retry-After` to send: the fixed text, or an HTTP-date `date_in` seconds after `now`.
pub(super) fn retry_after(fixed: Option<&str>, date_in: Option<u32>, now: SystemTime) -> Option<String> {
    match (fixed, date_in) {
        (Some(fixed), _) => Some(fixed.to_owned()),
        (None, Some(seconds)) => {
            let at = now.checked_add(Duration::from_secs(seconds.into())).unwrap_or(now);
            Some(httpdate::fmt_http_date(at))
        }
        (None, None) => None,
    }
}

/// The whole-request replies of a scenario.
pub(super) fn replies(replies: &[Reply]) -> Queue<Reply> {
    Queue::new(replies, |reply| reply.repeat)
}

/// The token replies of a scenario.
pub(super) fn token_replies(replies: &[TokenReply]) -> Queue<TokenReply> {
    Queue::new(replies, |reply| reply.repeat)
}
