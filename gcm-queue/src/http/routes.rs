//! The routes' handlers and what they answer.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};

use super::enqueue::{self, EnqueueRequest};
use super::{Caller, Shared};
use crate::error::Error;
use crate::fate::{Final, JobStatus, Summary};
use crate::queue::Queue;
use crate::store::{ResultReader, ResultStore as _};

/// An error answer: what is wrong and, for a request body, where.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// What is wrong.
    pub error: String,
    /// The JSON path of the first problem in the request body, e.g. `$.tokens[3]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

pub(super) fn problem(status: StatusCode, error: impl std::fmt::Display) -> Response {
    ApiError::new(status, error).into_response()
}

/// A refused request: its status and its [`Problem`].
#[derive(Debug)]
pub(super) struct ApiError(pub(super) StatusCode, pub(super) Problem);

impl ApiError {
    pub(super) fn new(status: StatusCode, error: impl std::fmt::Display) -> Self {
        Self(status, Problem { error: error.to_string(), path: None })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

/// The answer to `POST /jobs` (202 Accepted).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Accepted {
    /// The jobs, in the order of the tokens they send (`per_job` tokens each).
    pub job_ids: Vec<String>,
    /// The campaign the jobs form, when there are several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// Tokens enqueued.
    pub recipients: u64,
}

/// A record as the API and `gcm-worker results` show it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResultRecord {
    /// Where this record is in the results: pass the last one as `since` to read on.
    pub cursor: u64,
    /// The job.
    pub job_id: String,
    /// The attempt that settled it, from 1 (the job's summary counts `attempts` the same way).
    pub attempt: u64,
    /// The token (or topic, or condition).
    pub recipient: String,
    /// The job's correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The job's campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// The job's project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// What happened to it.
    #[serde(flatten)]
    pub fate: Final,
}

impl ResultRecord {
    /// The API's view of `record`, found at `cursor`.
    pub fn new(cursor: u64, record: crate::Record) -> Self {
        let crate::Record { job_id, attempt, recipient, correlation_id, campaign_id, project, fate } = record;
        let attempt = u64::from(attempt) + 1;
        Self { cursor, job_id, attempt, recipient, correlation_id, campaign_id, project, fate }
    }
}

/// The answer to `GET /results`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResultsPage {
    /// The records after `since` that match the filters, at most `limit`.
    pub records: Vec<ResultRecord>,
    /// The cursor to pass as `since` next: past every record this page looked at, so a
    /// filtered read moves on even when nothing matched.
    pub next: u64,
}

/// `GET /results`'s query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// Records after this cursor (default 0: from the first).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_f64)]
    pub since: Option<u64>,
    /// At most this many records, 1 to 10 000 (default 1000).
    #[param(minimum = 1, maximum = 10_000)]
    pub limit: Option<u64>,
    /// Only this job's records.
    pub job: Option<String>,
    /// Only this campaign's records.
    pub campaign: Option<String>,
    /// Only records with this correlation id.
    pub correlation_id: Option<String>,
}

/// The most records one `GET /results` reads through when filtering.
const MOST_SCANNED: usize = 100_000;

/// The answer of `/readyz`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ready {
    /// The queue's backend: `sqlite`, `postgres` or `redis`.
    pub backend: String,
}

pub(super) fn queue(shared: &Shared) -> Result<&Arc<Queue>, ApiError> {
    shared.api.queue.as_ref().ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "this server has no queue"))
}

