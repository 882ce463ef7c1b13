//! The HTTP API of `gcm-worker serve` (and `/metrics` of `gcm-worker run`), on axum.
//!
//! | request | scope | answer |
//! |---|---|---|
//! | `POST /jobs` with an [`EnqueueRequest`] | `send` | `202` [`Enqueued`]: the jobs, one campaign |
//! | `GET /jobs/<id>` | `read` | `200` the job's [`Summary`], `404` for an unknown job |
//! | `DELETE /jobs/<id>` | `send` | `200` the cancelled job's [`Summary`]; `409` when it is finished |
//! | `GET /results?since&limit&job&campaign&correlation_id` | `read` | `200` a [`ResultsPage`] |
//! | `GET /metrics` | `metrics` | the counters, Prometheus text |
//! | `GET /readyz` | any | `200` once the backend answers, else `503` |
//! | `GET /openapi.json` | any | the OpenAPI 3.1 document of these routes |
//! | `GET /healthz` | none | `200`: the process is up |
//!
//! Every connection, request and body is bounded ([`Limits`]): a connection cap, a timeout
//! for the request head and one for the whole request, a body limit, and a memory budget
//! shared by the bodies being read. Every other route needs an API key (see [`auth`]) and
//! a `Host` the server answers to.

pub mod auth;
pub mod enqueue;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;
use utoipa::OpenApi as _;

pub use self::auth::{AllowedHosts, ApiKeys, Scope};
pub use self::enqueue::{EnqueueRequest, Invalid, Kind, TokenLimits};
use crate::error::Error;
use crate::fate::{Final, JobStatus, Summary};
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::store::{ResultReader, ResultStore as _};

/// How much a client may ask of the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Tokens per request and per job.
    pub tokens: TokenLimits,
    /// The largest request body (default 24 MiB: 100 000 tokens of 160 bytes and a message).
    pub max_body: usize,
    /// The bytes all bodies being read may hold together (default 32 MiB); a request
    /// waits for its share, within its timeout.
    pub body_memory: usize,
    /// Connections open at once (default 1024); more wait in the listen backlog.
    pub max_connections: usize,
    /// Time to send a request's head (default 10 s).
    pub header_timeout: Duration,
    /// Time for a whole request, its body read and its answer (default 60 s): `408` after it.
    pub request_timeout: Duration,
    /// Time in-flight requests may take to finish on shutdown (default 10 s).
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tokens: TokenLimits::default(),
            max_body: 24 << 20,
            body_memory: 32 << 20,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            grace: Duration::from_secs(10),
        }
    }
}

/// What the API serves from, and who may call it.
#[derive(Clone, Debug)]
pub struct Api {
    /// Where jobs go and results come from; `None` serves `/metrics` and `/healthz` only.
    pub queue: Option<Arc<Queue>>,
    /// The counters `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// The keys a request may carry.
    pub keys: Arc<ApiKeys>,
    /// No authentication at all (`--no-auth`: for a loopback address only).
    pub open: bool,
    /// The `Host` values answered.
    pub hosts: AllowedHosts,
    /// The bounds of requests and connections.
    pub limits: Limits,
}

impl Api {
    /// An API over `queue` that answers loopback hosts and accepts no key yet.
    pub fn new(queue: Option<Arc<Queue>>, metrics: Arc<Metrics>) -> Self {
        Self {
            queue,
            metrics,
            keys: Arc::new(ApiKeys::default()),
            open: false,
            hosts: AllowedHosts::loopback_and([]),
            limits: Limits::default(),
        }
    }

    /// The same API, accepting `keys`.
    pub fn keys(mut self, keys: ApiKeys) -> Self {
        self.keys = Arc::new(keys);
        self
    }

    /// The same API without authentication.
    pub fn without_auth(mut self) -> Self {
        self.open = true;
        self
    }

    /// The same API, answering `hosts`.
    pub fn hosts(mut self, hosts: AllowedHosts) -> Self {
        self.hosts = hosts;
        self
    }

