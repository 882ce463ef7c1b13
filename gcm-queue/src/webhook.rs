//! Signed webhooks: a settlement of a job that names a webhook is also written, in the same
//! transaction (or script), as a durable delivery of its records — fates, cancellations and
//! what they change in the job's audience — and a [`Deliverer`] posts each delivery to its
//! URL, signed as the [Standard Webhooks] specification says, retried with backoff for up
//! to a configured period, one delivery of a job at a time in the order they were written.
//!
//! A delivery's id (`webhook-id`) is the same for every attempt and every replay, so a
//! receiver that keeps the ids it has processed sees each delivery once, whatever a worker
//! kill or a replay resends. The deliveries are numbered: [`WebhookOutbox::deliveries`]
//! reads them from a cursor and [`WebhookOutbox::replay`] sends them again from one.
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use gcm_hyper::{DefaultConnector, HttpClient};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fate::{Final, Settlement};
use crate::job::millis;
use crate::store::BoxFuture;

/// A signing secret, `whsec_` then the base64 of 24 to 64 random bytes. Never shown:
/// `Debug` prints `whsec_…`.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("whsec_…")
    }
}

impl std::str::FromStr for Secret {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::Config(format!("a webhook secret is `whsec_` then base64: {why}"));
        let encoded = text.strip_prefix("whsec_").ok_or_else(|| invalid("no `whsec_` prefix"))?;
        // Padded or not, as the specification's libraries read it.
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let key = lenient.decode(encoded).map_err(|_| invalid("not base64"))?;
        if !(24..=64).contains(&key.len()) {
            return Err(invalid("the key is 24 to 64 bytes"));
        }
        Ok(Self(key))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The error never quotes the text: it may be a secret with a typo.
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The `webhook-signature` header of `body` sent as delivery `id` at `timestamp` (seconds
/// since the Unix epoch): `v1,<base64 of HMAC-SHA256(id.timestamp.body)>` for each secret,
/// separated by spaces (during a rotation a receiver may hold either secret).
pub fn signature(secrets: &[Secret], id: &str, timestamp: u64, body: &[u8]) -> String {
    let signed = |secret: &Secret| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret.0);
        let mut context = ring::hmac::Context::with_key(&key);
        context.update(format!("{id}.{timestamp}.").as_bytes());
        context.update(body);
        format!("v1,{}", BASE64.encode(context.sign().as_ref()))
    };
    secrets.iter().map(signed).collect::<Vec<_>>().join(" ")
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not yet answered with a 2xx: due, in flight, or waiting for its next try.
    Pending,
    /// Answered with a 2xx.
    Delivered,
    /// Given up: still failing when its retry period ended (replay sends it again).
    Dead,
}

impl DeliveryState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "delivered" => Self::Delivered,
            "dead" => Self::Dead,
            _ => Self::Pending,
        }
    }
}

/// One settlement's records, posted to a webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Its place among all deliveries: pass the last one as `since` to read on.
    pub cursor: u64,
    /// The `webhook-id` header: the same for every try and every replay.
    pub id: String,
    /// The job whose settlement it carries.
    pub job_id: String,
    /// The attempt that settled, from 1 (as `GET /results` counts).
    pub attempt: u32,
    /// Where it is posted.
    pub url: String,
    /// The job's project, whose secrets sign it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Where it stands.
    pub state: DeliveryState,
    /// Tries since it was written or last replayed (a try cut by a worker's death counts).
    pub tries: u32,
    /// Why the last try failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was written (ms since the Unix epoch).
    pub created_ms: u64,
    /// When its tries began: when it was written, or replayed.
    pub started_ms: u64,
    /// The JSON body, as signed.
    #[serde(skip)]
    pub body: String,
}

/// A delivery as a settlement writes it.
pub(crate) struct Outgoing {
    pub(crate) id: String,
    /// From 1.
    pub(crate) attempt: u32,
    pub(crate) url: String,
    pub(crate) project: Option<String>,
    pub(crate) body: String,
}

