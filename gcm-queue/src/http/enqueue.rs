//! The body of `POST /jobs` (and what `gcm-worker enqueue` builds): checked, bounded and
//! cut into jobs. Unknown fields of a message are kept and sent (the server validates
//! them); unknown fields of the request itself are refused (a typo there changes what we
//! do, not what FCM receives).

use gcm_proto::v1;
use serde::{Deserialize, Serialize};

use crate::job::{Job, Payload};

/// What a request asks for: a multicast in one protocol or the other, or a topic change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// FCM HTTP v1 (`message` is a v1 content: `data`, `notification`, `android`…).
    #[default]
    V1,
    /// The legacy protocol (`message` has `data`, `notification`, `options`).
    Legacy,
    /// Subscribe the tokens to `topic` (FCM's topic management; no `message`).
    Subscribe,
    /// Unsubscribe the tokens from `topic`.
    Unsubscribe,
}

/// A multicast to enqueue: the body of `POST /jobs`, and what `gcm-worker enqueue` reads.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    /// The protocol (default `v1`).
    #[serde(default)]
    pub kind: Kind,
    /// What every token receives: a v1 message without its target (`data`, `notification`,
    /// `android`, `apns`, `webpush`, `fcm_options`, and any field FCM adds later), or a
    /// legacy message (`data`, `notification`, `options`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub message: serde_json::Value,
    /// The device tokens: each non-empty, without blanks or control characters, at most
    /// 4096 characters. Or none, with an `audience`.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// The audience to send to instead of `tokens` (`PUT /audiences/<name>`): its tokens
    /// but the flagged, whose results then clean it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The topic of a `subscribe` or `unsubscribe` request (with or without `/topics/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Copied into every result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// When to send the first attempt (RFC 3339, e.g. `2026-12-24T18:00:00Z`); now without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<String>,
    /// The project whose credentials send it, as the workers' configuration names it
    /// (`[projects.<name>]`); without it, the only one configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Where the jobs' settlements are posted, signed (see [`crate::webhook`]): a URL that
    /// starts with one the project allows (`job-urls`); without it, the project's own
    /// webhook, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

/// Where the jobs of a project post their settlements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookRoute {
    /// The project's webhook: every job's, unless the job names its own.
    pub url: Option<String>,
    /// What a job's own webhook URL may start with (none: a job may not name one).
    pub job_urls: Vec<String>,
}

/// The longest webhook URL a job may name.
pub const MAX_WEBHOOK_URL_LEN: usize = 2048;

impl WebhookRoute {
    /// The webhook of a job that asks for `requested`: an allowed prefix, then URL
    /// characters (letters, digits and `-._~/?=&`) — what `/openapi.json`'s pattern says.
    fn resolve(&self, requested: Option<&str>) -> Result<Option<String>, Invalid> {
        let Some(url) = requested else { return Ok(self.url.clone()) };
        let refused = |why: String| Err(Invalid::at("$.webhook", why));
        if self.job_urls.is_empty() {
            return refused("this project takes no webhook URL from a job".to_owned());
        }
        if url.chars().count() > MAX_WEBHOOK_URL_LEN {
            return refused(format!("at most {MAX_WEBHOOK_URL_LEN} characters"));
        }
        let Some(rest) = self.job_urls.iter().find_map(|allowed| url.strip_prefix(allowed.as_str())) else {
            return refused(format!("a job's webhook starts with one of: {}", self.job_urls.join(", ")));
        };
        if !rest.chars().all(is_webhook_char) {
            return refused("after its prefix, a job's webhook has letters, digits and -._~/?=& only".to_owned());
        }
        Ok(Some(url.to_owned()))
    }
}

/// What a job's webhook URL may hold after its allowed prefix.
fn is_webhook_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~/?=&".contains(c)
}

