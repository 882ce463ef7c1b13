//! `/webhooks`: the deliveries of the jobs' settlements to their webhooks (see
//! [`crate::webhook`]). `GET` reads them from a cursor with where each stands;
//! `POST /webhooks/replay` sends them again from one.

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::{Deserialize, Serialize};

use super::Shared;
use super::routes::{ApiError, Problem, backend_failed, cursor_of, limit_of, query_of, queue};
use crate::webhook::{Delivery, WebhookOutbox as _};

/// A page of deliveries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveriesPage {
    /// The deliveries after `since`, in the order they were written.
    pub deliveries: Vec<Delivery>,
    /// The cursor to pass as `since` next.
    pub next: u64,
}

/// How many deliveries a replay made pending again.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Replayed {
    /// Deliveries that were delivered or dead, now pending.
    pub replayed: u64,
}

/// The query of `GET /webhooks` and `POST /webhooks/replay`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Deliveries after this cursor (default 0: from the first).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_f64)]
    pub since: Option<u64>,
    /// At most this many, 1 to 10 000 (default 1000; `GET` only).
    #[param(minimum = 1, maximum = 10_000)]
    pub limit: Option<u64>,
}

/// The query's cursor and page size.
fn bounds(query: Option<&str>) -> Result<(u64, usize), ApiError> {
    let query: DeliveriesQuery = query_of(query)?;
    Ok((cursor_of(query.since)?, limit_of(query.limit)?))
}

/// The webhook deliveries, in the order their settlements wrote them, with where each stands.
#[utoipa::path(get, path = "/webhooks", params(DeliveriesQuery), responses(
    (status = 200, description = "A page of deliveries", body = DeliveriesPage),
    (status = 400, description = "Not a valid query", body = Problem),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `read` scope", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn deliveries(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveriesPage>, ApiError> {
    let (since, limit) = bounds(query.as_deref())?;
    let deliveries = queue(&shared)?.deliveries(since, limit).await.map_err(backend_failed)?;
    let next = deliveries.last().map_or(since, |last| last.cursor);
    Ok(Json(DeliveriesPage { deliveries, next }))
}

/// Sends every delivery after `since` again, with the same `webhook-id`s and a new retry
/// period (a receiver that kept the ids skips what it has).
#[utoipa::path(post, path = "/webhooks/replay", params(DeliveriesQuery), responses(
    (status = 200, description = "How many deliveries are pending again", body = Replayed),
    (status = 400, description = "Not a valid query", body = Problem),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `send` scope", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn replay(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Json<Replayed>, ApiError> {
    let (since, _) = bounds(query.as_deref())?;
    let replayed = queue(&shared)?.replay(since).await.map_err(backend_failed)?;
    tracing::info!(since, replayed, "webhook deliveries replayed");
    Ok(Json(Replayed { replayed }))
}