    /// The same API with these bounds.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

#[derive(Clone)]
struct Shared {
    api: Api,
    bodies: Arc<Semaphore>,
    gauges: Arc<crate::QueueGauges>,
}

/// An error answer: what is wrong and, for a request body, where.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// What is wrong.
    pub error: String,
    /// The JSON path of the first problem in the request body, e.g. `$.tokens[3]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

fn problem(status: StatusCode, error: impl std::fmt::Display) -> Response {
    ApiError::new(status, error).into_response()
}

/// A refused request: its status and its [`Problem`].
#[derive(Debug)]
struct ApiError(StatusCode, Problem);

impl ApiError {
    fn new(status: StatusCode, error: impl std::fmt::Display) -> Self {
        Self(status, Problem { error: error.to_string(), path: None })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

/// The answer to `POST /jobs`.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Enqueued {
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
    /// What happened to it.
    #[serde(flatten)]
    pub fate: Final,
}

impl ResultRecord {
    /// The API's view of `record`, found at `cursor`.
    pub fn new(cursor: u64, record: crate::Record) -> Self {
        let crate::Record { job_id, attempt, recipient, correlation_id, campaign_id, fate } = record;
        Self { cursor, job_id, attempt: u64::from(attempt) + 1, recipient, correlation_id, campaign_id, fate }
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

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "gcm-worker", description = "Durable FCM sending through a job queue: enqueue multicasts, read each token's fate."),
    paths(enqueue_jobs, job_summary, cancel_job, results, metrics, readyz, healthz, openapi),
    components(schemas(EnqueueRequest, Enqueued, Summary, ResultsPage, ResultRecord, Problem, Ready)),
    modifiers(&BearerKeys),
    security(("api_key" = []))
)]
struct ApiDoc;

struct BearerKeys;

impl utoipa::Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The OpenAPI 3.1 document of the API. The request body's schemas are written by hand
/// (`messages.schema.json`): `message` reads by `kind`, keeps the fields it does not name,
/// and refuses targets, which the derived schemas could not say.
pub fn openapi_document() -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let messages: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(include_str!("messages.schema.json")).unwrap_or_default();
    if let Some(schemas) = document.pointer_mut("/components/schemas").and_then(serde_json::Value::as_object_mut) {
        schemas.extend(messages);
    }
    document
}

/// The API's routes, with its guards and bounds (but the connection's, which [`serve`]
/// sets).
pub fn router(api: Api) -> Router {
    use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
    use tower_http::trace::{DefaultOnResponse, TraceLayer};
    let permits = (api.limits.body_memory / 1024).clamp(1, Semaphore::MAX_PERMITS);
    let timeout = api.limits.request_timeout;
    let shared = Shared { bodies: Arc::new(Semaphore::new(permits)), api, gauges: Arc::default() };
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            let id = request.headers().get("x-request-id").and_then(|id| id.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", id, method = %request.method(), path = request.uri().path())
        })
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO));
    Router::new()
        .route("/jobs", post(enqueue_jobs))
        .route("/jobs/{id}", get(job_summary).delete(cancel_job))
        .route("/results", get(results))
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "no such route") })
        .method_not_allowed_fallback(|| async { problem(StatusCode::METHOD_NOT_ALLOWED, "method not allowed") })
        .layer(axum::middleware::from_fn_with_state(shared.clone(), guard))
        .route("/healthz", get(healthz))
        .layer(axum::middleware::from_fn(move |request: Request, next: Next| async move {
            match tokio::time::timeout(timeout, next.run(request)).await {
                Ok(response) => response,
                Err(_) => problem(StatusCode::REQUEST_TIMEOUT, "the request took longer than its timeout"),
            }
        }))
        .layer(trace)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(UlidRequestId))
        .with_state(shared)
}

/// Request ids for requests that bring none: a ULID each.
#[derive(Clone, Copy, Debug)]
struct UlidRequestId;

impl tower_http::request_id::MakeRequestId for UlidRequestId {
    fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<tower_http::request_id::RequestId> {
        http::HeaderValue::from_str(&ulid::Ulid::generate().to_string())
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}

/// The name of the key a request came with (`None` without authentication).
#[derive(Clone, Debug)]
struct Caller(Option<String>);

/// The `Host` check and the key check of every route but `/healthz`.
async fn guard(State(shared): State<Shared>, mut request: Request, next: Next) -> Response {
    let api = &shared.api;
    let host = request.headers().get(header::HOST).and_then(|host| host.to_str().ok());
    let host = host.or_else(|| request.uri().authority().map(|authority| authority.as_str()));
    if !api.hosts.allows(host) {
        tracing::info!(host, "refused: a Host this server does not answer to");
        // 421 Misdirected Request: a name this server was not told it answers to.
        return problem(StatusCode::MISDIRECTED_REQUEST, "this server does not answer to that Host (see --allow-host)");
    }
    let scope = match (request.method(), request.uri().path()) {
        (&Method::POST, "/jobs") => Some(Scope::Send),
        (&Method::DELETE, _) => Some(Scope::Send),
        (_, "/metrics") => Some(Scope::Metrics),
        (_, "/readyz" | "/openapi.json") => None,
        _ => Some(Scope::Read),
    };
    let authorization = request.headers().get(header::AUTHORIZATION).map(http::HeaderValue::as_bytes);
    match auth::authorize(&api.keys, api.open, authorization, scope) {
        Ok(key) => {
            if let Some(key) = &key {
                tracing::debug!(%key, "authenticated");
            }
            request.extensions_mut().insert(Caller(key));
            next.run(request).await
        }
        Err(auth::Refusal::Unauthenticated(why)) => {
            tracing::info!(why, "refused: unauthenticated");
            let mut response = problem(StatusCode::UNAUTHORIZED, why);
            response.headers_mut().insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
            response
        }
        Err(auth::Refusal::Forbidden { key, scope }) => {
            tracing::info!(%key, ?scope, "refused: the key lacks the scope");
            problem(StatusCode::FORBIDDEN, format!("API key {key:?} has no {scope:?} scope").to_lowercase())
        }
    }
}

fn queue(shared: &Shared) -> Result<&Arc<Queue>, ApiError> {
    shared.api.queue.as_ref().ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "this server has no queue"))
}

