//! Scenarios: what the mock answers, token by token and request by request.
//!
//! A scenario is a value ([`Scenario`]) for the library and a TOML or JSON file for the
//! binary. See `scenario.example.toml` beside this crate for every field.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Everything the mock does beyond the protocol's defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Seed of the fault injection and of the ids; the binary's `--seed` overrides it.
    pub seed: u64,
    /// The behaviour of tokens (and topics or conditions) not listed in `tokens`.
    pub default: TokenRule,
    /// Per-token behaviour, by token (or `/topics/<name>`, or condition expression).
    pub tokens: BTreeMap<String, TokenRule>,
    /// Whole-request replies, used in order by the next send requests (before the API key
    /// is checked, so that a scripted 401 works with any key).
    pub replies: Vec<Reply>,
    /// Seeded random faults.
    pub faults: Faults,
    /// Replies of the token endpoint and of the metadata server's token route, used in
    /// order by the next token requests; then tokens are issued as usual.
    pub token_replies: Vec<TokenReply>,
}

/// How the next token requests are answered (the OAuth2 token endpoint and the metadata
/// server alike).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenReply {
    /// Refuse with this status and an OAuth2 error body (`invalid_grant` for a 4xx,
    /// `internal_failure` for a 5xx).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Never answer: the client's timeout ends the request.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hang: bool,
    /// Issue a token, but send this `expires_in` (any JSON value: 0, 60, a huge number,
    /// `"3600"`, -1). The token itself lives the mock's token lifetime, or this many
    /// seconds when it is a positive whole number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<serde_json::Value>,
    /// Use this reply for the next `repeat` token requests (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
}

impl TokenReply {
    /// Refuse with `status`.
    pub fn status(status: u16) -> Self {
        Self { status: Some(status), ..Self::default() }
    }

    /// Never answer.
    pub fn hang() -> Self {
        Self { hang: true, ..Self::default() }
    }

    /// Issue a token with this `expires_in`.
    pub fn expires_in(value: serde_json::Value) -> Self {
        Self { expires_in: Some(value), ..Self::default() }
    }

    /// For the next `count` token requests.
    pub fn repeat(mut self, count: u32) -> Self {
        self.repeat = Some(count);
        self
    }
}

/// What a token's results are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Delivered (with `canonical` as canonical id, when set).
    #[default]
    Ok,
    /// Delivered with a canonical id (`canonical` must be set).
    Canonical,
    /// `NotRegistered`.
    NotRegistered,
    /// `InvalidRegistration`.
    Invalid,
    /// `MismatchSenderId`.
    MismatchSender,
    /// `Unavailable` (an HTTP 500 in plain text).
    Unavailable,
    /// `InternalServerError` (an HTTP 500 in plain text).
    InternalError,
    /// `DeviceMessageRateExceeded` (`TopicsMessageRateExceeded` for a topic or condition).
    RateLimited,
    /// The error code in `code`.
    Error,
}

/// How one token (or topic, or condition) behaves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenRule {
    /// The result.
    pub result: Behaviour,
    /// For a failing `result`: fail on the first `times` attempts for this token only, then
    /// deliver. Unset: fail on every attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// The canonical id to return when the token is delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canonical: Option<String>,
    /// The error code for `result = "error"` (any text: unknown codes are the point).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The app package the token is registered for; a message with another
    /// `restricted_package_name` gets `InvalidPackageName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// `Retry-After` to send with this token's failure (seconds or an HTTP-date).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    /// `Retry-After` as an HTTP-date this many seconds after the response, computed when
    /// answering (what a real server sends; it exposes clients that sleep until a date).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_date_in: Option<u32>,
    /// Per-attempt results instead of `result` and `times`: attempt 1 gets the first step,
    /// attempt 2 the second, and the last step repeats.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
}

/// One attempt's result in [`TokenRule::steps`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Step {
    /// The result.
    pub result: Behaviour,
    /// The canonical id, for `canonical`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canonical: Option<String>,
    /// The error code, for `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `Retry-After` with a failure (seconds or an HTTP-date).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    /// `Retry-After` as an HTTP-date this many seconds after the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_date_in: Option<u32>,
}

