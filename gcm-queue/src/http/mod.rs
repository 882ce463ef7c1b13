//! The HTTP API of `gcm-worker serve` (and `/metrics` of `gcm-worker run`), on axum.
//!
//! | request | scope | answer |
//! |---|---|---|
//! | `POST /jobs` with an [`EnqueueRequest`] | `send` | `202` [`Accepted`]: the jobs, one campaign |
//! | `GET /jobs/<id>` | `read` | `200` the job's [`Summary`](crate::Summary), `404` for an unknown job |
//! | `DELETE /jobs/<id>` | `send` | `200` the cancelled job's [`Summary`](crate::Summary); `409` when it is finished |
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

mod audiences;
pub mod auth;
mod campaigns;
pub mod enqueue;
mod openapi;
mod routes;
mod ui;
mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

pub use self::audiences::{AudienceCount, AudiencePage, AudienceTokens, ChangesPage, ChangesQuery, PageQuery};
pub use self::auth::{AllowedHosts, ApiKeys, Scope};
pub use self::campaigns::{CampaignTotals, CampaignsPage, CampaignsQuery};
pub use self::enqueue::{EnqueueRequest, Invalid, Kind, MAX_WEBHOOK_URL_LEN, Projects, TokenLimits, WebhookRoute};
pub use self::openapi::document as openapi_document;
use self::openapi::openapi;
pub use self::routes::{Accepted, Problem, Ready, ResultRecord, ResultsPage, ResultsQuery};
use self::routes::{cancel_job, enqueue_jobs, healthz, job_summary, metrics, problem, readyz, results};
pub use self::webhooks::{DeliveriesPage, DeliveriesQuery, Replayed};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::queue::Queue;

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
    /// `/metrics` without a key (`--public-metrics`).
    pub public_metrics: bool,
    /// The `Host` values answered.
    pub hosts: AllowedHosts,
    /// The bounds of requests and connections.
    pub limits: Limits,
    /// The projects a request may name (none: the workers' own credentials send).
    pub projects: Projects,
    /// What signs the dashboard's sessions: the same for every replica behind one address
    /// (`--session-secret-file`); `None`, a key drawn at start (a restart logs out).
    pub session_secret: Option<SessionSecret>,
}

/// A secret the dashboard's sessions are signed with, shared by replicas. Kept out of
/// `Debug`.
#[derive(Clone)]
pub struct SessionSecret(Arc<[u8]>);

impl SessionSecret {
    /// The secret in `text` (surrounding whitespace ignored): at least 32 characters.
    pub fn new(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() < 32 {
            return Err(format!("a session secret has at least 32 characters, not {}", text.len()));
        }
        Ok(Self(text.as_bytes().into()))
    }
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSecret(…)")
    }
}

impl Api {
    /// An API over `queue` that answers loopback hosts and accepts no key yet.
    pub fn new(queue: Option<Arc<Queue>>, metrics: Arc<Metrics>) -> Self {
        Self {
            queue,
            metrics,
            keys: Arc::new(ApiKeys::default()),
            open: false,
            public_metrics: false,
            hosts: AllowedHosts::loopback_and([]),
            limits: Limits::default(),
            projects: Projects::default(),
            session_secret: None,
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
    /// Signs the dashboard's sessions and CSRF tokens.
    signer: Arc<ui::Signer>,
}

/// The API's routes, with its guards and bounds (but the connection's, which [`serve`]
/// sets).
pub fn router(api: Api) -> Router {
    use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
    use tower_http::trace::{DefaultOnResponse, TraceLayer};
    let permits = (api.limits.body_memory / 1024).clamp(1, Semaphore::MAX_PERMITS);
    let timeout = api.limits.request_timeout;
    let signer = Arc::new(api.session_secret.as_ref().map_or_else(ui::Signer::new, ui::Signer::shared));
    let shared = Shared { bodies: Arc::new(Semaphore::new(permits)), api, gauges: Arc::default(), signer };
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
        .route("/campaigns", get(campaigns::campaigns))
        .route("/campaigns/{id}", get(campaigns::campaign).delete(campaigns::cancel_campaign))
        .route("/campaigns/{id}/requeue", axum::routing::post(campaigns::requeue_campaign))
        .route(
            "/audiences/{name}",
            get(audiences::audience_tokens).put(audiences::put_audience).delete(audiences::delete_audience),
        )
        .route("/audiences/{name}/tokens", axum::routing::post(audiences::add_tokens))
        .route("/audiences/{name}/changes", get(audiences::audience_changes))
        .route("/webhooks", get(webhooks::deliveries))
        .route("/webhooks/replay", axum::routing::post(webhooks::replay))
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .merge(ui::routes())
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
    if request.uri().path() == "/ui" || request.uri().path().starts_with("/ui/") {
        // The dashboard checks its session cookie itself.
        return next.run(request).await;
    }
    let scope = match (request.method(), request.uri().path()) {
        (&Method::POST | &Method::PUT | &Method::DELETE, _) => Some(Scope::Send),
        (_, "/metrics") => Some(Scope::Metrics),
        (_, "/readyz" | "/openapi.json") => None,
        _ => Some(Scope::Read),
    };
    let authorization = request.headers().get(header::AUTHORIZATION).map(http::HeaderValue::as_bytes);
    let open = api.open || (api.public_metrics && request.uri().path() == "/metrics");
    match auth::authorize(&api.keys, open, authorization, scope) {
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