/// The delivery `settlement` writes, if its job names a webhook and it settled some
/// recipients.
pub(crate) fn delivery_of(settlement: &Settlement, now: SystemTime) -> Option<Outgoing> {
    let url = settlement.webhook.clone()?;
    let first = settlement.records.first()?;
    let cancelled = settlement.records.iter().all(|record| record.fate == Final::Cancelled);
    #[derive(Serialize)]
    struct TokenChange<'a> {
        token: &'a str,
        #[serde(flatten)]
        change: &'a crate::Change,
    }
    let changes: Vec<_> = match &settlement.audience {
        Some(_) => crate::audience::changes(settlement),
        None => Vec::new(),
    };
    #[derive(Serialize)]
    struct Fate<'a> {
        recipient: &'a str,
        #[serde(flatten)]
        fate: &'a Final,
    }
    #[derive(Serialize)]
    struct Data<'a> {
        job_id: &'a str,
        attempt: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        project: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        campaign_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        correlation_id: Option<&'a str>,
        records: Vec<Fate<'a>>,
        pending: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_at_ms: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        audience: Option<&'a str>,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        audience_changes: Vec<TokenChange<'a>>,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        r#type: &'static str,
        timestamp: String,
        data: Data<'a>,
    }
    let timestamp =
        time::OffsetDateTime::from(now).format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let attempt = settlement.attempt.saturating_add(1);
    let body = Body {
        r#type: if cancelled { "job.cancelled" } else { "job.settled" },
        timestamp,
        data: Data {
            job_id: &settlement.job_id,
            attempt,
            project: first.project.as_deref(),
            campaign_id: first.campaign_id.as_deref(),
            correlation_id: first.correlation_id.as_deref(),
            records: settlement
                .records
                .iter()
                .map(|record| Fate { recipient: &record.recipient, fate: &record.fate })
                .collect(),
            pending: settlement.pending(),
            retry_at_ms: settlement.retry.as_ref().map(|retry| retry.run_at_ms),
            audience: settlement.audience.as_deref(),
            audience_changes: changes.iter().map(|(token, change)| TokenChange { token, change }).collect(),
        },
    };
    let body = serde_json::to_string(&body).ok()?;
    let id = format!("msg_{}_{attempt}", settlement.job_id);
    Some(Outgoing { id, url, project: first.project.clone(), attempt, body })
}

/// How a try ended, as [`WebhookOutbox::finish`] records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tried {
    /// A 2xx: delivered.
    Delivered,
    /// Failed: try again after this long.
    Retry {
        /// The wait.
        after: Duration,
        /// Why it failed.
        error: String,
    },
    /// Failed, and the retry period is over: dead (until a replay).
    Dead {
        /// Why the last try failed.
        error: String,
    },
}

/// The deliveries a queue keeps (in its own backend, beside the settlements that write them).
pub trait WebhookOutbox: Send + Sync {
    /// Takes up to `limit` due deliveries of `project`'s jobs (`None`: of no project) for
    /// `owner` for `lease` (timed by the backend's clock): of each job, the first one not
    /// yet delivered or dead, and only when nobody's lease on it is live. Each claim counts
    /// a try. (A worker claims the projects it has the secrets of.)
    fn claim_deliveries<'a>(
        &'a self,
        project: Option<&'a str>,
        owner: &'a str,
        lease: Duration,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, Error>>;

    /// Records how `owner`'s try of `delivery` ended; ignored when another owner has
    /// claimed it since. A delivered or dead delivery lets the job's next one go.
    fn finish<'a>(
        &'a self,
        delivery: &'a Delivery,
        owner: &'a str,
        tried: &'a Tried,
    ) -> BoxFuture<'a, Result<(), Error>>;

    /// Up to `limit` deliveries after cursor `since` (0 for the first), in order.
    fn deliveries<'a>(&'a self, since: u64, limit: usize) -> BoxFuture<'a, Result<Vec<Delivery>, Error>>;

    /// Makes every delivery after cursor `since` pending again, due now, with a new retry
    /// period (same ids: a receiver that kept them skips what it has); returns how many
    /// were delivered or dead.
    fn replay(&self, since: u64) -> BoxFuture<'_, Result<u64, Error>>;
}

