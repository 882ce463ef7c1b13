//! The dashboard's campaigns: a list with a bar each, and a campaign's page with its fates
//! by error code, its tokens in each bucket (paged, searchable), its jobs and their retry
//! schedule, and its actions (cancel, re-queue what was given up or parked, a CSV of the
//! results).

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::StreamExt as _;
use maud::{Markup, html};
use serde::Deserialize;

use super::{CsrfForm, Session, fates, may_act, page, refresh, refusal, to_login};
use crate::fate::{Final, JobStatus, Record, Summary};
use crate::http::Shared;
use crate::http::auth::Scope;
use crate::http::campaigns::{cancel_known_campaign, known_campaign, requeue_known_campaign};
use crate::http::routes::queue;

/// Campaigns the list shows: the newest.
const LISTED: usize = 50;
/// Tokens a bucket's page shows.
const TOKENS_PER_PAGE: usize = 100;
/// Records a campaign's page reads at most (about 40 MB): a larger campaign's page shows its
/// first jobs' records, and its CSV has them all.
const RECORDS_READ: usize = 200_000;

/// A campaign's bar: each fate's share of its recipients, as SVG rectangles the stylesheet
/// colours (no inline style: the policy allows none).
pub(super) fn bar(summary: &Summary) -> Markup {
    let total = summary.recipients.max(1);
    let mut x = 0u64;
    let mut rects = Vec::new();
    for (_, key, count) in fates(summary) {
        let width = count.saturating_mul(1000) / total;
        if width > 0 {
            rects.push((key, x, width));
        }
        x = x.saturating_add(width);
    }
    let settled = summary.recipients.saturating_sub(summary.pending);
    html! {
        svg.bar viewBox="0 0 1000 10" preserveAspectRatio="none" role="img"
            aria-label={ (settled) " of " (summary.recipients) " settled" } {
            @for (key, x, width) in rects { rect class=(key) x=(x) y="0" width=(width) height="10" {} }
        }
    }
}

fn moving(status: JobStatus) -> bool {
    refresh(status).is_some()
}

fn failed_backend(error: &crate::Error) -> Response {
    refusal(StatusCode::SERVICE_UNAVAILABLE, &format!("the queue's backend fails: {error}"))
}

pub(super) async fn list(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let Some(session) = Session::of(&shared, &headers) else { return to_login() };
    let Ok(queue) = queue(&shared) else { return refusal(StatusCode::NOT_FOUND, "this server has no queue") };
    let campaigns = match queue.campaigns(LISTED).await {
        Ok(campaigns) => campaigns,
        Err(error) => return failed_backend(&error),
    };
    let every = campaigns.iter().filter_map(|campaign| refresh(campaign.totals.status)).min();
    let body = html! {
        h1 { "Campaigns" }
        @if campaigns.is_empty() { p { "No campaign yet: a POST /jobs with more tokens than one job holds starts one." } }
        table.campaigns {
            @for campaign in &campaigns {
                @let totals = &campaign.totals;
                tr {
                    td {
                        a href={ "/ui/campaigns/" (campaign.campaign_id) } { code { (campaign.campaign_id) } }
                        br; span.hint { (totals.status) " · " (campaign.jobs.len()) " jobs"
                            @if let Some(project) = &totals.project { " · " (project) } }
                    }
                    td.wide {
                        (bar(totals))
                        span.hint { (totals.delivered) " delivered · " (totals.not_registered) " not registered · "
                            (totals.failed) " failed · "
                            @if totals.given_up + totals.parked > 0 { (totals.given_up + totals.parked) " given up or parked · " }
                            @if totals.cancelled > 0 { (totals.cancelled) " cancelled · " }
                            (totals.pending) " pending of " (totals.recipients) }
                    }
                }
            }
        }
        (legend())
    };
    page("Campaigns", Some((&session, &shared)), every, body)
}

fn legend() -> Markup {
    let shown = fates(&Summary::default());
    html! {
        ul.legend { @for (name, key, _) in shown { li { svg viewBox="0 0 10 10" { rect class=(key) width="10" height="10" {} } (name) } } }
    }
}

