//! The fan-out of a multicast (one request per token, the content encoded once) or of
//! several messages (one request each): at most the configured number in flight, the
//! replies folded into one [`V1Report`] in order.

use std::collections::BTreeMap;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use gcm_proto::v1::{Messages, Multicast, Reply, Template};
use hyper_util::client::legacy::connect::Connect;
use tracing::Instrument;

use super::FcmClient;
use super::report::{MulticastReport, Problem, Stopped, V1Report};
use super::transport::Body;
use crate::transport::record_counts;

impl<C> FcmClient<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// Sends `multicast`'s content to each of its tokens (one request per token, the
    /// content encoded once, at most the configured number in flight over shared HTTP/2
    /// connections) and folds the replies into one report, in token order.
    ///
    /// Each message keeps its own fate, the server's detail and the error that left it
    /// unanswered (`report.problems`). A failure that concerns every message — no access
    /// token, credentials refused, or no connection to the endpoint for any message — is
    /// [`Err(Stopped)`](Stopped): it is not a reason to retry each message, and the report
    /// inside it keeps every message pending. Never sleeps, never retries (but a refused
    /// access token is refreshed once and its message resent).
    pub async fn send_multicast(&self, multicast: &Multicast) -> Result<MulticastReport, Stopped> {
        let span = tracing::info_span!(
            "fcm.send_multicast",
            url = %self.inner.fcm.send_url(),
            tokens = multicast.tokens().len(),
            success = tracing::field::Empty,
            not_registered = tracing::field::Empty,
            failed = tracing::field::Empty,
            retry = tracing::field::Empty,
        );
        self.send_multicast_inner(multicast).instrument(span).await
    }

    async fn send_multicast_inner(&self, multicast: &Multicast) -> Result<MulticastReport, Stopped> {
        // One token for the whole multicast, or none: a refused key costs one request,
        // not one per message.
        if let Err(error) = self.access_token(None).await {
            tracing::debug!(%error, "fcm multicast without an access token");
            let unsent = V1Report::new(self.inner.fcm.outcome(multicast, []), BTreeMap::new());
            return Err(Stopped::new(error, unsent));
        }
        let template = Template::of(multicast);
        let bodies = multicast.tokens().iter().map(|token| Body::Token(&template, token));
        let (replies, problems) = self.fan_out(bodies).await;
        let report = V1Report::new(self.inner.fcm.outcome(multicast, replies), problems);
        record_counts(&tracing::Span::current(), &report.outcome);
        tracing::info!("fcm multicast done");
        report.into_stopped_if_systemic()
    }

    /// Sends each of `messages` (its own target and content; Firebase Admin's `sendEach`,
    /// with no cap on their number) the way [`send_multicast`](Self::send_multicast) sends
    /// each token: at most the configured number in flight over shared HTTP/2 connections,
    /// the replies folded into one report in order, `Err(Stopped)` for a failure that
    /// concerns every message. `report.outcome.retry()` gives the messages to resend, each
    /// with its own content. Never sleeps, never retries.
    pub async fn send_each(&self, messages: &Messages) -> Result<V1Report<Messages>, Stopped<Messages>> {
        let span = tracing::info_span!(
            "fcm.send_each",
            url = %self.inner.fcm.send_url(),
            messages = messages.as_slice().len(),
            success = tracing::field::Empty,
            not_registered = tracing::field::Empty,
            failed = tracing::field::Empty,
            retry = tracing::field::Empty,
        );
        async {
            if let Err(error) = self.access_token(None).await {
                tracing::debug!(%error, "fcm messages without an access token");
                let unsent = V1Report::new(self.inner.fcm.outcome(messages, []), BTreeMap::new());
                return Err(Stopped::new(error, unsent));
            }
            let (replies, problems) = self.fan_out(messages.as_slice().iter().map(Body::Message)).await;
            let report = V1Report::new(self.inner.fcm.outcome(messages, replies), problems);
            record_counts(&tracing::Span::current(), &report.outcome);
            tracing::info!("fcm messages done");
            report.into_stopped_if_systemic()
        }
        .instrument(span)
        .await
    }

    /// Sends each body, at most the configured number in flight: a reply per position
    /// (unanswered where the request failed), and what some positions have to say beyond it.
    async fn fan_out<'a>(
        &self,
        bodies: impl ExactSizeIterator<Item = Body<'a>>,
    ) -> (Vec<Reply>, BTreeMap<usize, Problem>) {
        let mut replies = vec![Reply::unanswered(); bodies.len()];
        let mut problems = BTreeMap::new();
        let mut in_flight = FuturesUnordered::new();
        let mut queued = bodies.enumerate();
        loop {
            while in_flight.len() < self.inner.concurrency {
                let Some((index, body)) = queued.next() else { break };
                // Every event of this message (its error reply, its refresh) names its index.
                let span = tracing::debug_span!("fcm.message", index);
                // The send is made inside the block: a future captured by the block would be
                // stored twice in it (once captured, once awaited).
                let fut = async move { (index, self.send_one(body).await) }.instrument(span);
                in_flight.push(fut);
            }
            let Some((index, answer)) = in_flight.next().await else { break };
            match answer {
                Ok(mut reply) => {
                    if let Some(detail) = reply.detail.take() {
                        problems.insert(index, Problem::Detail(detail));
                    }
                    if let Some(slot) = replies.get_mut(index) {
                        *slot = reply;
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, index, "fcm message unanswered");
                    problems.insert(index, Problem::Error(error));
                }
            }
        }
        (replies, problems)
    }
}
