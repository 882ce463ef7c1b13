//! Topic management, in both of Google's APIs: the Instance ID API's `POST /iid/v1:batchAdd`
//! and `…:batchRemove` (Firebase Admin for Node, Go, Java; up to 1000 tokens a call), and
//! FCM v1's registrations, one token a request (firebase-admin-python 7.x, which calls the
//! Instance ID API deprecated): `POST /v1/projects/{p}/registrations/{token}/topicSubscriptions?topic_name=…`
//! and `DELETE …/topicSubscriptions/{topic}?allow_missing=true`. Then who a topic or condition
//! send reaches: subscriptions are kept per topic, bounded, and read in order, so the same
//! calls give the same inbox.
//!
//! Per-token answers follow the token's rule in the scenario (see `Engine::change`); an
//! empty token is `INVALID_ARGUMENT`, and a token already holding [`MAX_TOPICS_PER_TOKEN`]
//! topics gets `TOO_MANY_TOPICS`, as FCM documents. Whole
//! call failures (no access token, a body that is not a subscription) answer
//! `{"error": "<code>"}`, the shape the Admin SDKs read; their exact codes are not
//! documented (the reference is silent), so the mock's are its own.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use gcm_proto::v1::{Condition, MAX_SUBSCRIPTION_TOKENS, TopicAction, is_valid_topic};
use http::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::Engine;
use super::http::json as json_response;
use super::rpc::{error_response, fcm_invalid, status_body};
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

/// `/v1/projects/{project}/registrations/{token}/topicSubscriptions[/{topic}]`, in path
/// segments as sent (the token and the topic still percent-encoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Registration<'a> {
    pub(super) project: &'a str,
    token: &'a str,
    topic: Option<&'a str>,
}

/// The registration a path names, if it names one.
pub(super) fn registration_of(path: &str) -> Option<Registration<'_>> {
    let rest = path.strip_prefix("/v1/projects/")?;
    let (project, rest) = rest.split_once("/registrations/")?;
    let (token, rest) = rest.split_once("/topicSubscriptions")?;
    let topic = match rest {
        "" => None,
        _ => Some(rest.strip_prefix('/').filter(|t| !t.contains('/'))?),
    };
    (!project.is_empty() && !project.contains('/') && !token.is_empty() && !token.contains('/'))
        .then_some(Registration { project, token, topic })
}

fn decoded(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// Every subscription, both ways: the tokens of each topic, the topics of each token.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    by_topic: BTreeMap<String, BTreeSet<Arc<str>>>,
    by_token: BTreeMap<Arc<str>, BTreeSet<String>>,
    count: usize,
    /// Topic calls per token, for the tokens whose rule counts them (bounded like the
    /// subscriptions: past the bound, a call counts as a first one).
    calls: HashMap<String, u32>,
}

impl Subscriptions {
    /// One more topic call for `token`: its number (1 = first).
    fn call(&mut self, token: &str) -> u32 {
        if let Some(calls) = self.calls.get_mut(token) {
            *calls = calls.saturating_add(1);
            return *calls;
        }
        if self.calls.len() < MAX_SUBSCRIPTIONS {
            self.calls.insert(token.to_owned(), 1);
        }
        1
    }

    fn add(&mut self, topic: &str, token: &str) -> Change {
        let topics = self.by_token.get(token);
        if topics.is_some_and(|topics| topics.contains(topic)) {
            return Change::AlreadyDone;
        }
        if topics.is_some_and(|topics| topics.len() >= MAX_TOPICS_PER_TOKEN) {
            return Change::Refused("TOO_MANY_TOPICS".into());
        }
        if self.count >= MAX_SUBSCRIPTIONS {
            return Change::Refused("RESOURCE_EXHAUSTED".into());
        }
        let key: Arc<str> = self.by_token.get_key_value(token).map_or_else(|| token.into(), |(key, _)| Arc::clone(key));
        self.by_token.entry(Arc::clone(&key)).or_default().insert(topic.to_owned());
        self.by_topic.entry(topic.to_owned()).or_default().insert(key);
        self.count += 1;
        Change::Done
    }