/// Reads a body within the memory budget and the body limit.
pub(super) async fn read_body(shared: &Shared, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    let max = shared.api.limits.max_body;
    let too_large = || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over {max} bytes"));
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|len| len.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(too_large());
    }
    let expected = declared.unwrap_or(max);
    let permits = u32::try_from(expected.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let _budget = shared
        .bodies
        .acquire_many(permits)
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0));
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, format!("cannot read the body: {error}")))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > expected.min(max) {
                return Err(too_large());
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

pub(super) fn is_json(headers: &HeaderMap) -> bool {
    let Some(kind) = headers.get(header::CONTENT_TYPE).and_then(|kind| kind.to_str().ok()) else { return false };
    let essence = kind.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Enqueue a multicast: its tokens are cut into jobs of `per_job` tokens (one campaign).
#[utoipa::path(post, path = "/jobs", request_body = EnqueueRequest, params(
    ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Makes a repeated request (same key, same body, within 24 h) answer as the first did, enqueueing nothing new"),
), responses(
    (status = 202, description = "Enqueued", body = Accepted),
    (status = 400, description = "Not a valid request: the path of the first problem", body = Problem),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `send` scope", body = Problem),
    (status = 404, description = "The audience holds no token to send to", body = Problem),
    (status = 408, description = "The request took too long", body = Problem),
    (status = 413, description = "The body is too large", body = Problem),
    (status = 409, description = "The Idempotency-Key's first request was cut into jobs differently", body = Problem),
    (status = 415, description = "Not `application/json`", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 422, description = "The Idempotency-Key came with another body", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn enqueue_jobs(
    State(shared): State<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let queue = queue(&shared)?.clone();
    if !is_json(&headers) {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the body must be application/json"));
    }
    let idempotency_key = idempotency_key(&headers)?;
    let body = read_body(&shared, &headers, body).await?;
    let digest = hex(ring::digest::digest(&ring::digest::SHA256, &body).as_ref());
    let bad_request = |invalid: enqueue::Invalid| {
        ApiError(StatusCode::BAD_REQUEST, Problem { error: invalid.error, path: Some(invalid.path) })
    };
    let mut request = enqueue::parse(&body).map_err(bad_request)?;
    drop(body);
    let mut limits = shared.api.limits.tokens;
    let audience = request.audience.take();
    if let Some(name) = &audience {
        if !request.tokens.is_empty() {
            return Err(bad_request(enqueue::Invalid::at(
                "$.tokens",
                "a request names tokens or an audience, not both",
            )));
        }
        if !crate::audience::is_valid_name(name) {
            let error = "an audience's name is 1 to 64 letters, digits, '-', '_' or '.'";
            return Err(bad_request(enqueue::Invalid::at("$.audience", error)));
        }
        use crate::audience::Audiences as _;
        let failed = |error: Error| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error);
        request.tokens = queue.audience_recipients(name).await.map_err(failed)?;
        if request.tokens.is_empty() {
            return Err(ApiError::new(StatusCode::NOT_FOUND, format!("audience {name:?} holds no token to send to")));
        }
        // An audience is as large as it grew; the jobs are still of `per_job` tokens.
        limits.per_request = usize::MAX;
    }
    let (mut jobs, send_at) = request.into_jobs(limits, &shared.api.projects).map_err(bad_request)?;
    for job in &mut jobs {
        job.audience.clone_from(&audience);
    }
    let mut answer = Accepted {
        job_ids: jobs.iter().map(|job| job.id.clone()).collect(),
        campaign_id: jobs.first().and_then(|job| job.campaign_id.clone()),
        recipients: jobs.iter().map(|job| job.payload.len() as u64).sum(),
    };
    let mut replayed = false;
    if let Some(key) = idempotency_key {
        let failed = |error: Error| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error);
        // Keys of different callers never meet.
        let key = format!("{}:{key}", caller.0.unwrap_or_default());
        let remembered = serde_json::json!({ "request": digest, "answer": answer }).to_string();
        let kept = queue.remember(&key, &remembered).await.map_err(failed)?;
        let kept: Remembered = serde_json::from_str(&kept).map_err(|error| failed(Error::Store(Box::new(error))))?;
        if kept.request != digest {
            let error = "this Idempotency-Key came with another request body";
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error));
        }
        if kept.answer != answer {
            // A repeat: the first request's jobs, enqueued again (a no-op for those that
            // were) in case the first request stopped half-way.
            if kept.answer.job_ids.len() != jobs.len() {
                let error = "this Idempotency-Key's first request was cut into jobs differently";
                return Err(ApiError::new(StatusCode::CONFLICT, error));
            }
            for (job, id) in jobs.iter_mut().zip(&kept.answer.job_ids) {
                job.id.clone_from(id);
                job.campaign_id.clone_from(&kept.answer.campaign_id);
            }
            answer = kept.answer;
            replayed = true;
        }
    }
    for (index, job) in jobs.iter().enumerate() {
        if let Err(error) = queue.enqueue_at(job, send_at).await {
            tracing::warn!(%error, job = %job.id, "cannot enqueue");
            let enqueued = answer.job_ids.get(..index).unwrap_or_default().join(", ");
            let error =
                format!("the queue failed after {index} of {} jobs (enqueued: [{enqueued}]): {error}", jobs.len());
            return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error));
        }
        shared.api.metrics.enqueued.inc();
        let (campaign, correlation) = (job.campaign_id.as_deref(), job.correlation_id.as_deref());
        tracing::info!(job = %job.id, campaign, correlation, recipients = job.payload.len(), "enqueued");
    }
    let mut response = (StatusCode::ACCEPTED, Json(answer)).into_response();
    if replayed {
        response.headers_mut().insert("idempotent-replayed", http::HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// What an `Idempotency-Key` keeps: the digest of its request body and the first answer.
#[derive(Deserialize)]
struct Remembered {
    request: String,
    answer: Accepted,
}

/// The `Idempotency-Key` header, if any: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key =
        value.to_str().ok().filter(|key| (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()));
    let key = key
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "Idempotency-Key: 1 to 255 visible ASCII characters"))?;
    Ok(Some(key.to_owned()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A job id as this crate makes them (a ULID) or a caller's: letters, digits, `-` and `_`.
/// A query string read as `Q`: 400 with the reason when it is not one.
pub(super) fn query_of<Q: serde::de::DeserializeOwned>(query: Option<&str>) -> Result<Q, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, format!("bad query: {error}")))
}

