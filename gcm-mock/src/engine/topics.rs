//! Topic management, the Instance ID API's `POST /iid/v1:batchAdd` and `…:batchRemove`, and
//! who a topic or condition send reaches: subscriptions are kept per topic, bounded, and
//! read in order, so the same calls give the same inbox.
//!
//! Per-token answers follow the token's rule in the scenario: `not_registered` is
//! `NOT_FOUND`, `invalid` (and an empty token) is `INVALID_ARGUMENT`; a token already
//! holding [`MAX_TOPICS_PER_TOKEN`] topics gets `TOO_MANY_TOPICS`, as FCM documents. Whole
//! call failures (no access token, a body that is not a subscription) answer
//! `{"error": "<code>"}`, the shape the Admin SDKs read; their exact codes are not
//! documented (the reference is silent), so the mock's are its own.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use gcm_proto::v1::{Condition, MAX_SUBSCRIPTION_TOKENS, TopicAction, is_valid_topic};
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::Engine;
use super::http::json as json_response;
use crate::scenario::Behaviour;

/// The most topics one token may be subscribed to (FCM's documented limit).
pub const MAX_TOPICS_PER_TOKEN: usize = 2000;
/// The most subscriptions the mock keeps in all: past it, a subscription gets
/// `RESOURCE_EXHAUSTED`, so that memory stays bounded under any load.
pub const MAX_SUBSCRIPTIONS: usize = 1_000_000;

/// `/iid/v1:batchAdd` or `/iid/v1:batchRemove`.
pub(super) fn action_of(path: &str) -> Option<TopicAction> {
    [TopicAction::Subscribe, TopicAction::Unsubscribe].into_iter().find(|action| action.path() == path)
}

/// Every subscription, both ways: the tokens of each topic, the topics of each token.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    by_topic: BTreeMap<String, BTreeSet<Arc<str>>>,
    by_token: BTreeMap<Arc<str>, BTreeSet<String>>,
    count: usize,
}

impl Subscriptions {
    fn add(&mut self, topic: &str, token: &str) -> Option<&'static str> {
        let topics = self.by_token.get(token);
        if topics.is_some_and(|topics| topics.contains(topic)) {
            return None;
        }
        if topics.is_some_and(|topics| topics.len() >= MAX_TOPICS_PER_TOKEN) {
            return Some("TOO_MANY_TOPICS");
        }
        if self.count >= MAX_SUBSCRIPTIONS {
            return Some("RESOURCE_EXHAUSTED");
        }
        let key: Arc<str> = self.by_token.get_key_value(token).map_or_else(|| token.into(), |(key, _)| Arc::clone(key));
        self.by_token.entry(Arc::clone(&key)).or_default().insert(topic.to_owned());
        self.by_topic.entry(topic.to_owned()).or_default().insert(key);
        self.count += 1;
        None
    }

    fn remove(&mut self, topic: &str, token: &str) {
        let Some(topics) = self.by_token.get_mut(token) else { return };
        if !topics.remove(topic) {
            return;
        }
        self.count -= 1;
        if topics.is_empty() {
            self.by_token.remove(token);
        }
        if let Some(tokens) = self.by_topic.get_mut(topic) {
            tokens.remove(token);
            if tokens.is_empty() {
                self.by_topic.remove(topic);
            }
        }
    }

    /// The tokens a send to `/topics/<name>` or to a condition reaches, in order.
    pub(super) fn audience(&self, recipient: &str) -> Vec<Arc<str>> {
        if let Some(topic) = recipient.strip_prefix("/topics/") {
            return self.by_topic.get(topic).map(|tokens| tokens.iter().cloned().collect()).unwrap_or_default();
        }
        let Ok(condition) = Condition::parse(recipient) else { return Vec::new() };
        // A token subscribed to none of the condition's topics is unknown to the mock.
        let candidates: BTreeSet<&Arc<str>> =
            condition.topics().into_iter().filter_map(|topic| self.by_topic.get(topic)).flatten().collect();
        candidates
            .into_iter()
            .filter(|token| {
                let topics = self.by_token.get(&***token);
                condition.matches(&|topic: &str| topics.is_some_and(|topics| topics.contains(topic)))
            })
            .cloned()
            .collect()
    }

    /// Each topic with its tokens, in order.
    pub(super) fn listing(&self) -> BTreeMap<String, Vec<String>> {
        self.by_topic
            .iter()
            .map(|(topic, tokens)| (topic.clone(), tokens.iter().map(|t| t.to_string()).collect()))
            .collect()
    }
}

#[derive(Deserialize)]
struct Call {
    to: String,
    registration_tokens: Vec<String>,
}

fn error(status: StatusCode, code: &str) -> Response<Bytes> {
    json_response(status, &json!({ "error": code }))
}

impl Engine {
    /// `POST /iid/v1:batchAdd` or `:batchRemove`.
    pub(super) fn topic_call<B: AsRef<[u8]>>(
        &mut self,
        request: &Request<B>,
        action: TopicAction,
        now: SystemTime,
    ) -> (Response<Bytes>, bool) {
        let headers = request.headers();
        let bearer = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
        let authorized = bearer.is_some_and(|token| self.oauth.accepts(token, now))
            && headers.get("access_token_auth").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        if let Some(reply) = self.next_reply(now) {
            return (reply, authorized);
        }
        if !authorized {
            return (error(StatusCode::UNAUTHORIZED, "Unauthorized"), false);
        }
        if let Some(fault) = self.injected_server_error() {
            return (fault, true);
        }
        let call = match serde_json::from_slice::<Call>(request.body().as_ref()) {
            Ok(call) => call,
            Err(_) => return (error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"), true),
        };
        let topic = call.to.strip_prefix("/topics/").unwrap_or(&call.to);
        let count = call.registration_tokens.len();
        if !is_valid_topic(topic) || count == 0 || count > MAX_SUBSCRIPTION_TOKENS {
            return (error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"), true);
        }
        let results: Vec<serde_json::Value> = call
            .registration_tokens
            .iter()
            .map(|token| {
                let rule = self.scenario.tokens.get(token).unwrap_or(&self.scenario.default);
                let code = match rule.step_at(1).result {
                    _ if token.is_empty() => Some("INVALID_ARGUMENT"),
                    Behaviour::NotRegistered => Some("NOT_FOUND"),
                    Behaviour::Invalid => Some("INVALID_ARGUMENT"),
                    _ => match action {
                        TopicAction::Subscribe => self.subscriptions.add(topic, token),
                        TopicAction::Unsubscribe => {
                            self.subscriptions.remove(topic, token);
                            None
                        }
                    },
                };
                code.map_or_else(|| json!({}), |code| json!({ "error": code }))
            })
            .collect();
        (json_response(StatusCode::OK, &json!({ "results": results })), true)
    }
}