/// What signs and times the deliveries of one project (or of the jobs of none).
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The secrets that sign: the first alone, or two during a rotation.
    pub secrets: Vec<Secret>,
    /// How long a failing delivery is retried before it is dead (default 3 days).
    pub retry_for: Duration,
    /// How long a try may take, the response's status included (default 10 s).
    pub timeout: Duration,
    /// The wait after the first failed try; each next one doubles, up to an hour (default 5 s).
    pub first_retry: Duration,
}

impl Endpoint {
    /// Signed with `secrets`, and the default timings.
    pub fn new(secrets: Vec<Secret>) -> Self {
        Self {
            secrets,
            retry_for: Duration::from_secs(3 * 24 * 3600),
            timeout: Duration::from_secs(10),
            first_retry: Duration::from_secs(5),
        }
    }

    /// The wait after try `tries` failed: `first_retry` doubled each try, an hour at most,
    /// ± 20 % so that the deliveries of one outage do not come back together.
    fn backoff(&self, tries: u32, rng: &mut impl rand::Rng) -> Duration {
        let doubled = self.first_retry.saturating_mul(1 << tries.saturating_sub(1).min(20));
        doubled.min(Duration::from_secs(3600)).mul_f64(rand::RngExt::random_range(rng, 0.8..1.2))
    }
}

/// The loop that posts the deliveries: every worker may run one; leases keep a delivery
/// with one of them at a time.
#[derive(Clone)]
pub struct Deliverer {
    outbox: Arc<dyn WebhookOutbox>,
    http: HttpClient<DefaultConnector>,
    /// What signs each project's deliveries (`None`: those of jobs of no project).
    endpoints: Arc<BTreeMap<Option<String>, Arc<Endpoint>>>,
    /// A claim's lease: half again the longest timeout, and a second, so that a try ends
    /// before another worker may take its delivery over.
    lease: Duration,
    owner: String,
    concurrency: usize,
    metrics: Option<Arc<crate::Metrics>>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer").field("owner", &self.owner).finish_non_exhaustive()
    }
}

/// How long the loop waits when nothing is due.
const IDLE: Duration = Duration::from_millis(250);

impl Deliverer {
    /// Posts `outbox`'s deliveries as `owner`, signed with the endpoint of each delivery's
    /// project (`None`: jobs of no project).
    pub fn new(
        outbox: Arc<dyn WebhookOutbox>,
        endpoints: BTreeMap<Option<String>, Endpoint>,
        owner: impl Into<String>,
    ) -> Result<Self, Error> {
        let http = gcm_hyper::Builder::http()
            .build_http()
            .map_err(|error| Error::Config(format!("the webhooks' HTTP client: {error}")))?;
        let longest = endpoints.values().map(|endpoint| endpoint.timeout).max().unwrap_or_default();
        let lease = longest.saturating_add(longest / 2).saturating_add(Duration::from_secs(1));
        let endpoints =
            Arc::new(endpoints.into_iter().map(|(project, endpoint)| (project, Arc::new(endpoint))).collect());
        Ok(Self { outbox, http, endpoints, lease, owner: owner.into(), concurrency: 16, metrics: None })
    }