/// A campaign page's query: the bucket shown, a token searched, the page.
#[derive(Deserialize, Default)]
struct Shown {
    #[serde(default)]
    fate: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    page: Option<usize>,
}

/// What groups a record on the page, with its fate's name: its error code or cause.
fn reason(fate: &Final) -> &str {
    match fate {
        Final::Failed { code, .. } => code,
        Final::GivenUp { cause } | Final::Parked { cause } => cause,
        _ => "",
    }
}

fn detail(fate: &Final) -> String {
    match fate {
        Final::Delivered { message_id, canonical: Some(canonical) } => format!("{message_id} → {canonical}"),
        Final::Delivered { message_id, canonical: None } => message_id.clone(),
        Final::Failed { code, detail } => {
            detail.as_ref().map_or_else(|| code.clone(), |detail| format!("{code}: {detail}"))
        }
        Final::GivenUp { cause } | Final::Parked { cause } => cause.clone(),
        Final::NotRegistered | Final::Cancelled => String::new(),
    }
}

pub(super) async fn campaign_page(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(session) = Session::of(&shared, &headers) else { return to_login() };
    let Ok(queue) = queue(&shared) else { return refusal(StatusCode::NOT_FOUND, "this server has no queue") };
    let shown: Shown = serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let campaign = match known_campaign(queue, &id).await {
        Ok(campaign) => campaign,
        Err(error) => return refusal(error.0, &error.1.error),
    };
    let (records, complete) = match queue.campaign_records(&campaign, RECORDS_READ).await {
        Ok(read) => read,
        Err(error) => return failed_backend(&error),
    };
    let totals = &campaign.totals;
    let settled = totals.recipients.saturating_sub(totals.pending);
    let mut reasons: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for record in &records {
        *reasons.entry((record.fate.name(), reason(&record.fate))).or_default() += 1;
    }
    let fate = shown.fate.as_deref().unwrap_or("not_registered");
    let search = shown.q.as_deref().map(str::trim).unwrap_or_default();
    let bucket: Vec<&Record> = records
        .iter()
        .filter(|record| record.fate.name() == fate && (search.is_empty() || record.recipient.contains(search)))
        .collect();
    let pages = bucket.len().div_ceil(TOKENS_PER_PAGE).max(1);
    let page_number = shown.page.unwrap_or(1).clamp(1, pages);
    let now = crate::job::millis(SystemTime::now());
    let can_act = session.may(&shared, Scope::Send);
    let retrying: Vec<&Summary> = campaign.jobs.iter().filter(|job| job.pending > 0 && job.attempts > 0).collect();
    let body = html! {
        h1 { "Campaign " code { (campaign.campaign_id) } }
        p { "Status: " strong #status { (totals.status) } " · " (campaign.jobs.len()) " jobs"
            @if let Some(project) = &totals.project { " · project " (project) } }
        label for="settled" { "Settled " (settled) " of " (totals.recipients) }
        progress #settled max=(totals.recipients) value=(settled) { (settled) " of " (totals.recipients) }
        (bar(totals))
        table.fates {
            @for (name, key, count) in fates(totals) {
                tr { th { a href={ "?fate=" (key.replace('-', "_")) } { (name) } } td #(key) { (count) } }
            }
        }
        section.actions {
            a.button #csv href={ "/ui/campaigns/" (campaign.campaign_id) "/results.csv" } download { "Download the results (CSV)" }
            @if can_act && totals.given_up + totals.parked > 0 {
                form method="post" action={ "/ui/campaigns/" (campaign.campaign_id) "/requeue" } {
                    input type="hidden" name="csrf" value=(session.csrf(&shared));
                    button #requeue type="submit" { "Re-queue " (totals.given_up + totals.parked) " given-up and parked tokens" }
                }
            }
            @if can_act && moving(totals.status) {
                form method="post" action={ "/ui/campaigns/" (campaign.campaign_id) "/cancel" } {
                    input type="hidden" name="csrf" value=(session.csrf(&shared));
                    button.danger #cancel type="submit" { "Cancel the campaign" }
                }
            }
        }
        @if !complete {
            p.hint #partial { "The fates by code and the tokens below are those of the first jobs' "
                (records.len()) " records: the CSV has every one." }
        }
        h2 { "Fates by error code" }
        table #reasons {
            tr { th { "Fate" } th { "Code or cause" } th { "Tokens" } }
            @for ((name, why), count) in &reasons { tr { td { (name) } td { code { (why) } } td { (count) } } }
        }
        h2 #tokens { "Tokens: " (fate.replace('_', " ")) " (" (bucket.len()) ")" }
        form.find method="get" action="" {
            input type="hidden" name="fate" value=(fate);
            input type="search" name="q" value=(search) placeholder="token contains" aria-label="token contains";
            button type="submit" { "Search" }
        }
        table #bucket {
            tr { th { "Token" } th { "Job" } th { "Attempt" } th { "Detail" } }
            @for record in bucket.iter().skip((page_number - 1) * TOKENS_PER_PAGE).take(TOKENS_PER_PAGE) {
                tr {
                    td.token { code { (record.recipient) } }
                    td { a href={ "/ui/jobs/" (record.job_id) } { (record.job_id) } }
                    td { (record.attempt.saturating_add(1)) }
                    td { (detail(&record.fate)) }
                }
            }
        }
        @if pages > 1 {
            nav.pages {
                @if page_number > 1 { a rel="prev" href={ "?" (bucket_page(fate, search, page_number - 1)) } { "← previous" } }
                span { " page " (page_number) " of " (pages) " " }
                @if page_number < pages { a rel="next" href={ "?" (bucket_page(fate, search, page_number + 1)) } { "next →" } }
            }
        }
        h2 { "Retry schedule" }
        @if retrying.is_empty() { p #no-retries { "No retry is waiting." } }
        @else {
            table #retries {
                tr { th { "Job" } th { "Pending" } th { "Attempts so far" } th { "Due" } }
                @for job in &retrying {
                    tr {
                        td { a href={ "/ui/jobs/" (job.job_id) } { (job.job_id) } }
                        td { (job.pending) }
                        td { (job.attempts) }
                        td { @match job.retry_at_ms {
                            Some(at) => { (due(now, at)) }
                            None => { "—" }
                        } }
                    }
                }
            }
        }
        p.hint #api { "The same from the API: " code { "GET /campaigns/" (campaign.campaign_id) } ", "
            code { "GET /results?campaign=" (campaign.campaign_id) } "." }
        h2 { "Jobs" }
        table #jobs {
            tr { th { "Job" } th { "Status" } th { "Recipients" } th { "Settled" } }
            @for job in &campaign.jobs {
                tr {
                    td { a href={ "/ui/jobs/" (job.job_id) } { (job.job_id) } }
                    td { (job.status) }
                    td { (job.recipients) }
                    td { (job.recipients.saturating_sub(job.pending)) }
                }
            }
        }
    };
    let title = format!("Campaign {}", campaign.campaign_id);
    page(&title, Some((&session, &shared)), refresh(totals.status), body)
}