/// The projects a deployment sends for (`[projects.<name>]`): what a request may name, and
/// where each project's jobs post their settlements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Projects {
    names: std::collections::BTreeMap<String, WebhookRoute>,
    /// The webhook of jobs of no project.
    unnamed: WebhookRoute,
    /// Each project's fleet rate, in messages a minute (what the dashboard measures use by).
    rates: std::collections::BTreeMap<String, u32>,
}

impl Projects {
    /// These projects.
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        let names = names.into_iter().map(|name| (name.into(), WebhookRoute::default())).collect();
        Self { names, unnamed: WebhookRoute::default(), rates: std::collections::BTreeMap::new() }
    }

    /// The same projects, project `name` sending `per_minute` messages a minute at most, all
    /// workers together (0: no limit).
    pub fn rate(mut self, name: &str, per_minute: u32) -> Self {
        if self.names.contains_key(name) && per_minute > 0 {
            self.rates.insert(name.to_owned(), per_minute);
        }
        self
    }

    /// Project `name`'s fleet rate in messages a minute, if it has one.
    pub fn rate_of(&self, name: &str) -> Option<u32> {
        self.rates.get(name).copied()
    }

    /// The same projects, project `name`'s jobs (`None`: the jobs of no project) posting
    /// their settlements as `route` says (a name not among the projects changes nothing).
    pub fn webhook(mut self, name: Option<&str>, route: WebhookRoute) -> Self {
        match name {
            Some(name) => {
                if let Some(project) = self.names.get_mut(name) {
                    *project = route;
                }
            }
            None => self.unnamed = route,
        }
        self
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }

    /// Every URL prefix some project allows a job's own webhook to start with.
    pub fn job_webhook_urls(&self) -> impl Iterator<Item = &str> {
        let routes = self.names.values().chain([&self.unnamed]);
        routes.flat_map(|route| route.job_urls.iter().map(String::as_str))
    }

    fn route(&self, project: Option<&str>) -> &WebhookRoute {
        project.and_then(|name| self.names.get(name)).unwrap_or(&self.unnamed)
    }

    /// The project a request's jobs name: the one it asks for, if configured; else the only
    /// one; `None` when no project is configured (the workers' own credentials send it).
    pub fn resolve(&self, requested: Option<&str>) -> Result<Option<String>, Invalid> {
        let known = || self.names().collect::<Vec<_>>().join(", ");
        match requested {
            Some(name) if self.names.contains_key(name) => Ok(Some(name.to_owned())),
            Some(name) if self.names.is_empty() => {
                Err(Invalid::at("$.project", format!("no project is configured, so {name:?} cannot be sent for")))
            }
            Some(name) => {
                Err(Invalid::at("$.project", format!("unknown project {name:?}: the projects are {}", known())))
            }
            None if self.names.len() > 1 => {
                Err(Invalid::at("$.project", format!("name one of the projects: {}", known())))
            }
            None => Ok(self.names.keys().next().cloned()),
        }
    }
}

/// The longest token accepted, in characters (FCM's are about 160).
pub const MAX_TOKEN_LEN: usize = 4096;

/// The longest correlation id accepted, in characters.
pub const MAX_CORRELATION_ID_LEN: usize = 256;

/// How many tokens a request and a job may hold.
#[derive(Clone, Copy, Debug)]
pub struct TokenLimits {
    /// Per request (default 100 000).
    pub per_request: usize,
    /// Per job (default 1000): a longer list becomes several jobs of one campaign, which
    /// several workers send at once.
    pub per_job: usize,
}

impl Default for TokenLimits {
    fn default() -> Self {
        Self { per_request: 100_000, per_job: 1000 }
    }
}

/// A request that cannot become jobs: where (a JSON path, `$` for the whole body) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// The JSON path of the first problem, e.g. `$.message.android.ttl` or `$.tokens[3]`.
    pub path: String,
    /// What is wrong there.
    pub error: String,
}

impl Invalid {
    pub(super) fn at(path: impl Into<String>, error: impl Into<String>) -> Self {
        Self { path: path.into(), error: error.into() }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.error)
    }
}

impl std::error::Error for Invalid {}