/// A page's size: 1 to 10 000, 1000 without one.
pub(super) fn limit_of(limit: Option<u64>) -> Result<usize, ApiError> {
    match limit.unwrap_or(1000) {
        limit @ 1..=10_000 => Ok(limit as usize),
        other => Err(ApiError::new(StatusCode::BAD_REQUEST, format!("limit {other}: from 1 to 10000"))),
    }
}

/// A feed's cursor: 0 without one, at most what the stores' columns hold (`i64::MAX`).
pub(super) fn cursor_of(since: Option<u64>) -> Result<u64, ApiError> {
    let since = since.unwrap_or(0);
    match i64::try_from(since) {
        Ok(_) => Ok(since),
        Err(_) => Err(ApiError::new(StatusCode::BAD_REQUEST, format!("since {since}: at most {}", i64::MAX))),
    }
}

pub(super) fn is_job_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Where a job stands.
#[utoipa::path(get, path = "/jobs/{id}", params(("id" = String, Path, description = "The job's id")), responses(
    (status = 200, description = "The job's summary", body = Summary),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `read` scope", body = Problem),
    (status = 404, description = "No such job", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn job_summary(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Summary>, ApiError> {
    known_job(queue(&shared)?, &id).await.map(Json)
}

fn no_such_job() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such job")
}

/// 503: the queue's backend failed.
pub(super) fn backend_failed(error: Error) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error)
}

/// The summary of job `id`: 404 for an id that is not one, or a job the queue does not know.
pub(super) async fn known_job(queue: &Queue, id: &str) -> Result<Summary, ApiError> {
    if !is_job_id(id) {
        return Err(no_such_job());
    }
    queue.summary(id).await.map_err(backend_failed)?.ok_or_else(no_such_job)
}

/// Cancel a job: what it has not sent is recorded `cancelled` (an attempt being sent
/// finishes first).
#[utoipa::path(delete, path = "/jobs/{id}", params(("id" = String, Path, description = "The job's id")), responses(
    (status = 200, description = "Cancelled: the job's summary", body = Summary),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `send` scope", body = Problem),
    (status = 404, description = "No such job", body = Problem),
    (status = 409, description = "The job is finished: nothing to cancel", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn cancel_job(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Summary>, ApiError> {
    let summary = cancel_known(queue(&shared)?, &id).await?;
    tracing::info!(job = %id, pending = summary.pending, cancelled = summary.cancelled, "job cancelled");
    Ok(Json(summary))
}

/// Cancels job `id`: 404 for a job the queue does not know, 409 for a finished one.
pub(super) async fn cancel_known(queue: &Queue, id: &str) -> Result<Summary, ApiError> {
    let summary = known_job(queue, id).await?;
    if matches!(summary.status, JobStatus::Done | JobStatus::GivenUp) {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("the job is {}: nothing to cancel", summary.status)));
    }
    queue.cancel(id).await.map_err(backend_failed)?.ok_or_else(no_such_job)
}