/// When a retry is due, as a time and as a wait from `now_ms`. A time no calendar formats
/// (past the year 9999: a server's `Retry-After` is honoured) is shown in milliseconds.
pub(super) fn due(now_ms: u64, at_ms: u64) -> String {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let at =
        i64::try_from(at_ms / 1000).ok().and_then(|seconds| time::OffsetDateTime::from_unix_timestamp(seconds).ok());
    let when = at.and_then(|at| at.format(rfc3339).ok()).unwrap_or_else(|| format!("{at_ms} ms after the epoch"));
    match at_ms.checked_sub(now_ms) {
        Some(wait) => format!("{when} (in {} s)", wait / 1000),
        None => format!("{when} (due)"),
    }
}

/// The query of a page of a bucket.
fn bucket_page(fate: &str, search: &str, page: usize) -> String {
    let page = page.to_string();
    serde_urlencoded::to_string([("fate", fate), ("q", search), ("page", page.as_str())]).unwrap_or_default()
}

/// The campaign's records as CSV, one row per token and attempt that settled it: streamed
/// job by job, so that a campaign of millions is never held whole.
pub(super) async fn results_csv(State(shared): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(_session) = Session::of(&shared, &headers) else { return to_login() };
    let Some(queue) = shared.api.queue.clone() else {
        return refusal(StatusCode::NOT_FOUND, "this server has no queue");
    };
    let campaign = match known_campaign(&queue, &id).await {
        Ok(campaign) => campaign,
        Err(error) => return refusal(error.0, &error.1.error),
    };
    let head = futures_util::stream::once(std::future::ready(csv_rows(&[], true)));
    let ids: Vec<String> = campaign.jobs.iter().map(|job| job.job_id.clone()).collect();
    let rows = futures_util::stream::iter(ids).then(move |job_id| {
        let queue = queue.clone();
        async move {
            let records = queue.job_records(&job_id).await.inspect_err(|error| {
                tracing::warn!(job = %job_id, %error, "a campaign's CSV is cut short: a job's records cannot be read");
            })?;
            csv_rows(&records, false)
        }
    });
    // The id is a job id's characters (`known_campaign` checked): safe in a header.
    let name = campaign.campaign_id;
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
        (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.csv\"")),
        (header::CACHE_CONTROL, "no-store".to_owned()),
    ];
    (headers, axum::body::Body::from_stream(head.chain(rows))).into_response()
}

