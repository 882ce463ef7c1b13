//! What the queue holds: a job is one send and where it stands in its retries.

use std::time::{SystemTime, UNIX_EPOCH};

use gcm_proto::v1;
use serde::{Deserialize, Deserializer, Serialize};

/// The job format this release writes. It reads every format up to this one; a job of a
/// newer format is refused with a clear error instead of being misread. Format 4: a job
/// may name a webhook (a worker of an older release would settle it without writing the
/// delivery). Format 3: a job may name its project (a worker of an older release would send it with its own
/// credentials). Format 2: what the queue's engine holds may leave the payload out (a SQL
/// queue keeps it beside the job); format 1 always holds it.
pub const JOB_FORMAT: u32 = 4;

/// One send and where it stands: what to send, which attempt this is, since when the
/// job exists, and the caller's correlation id. Stored as JSON by the queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The format of this record ([`JOB_FORMAT`] when written by this release).
    #[serde(deserialize_with = "known_format")]
    pub format: u32,
    /// The job's id, the same for all its attempts: its results are recorded under it.
    pub id: String,
    /// 0 for the first send, `n` for the `n`-th retry.
    pub attempt: u32,
    /// When the first attempt was enqueued, in milliseconds since the Unix epoch.
    pub first_enqueued_ms: u64,
    /// The caller's id for this send, copied into every result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The campaign this job is part of (a request the API split into jobs), copied into
    /// every result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// The project (as the worker's configuration names it) whose credentials send it;
    /// `None`: the worker's own (`--credentials`, `--api-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The audience its tokens came from: its results clean that audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The URL its settlements are posted to, signed with its project's webhook secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// What to send.
    pub payload: Payload,
}

/// What a job sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// A legacy message is larger than the others; a job moves once per attempt, so boxing it
// would buy nothing but a noisier constructor.
#[allow(clippy::large_enum_variant)]
#[non_exhaustive]
pub enum Payload {
    /// An FCM v1 multicast: one content, sent to each token.
    V1Multicast {
        /// The content and the tokens.
        multicast: v1::Multicast,
    },
    /// A legacy GCM / FCM multicast (at most 1000 tokens: one request).
    Legacy {
        /// The message and its tokens.
        message: gcm_proto::Message,
    },
    /// FCM v1 messages, each with its own target (token, topic, condition) and content.
    V1Messages {
        /// The messages (stored as a JSON array of messages).
        messages: v1::Messages,
    },
    /// Tokens to subscribe to a topic or unsubscribe from it (1000 a call; a success is
    /// recorded `delivered` with the topic as its message id).
    V1Subscription {
        /// The topic, the action and the tokens.
        subscription: v1::Subscription,
    },
}

impl Payload {
    /// How many messages this payload sends: one per token or per v1 message.
    pub fn len(&self) -> usize {
        match self {
            Self::V1Multicast { multicast } => multicast.tokens().len(),
            Self::Legacy { message } => message.tokens().len(),
            Self::V1Messages { messages } => messages.as_slice().len(),
            Self::V1Subscription { subscription } => subscription.tokens().len(),
        }
    }