/// Reads a body within the memory budget and the body limit.
async fn read_body(shared: &Shared, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
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

fn is_json(headers: &HeaderMap) -> bool {
    let Some(kind) = headers.get(header::CONTENT_TYPE).and_then(|kind| kind.to_str().ok()) else { return false };
    let essence = kind.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Enqueue a multicast: its tokens are cut into jobs of `per_job` tokens (one campaign).
#[utoipa::path(post, path = "/jobs", request_body = EnqueueRequest, params(
    ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Makes a repeated request (same key, same body, within 24 h) answer as the first did, enqueueing nothing new"),
), responses(
    (status = 202, description = "Enqueued", body = Enqueued),
    (status = 400, description = "Not a valid request: the path of the first problem", body = Problem),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `send` scope", body = Problem),
    (status = 408, description = "The request took too long", body = Problem),
    (status = 413, description = "The body is too large", body = Problem),
    (status = 409, description = "The Idempotency-Key's first request was cut into jobs differently", body = Problem),
    (status = 415, description = "Not `application/json`", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 422, description = "The Idempotency-Key came with another body", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
async fn enqueue_jobs(
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
    let parsed = enqueue::parse(&body).and_then(|request| request.into_jobs(shared.api.limits.tokens));
    drop(body);
    let (mut jobs, send_at) = parsed.map_err(|invalid| {
        ApiError(StatusCode::BAD_REQUEST, Problem { error: invalid.error, path: Some(invalid.path) })
    })?;
    let mut answer = Enqueued {
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
    answer: Enqueued,
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
fn is_job_id(id: &str) -> bool {
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
async fn job_summary(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Summary>, ApiError> {
    let queue = queue(&shared)?;
    let unknown = || ApiError::new(StatusCode::NOT_FOUND, "no such job");
    if !is_job_id(&id) {
        return Err(unknown());
    }
    let summary = queue.summary(&id).await.map_err(|error| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error))?;
    summary.map(Json).ok_or_else(unknown)
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
async fn cancel_job(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Summary>, ApiError> {
    let queue = queue(&shared)?;
    let unknown = || ApiError::new(StatusCode::NOT_FOUND, "no such job");
    let failed = |error: Error| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error);
    if !is_job_id(&id) {
        return Err(unknown());
    }
    let summary = queue.summary(&id).await.map_err(failed)?.ok_or_else(unknown)?;
    if matches!(summary.status, JobStatus::Done | JobStatus::GivenUp) {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("the job is {}: nothing to cancel", summary.status)));
    }
    let summary = queue.cancel(&id).await.map_err(failed)?.ok_or_else(unknown)?;
    tracing::info!(job = %id, pending = summary.pending, cancelled = summary.cancelled, "job cancelled");
    Ok(Json(summary))
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
async fn results(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Result<Json<ResultsPage>, ApiError> {
    let queue = queue(&shared)?;
    let query: ResultsQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, format!("bad query: {error}")))?;
    let limit = match query.limit.unwrap_or(1000) {
        limit @ 1..=10_000 => limit as usize,
        other => return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("limit {other}: from 1 to 10000"))),
    };
    let since = query.since.unwrap_or(0);
    if i64::try_from(since).is_err() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("since {since}: at most {}", i64::MAX)));
    }
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
async fn metrics(State(shared): State<Shared>) -> Response {
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
async fn readyz(State(shared): State<Shared>) -> Response {
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
async fn healthz() -> &'static str {
    "ok\n"
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses(
    (status = 200, description = "The OpenAPI 3.1 document", body = Object),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
))]
async fn openapi() -> Response {
    Json(openapi_document()).into_response()
}

/// Serves the API on `listener` until `shutdown` completes, then lets the requests in
/// flight finish for the limits' grace. A failed accept (out of file descriptors) is
/// logged and tried again, never the end of the server.
pub async fn serve(listener: TcpListener, api: Api, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let limits = api.limits;
    let app = router(api);
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(16 << 10);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.map_err(|error| Error::Queue(Box::new(error)))?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection; trying again");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo::<SocketAddr>(peer));
            app.clone().oneshot(request.map(Body::new))
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(grace_s = limits.grace.as_secs(), "requests still in flight when the grace period ended");
    }
    Ok(())
}
