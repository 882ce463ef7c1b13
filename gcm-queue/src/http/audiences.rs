//! `/audiences/<name>`: named token lists kept in the queue's backend (see
//! [`crate::audience`]). `PUT` sets one, `POST …/tokens` adds to it, `GET` pages through it,
//! `DELETE` removes it, `GET …/changes` is the feed of what results changed in it.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use serde::{Deserialize, Serialize};

use super::Shared;
use super::enqueue::check_token;
use super::routes::{ApiError, Problem, backend_failed, cursor_of, is_json, limit_of, query_of, queue, read_body};
use crate::audience::{AudienceChange, AudienceToken, Audiences as _, is_valid_name};

/// The body of `PUT /audiences/<name>` and `POST /audiences/<name>/tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceTokens {
    /// Device tokens, as `POST /jobs` takes them.
    #[schema(value_type = Vec<String>)]
    pub tokens: Vec<String>,
}

/// How many tokens a `PUT` left in the audience, or a `POST` added to it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AudienceCount {
    /// The audience.
    pub audience: String,
    /// Tokens it holds (`PUT`) or tokens that were new (`POST`).
    pub tokens: u64,
}

/// A page of an audience's tokens.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AudiencePage {
    /// The tokens after `after`, in byte order, flagged ones included.
    pub tokens: Vec<AudienceToken>,
    /// The last token of the page: pass it as `after` to read on (none at the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A page of an audience's change feed.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangesPage {
    /// The changes after `since`, in the order they were applied.
    pub changes: Vec<AudienceChange>,
    /// The cursor to pass as `since` next.
    pub next: u64,
}

/// `GET /audiences/<name>`'s query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Tokens after this one (default: from the first).
    pub after: Option<String>,
    /// At most this many, 1 to 10 000 (default 1000).
    #[param(minimum = 1, maximum = 10_000)]
    pub limit: Option<u64>,
}

/// `GET /audiences/<name>/changes`'s query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Changes after this cursor (default 0: from the first).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_f64)]
    pub since: Option<u64>,
    /// At most this many, 1 to 10 000 (default 1000).
    #[param(minimum = 1, maximum = 10_000)]
    pub limit: Option<u64>,
}

fn name_of(name: &str) -> Result<&str, ApiError> {
    if is_valid_name(name) {
        return Ok(name);
    }
    Err(ApiError::new(StatusCode::BAD_REQUEST, "an audience's name is 1 to 64 letters, digits, '-', '_' or '.'"))
}

/// The tokens of a body, each checked as `POST /jobs` checks them, at most as many as a
/// request may hold.
async fn tokens_of(shared: &Shared, headers: &HeaderMap, body: Body) -> Result<Vec<String>, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the body must be application/json"));
    }
    let body = read_body(shared, headers, body).await?;
    let invalid = |path: String, error: String| ApiError(StatusCode::BAD_REQUEST, Problem { error, path: Some(path) });
    let deserializer = &mut serde_json::Deserializer::from_slice(&body);
    let parsed: AudienceTokens = serde_path_to_error::deserialize(deserializer)
        .map_err(|error| invalid(format!("$.{}", error.path()), error.into_inner().to_string()))?;
    if parsed.tokens.is_empty() {
        return Err(invalid("$.tokens".into(), "no tokens (DELETE empties an audience)".into()));
    }
    let most = shared.api.limits.tokens.per_request;
    if parsed.tokens.len() > most {
        return Err(invalid(
            "$.tokens".into(),
            format!("{} tokens; a request has at most {most}", parsed.tokens.len()),
        ));
    }
    for (index, token) in parsed.tokens.iter().enumerate() {
        check_token(index, token).map_err(|bad| invalid(bad.path, bad.error))?;
    }
    Ok(parsed.tokens)
}