impl Step {
    /// A step with this result.
    pub fn new(result: Behaviour) -> Self {
        Self { result, ..Self::default() }
    }

    /// Delivered with this canonical id.
    pub fn canonical(canonical: impl Into<String>) -> Self {
        Self { canonical: Some(canonical.into()), ..Self::new(Behaviour::Canonical) }
    }

    /// Fails with any error code.
    pub fn error(code: impl Into<String>) -> Self {
        Self { code: Some(code.into()), ..Self::new(Behaviour::Error) }
    }

    /// Sends this `Retry-After` with the failure.
    pub fn retry_after(mut self, value: impl Into<String>) -> Self {
        self.retry_after = Some(value.into());
        self
    }

    /// Sends an HTTP-date `seconds` after the response as `Retry-After`.
    pub fn retry_after_date_in(mut self, seconds: u32) -> Self {
        self.retry_after_date_in = Some(seconds);
        self
    }

    fn check(&self, name: &str) -> Result<(), ScenarioError> {
        let invalid = |reason: &str| Err(ScenarioError::Invalid(format!("{name}: {reason}")));
        match self.result {
            Behaviour::Canonical if self.canonical.is_none() => invalid("result = \"canonical\" needs `canonical`"),
            Behaviour::Error if self.code.is_none() => invalid("result = \"error\" needs `code`"),
            _ if self.retry_after.is_some() && self.retry_after_date_in.is_some() => {
                invalid("`retry_after` and `retry_after_date_in` exclude each other")
            }
            _ => Ok(()),
        }
    }
}

/// Largest count a scenario may give (`times`, `repeat`, the number of steps): beyond it
/// is surely a typo, and the mock refuses it when loading instead of misbehaving later.
pub const MAX_COUNT: u32 = 1_000_000;

fn check_count(name: &str, count: Option<u32>) -> Result<(), ScenarioError> {
    match count {
        Some(count) if count > MAX_COUNT => {
            Err(ScenarioError::Invalid(format!("{name} = {count} is over the limit of {MAX_COUNT}")))
        }
        _ => Ok(()),
    }
}

impl TokenRule {
    /// A rule with this result and nothing else.
    pub fn new(result: Behaviour) -> Self {
        Self { result, ..Self::default() }
    }

    /// Delivered with this canonical id.
    pub fn canonical(canonical: impl Into<String>) -> Self {
        Self { canonical: Some(canonical.into()), ..Self::new(Behaviour::Canonical) }
    }

    /// `Unavailable` on the first `times` attempts, then delivered.
    pub fn unavailable_times(times: u32) -> Self {
        Self { times: Some(times), ..Self::new(Behaviour::Unavailable) }
    }

    /// Fails with any error code.
    pub fn error(code: impl Into<String>) -> Self {
        Self { code: Some(code.into()), ..Self::new(Behaviour::Error) }
    }

    /// Limits how many attempts fail before the token is delivered.
    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    /// Registers the token for an app package.
    pub fn package(mut self, package: impl Into<String>) -> Self {
        self.package = Some(package.into());
        self
    }

    /// Sends this `Retry-After` with the token's failures.
    pub fn retry_after(mut self, value: impl Into<String>) -> Self {
        self.retry_after = Some(value.into());
        self
    }

    /// Sends an HTTP-date `seconds` after each response as the failures' `Retry-After`.
    pub fn retry_after_date_in(mut self, seconds: u32) -> Self {
        self.retry_after_date_in = Some(seconds);
        self
    }

    /// A rule of per-attempt steps (the last repeats): "not registered, then canonical,
    /// then ok" is `TokenRule::steps([Step::new(NotRegistered), Step::canonical("new"),
    /// Step::new(Ok)])`.
    pub fn steps(steps: impl IntoIterator<Item = Step>) -> Self {
        Self { steps: steps.into_iter().collect(), ..Self::default() }
    }

    /// Whether the engine must count this token's attempts.
    pub(crate) fn counts_attempts(&self) -> bool {
        self.times.is_some() || !self.steps.is_empty()
    }