    /// Counts each try in `metrics` (`gcm_queue_webhook_tries_total{outcome}`).
    pub fn with_metrics(mut self, metrics: Arc<crate::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Posts at most `concurrency` deliveries at once (default 16; of different jobs).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Claims what is due, posts it, records how each try ended; returns how many it tried.
    pub async fn deliver_due(&self) -> Result<usize, Error> {
        let claimed = self.claim(self.concurrency).await?;
        let tries = claimed.iter().map(|(endpoint, delivery)| self.try_and_record(endpoint, delivery));
        for recorded in futures_util::future::join_all(tries).await {
            recorded?;
        }
        Ok(claimed.len())
    }

    /// Delivers until `shutdown` resolves, `concurrency` tries at a time, claiming more as
    /// each ends (a hanging receiver holds one slot, not the others). A backend error is
    /// logged and the loop goes on; a try cut by the shutdown is taken over when its lease ends.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut running = tokio::task::JoinSet::new();
        loop {
            let room = self.concurrency.saturating_sub(running.len());
            let wait = match room {
                0 => None,
                room => match self.claim(room).await {
                    Ok(claimed) if claimed.is_empty() => Some(IDLE),
                    Ok(claimed) => {
                        for (endpoint, delivery) in claimed {
                            let deliverer = self.clone();
                            running.spawn(async move { deliverer.try_and_record(&endpoint, &delivery).await });
                        }
                        Some(Duration::ZERO)
                    }
                    Err(error) => {
                        tracing::warn!(%error, "webhook deliveries: the backend failed");
                        Some(IDLE.saturating_mul(4))
                    }
                },
            };
            tokio::select! {
                () = &mut shutdown => return,
                Some(ended) = running.join_next(), if !running.is_empty() => match ended {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "a webhook try's outcome was not recorded: it is tried again after its lease");
                    }
                    Err(error) => tracing::error!(%error, "a webhook try ended abnormally: it is tried again after its lease"),
                },
                () = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {}
            }
        }
    }

    /// Up to `room` due deliveries of the projects this deliverer signs for, each with
    /// what signs it.
    async fn claim(&self, room: usize) -> Result<Vec<(Arc<Endpoint>, Delivery)>, Error> {
        let mut claimed = Vec::new();
        for (project, endpoint) in self.endpoints.iter() {
            let room = room.saturating_sub(claimed.len());
            if room > 0 {
                let deliveries =
                    self.outbox.claim_deliveries(project.as_deref(), &self.owner, self.lease, room).await?;
                claimed.extend(deliveries.into_iter().map(|delivery| (endpoint.clone(), delivery)));
            }
        }
        Ok(claimed)
    }

    /// Tries `delivery` once, logs and counts how it went, and records it.
    async fn try_and_record(&self, endpoint: &Endpoint, delivery: &Delivery) -> Result<(), Error> {
        let tried = self.try_once(endpoint, delivery).await;
        let (id, tries) = (&delivery.id, delivery.tries);
        let outcome = match &tried {
            Tried::Delivered => {
                tracing::debug!(%id, tries, "webhook delivered");
                "delivered"
            }
            Tried::Retry { after, error } => {
                tracing::info!(%id, tries, retry_in = ?after, %error, "webhook failed");
                "retry"
            }
            Tried::Dead { error } => {
                tracing::warn!(%id, tries, %error, "webhook dead: retry period over");
                "dead"
            }
        };
        if let Some(metrics) = &self.metrics {
            metrics.webhook_tries.get_or_create(&crate::OutcomeLabel { outcome }).inc();
        }
        self.outbox.finish(delivery, &self.owner, &tried).await
    }

    /// One try of `delivery`, signed and timed by `endpoint`.
    async fn try_once(&self, endpoint: &Endpoint, delivery: &Delivery) -> Tried {
        let error = match self.post(delivery, endpoint).await {
            Ok(status) if status.is_success() => return Tried::Delivered,
            Ok(status) => format!("answered {status}"),
            Err(error) => error,
        };
        let after = endpoint.backoff(delivery.tries, &mut rand::rng());
        let now_ms = millis(SystemTime::now());
        let ends_ms =
            delivery.started_ms.saturating_add(u64::try_from(endpoint.retry_for.as_millis()).unwrap_or(u64::MAX));
        if now_ms.saturating_add(u64::try_from(after.as_millis()).unwrap_or(u64::MAX)) > ends_ms {
            return Tried::Dead { error };
        }
        Tried::Retry { after, error }
    }

    /// Posts `delivery` signed now; its status, or why there is none.
    async fn post(&self, delivery: &Delivery, endpoint: &Endpoint) -> Result<http::StatusCode, String> {
        let timestamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
        let signature = signature(&endpoint.secrets, &delivery.id, timestamp, delivery.body.as_bytes());
        let request = http::Request::post(&delivery.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, concat!("gcm-worker/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", &delivery.id)
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", signature)
            .body(http_body_util::Full::new(Bytes::from(delivery.body.clone())))
            .map_err(|error| format!("not a URL to post to: {error}"))?;
        match tokio::time::timeout(endpoint.timeout, self.http.request(request)).await {
            // The body is not read: the status says it all (the connection is not reused).
            Ok(Ok(response)) => Ok(response.status()),
            Ok(Err(error)) => Err(format!("{error}")),
            Err(_) => Err(format!("no answer within {:?}", endpoint.timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_specifications_own_example() {
        // The example of the Standard Webhooks specification and of its libraries' tests.
        let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signed = signature(std::slice::from_ref(&secret), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let other: Secret = format!("whsec_{}", BASE64.encode([7u8; 32])).parse().unwrap();
        let rotated = signature(&[other, secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
        assert!(rotated.ends_with(" v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="), "{rotated}");
        assert_eq!(format!("{:?}", Secret(vec![1; 24])), "whsec_…");
    }

    #[test]
    fn a_delivery_is_its_settlements_records_exactly() {
        use crate::fate::Record;
        let record = |recipient: &str, fate: Final| Record {
            job_id: "j1".into(),
            attempt: 0,
            recipient: recipient.into(),
            correlation_id: Some("sale".into()),
            campaign_id: None,
            project: Some("shop".into()),
            fate,
        };
        let mut settlement = Settlement {
            job_id: "j1".into(),
            attempt: 0,
            records: vec![
                record("t1", Final::Delivered { message_id: "m1".into(), canonical: None }),
                record("t2", Final::NotRegistered),
            ],
            retry: None,
            audience: Some("users".into()),
            webhook: None,
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_936_000_123);
        assert!(delivery_of(&settlement, at).is_none(), "no webhook, no delivery");
        settlement.webhook = Some("https://h.shop/p".into());
        let delivery = delivery_of(&settlement, at).unwrap();
        assert_eq!(
            (delivery.id.as_str(), delivery.attempt, delivery.project.as_deref()),
            ("msg_j1_1", 1, Some("shop"))
        );
        assert_eq!(
            delivery.body,
            r#"{"type":"job.settled","timestamp":"2025-12-05T12:00:00.123Z","data":{"job_id":"j1","attempt":1,"#
                .to_owned()
                + r#""project":"shop","correlation_id":"sale","records":[{"recipient":"t1","fate":"delivered","#
                + r#""message_id":"m1"},{"recipient":"t2","fate":"not_registered"}],"pending":0,"audience":"users","#
                + r#""audience_changes":[{"token":"t2","change":"removed"}]}}"#
        );
        settlement.records = Vec::new();
        assert!(delivery_of(&settlement, at).is_none(), "nothing settled, nothing posted");
    }

    #[test]
    fn a_secret_is_whsec_and_base64_of_24_to_64_bytes() {
        for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!", "whsec_AAAA"] {
            assert!(bad.parse::<Secret>().is_err(), "{bad}");
        }
        let error = "whsec_AAAA".parse::<Secret>().unwrap_err().to_string();
        assert!(!error.contains("AAAA"), "{error}");
    }

    #[test]
    fn the_backoff_doubles_up_to_an_hour() {
        let endpoint = Endpoint::new(Vec::new());
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
        let waits: Vec<_> =
            [1, 2, 3, 30].iter().map(|&tries| endpoint.backoff(tries, &mut rng).as_secs_f64()).collect();
        for (wait, nominal) in waits.iter().zip([5.0, 10.0, 20.0, 3600.0]) {
            assert!((nominal * 0.8..nominal * 1.2).contains(wait), "{waits:?}");
        }
    }
}