/// Sets an audience to exactly these tokens.
#[utoipa::path(put, path = "/audiences/{name}", request_body = AudienceTokens, params(
    ("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "The audience"),
), responses(
    (status = 200, description = "The tokens it holds now", body = AudienceCount),
    (status = 400, description = "Not a valid name or body", body = Problem),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `send` scope", body = Problem),
    (status = 413, description = "The body is too large", body = Problem),
    (status = 415, description = "Not `application/json`", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn put_audience(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<AudienceCount>, ApiError> {
    let name = name_of(&name)?;
    let tokens = tokens_of(&shared, &headers, body).await?;
    let held = queue(&shared)?.put_audience(name, &tokens).await.map_err(backend_failed)?;
    tracing::info!(audience = name, tokens = held, "audience set");
    Ok(Json(AudienceCount { audience: name.to_owned(), tokens: held }))
}

/// Adds tokens to an audience (creating it).
#[utoipa::path(post, path = "/audiences/{name}/tokens", request_body = AudienceTokens, params(
    ("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "The audience"),
), responses(
    (status = 200, description = "How many tokens were new", body = AudienceCount),
    (status = 400, description = "Not a valid name or body", body = Problem),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `send` scope", body = Problem),
    (status = 413, description = "The body is too large", body = Problem),
    (status = 415, description = "Not `application/json`", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn add_tokens(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<AudienceCount>, ApiError> {
    let name = name_of(&name)?;
    let tokens = tokens_of(&shared, &headers, body).await?;
    let added = queue(&shared)?.add_to_audience(name, &tokens).await.map_err(backend_failed)?;
    Ok(Json(AudienceCount { audience: name.to_owned(), tokens: added }))
}

/// An audience's tokens, a page at a time, in byte order.
#[utoipa::path(get, path = "/audiences/{name}", params(
    ("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "The audience"), PageQuery,
), responses(
    (status = 200, description = "A page of tokens", body = AudiencePage),
    (status = 400, description = "Not a valid name or query", body = Problem),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `read` scope", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn audience_tokens(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<AudiencePage>, ApiError> {
    let name = name_of(&name)?;
    let query: PageQuery = query_of(query.as_deref())?;
    let limit = limit_of(query.limit)?;
    let after = query.after.unwrap_or_default();
    let tokens = queue(&shared)?.audience_page(name, &after, limit).await.map_err(backend_failed)?;
    let next = (tokens.len() == limit).then(|| tokens.last().map(|last| last.token.clone())).flatten();
    Ok(Json(AudiencePage { tokens, next }))
}

/// Deletes an audience: its tokens and its feed.
#[utoipa::path(delete, path = "/audiences/{name}", params(
    ("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "The audience"),
), responses(
    (status = 204, description = "Deleted"),
    (status = 400, description = "Not a valid name", body = Problem),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `send` scope", body = Problem),
    (status = 404, description = "No such audience", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn delete_audience(
    State(shared): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = name_of(&name)?;
    if !queue(&shared)?.delete_audience(name).await.map_err(backend_failed)? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no audience {name:?}")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// What results changed in an audience, in the order they were applied: each removal,
/// replacement and flag once, for the application's own database to follow.
#[utoipa::path(get, path = "/audiences/{name}/changes", params(
    ("name" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "The audience"), ChangesQuery,
), responses(
    (status = 200, description = "A page of changes", body = ChangesPage),
    (status = 400, description = "Not a valid name or query", body = Problem),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 403, description = "The key has no `read` scope", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
    (status = 503, description = "The queue's backend fails", body = Problem),
))]
pub(super) async fn audience_changes(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<ChangesPage>, ApiError> {
    let name = name_of(&name)?;
    let query: ChangesQuery = query_of(query.as_deref())?;
    let (since, limit) = (cursor_of(query.since)?, limit_of(query.limit)?);
    let changes = queue(&shared)?.audience_changes(name, since, limit).await.map_err(backend_failed)?;
    let next = changes.last().map_or(since, |last| last.cursor);
    Ok(Json(ChangesPage { changes, next }))
}
