//! Topic management: a [`Subscription`] cut into calls of at most 1000 tokens, sent with the
//! client's access token (refreshed once if refused) and folded into one report, in token
//! order. All protocol logic is gcm-proto's.

use std::collections::BTreeMap;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesOrdered;
use gcm_proto::v1::{Subscription, TopicAction};
use gcm_proto::{Fate, Outcome, ResponseError, RetryCause};
use hyper_util::client::legacy::connect::Connect;
use tracing::Instrument;

use super::FcmClient;
use super::report::{Problem, Stopped, V1Report};
use crate::error::Error;
use crate::transport::record_counts;

/// What a subscription ends with: one fate per token (a success's id is the topic).
pub type SubscriptionReport = V1Report<Subscription>;

/// Topic management calls in flight at once for one subscription.
const CALLS_IN_FLIGHT: usize = 8;

impl<C> FcmClient<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// Subscribes `tokens` to `topic` (Firebase Admin's `subscribeToTopic`, without its cap
    /// of 1000 tokens: they are sent 1000 a call). See [`manage_topic`](Self::manage_topic).
    pub async fn subscribe<I, S>(&self, topic: &str, tokens: I) -> Result<SubscriptionReport, Stopped<Subscription>>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.manage_topic(&Subscription::new(TopicAction::Subscribe, topic, tokens)).await
    }

    /// Unsubscribes `tokens` from `topic` (Firebase Admin's `unsubscribeFromTopic`).
    pub async fn unsubscribe<I, S>(&self, topic: &str, tokens: I) -> Result<SubscriptionReport, Stopped<Subscription>>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.manage_topic(&Subscription::new(TopicAction::Unsubscribe, topic, tokens)).await
    }

    /// Sends `subscription` in calls of at most 1000 tokens, a few at once, and folds the
    /// answers into one report in token order: `NOT_FOUND` is not registered,
    /// `TOPICS_SUBSCRIPTION_RATE_EXCEEDED` and `INTERNAL` retry, `INVALID_ARGUMENT` and
    /// `TOO_MANY_TOPICS` fail; `report.outcome.retry()` is the subscription to send again. A
    /// call that gets no usable answer leaves its tokens to retry, its error kept at the
    /// call's first position. No access token at all is [`Err(Stopped)`](Stopped). Never
    /// sleeps, never retries.
    pub async fn manage_topic(&self, subscription: &Subscription) -> Result<SubscriptionReport, Stopped<Subscription>> {
        let span = tracing::info_span!(
            "fcm.manage_topic",
            action = ?subscription.action(),
            topic = subscription.topic(),
            tokens = subscription.tokens().len(),
            success = tracing::field::Empty,
            not_registered = tracing::field::Empty,
            failed = tracing::field::Empty,
            retry = tracing::field::Empty,
        );
        async {
            let unanswered = |call: &Subscription| {
                Outcome::for_all(call, Fate::Retry(RetryCause::Unanswered), self.inner.fcm.backoff())
            };
            if let Err(error) = self.access_token(None).await {
                return Err(Stopped::new(error, V1Report::new(unanswered(subscription), BTreeMap::new())));
            }
            let calls: Vec<Subscription> = subscription.chunks().collect();
            let mut waiting = calls.iter();
            let mut in_flight = FuturesOrdered::new();
            let mut outcome = Outcome::new(subscription, self.inner.fcm.backoff());
            let mut problems = BTreeMap::new();
            let mut position = 0;
            loop {
                while in_flight.len() < CALLS_IN_FLIGHT {
                    let Some(call) = waiting.next() else { break };
                    in_flight.push_back(async move { (call, self.topic_call(call).await) });
                }
                let Some((call, answer)) = in_flight.next().await else { break };
                match answer {
                    Ok(answered) => outcome.append(answered),
                    Err(error) => {
                        tracing::debug!(%error, position, "topic management call unanswered");
                        problems.insert(position, Problem::Error(error));
                        outcome.append(unanswered(call));
                    }
                }
                position += call.tokens().len();
            }
            let report = V1Report::new(outcome, problems);
            record_counts(&tracing::Span::current(), &report.outcome);
            report.into_stopped_if_systemic()
        }
        .instrument(span)
        .await
    }

    /// One call of at most 1000 tokens; a refused access token is refreshed once.
    async fn topic_call(&self, call: &Subscription) -> Result<Outcome<Subscription>, Error> {
        let token = self.access_token(None).await?;
        match self.topic_exchange(call, token.secret()).await {
            Err(Error::Response(ResponseError::Authentication { .. })) => {
                let token = self.access_token(Some(&token)).await?;
                self.topic_exchange(call, token.secret()).await
            }
            other => other,
        }
    }

    async fn topic_exchange(&self, call: &Subscription, access_token: &str) -> Result<Outcome<Subscription>, Error> {
        let request = self.inner.fcm.encode_subscription(call, access_token)?;
        let (parts, body) = self.inner.http.exchange(request, self.inner.limits).await?;
        let response = http::Response::from_parts(parts, body);
        Ok(self.inner.fcm.decode_subscription(call, &response, (self.inner.clock)())?)
    }
}