/// The recorded fates after a cursor, in the order they were recorded.
#[utoipa::path(get, path = "/results", params(ResultsQuery), responses(
    (status = 200, description = "A page of records", body = ResultsPage),
    (status = 400, description = "A query that is not one", body = Problem),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `read` scope", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn results(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Json<ResultsPage>, ApiError> {
    let queue = queue(&shared)?;
    let query: ResultsQuery = query_of(query.as_deref())?;
    let (since, limit) = (cursor_of(query.since)?, limit_of(query.limit)?);
    let filtered = query.job.is_some() || query.campaign.is_some() || query.correlation_id.is_some();
    let matches = |record: &crate::Record| {
        query.job.as_ref().is_none_or(|job| *job == record.job_id)
            && query.campaign.as_ref().is_none_or(|campaign| Some(campaign) == record.campaign_id.as_ref())
            && query.correlation_id.as_ref().is_none_or(|id| Some(id) == record.correlation_id.as_ref())
    };
    let (mut records, mut next, mut scanned) = (Vec::new(), since, 0);
    loop {
        let batch = if filtered { 1000 } else { limit - records.len() };
        let page =
            queue.since(next, batch).await.map_err(|error| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error))?;
        let ended = page.len() < batch;
        for (cursor, record) in page {
            next = cursor;
            scanned += 1;
            if matches(&record) {
                records.push(ResultRecord::new(cursor, record));
                if records.len() == limit {
                    break;
                }
            }
        }
        if ended || records.len() == limit || scanned >= MOST_SCANNED {
            break;
        }
    }
    Ok(Json(ResultsPage { records, next }))
}

/// The process's counters, and (on `serve`) the queue's gauges read from its backend:
/// jobs by state, the oldest due job's lag, recipients pending.
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text"),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `metrics` scope", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
))]
pub(super) async fn metrics(State(shared): State<Shared>) -> Response {
    let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    let Some(queue) = &shared.api.queue else {
        return ([(header::CONTENT_TYPE, kind)], shared.api.metrics.encode()).into_response();
    };
    match tokio::time::timeout(Duration::from_secs(5), queue.stats()).await {
        Ok(Ok(stats)) => shared.gauges.set(&stats),
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot read the queue's gauges");
            shared.gauges.read_failed.set(1);
        }
        Err(_) => {
            tracing::warn!("the queue's gauges took over 5 s to read");
            shared.gauges.read_failed.set(1);
        }
    }
    ([(header::CONTENT_TYPE, kind)], shared.api.metrics.encode_with(Some(&shared.gauges))).into_response()
}

/// Ready once the queue's backend answers a read (its tables were set up at start).
#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, description = "The backend answers", body = Ready),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The backend fails", body = Problem),
))]
pub(super) async fn readyz(State(shared): State<Shared>) -> Response {
    let Some(queue) = &shared.api.queue else {
        return Json(Ready { backend: "none".to_owned() }).into_response();
    };
    // A read past the last record: an index lookup on every backend.
    match tokio::time::timeout(Duration::from_secs(5), queue.since(u64::MAX / 2, 1)).await {
        Ok(Ok(_)) => Json(Ready { backend: queue.backend_name().to_owned() }).into_response(),
        Ok(Err(error)) => problem(StatusCode::SERVICE_UNAVAILABLE, error),
        Err(_) => problem(StatusCode::SERVICE_UNAVAILABLE, "the backend did not answer within 5 s"),
    }
}

/// Up: the process answers. No key needed.
#[utoipa::path(get, path = "/healthz", security(()), responses((status = 200, description = "Up", body = String, content_type = "text/plain")))]
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}
