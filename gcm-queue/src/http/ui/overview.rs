//! The dashboard's overview: the backend's health, the recipients sent per minute over the
//! last hour (a chart) and per project against its fleet rate, the workers with their
//! heartbeats and the jobs they run, the jobs by state, and the newest campaigns.

use std::time::SystemTime;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};

use super::campaigns::bar;
use super::{Session, page, refusal, to_login};
use crate::http::Shared;
use crate::http::routes::queue;
use crate::job::millis;
use crate::queue::Worker;

/// Minutes the chart shows.
const MINUTES: u64 = 60;
/// A worker whose last heartbeat is older than this is shown as silent (apalis beats every
/// 30 s by default).
const SILENT_AFTER_S: u64 = 90;
/// Campaigns the overview shows: the newest.
const CAMPAIGNS: usize = 5;

pub(super) async fn overview(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let Some(session) = Session::of(&shared, &headers) else { return to_login() };
    let Ok(queue) = queue(&shared) else { return refusal(StatusCode::NOT_FOUND, "this server has no queue") };
    let stats = match queue.stats().await {
        Ok(stats) => stats,
        Err(error) => {
            let body = html! {
                h1 { "Overview" }
                p #health.error role="alert" { "The backend (" (queue.backend_name()) ") fails: " (error) }
            };
            return page("Overview", Some((&session, &shared)), Some(5), body);
        }
    };
    let now_ms = millis(SystemTime::now());
    let (sent, workers, campaigns) =
        tokio::join!(queue.sent_per_minute(now_ms, MINUTES), queue.workers(), queue.campaigns(CAMPAIGNS));
    let body = html! {
        h1 { "Overview" }
        p #health.ok { "The backend (" (queue.backend_name()) ") answers." }
        section {
            h2 { "Recipients sent per minute, last hour" }
            @match &sent {
                Ok(sent) => { (chart(sent, now_ms)) (projects(sent, now_ms, &shared)) }
                Err(error) => { p.error { "Cannot read: " (error) } }
            }
        }
        section {
            h2 { "Workers" }
            @match &workers {
                Ok(workers) => { (workers_table(workers, now_ms / 1000)) }
                Err(error) => { p.error { "Cannot read: " (error) } }
            }
        }
        section {
            h2 { "Jobs by state" }
            table #jobs { @for (state, count) in &stats.jobs { tr { th { (state) } td { (count) } } } }
        }
        section {
            h2 { "Waiting" }
            dl {
                dt { "Recipients without a final fate" } dd #pending-recipients { (stats.pending_recipients) }
                dt { "Webhook deliveries pending" } dd { (stats.pending_deliveries) }
                dt { "Webhook deliveries dead" } dd #dead-deliveries { (stats.dead_deliveries) }
                dt { "Oldest due job's wait" } dd { (stats.oldest_due_lag_s) " s" }
            }
        }
        section {
            h2 { a href="/ui/campaigns" { "Campaigns" } }
            @match &campaigns {
                Ok(campaigns) if campaigns.is_empty() => { p { "None yet." } }
                Ok(campaigns) => {
                    table.campaigns {
                        @for campaign in campaigns {
                            tr {
                                td { a href={ "/ui/campaigns/" (campaign.campaign_id) } { code { (campaign.campaign_id) } }
                                     br; span.hint { (campaign.totals.status) } }
                                td.wide { (bar(&campaign.totals)) }
                            }
                        }
                    }
                }
                Err(error) => { p.error { "Cannot read: " (error) } }
            }
        }
    };
    page("Overview", Some((&session, &shared)), Some(5), body)
}