/// Parses `body` as an [`EnqueueRequest`], naming the path of the first problem.
pub fn parse(body: &[u8]) -> Result<EnqueueRequest, Invalid> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = json_path("$", &error.path().to_string());
        Invalid::at(path, error.into_inner().to_string())
    })
}

/// `prefix` followed by serde_path_to_error's path (`message.android.ttl`, `tokens[3]`,
/// `.` for the root).
fn json_path(prefix: &str, path: &str) -> String {
    match path {
        "." | "" => prefix.to_owned(),
        path if path.starts_with('[') => format!("{prefix}{path}"),
        path => format!("{prefix}.{path}"),
    }
}

/// The fields that name recipients, in either protocol: a template has none of its own (the
/// tokens go in `tokens`).
const TARGETS: [&str; 7] = ["token", "topic", "condition", "fid", "name", "to", "registration_ids"];

/// The legacy template: what every token receives. Fields it does not name are legacy
/// options (`collapse_key`, `time_to_live`… or one FCM adds later), sent verbatim.
#[derive(Deserialize)]
struct LegacyTemplate {
    #[serde(default)]
    data: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    notification: Option<gcm_proto::Notification>,
    #[serde(default)]
    options: serde_json::Map<String, serde_json::Value>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

/// The legacy options [`gcm_proto::Options`] names.
const LEGACY_OPTIONS: [&str; 9] = [
    "collapse_key",
    "priority",
    "content_available",
    "mutable_content",
    "delay_while_idle",
    "time_to_live",
    "restricted_package_name",
    "dry_run",
    "extra",
];

pub(super) fn check_token(index: usize, token: &str) -> Result<(), Invalid> {
    let path = || format!("$.tokens[{index}]");
    if token.is_empty() {
        return Err(Invalid::at(path(), "an empty token"));
    }
    let chars = token.chars().count();
    if chars > MAX_TOKEN_LEN {
        return Err(Invalid::at(path(), format!("a token of {chars} characters (at most {MAX_TOKEN_LEN})")));
    }
    // The same characters as the OpenAPI document's pattern (JSON Schema's `\s` has U+FEFF).
    if token.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\u{feff}') {
        return Err(Invalid::at(path(), "a token with a blank or a control character"));
    }
    Ok(())
}