    fn remove(&mut self, topic: &str, token: &str) -> Change {
        let Some(topics) = self.by_token.get_mut(token) else { return Change::AlreadyDone };
        if !topics.remove(topic) {
            return Change::AlreadyDone;
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
        Change::Done
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
        let authorized = self.bearer_accepted(request, now)
            && request.headers().get("access_token_auth").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
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
            .map(|token| match self.change(action, topic, token) {
                Change::Done | Change::AlreadyDone => json!({}),
                Change::Refused(code) => json!({ "error": code.as_ref() }),
            })
            .collect();
        (json_response(StatusCode::OK, &json!({ "results": results })), true)
    }

    /// `POST /v1/projects/{project}/registrations/{token}/topicSubscriptions?topic_name=…`
    /// or `DELETE …/topicSubscriptions/{topic}`: one token, v1's error bodies; subscribing
    /// again is 409 `ALREADY_EXISTS` (which Firebase Admin counts as done).
    pub(super) fn registration_call<B>(
        &mut self,
        request: &Request<B>,
        registration: Registration<'_>,
        now: SystemTime,
    ) -> (Response<Bytes>, bool) {
        let project = registration.project;
        let (token, topic) = (decoded(registration.token), registration.topic.map(decoded));
        let denied = format!("Permission denied on resource project {project}.");
        if let Err(refused) = self.v1_admission(request, project, &denied, now) {
            return refused;
        }
        let query = form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes());
        let (action, topic) = match (request.method(), topic) {
            (&Method::POST, None) => {
                let name = query.into_iter().find(|(key, _)| key == "topic_name").map(|(_, value)| value.into_owned());
                (TopicAction::Subscribe, name.unwrap_or_default())
            }
            (&Method::DELETE, Some(topic)) => (TopicAction::Unsubscribe, topic),
            _ => return (super::http::text(StatusCode::NOT_FOUND, "Not Found\n"), true),
        };
        let topic = topic.strip_prefix("/topics/").unwrap_or(&topic).to_owned();
        if !is_valid_topic(&topic) {
            return (fcm_invalid("topic_name", "Invalid topic name."), true);
        }
        let name = format!("projects/{project}/registrations/{token}/topicSubscriptions/{topic}");
        let response = match self.change(action, &topic, &token) {
            Change::Done => json_response(StatusCode::OK, &json!({ "name": name })),
            Change::AlreadyDone if action == TopicAction::Subscribe => {
                status_body(StatusCode::CONFLICT, "ALREADY_EXISTS", "Topic subscription already exists.", &[])
            }
            Change::AlreadyDone => json_response(StatusCode::OK, &json!({})),
            Change::Refused(code) => match code.as_ref() {
                "NOT_FOUND" => error_response("UNREGISTERED", false),
                "INVALID_ARGUMENT" => {
                    fcm_invalid("parent", "The registration token is not a valid FCM registration token")
                }
                "TOPICS_SUBSCRIPTION_RATE_EXCEEDED" | "RESOURCE_EXHAUSTED" => status_body(
                    StatusCode::TOO_MANY_REQUESTS,
                    "RESOURCE_EXHAUSTED",
                    "Topic subscription rate exceeded.",
                    &[],
                ),
                other => error_response(other, false),
            },
        };
        (response, true)
    }

    /// One token's change, with the answer its rule in the scenario gives: `not_registered`
    /// is `NOT_FOUND`, `invalid` `INVALID_ARGUMENT`, `rate_limited`
    /// `TOPICS_SUBSCRIPTION_RATE_EXCEEDED`, `unavailable` and `internal_error` `INTERNAL`,
    /// `error` its `code`; a rule with `times` or `steps` counts the token's topic calls (apart
    /// from its sends).
    fn change(&mut self, action: TopicAction, topic: &str, token: &str) -> Change {
        let rule = self.scenario.tokens.get(token).unwrap_or(&self.scenario.default);
        let attempt = if rule.counts_attempts() { self.subscriptions.call(token) } else { 1 };
        let step = rule.step_at(attempt);
        match step.result {
            _ if token.is_empty() => Change::Refused("INVALID_ARGUMENT".into()),
            Behaviour::NotRegistered => Change::Refused("NOT_FOUND".into()),
            Behaviour::Invalid => Change::Refused("INVALID_ARGUMENT".into()),
            Behaviour::RateLimited => Change::Refused("TOPICS_SUBSCRIPTION_RATE_EXCEEDED".into()),
            Behaviour::Unavailable | Behaviour::InternalError => Change::Refused("INTERNAL".into()),
            Behaviour::Error => Change::Refused(step.code.unwrap_or("INTERNAL").to_owned().into()),
            _ => match action {
                TopicAction::Subscribe => self.subscriptions.add(topic, token),
                TopicAction::Unsubscribe => self.subscriptions.remove(topic, token),
            },
        }
    }
}

/// What a change of one token's subscriptions did.
pub(super) enum Change {
    Done,
    /// Subscribed already, or not subscribed to begin with.
    AlreadyDone,
    Refused(Cow<'static, str>),
}