    /// Who it sends to, in order: the tokens, or each v1 message's target as its
    /// [`recipient`](v1::Target::recipient).
    pub fn recipients(&self) -> Vec<String> {
        match self {
            Self::V1Multicast { multicast } => multicast.tokens().to_vec(),
            Self::Legacy { message } => message.tokens().to_vec(),
            Self::V1Messages { messages } => {
                messages.as_slice().iter().map(|message| message.target.recipient()).collect()
            }
            Self::V1Subscription { subscription } => subscription.tokens().to_vec(),
        }
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same content to `recipients` (tokens, or v1 messages' targets), in order.
    pub fn to(&self, recipients: Vec<String>) -> Self {
        use gcm_proto::Retryable as _;
        match self {
            Self::V1Multicast { multicast } => Self::V1Multicast { multicast: multicast.with_recipients(recipients) },
            Self::Legacy { message } => Self::Legacy { message: message.with_recipients(recipients) },
            Self::V1Messages { messages } => Self::V1Messages { messages: messages.with_recipients(recipients) },
            Self::V1Subscription { subscription } => {
                Self::V1Subscription { subscription: subscription.with_recipients(recipients) }
            }
        }
    }
}

impl Job {
    /// A new job (attempt 0) with a fresh id, first enqueued now.
    pub fn new(payload: Payload) -> Self {
        let now = SystemTime::now();
        Self {
            format: JOB_FORMAT,
            id: ulid::Ulid::from_datetime(now).to_string(),
            attempt: 0,
            first_enqueued_ms: millis(now),
            correlation_id: None,
            campaign_id: None,
            project: None,
            audience: None,
            webhook: None,
            payload,
        }
    }

    /// A v1 multicast job.
    pub fn v1_multicast(multicast: v1::Multicast) -> Self {
        Self::new(Payload::V1Multicast { multicast })
    }

    /// A legacy multicast job.
    pub fn legacy(message: gcm_proto::Message) -> Self {
        Self::new(Payload::Legacy { message })
    }

    /// A job of single v1 messages.
    pub fn v1_messages(messages: Vec<v1::Message>) -> Self {
        Self::new(Payload::V1Messages { messages: messages.into() })
    }

    /// A topic management job: `subscription`'s tokens subscribed to its topic (or
    /// unsubscribed), durable however many they are.
    pub fn v1_subscription(subscription: v1::Subscription) -> Self {
        Self::new(Payload::V1Subscription { subscription })
    }

    /// The same job with the caller's correlation id.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// The same job as part of campaign `id`.
    pub fn campaign_id(mut self, id: impl Into<String>) -> Self {
        self.campaign_id = Some(id.into());
        self
    }

    /// The same job, sent with project `name`'s credentials.
    pub fn project(mut self, name: impl Into<String>) -> Self {
        self.project = Some(name.into());
        self
    }

    /// The next attempt of this job, sending `payload` (what is still pending).
    pub fn retry(&self, payload: Payload) -> Self {
        Self {
            format: JOB_FORMAT,
            id: self.id.clone(),
            attempt: self.attempt.saturating_add(1),
            first_enqueued_ms: self.first_enqueued_ms,
            correlation_id: self.correlation_id.clone(),
            campaign_id: self.campaign_id.clone(),
            project: self.project.clone(),
            audience: self.audience.clone(),
            webhook: self.webhook.clone(),
            payload,
        }
    }

    /// The queue's idempotency key of this attempt: pushing the same attempt twice (a
    /// worker that died after scheduling a retry and ran the job again) enqueues it once.
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}", self.id, self.attempt)
    }
}

/// What the queue's engine holds for a job: the job, with its payload (Redis, and format 1)
/// or without it (SQLite and PostgreSQL keep it beside, in their `gcm_payloads` table).
/// apalis updates its row at each step of a job (fetched, running, done), and SQLite writes
/// a whole row again on every update: a 150 KB payload in that row was written three times
/// per job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ticket {
    #[serde(deserialize_with = "known_format")]
    format: u32,
    pub(crate) id: String,
    pub(crate) attempt: u32,
    first_enqueued_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) campaign_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<Payload>,
}

impl Ticket {
    /// `job` with its payload.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // Redis's tickets hold it
    pub(crate) fn holding(job: &Job) -> Self {
        Self { payload: Some(job.payload.clone()), ..Self::without_payload(job) }
    }

    /// `job` without its payload, which is kept beside it.
    pub(crate) fn without_payload(job: &Job) -> Self {
        Self {
            format: JOB_FORMAT,
            id: job.id.clone(),
            attempt: job.attempt,
            first_enqueued_ms: job.first_enqueued_ms,
            correlation_id: job.correlation_id.clone(),
            campaign_id: job.campaign_id.clone(),
            project: job.project.clone(),
            audience: job.audience.clone(),
            webhook: job.webhook.clone(),
            payload: None,
        }
    }

    /// True when the ticket holds its payload (nothing to read from beside it).
    pub(crate) fn holds_payload(&self) -> bool {
        self.payload.is_some()
    }

    /// The job, with the payload the ticket holds or else `kept` (read from beside it);
    /// `None` when there is neither.
    pub(crate) fn into_job(self, kept: Option<Payload>) -> Option<Job> {
        let Self {
            format,
            id,
            attempt,
            first_enqueued_ms,
            correlation_id,
            campaign_id,
            project,
            audience,
            webhook,
            payload,
        } = self;
        let payload = payload.or(kept)?;
        Some(Job {
            format,
            id,
            attempt,
            first_enqueued_ms,
            correlation_id,
            campaign_id,
            project,
            audience,
            webhook,
            payload,
        })
    }
}

/// Milliseconds since the Unix epoch (0 before it, saturated far after it).
pub(crate) fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