    /// What attempt `attempt` (1 = first) of this token gets.
    pub(crate) fn step_at(&self, attempt: u32) -> StepRef<'_> {
        let index = attempt.saturating_sub(1) as usize;
        if let Some(step) = self.steps.get(index).or(self.steps.last()) {
            return StepRef {
                result: step.result,
                canonical: step.canonical.as_deref(),
                code: step.code.as_deref(),
                retry_after: step.retry_after.as_deref(),
                retry_after_date_in: step.retry_after_date_in,
            };
        }
        let failing = self.times.is_none_or(|times| attempt <= times);
        StepRef {
            result: if failing { self.result } else { Behaviour::Ok },
            canonical: self.canonical.as_deref(),
            code: self.code.as_deref(),
            retry_after: self.retry_after.as_deref(),
            retry_after_date_in: self.retry_after_date_in,
        }
    }

    fn check(&self, name: &str) -> Result<(), ScenarioError> {
        let invalid = |reason: &str| Err(ScenarioError::Invalid(format!("{name}: {reason}")));
        check_count(&format!("{name}.times"), self.times)?;
        check_count(&format!("{name}.steps"), u32::try_from(self.steps.len()).ok().or(Some(u32::MAX)))?;
        if !self.steps.is_empty() {
            let alone = Self { package: self.package.clone(), steps: self.steps.clone(), ..Self::default() };
            if *self != alone {
                return invalid("`steps` replace `result`, `times`, `canonical`, `code` and `retry_after`");
            }
            for (i, step) in self.steps.iter().enumerate() {
                step.check(&format!("{name}.steps[{i}]"))?;
            }
            return Ok(());
        }
        match self.result {
            Behaviour::Ok | Behaviour::Canonical if self.times.is_some() => {
                invalid("`times` only applies to a failing result")
            }
            _ => Step {
                result: self.result,
                canonical: self.canonical.clone(),
                code: self.code.clone(),
                retry_after: self.retry_after.clone(),
                retry_after_date_in: self.retry_after_date_in,
            }
            .check(name),
        }
    }
}

/// One attempt's result, borrowed from a [`TokenRule`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepRef<'a> {
    pub(crate) result: Behaviour,
    pub(crate) canonical: Option<&'a str>,
    pub(crate) code: Option<&'a str>,
    pub(crate) retry_after: Option<&'a str>,
    pub(crate) retry_after_date_in: Option<u32>,
}

/// A whole-request reply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reply {
    /// The HTTP status, 100..=599.
    pub status: u16,
    /// `Retry-After`: delta-seconds or an HTTP-date, sent verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    /// `Retry-After` as an HTTP-date this many seconds after the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_date_in: Option<u32>,
    /// The body; unset gives the real service's body for the status (an HTML page for 401).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// How many requests get this reply (at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
}

impl Reply {
    /// A reply with this status and the service's usual body.
    pub fn status(status: u16) -> Self {
        Self { status, ..Self::default() }
    }

    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, value: impl Into<String>) -> Self {
        self.retry_after = Some(value.into());
        self
    }

    /// Adds a `Retry-After` HTTP-date `seconds` after the response.
    pub fn retry_after_date_in(mut self, seconds: u32) -> Self {
        self.retry_after_date_in = Some(seconds);
        self
    }

    /// Sends this reply to the next `count` requests.
    pub fn repeat(mut self, count: u32) -> Self {
        self.repeat = Some(count);
        self
    }
}

/// Seeded random faults: the same seed and request sequence give the same faults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Probability (0..=1) that a token gets `Unavailable` on a request.
    pub unavailable: f64,
    /// Probability (0..=1) that a whole request gets `server_error_status`.
    pub server_error: f64,
    /// The status of injected request failures (500..=599).
    pub server_error_status: u16,
    /// `Retry-After` sent with injected faults (seconds or an HTTP-date).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    /// Milliseconds the server waits before sending each answer, after deciding it (a
    /// slow service: the message is delivered whether or not the client waits).
    #[serde(skip_serializing_if = "is_zero")]
    pub latency_ms: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Default for Faults {
    fn default() -> Self {
        Self { unavailable: 0.0, server_error: 0.0, server_error_status: 503, retry_after: None, latency_ms: 0 }
    }
}