/// Writes each integral number of `value` (`3600.0`, `-2.5e1` is not) as an integer: JSON
/// and its schema count them as integers, as protobuf's JSON reader does, and serde's
/// integer types do not read them.
fn integral_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) if number.is_f64() => {
            let Some(float) = number.as_f64().filter(|float| float.fract() == 0.0) else { return };
            // 2^64 and -2^63: the bounds of u64 and i64, exact as floats.
            if (0.0..18_446_744_073_709_551_616.0).contains(&float) {
                *value = serde_json::Value::from(float as u64);
            } else if (-9_223_372_036_854_775_808.0..0.0).contains(&float) {
                *value = serde_json::Value::from(float as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

fn parse_in<T: serde::de::DeserializeOwned>(path: &str, value: serde_json::Value) -> Result<T, Invalid> {
    serde_path_to_error::deserialize(value)
        .map_err(|error| Invalid::at(json_path(path, &error.path().to_string()), error.into_inner().to_string()))
}

impl EnqueueRequest {
    /// The payloads of this request's jobs, `limits.per_job` tokens each, or its first
    /// problem.
    fn payloads(self, limits: TokenLimits) -> Result<Vec<Payload>, Invalid> {
        if self.tokens.is_empty() {
            return Err(Invalid::at("$.tokens", "no tokens"));
        }
        if self.tokens.len() > limits.per_request {
            let limit = limits.per_request;
            return Err(Invalid::at(
                "$.tokens",
                format!("{} tokens; a request has at most {limit}", self.tokens.len()),
            ));
        }
        self.tokens.iter().enumerate().try_for_each(|(index, token)| check_token(index, token))?;
        let action = match self.kind {
            Kind::Subscribe => Some(v1::TopicAction::Subscribe),
            Kind::Unsubscribe => Some(v1::TopicAction::Unsubscribe),
            Kind::V1 | Kind::Legacy => None,
        };
        let Some(action) = action else {
            if self.topic.is_some() {
                return Err(Invalid::at("$.topic", "a multicast has no topic: only subscribe and unsubscribe do"));
            }
            return self.multicasts(limits);
        };
        if !self.message.is_null() {
            return Err(Invalid::at("$.message", "a topic change sends no message"));
        }
        let Some(topic) = self.topic.as_deref() else {
            return Err(Invalid::at("$.topic", "a topic change needs a topic"));
        };
        let name = topic.strip_prefix("/topics/").unwrap_or(topic);
        if !v1::is_valid_topic(name) {
            return Err(Invalid::at("$.topic", "a topic name is 1 to 900 of [a-zA-Z0-9-_.~%]"));
        }
        let per_job = limits.per_job.min(v1::MAX_SUBSCRIPTION_TOKENS);
        Ok(self
            .tokens
            .chunks(per_job)
            .map(|tokens| Payload::V1Subscription {
                subscription: v1::Subscription::new(action, name, tokens.to_vec()),
            })
            .collect())
    }

    /// The payloads of a multicast request.
    fn multicasts(self, limits: TokenLimits) -> Result<Vec<Payload>, Invalid> {
        let message = match self.message {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            other => other,
        };
        match self.kind {
            Kind::V1 => {
                let mut message = message;
                integral_numbers(&mut message);
                let content: v1::Content = parse_in("$.message", message)?;
                if let Some(target) = TARGETS.iter().find(|name| content.extra.contains_key(**name)) {
                    return Err(Invalid::at(
                        format!("$.message.{target}"),
                        "a message template has no target: the tokens go in `tokens`",
                    ));
                }
                Ok(self
                    .tokens
                    .chunks(limits.per_job)
                    .map(|tokens| Payload::V1Multicast {
                        multicast: v1::Multicast::with_content(content.clone(), tokens.to_vec()),
                    })
                    .collect())
            }
            Kind::Subscribe | Kind::Unsubscribe => Err(Invalid::at("$.kind", "not a multicast")),
            Kind::Legacy => {
                let template: LegacyTemplate = parse_in("$.message", message)?;
                if let Some(target) = TARGETS.iter().find(|name| template.extra.contains_key(**name)) {
                    return Err(Invalid::at(
                        format!("$.message.{target}"),
                        "a message template has no recipients: the tokens go in `tokens`",
                    ));
                }
                let mut options = template.options;
                options.extend(template.extra);
                // JSON (and its schema) count 3600.0 as an integer; serde's u32 does not.
                if let Some(ttl) = options.get_mut("time_to_live")
                    && let Some(seconds) = ttl.as_f64().filter(|s| ttl.is_f64() && s.fract() == 0.0 && *s >= 0.0)
                    && seconds <= f64::from(u32::MAX)
                {
                    *ttl = serde_json::Value::from(seconds as u64);
                }
                let mut known: gcm_proto::Options = parse_in("$.message", serde_json::Value::Object(options.clone()))?;
                // `Options` reads the options it names and skips the others: those go in
                // its `extra`, sent verbatim.
                options.retain(|name, _| !LEGACY_OPTIONS.contains(&name.as_str()));
                known.extra.extend(options);
                let options = known;
                let per_job = limits.per_job.min(gcm_proto::MAX_REGISTRATION_IDS);
                Ok(self
                    .tokens
                    .chunks(per_job)
                    .map(|tokens| {
                        let mut message = gcm_proto::Message::multicast(tokens.to_vec());
                        message.data = template.data.clone();
                        message.notification = template.notification.clone();
                        message.options = options.clone();
                        Payload::Legacy { message }
                    })
                    .collect())
            }
        }
    }

    /// The jobs this request asks for: at most `limits.per_job` tokens each, all of one
    /// campaign when there are several; with the time their first attempt is due (ms since
    /// the Unix epoch), if not at once.
    pub fn into_jobs(self, limits: TokenLimits, projects: &Projects) -> Result<(Vec<Job>, Option<u64>), Invalid> {
        let project = projects.resolve(self.project.as_deref())?;
        let webhook = projects.route(project.as_deref()).resolve(self.webhook.as_deref())?;
        if let Some(id) = &self.correlation_id
            && (id.chars().count() > MAX_CORRELATION_ID_LEN || id.chars().any(char::is_control))
        {
            let error = format!("at most {MAX_CORRELATION_ID_LEN} characters, no control characters");
            return Err(Invalid::at("$.correlation_id", error));
        }
        let send_at = match &self.send_at {
            None => None,
            Some(text) => {
                let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .map_err(|error| Invalid::at("$.send_at", format!("not an RFC 3339 time: {error}")))?;
                // Before 1970 is now: 0.
                let millis = at.unix_timestamp_nanos() / 1_000_000;
                Some(u64::try_from(millis).unwrap_or(0))
            }
        };
        let correlation_id = self.correlation_id.clone();
        let payloads = self.payloads(limits)?;
        let campaign = (payloads.len() > 1).then(|| format!("c-{}", ulid::Ulid::generate()));
        let jobs = payloads
            .into_iter()
            .map(|payload| {
                let mut job = Job::new(payload);
                job.correlation_id = correlation_id.clone();
                job.campaign_id = campaign.clone();
                job.project = project.clone();
                job.webhook = webhook.clone();
                job
            })
            .collect();
        Ok((jobs, send_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(body: &str) -> Invalid {
        parse(body.as_bytes())
            .and_then(|request| request.into_jobs(TokenLimits::default(), &Projects::default()))
            .unwrap_err()
    }

    #[test]
    fn a_jobs_webhook_is_its_projects_or_one_the_project_allows() {
        let route = WebhookRoute { url: Some("https://h.shop/p".into()), job_urls: vec!["https://h.shop/j/".into()] };
        let projects = Projects::new(["news", "shop"]).webhook(Some("shop"), route);
        let webhook = |body: &str| {
            let request = parse(body.as_bytes()).unwrap();
            request.into_jobs(TokenLimits::default(), &projects).map(|(jobs, _)| jobs[0].webhook.clone())
        };
        let shop = |webhook: &str| format!(r#"{{"tokens": ["a"], "project": "shop", "webhook": {webhook}}}"#);
        assert_eq!(webhook(&shop("null")), Ok(Some("https://h.shop/p".to_owned())));
        assert_eq!(webhook(&shop(r#""https://h.shop/j/c-7?t=x""#)), Ok(Some("https://h.shop/j/c-7?t=x".to_owned())));
        assert_eq!(webhook(r#"{"tokens": ["a"], "project": "news"}"#), Ok(None));
        let refused = [
            (r#"{"tokens": ["a"], "project": "news", "webhook": "https://h.shop/j/"}"#, "takes no webhook URL"),
            (&shop(r#""https://h.shop/p""#), "starts with one of: https://h.shop/j/"),
            (&shop(r#""https://h.shop/j/a b""#), "letters, digits"),
            (&shop(r#""https://h.shop/j/x@evil""#), "letters, digits"),
            (&shop(&format!(r#""https://h.shop/j/{}""#, "a".repeat(MAX_WEBHOOK_URL_LEN))), "at most 2048"),
        ];
        for (body, why) in refused {
            let invalid = webhook(body).unwrap_err();
            assert_eq!(invalid.path, "$.webhook");
            assert!(invalid.error.contains(why), "{body}: {invalid}");
        }
    }

    #[test]
    fn each_problem_is_named_by_its_path() {
        let cases = [
            (r#"{"tokens": ["a"], "colour": 1}"#, "$.colour", "unknown field `colour`"),
            (r#"{"tokens": ["a", 3]}"#, "$.tokens[1]", "invalid type"),
            (r#"{"tokens": ["a"], "message": {"android": {"ttl": "x"}}}"#, "$.message.android.ttl", ""),
            (r#"{"tokens": ["a"], "message": {"data": {"k": 1}}}"#, "$.message.data.k", "invalid type"),
            (r#"{"tokens": ["a"], "message": {"token": "b"}}"#, "$.message.token", "no target"),
            (r#"{"kind": "legacy", "tokens": ["a"], "message": {"to": "b"}}"#, "$.message.to", "no recipients"),
            (r#"{"tokens": []}"#, "$.tokens", "no tokens"),
            (r#"{"tokens": ["a", ""]}"#, "$.tokens[1]", "an empty token"),
            (r#"{"tokens": [" "]}"#, "$.tokens[0]", "blank"),
            (r#"{"tokens": ["a\u0000b"]}"#, "$.tokens[0]", "control"),
            (r#"{"tokens": ["a\r\nb"]}"#, "$.tokens[0]", "blank"),
            (r#"{"tokens": ["a"], "send_at": "tomorrow"}"#, "$.send_at", "RFC 3339"),
            (r#"{"tokens": ["a"], "topic": "news"}"#, "$.topic", "only subscribe"),
            (r#"{"kind": "subscribe", "tokens": ["a"]}"#, "$.topic", "needs a topic"),
            (r#"{"kind": "subscribe", "tokens": ["a"], "topic": "bad topic!"}"#, "$.topic", "topic name"),
            (r#"{"kind": "unsubscribe", "tokens": ["a"], "topic": "news", "message": {}}"#, "$.message", "no message"),
        ];
        for (body, path, error) in cases {
            let invalid = invalid(body);
            assert_eq!(invalid.path, path, "{body}: {invalid}");
            assert!(invalid.error.contains(error), "{body}: {invalid}");
        }
        let long = format!(r#"{{"tokens": ["{}"]}}"#, "x".repeat(MAX_TOKEN_LEN + 1));
        assert!(invalid(&long).error.contains("at most 4096"));
    }

    #[test]
    fn a_long_list_is_cut_into_jobs_of_one_campaign() {
        let tokens: Vec<String> = (0..2500).map(|i| format!("t{i}")).collect();
        let body = serde_json::json!({"tokens": tokens, "correlation_id": "c", "message": {"dta": {"k": "v"}}});
        let (jobs, send_at) = parse(body.to_string().as_bytes())
            .unwrap()
            .into_jobs(TokenLimits::default(), &Projects::default())
            .unwrap();
        assert_eq!(jobs.iter().map(|job| job.payload.len()).collect::<Vec<_>>(), [1000, 1000, 500]);
        let campaign = jobs[0].campaign_id.clone().unwrap();
        assert!(
            jobs.iter()
                .all(|job| job.campaign_id.as_deref() == Some(&campaign) && job.correlation_id.as_deref() == Some("c"))
        );
        let Payload::V1Multicast { multicast } = &jobs[2].payload else { panic!() };
        assert_eq!(multicast.content().extra["dta"], serde_json::json!({"k": "v"}), "unknown fields are kept");
        assert_eq!(send_at, None);
        let over = TokenLimits { per_request: 2499, per_job: 1000 };
        let error = parse(body.to_string().as_bytes()).unwrap().into_jobs(over, &Projects::default()).unwrap_err();
        assert_eq!(error.to_string(), "$.tokens: 2500 tokens; a request has at most 2499");
    }

    #[test]
    fn a_legacy_template_keeps_unknown_options_and_sends_at_most_1000_per_job() {
        let tokens: Vec<String> = (0..1500).map(|i| format!("t{i}")).collect();
        let body = serde_json::json!({"kind": "legacy", "tokens": tokens, "message": {"data": {"k": 1}, "collapse_key": "x", "new_option": true, "time_to_live": 60.0}, "send_at": "2030-01-01T00:00:00Z"});
        let limits = TokenLimits { per_request: 100_000, per_job: 5000 };
        let (jobs, send_at) =
            parse(body.to_string().as_bytes()).unwrap().into_jobs(limits, &Projects::default()).unwrap();
        assert_eq!(jobs.len(), 2);
        let Payload::Legacy { message } = &jobs[0].payload else { panic!() };
        assert_eq!(message.tokens().len(), 1000);
        assert_eq!(message.options.extra["new_option"], true);
        assert_eq!(message.options.collapse_key.as_deref(), Some("x"));
        assert_eq!(message.options.time_to_live, Some(60), "60.0 is an integer to JSON");
        assert_eq!(send_at, Some(1_893_456_000_000));
    }

    #[test]
    fn a_topic_change_is_cut_into_subscription_jobs_of_at_most_1000() {
        let tokens: Vec<String> = (0..2500).map(|i| format!("t{i}")).collect();
        let body = serde_json::json!({"kind": "subscribe", "topic": "/topics/news", "tokens": tokens});
        let limits = TokenLimits { per_request: 100_000, per_job: 5000 };
        let (jobs, _) = parse(body.to_string().as_bytes()).unwrap().into_jobs(limits, &Projects::default()).unwrap();
        assert_eq!(jobs.iter().map(|job| job.payload.len()).collect::<Vec<_>>(), [1000, 1000, 500]);
        let Payload::V1Subscription { subscription } = &jobs[2].payload else { panic!() };
        assert_eq!((subscription.action(), subscription.topic()), (v1::TopicAction::Subscribe, "news"));
        assert_eq!(subscription.tokens()[0], "t2000");
    }

    #[test]
    fn a_request_names_a_configured_project_or_the_only_one() {
        let none = Projects::default();
        assert_eq!(none.resolve(None), Ok(None));
        assert_eq!(none.resolve(Some("shop")).unwrap_err().path, "$.project");
        let one = Projects::new(["shop"]);
        assert_eq!(one.resolve(None), Ok(Some("shop".to_owned())), "the only one");
        assert_eq!(one.resolve(Some("shop")), Ok(Some("shop".to_owned())));
        let two = Projects::new(["news", "shop"]);
        let error = two.resolve(Some("shoop")).unwrap_err();
        assert_eq!(
            (error.path.as_str(), error.error.as_str()),
            ("$.project", r#"unknown project "shoop": the projects are news, shop"#)
        );
        assert_eq!(two.resolve(None).unwrap_err().error, "name one of the projects: news, shop");
        let body = r#"{"tokens": ["a"], "project": "news"}"#;
        let (jobs, _) = parse(body.as_bytes()).unwrap().into_jobs(TokenLimits::default(), &two).unwrap();
        assert_eq!(jobs[0].project.as_deref(), Some("news"));
    }

    /// Schemathesis sent `-25671810824491.0` as `webpush.notification.timestamp`, an
    /// integer to the schema, and got a 400.
    #[test]
    fn integral_floats_read_as_integers_in_a_v1_message() {
        let body = r#"{"tokens": ["a"], "message": {"webpush": {"notification": {"timestamp": -25671810824491.0}},
            "android": {"notification": {"notification_count": 3.0}}, "extra": 2.5}}"#;
        let (jobs, _) =
            parse(body.as_bytes()).unwrap().into_jobs(TokenLimits::default(), &Projects::default()).unwrap();
        let Payload::V1Multicast { multicast } = &jobs[0].payload else { panic!() };
        let json = serde_json::to_value(multicast.content()).unwrap();
        assert_eq!(json["webpush"]["notification"]["timestamp"], serde_json::json!(-25_671_810_824_491_i64));
        assert_eq!(json["android"]["notification"]["notification_count"], serde_json::json!(3));
        assert_eq!(json["extra"], serde_json::json!(2.5), "a fraction stays");
        let fractional = r#"{"tokens": ["a"], "message": {"android": {"notification": {"notification_count": 3.5}}}}"#;
        let error = parse(fractional.as_bytes()).unwrap().into_jobs(TokenLimits::default(), &Projects::default());
        assert_eq!(error.unwrap_err().path, "$.message.android.notification.notification_count");
    }
}