/// `records` as CSV rows, after the header row if `head`.
fn csv_rows(records: &[Record], head: bool) -> Result<bytes::Bytes, crate::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let failed = |error: csv::Error| crate::Error::Store(format!("cannot write the CSV: {error}").into());
    if head {
        writer.write_record(["job_id", "attempt", "token", "fate", "code", "detail"]).map_err(failed)?;
    }
    for record in records {
        let attempt = record.attempt.saturating_add(1).to_string();
        let detail = detail(&record.fate);
        let row = [
            record.job_id.as_str(),
            attempt.as_str(),
            record.recipient.as_str(),
            record.fate.name(),
            reason(&record.fate),
            detail.as_str(),
        ];
        writer.write_record(row).map_err(failed)?;
    }
    writer.into_inner().map(bytes::Bytes::from).map_err(|error| failed(error.into_error().into()))
}

pub(super) async fn cancel(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (session, queue) = match may_act(&shared, &headers, &form) {
        Ok(allowed) => allowed,
        Err(refused) => return *refused,
    };
    match cancel_known_campaign(queue, &id).await {
        Ok(campaign) => {
            tracing::info!(campaign = %id, key = %session.name, cancelled = campaign.totals.cancelled, "campaign cancelled from the dashboard");
            Redirect::to(&format!("/ui/campaigns/{id}")).into_response()
        }
        Err(error) => refusal(error.0, &error.1.error),
    }
}

pub(super) async fn requeue(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (session, queue) = match may_act(&shared, &headers, &form) {
        Ok(allowed) => allowed,
        Err(refused) => return *refused,
    };
    match requeue_known_campaign(queue, &id).await {
        Ok(requeued) => {
            let recipients: u64 = requeued.jobs.iter().map(|job| job.recipients).sum();
            tracing::info!(campaign = %id, key = %session.name, jobs = requeued.jobs.len(), recipients, lost = requeued.lost.len(), "campaign re-queued from the dashboard");
            if requeued.lost.is_empty() {
                Redirect::to(&format!("/ui/campaigns/{id}")).into_response()
            } else {
                let why = format!(
                    "{recipients} tokens were re-queued; the content of {} attempts is no longer kept ({})",
                    requeued.lost.len(),
                    requeued.lost.join(", ")
                );
                refusal(StatusCode::GONE, &why)
            }
        }
        Err(error) => refusal(error.0, &error.1.error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_due_past_any_calendar_is_shown_not_a_panic() {
        assert_eq!(due(1_000, 61_000), "1970-01-01T00:01:01Z (in 60 s)");
        assert_eq!(due(61_000, 1_000), "1970-01-01T00:00:01Z (due)");
        assert_eq!(due(0, u64::MAX), format!("{} ms after the epoch (in {} s)", u64::MAX, u64::MAX / 1000));
        assert_eq!(bucket_page("given_up", "a&b #1", 2), "fate=given_up&q=a%26b+%231&page=2");
    }
}