fn known_format<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let format = u32::deserialize(deserializer)?;
    if format == 0 || format > JOB_FORMAT {
        return Err(serde::de::Error::custom(format!(
            "job format {format} is not one this release reads (1 to {JOB_FORMAT}): upgrade the worker"
        )));
    }
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job as release 0.1 wrote it. Later releases must keep reading this text.
    const FORMAT_1: &str = r#"{"format":1,"id":"01JQ0000000000000000000000","attempt":2,"first_enqueued_ms":1764633600000,"correlation_id":"campaign-7","payload":{"kind":"v1_multicast","multicast":{"content":{"data":{"kind":"sync"}},"tokens":["a","b"]}}}"#;

    #[test]
    fn reads_format_1_as_written_by_the_first_release() {
        let job: Job = serde_json::from_str(FORMAT_1).unwrap();
        assert_eq!(job.attempt, 2);
        assert_eq!(job.correlation_id.as_deref(), Some("campaign-7"));
        let Payload::V1Multicast { multicast } = &job.payload else { panic!("{job:?}") };
        assert_eq!(multicast.tokens(), ["a", "b"]);
        assert_eq!(multicast.content().data["kind"], "sync");
        assert_eq!(serde_json::to_string(&job).unwrap(), FORMAT_1);
    }

    #[test]
    fn refuses_a_newer_format_by_name() {
        let newer = FORMAT_1.replace(r#""format":1"#, r#""format":5"#);
        let error = serde_json::from_str::<Job>(&newer).unwrap_err().to_string();
        assert!(error.contains("job format 5 is not one this release reads"), "{error}");
        let error = serde_json::from_str::<Ticket>(&newer).unwrap_err().to_string();
        assert!(error.contains("job format 5 is not one this release reads"), "{error}");
    }

    #[test]
    fn a_format_1_job_is_a_ticket_that_holds_its_payload() {
        let ticket: Ticket = serde_json::from_str(FORMAT_1).unwrap();
        assert!(ticket.holds_payload());
        assert_eq!(ticket.into_job(None).unwrap(), serde_json::from_str::<Job>(FORMAT_1).unwrap());
    }

    #[test]
    fn a_ticket_without_its_payload_is_the_job_once_the_payload_is_back() {
        let job = Job::legacy(gcm_proto::Message::multicast(["a", "b"])).correlation_id("c");
        let ticket = Ticket::without_payload(&job);
        let text = serde_json::to_string(&ticket).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"format":4,"id":"{}","attempt":0,"first_enqueued_ms":{},"correlation_id":"c"}}"#,
                job.id, job.first_enqueued_ms
            )
        );
        let ticket = serde_json::from_str::<Ticket>(&text).unwrap();
        assert!(!ticket.holds_payload());
        assert_eq!(ticket.clone().into_job(None), None, "no payload, no job");
        assert_eq!(ticket.into_job(Some(job.payload.clone())).unwrap(), job);
        assert_eq!(Ticket::holding(&job).into_job(None).unwrap(), job);
    }

    #[test]
    fn v1_messages_are_stored_as_a_json_array_of_messages() {
        let messages = vec![v1::Message::token("a"), v1::Message::topic("news")];
        let array = serde_json::to_string(&messages).unwrap();
        let job = Job::v1_messages(messages);
        let text = serde_json::to_string(&job.payload).unwrap();
        assert_eq!(text, format!(r#"{{"kind":"v1_messages","messages":{array}}}"#));
        assert_eq!(array, r#"[{"target":{"token":"a"}},{"target":{"topic":"news"}}]"#);
        assert_eq!(serde_json::from_str::<Payload>(&text).unwrap(), job.payload);
    }

    #[test]
    fn a_retry_keeps_the_id_and_counts_the_attempt() {
        let job = Job::legacy(gcm_proto::Message::multicast(["a", "b"])).correlation_id("c");
        let job = job.project("shop");
        let retry = job.retry(Payload::Legacy { message: gcm_proto::Message::multicast(["b"]) });
        assert_eq!((retry.id.as_str(), retry.attempt), (job.id.as_str(), 1));
        assert_eq!(retry.correlation_id.as_deref(), Some("c"));
        assert_eq!(retry.project.as_deref(), Some("shop"), "a retry is sent with its project's credentials");
        let ticket = serde_json::to_string(&Ticket::without_payload(&retry)).unwrap();
        assert!(ticket.contains(r#""project":"shop""#), "{ticket}");
        assert_eq!(retry.idempotency_key(), format!("{}:1", job.id));
        assert_eq!(retry.payload.len(), 1);
    }
}
