//! The HTTP API of `gcm-worker serve` (and `/metrics` of `gcm-worker run`): enqueue from
//! any language, read a job's status and the results, scrape the counters.
//!
//! | request | answer |
//! |---|---|
//! | `POST /jobs` with an [`EnqueueRequest`] | `202 {"job_id": "…"}` |
//! | `GET /jobs/<id>` | `200` and the job's [`Summary`](crate::Summary) |
//! | `GET /results?since=<cursor>&limit=<n>` | `200 {"records": [{"cursor": …, …}], "next": <cursor>}` |
//! | `GET /metrics` | the process's counters, Prometheus text |

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use gcm_proto::v1;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::error::Error;
use crate::job::{Job, Payload};
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::store::ResultReader;

/// The largest request body `POST /jobs` reads: 100 000 tokens of 160 bytes fit.
pub const MAX_BODY: usize = 32 << 20;

/// Which protocol a multicast is sent with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// FCM HTTP v1 (`message` is a v1 content: `data`, `notification`, `android`…).
    #[default]
    V1,
    /// The legacy protocol (`message` has `data`, `notification`, `options`).
    Legacy,
}

/// A multicast to enqueue: the body of `POST /jobs`, and what `gcm-worker enqueue` reads.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    /// The protocol (default `v1`).
    #[serde(default)]
    pub kind: Kind,
    /// What every token receives.
    #[serde(default)]
    pub message: serde_json::Value,
    /// The tokens.
    pub tokens: Vec<String>,
    /// Copied into every result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// The legacy payload fields a template may carry (the tokens come separately).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyTemplate {
    #[serde(default)]
    data: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    notification: Option<gcm_proto::Notification>,
    #[serde(default)]
    options: gcm_proto::Options,
}

impl EnqueueRequest {
    /// The job this request asks for, or why it cannot be one.
    pub fn into_job(self) -> Result<Job, String> {
        if self.tokens.is_empty() {
            return Err("no tokens".to_owned());
        }
        let message = match self.message {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            other => other,
        };
        let payload = match self.kind {
            Kind::V1 => {
                let content: v1::Content =
                    serde_json::from_value(message).map_err(|error| format!("invalid v1 message: {error}"))?;
                Payload::V1Multicast { multicast: v1::Multicast::with_content(content, self.tokens) }
            }
            Kind::Legacy => {
                if self.tokens.len() > gcm_proto::MAX_REGISTRATION_IDS {
                    let limit = gcm_proto::MAX_REGISTRATION_IDS;
                    return Err(format!("a legacy multicast has at most {limit} tokens, not {}", self.tokens.len()));
                }
                let template: LegacyTemplate =
                    serde_json::from_value(message).map_err(|error| format!("invalid legacy message: {error}"))?;
                let mut message = gcm_proto::Message::multicast(self.tokens);
                message.data = template.data;
                message.notification = template.notification;
                message.options = template.options;
                Payload::Legacy { message }
            }
        };
        let job = Job::new(payload);
        Ok(match self.correlation_id {
            Some(id) => job.correlation_id(id),
            None => job,
        })
    }
}

/// What the API serves from.
#[derive(Clone, Debug)]
pub struct Api {
    /// Where jobs go and results come from; `None` serves `/metrics` only.
    pub queue: Option<Arc<Queue>>,
    /// The counters `/metrics` shows.
    pub metrics: Arc<Metrics>,
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, api: Api, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted.map_err(|error| Error::Queue(Box::new(error)))?,
            () = &mut shutdown => return Ok(()),
        };
        let api = api.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let api = api.clone();
                async move { Ok::<_, Infallible>(api.answer(request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "API connection ended");
            }
        });
    }
}

/// A record as the API and `gcm-worker results` show it: its fields and its `cursor`.
pub fn with_cursor(cursor: u64, record: crate::Record) -> serde_json::Value {
    let mut value = serde_json::to_value(record).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("cursor".to_owned(), cursor.into());
    }
    value
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

fn problem(status: StatusCode, error: impl std::fmt::Display) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": error.to_string() }))
}

#[derive(Serialize)]
struct Page {
    records: Vec<serde_json::Value>,
    next: u64,
}

impl Api {
    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        if request.method() == Method::GET && path == "/metrics" {
            let mut response = Response::new(Full::new(Bytes::from(self.metrics.encode())));
            let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
            response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
            return response;
        }
        let Some(queue) = &self.queue else { return problem(StatusCode::NOT_FOUND, "not found") };
        match (request.method().clone(), path.as_str(), path.strip_prefix("/jobs/")) {
            (Method::POST, "/jobs", _) => self.enqueue(queue, request).await,
            (Method::GET, "/results", _) => {
                let query = request.uri().query().unwrap_or("");
                let (mut since, mut limit) = (0u64, 1000usize);
                for (key, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
                    match (key, value.parse::<u64>()) {
                        ("since", Ok(value)) => since = value,
                        ("limit", Ok(value)) => limit = usize::try_from(value).unwrap_or(usize::MAX).clamp(1, 10_000),
                        ("since" | "limit", Err(_)) => {
                            return problem(StatusCode::BAD_REQUEST, format!("bad query {query:?}"));
                        }
                        _ => {}
                    }
                }
                match queue.since(since, limit).await {
                    Ok(page) => {
                        let next = page.last().map_or(since, |(cursor, _)| *cursor);
                        let records = page.into_iter().map(|(cursor, record)| with_cursor(cursor, record)).collect();
                        json(StatusCode::OK, &Page { records, next })
                    }
                    Err(error) => problem(StatusCode::SERVICE_UNAVAILABLE, error),
                }
            }
            (Method::GET, _, Some(job_id)) => match queue.summary(job_id).await {
                Ok(summary) => json(StatusCode::OK, &summary),
                Err(error) => problem(StatusCode::SERVICE_UNAVAILABLE, error),
            },
            _ => problem(StatusCode::NOT_FOUND, "not found"),
        }
    }

    async fn enqueue(&self, queue: &Queue, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(error) => return problem(StatusCode::PAYLOAD_TOO_LARGE, error),
        };
        let job = match serde_json::from_slice::<EnqueueRequest>(&body)
            .map_err(|e| e.to_string())
            .and_then(EnqueueRequest::into_job)
        {
            Ok(job) => job,
            Err(error) => return problem(StatusCode::BAD_REQUEST, error),
        };
        match queue.enqueue(&job).await {
            Ok(()) => {
                self.metrics.enqueued.inc();
                json(StatusCode::ACCEPTED, &serde_json::json!({ "job_id": job.id }))
            }
            Err(error) => problem(StatusCode::SERVICE_UNAVAILABLE, error),
        }
    }
}