/// Why a scenario was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The text does not parse; the message names the line and the field.
    Parse(String),
    /// The scenario parses but contradicts itself.
    Invalid(String),
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read the scenario: {e}"),
            Self::Parse(e) => write!(f, "invalid scenario: {e}"),
            Self::Invalid(e) => write!(f, "invalid scenario: {e}"),
        }
    }
}

impl std::error::Error for ScenarioError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl Scenario {
    /// Parses a TOML scenario.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Self = toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        scenario.validate()
    }

    /// Parses a JSON scenario.
    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Self = serde_json::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        scenario.validate()
    }

    /// Reads a scenario file: JSON when the name ends in `.json`, TOML otherwise.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(ScenarioError::Io)?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Self::from_json(&text),
            _ => Self::from_toml(&text),
        }
    }

    /// Sets the rule of one token.
    pub fn token(mut self, token: impl Into<String>, rule: TokenRule) -> Self {
        self.tokens.insert(token.into(), rule);
        self
    }

    /// Queues a whole-request reply.
    pub fn reply(mut self, reply: Reply) -> Self {
        self.replies.push(reply);
        self
    }

    /// Answers the next token requests with `reply` (see [`TokenReply`]).
    pub fn token_reply(mut self, reply: TokenReply) -> Self {
        self.token_replies.push(reply);
        self
    }

    /// Checks what the types cannot: probabilities, statuses, and fields a result needs.
    pub fn validate(self) -> Result<Self, ScenarioError> {
        let invalid = |reason: String| Err(ScenarioError::Invalid(reason));
        for (name, p) in
            [("faults.unavailable", self.faults.unavailable), ("faults.server_error", self.faults.server_error)]
        {
            if !(0.0..=1.0).contains(&p) {
                return invalid(format!("{name} = {p} is not a probability in 0..=1"));
            }
        }
        if !(500..=599).contains(&self.faults.server_error_status) {
            return invalid(format!(
                "faults.server_error_status = {} is not a 5xx status",
                self.faults.server_error_status
            ));
        }
        for (i, reply) in self.replies.iter().enumerate() {
            if !(100..=599).contains(&reply.status) {
                return invalid(format!("replies[{i}].status = {} is not an HTTP status", reply.status));
            }
            if reply.retry_after.is_some() && reply.retry_after_date_in.is_some() {
                return invalid(format!("replies[{i}]: `retry_after` and `retry_after_date_in` exclude each other"));
            }
            check_count(&format!("replies[{i}].repeat"), reply.repeat)?;
        }
        for (i, reply) in self.token_replies.iter().enumerate() {
            check_count(&format!("token_replies[{i}].repeat"), reply.repeat)?;
        }
        self.default.check("default")?;
        for (token, rule) in &self.tokens {
            rule.check(&format!("tokens.{token:?}"))?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../scenario.example.toml");
        let scenario = Scenario::from_toml(text).unwrap();
        assert_eq!(scenario.tokens["tok-flaky"], TokenRule::unavailable_times(2));
        assert_eq!(scenario.replies[0], Reply::status(503).retry_after("30").repeat(2));
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let err = Scenario::from_toml("seed = 1\n[tokens.a]\nresult = \"gone\"\n").unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("gone"), "{err}");
        let err = Scenario::from_toml("[tokens.a]\nresutl = \"ok\"\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("resutl"), "{err}");
        let err = Scenario::from_toml("[faults]\nunavailable = 2.0\n").unwrap_err().to_string();
        assert!(err.contains("faults.unavailable"), "{err}");
        let err = Scenario::from_toml("[tokens.x]\nresult = \"error\"\n").unwrap_err().to_string();
        assert!(err.contains("tokens.\"x\"") && err.contains("code"), "{err}");
        let err = Scenario::from_json("{\"seed\": \"x\"}").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