/// Each of the last [`MINUTES`] minutes' total, oldest first.
fn totals(sent: &[(String, u64, u64)], now_ms: u64) -> Vec<u64> {
    let last = now_ms / 60_000;
    let first = last.saturating_sub(MINUTES - 1);
    let mut totals = vec![0u64; usize::try_from(MINUTES).unwrap_or(60)];
    for (_, minute, count) in sent {
        let slot = minute.checked_sub(first).and_then(|slot| totals.get_mut(usize::try_from(slot).ok()?));
        if let Some(total) = slot {
            *total = total.saturating_add(*count);
        }
    }
    totals
}

/// The last hour as bars, one a minute, scaled to the busiest (SVG: no script, no style).
fn chart(sent: &[(String, u64, u64)], now_ms: u64) -> Markup {
    let totals = totals(sent, now_ms);
    let peak = totals.iter().copied().max().unwrap_or(0);
    let scale = peak.max(1);
    html! {
        svg.chart #sent viewBox="0 0 600 100" preserveAspectRatio="none" role="img"
            aria-label={ "recipients sent per minute; the busiest minute: " (peak) } {
            @for (slot, total) in totals.iter().enumerate() {
                @let height = total.saturating_mul(100) / scale;
                @if *total > 0 {
                    rect x=(slot * 10) y=(100 - height.min(100)) width="9" height=(height.max(1)) {
                        title { (MINUTES - slot as u64 - 1) " min ago: " (total) }
                    }
                }
            }
        }
        p.hint.axis { span { (MINUTES) " min ago" } span { "busiest minute: " strong #peak { (peak) } } span { "now" } }
    }
}

/// Each project's sends: the last minute, the last hour, and its use of its fleet rate.
fn projects(sent: &[(String, u64, u64)], now_ms: u64, shared: &Shared) -> Markup {
    let last = now_ms / 60_000;
    let mut names: Vec<&str> = sent.iter().map(|(project, _, _)| project.as_str()).collect();
    names.dedup();
    let count = |name: &str, recent: bool| -> u64 {
        let rows = sent.iter().filter(|(project, minute, _)| project == name && (!recent || *minute == last));
        rows.map(|(_, _, count)| count).sum()
    };
    html! {
        @if !names.is_empty() {
            table #projects {
                tr { th { "Project" } th { "This minute" } th { "Last hour" } th { "Fleet rate a minute" } th { "Use" } }
                @for name in &names {
                    @let (minute, hour) = (count(name, true), count(name, false));
                    @let rate = shared.api.projects.rate_of(name);
                    tr {
                        td { @if name.is_empty() { em { "none" } } @else { (name) } }
                        td { (minute) } td { (hour) }
                        td { @match rate { Some(rate) => { (rate) } None => { "—" } } }
                        td { @match rate {
                            Some(rate) => { progress max=(rate) value=(minute.min(u64::from(rate))) {} " " (minute.saturating_mul(100) / u64::from(rate).max(1)) " %" }
                            None => { "—" }
                        } }
                    }
                }
            }
        }
    }
}

fn workers_table(workers: &[Worker], now_s: u64) -> Markup {
    html! {
        @if workers.is_empty() { p #no-workers { "No worker has registered on this queue." } }
        @else {
            table #workers {
                tr { th { "Worker" } th { "Last heartbeat" } th { "Jobs running" } }
                @for worker in workers {
                    @let age = now_s.saturating_sub(worker.heartbeat_s);
                    tr {
                        td { code { (worker.name) } }
                        td.(if age > SILENT_AFTER_S { "error" } else { "ok" }) { (age) " s ago" }
                        td { (worker.running) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_counts_each_minute_of_the_last_hour_once() {
        let now_ms = 100 * 60_000 + 5;
        let sent =
            [("a".to_owned(), 100, 3), ("b".to_owned(), 100, 2), ("a".to_owned(), 41, 7), ("a".to_owned(), 40, 9)];
        let totals = totals(&sent, now_ms);
        assert_eq!((totals.len(), totals[59], totals[0]), (60, 5, 7), "minute 40 is 61 minutes back: not shown");
        assert_eq!(totals.iter().sum::<u64>(), 12);
    }
}
