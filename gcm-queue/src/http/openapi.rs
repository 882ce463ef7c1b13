//! The OpenAPI 3.1 document of the API, served at `/openapi.json`.

use utoipa::OpenApi as _;

use super::Shared;
use super::enqueue::{EnqueueRequest, Projects};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse as _, Response};

use super::audiences::{
    __path_add_tokens, __path_audience_changes, __path_audience_tokens, __path_delete_audience, __path_put_audience,
    AudienceCount, AudiencePage, AudienceTokens, ChangesPage,
};
use super::campaigns::{
    __path_campaign, __path_campaigns, __path_cancel_campaign, __path_requeue_campaign, CampaignTotals, CampaignsPage,
};
use super::routes::{
    __path_cancel_job, __path_enqueue_jobs, __path_healthz, __path_job_summary, __path_metrics, __path_readyz,
    __path_results,
};
use super::routes::{Accepted, Problem, Ready, ResultRecord, ResultsPage};
use super::webhooks::{__path_deliveries, __path_replay, DeliveriesPage, Replayed};
use crate::audience::{AudienceChange, AudienceToken};
use crate::fate::Summary;
use crate::queue::{Campaign, Requeued, RequeuedJob};
use crate::webhook::{Delivery, DeliveryState};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "gcm-worker", description = "Durable FCM sending through a job queue: enqueue multicasts, read each token's fate."),
    paths(
        enqueue_jobs, job_summary, cancel_job, results, metrics, readyz, healthz, openapi,
        put_audience, add_tokens, audience_tokens, delete_audience, audience_changes, deliveries, replay,
        campaigns, campaign, cancel_campaign, requeue_campaign
    ),
    components(schemas(
        EnqueueRequest, Accepted, Summary, ResultsPage, ResultRecord, Problem, Ready,
        AudienceTokens, AudienceCount, AudiencePage, ChangesPage, AudienceToken, AudienceChange,
        DeliveriesPage, Replayed, Delivery, DeliveryState, CampaignsPage, CampaignTotals, Campaign, Requeued,
        RequeuedJob
    )),
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
pub fn document() -> serde_json::Value {
    document_for(None)
}

/// [`document`], as a server with `projects` serves it: `project` takes their names (or
/// nothing, when none is configured). Without `projects`, any name.
pub(super) fn document_for(projects: Option<&Projects>) -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let messages: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(include_str!("messages.schema.json")).unwrap_or_default();
    if let Some(schemas) = document.pointer_mut("/components/schemas").and_then(serde_json::Value::as_object_mut) {
        schemas.extend(messages);
    }
    // An audience's tokens are checked as a request's are.
    if let Some(tokens) = document.pointer_mut("/components/schemas/AudienceTokens/properties/tokens") {
        *tokens = serde_json::json!({ "$ref": "#/components/schemas/Tokens" });
    }
    if let (Some(projects), Some(schema)) = (projects, document.pointer_mut("/components/schemas/Project")) {
        let names = projects.names().map(serde_json::Value::from).chain([serde_json::Value::Null]);
        schema["enum"] = serde_json::Value::Array(names.collect());
    }
    if let (Some(projects), Some(schema)) = (projects, document.pointer_mut("/components/schemas/Webhook")) {
        let prefixes: Vec<String> = projects.job_webhook_urls().map(escape_regex).collect();
        match prefixes.is_empty() {
            true => *schema = serde_json::json!({ "type": "null", "description": schema["description"] }),
            // What `enqueue::is_webhook_char` accepts after the prefix.
            false => schema["pattern"] = format!("^(?:{})[A-Za-z0-9._~/?=&-]*$", prefixes.join("|")).into(),
        }
    }
    document
}

/// `text` as a regular expression that matches it alone.
fn escape_regex(text: &str) -> String {
    text.chars().fold(String::new(), |mut escaped, c| {
        if "\\.+*?()|[]{}^$/".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
        escaped
    })
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses(
    (status = 200, description = "The OpenAPI 3.1 document", body = Object),
    (status = 401, description = "No valid API key", body = Problem),
    (status = 421, description = "A Host this server does not answer to", body = Problem),
))]
pub(super) async fn openapi(State(shared): State<Shared>) -> Response {
    Json(document_for(Some(&shared.api.projects))).into_response()
}
