//! `/campaigns`: the jobs one request was cut into, read and acted on together (what the
//! dashboard's campaign pages show). `GET /campaigns` lists the newest with their counts;
//! `GET /campaigns/<id>` adds each job's summary; `DELETE` cancels what was not sent;
//! `POST /campaigns/<id>/requeue` sends again what was given up or parked.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::Shared;
use super::routes::{ApiError, Problem, backend_failed, is_job_id, query_of, queue};
use crate::fate::Summary;
use crate::queue::{Campaign, Queue, Requeued};

/// A campaign as the list shows it: its counts, without each job's.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignTotals {
    /// The campaign's id.
    pub campaign_id: String,
    /// Its jobs.
    pub jobs: u64,
    /// Its jobs' counts added up (see `Campaign`).
    pub totals: Summary,
}

/// The newest campaigns.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignsPage {
    /// Newest first.
    pub campaigns: Vec<CampaignTotals>,
}

/// The query of `GET /campaigns`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CampaignsQuery {
    /// At most this many, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
}

fn no_such_campaign() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such campaign")
}

/// `id` if it can be a campaign's (a job id's characters), else 404.
fn campaign_id(id: &str) -> Result<&str, ApiError> {
    if is_job_id(id) { Ok(id) } else { Err(no_such_campaign()) }
}

/// Campaign `id`: 404 for an id that is not one, or a campaign the queue knows no job of.
pub(super) async fn known_campaign(queue: &Queue, id: &str) -> Result<Campaign, ApiError> {
    queue.campaign(campaign_id(id)?).await.map_err(backend_failed)?.ok_or_else(no_such_campaign)
}

/// Cancels campaign `id` (see [`Queue::cancel_campaign`]); 404 as [`known_campaign`] says.
pub(super) async fn cancel_known_campaign(queue: &Queue, id: &str) -> Result<Campaign, ApiError> {
    queue.cancel_campaign(campaign_id(id)?).await.map_err(backend_failed)?.ok_or_else(no_such_campaign)
}

/// Re-queues campaign `id`'s given-up and parked tokens (see [`Queue::requeue_campaign`]);
/// 404 as [`known_campaign`] says.
pub(super) async fn requeue_known_campaign(queue: &Queue, id: &str) -> Result<Requeued, ApiError> {
    queue.requeue_campaign(campaign_id(id)?).await.map_err(backend_failed)?.ok_or_else(no_such_campaign)
}

/// The newest campaigns, with their counts.
#[utoipa::path(get, path = "/campaigns", params(CampaignsQuery), responses(
    (status = 200, description = "The newest campaigns", body = CampaignsPage),
    (status = 400, description = "A query that is not one", body = Problem),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `read` scope", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn campaigns(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Json<CampaignsPage>, ApiError> {
    let query: CampaignsQuery = query_of(query.as_deref())?;
    let limit = match query.limit {
        None => 20,
        Some(limit @ 1..=100) => usize::try_from(limit).unwrap_or(100),
        Some(_) => return Err(ApiError::new(StatusCode::BAD_REQUEST, "limit: 1 to 100")),
    };
    let campaigns = queue(&shared)?.campaigns(limit).await.map_err(backend_failed)?;
    let campaigns = campaigns
        .into_iter()
        .map(|campaign| CampaignTotals {
            jobs: campaign.jobs.len() as u64,
            campaign_id: campaign.campaign_id,
            totals: campaign.totals,
        })
        .collect();
    Ok(Json(CampaignsPage { campaigns }))
}

/// A campaign: its counts, and each job's summary.
#[utoipa::path(get, path = "/campaigns/{id}", params(("id" = String, Path, description = "The campaign's id")), responses(
    (status = 200, description = "The campaign", body = Campaign),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `read` scope", body = Problem),
    (status = 404, description = "No such campaign", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn campaign(State(shared): State<Shared>, Path(id): Path<String>) -> Result<Json<Campaign>, ApiError> {
    Ok(Json(known_campaign(queue(&shared)?, &id).await?))
}

/// Cancel a campaign: each of its jobs that has not finished (see `DELETE /jobs/{id}`).
#[utoipa::path(delete, path = "/campaigns/{id}", params(("id" = String, Path, description = "The campaign's id")), responses(
    (status = 200, description = "Cancelled: the campaign", body = Campaign),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `send` scope", body = Problem),
    (status = 404, description = "No such campaign", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn cancel_campaign(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Campaign>, ApiError> {
    let campaign = cancel_known_campaign(queue(&shared)?, &id).await?;
    tracing::info!(campaign = %id, cancelled = campaign.totals.cancelled, "campaign cancelled");
    Ok(Json(campaign))
}

/// Send again, in new jobs of the campaign, the tokens it gave up or parked: one job per
/// attempt that left some, with that attempt's content, under an id derived from it (a
/// second call enqueues nothing twice).
#[utoipa::path(post, path = "/campaigns/{id}/requeue", params(("id" = String, Path, description = "The campaign's id")), responses(
    (status = 200, description = "The jobs enqueued, and the attempts whose content is no longer kept", body = Requeued),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `send` scope", body = Problem),
    (status = 404, description = "No such campaign", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn requeue_campaign(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Requeued>, ApiError> {
    let requeued = requeue_known_campaign(queue(&shared)?, &id).await?;
    let recipients: u64 = requeued.jobs.iter().map(|job| job.recipients).sum();
    tracing::info!(campaign = %id, jobs = requeued.jobs.len(), recipients, lost = requeued.lost.len(), "campaign re-queued");
    Ok(Json(requeued))
}
