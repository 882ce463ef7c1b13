//! `/ui`: the dashboard `serve` shows a browser. Server-rendered HTML (maud) and one small
//! stylesheet, both in the binary; no script and no other host: it works with JavaScript
//! off, and a page whose numbers move reloads itself.
//!
//! Behind the API's keys: the login form takes a key and sets a session cookie (`HttpOnly`,
//! `SameSite=Strict`, valid 12 hours, signed with a key this process draws at start or, for
//! replicas behind one address, derives from their shared `--session-secret-file`); the
//! key's `read` scope looks, `send` acts. Every form carries a CSRF token bound to the
//! session (the login form, to a cookie of its own); a post without it is refused (403).
//! Without keys (`--no-auth`, loopback only) the pages need no login, and forms still carry
//! their token.

use std::time::{Duration, SystemTime};

use axum::Form;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::Shared;
use super::auth::{Scope, authorize};
use super::routes::{cancel_known, is_job_id, known_job, queue};
use crate::fate::{JobStatus, Summary};

mod campaigns;
mod overview;

const SESSION_COOKIE: &str = "gcm_session";
const LOGIN_COOKIE: &str = "gcm_login";
const SESSION: Duration = Duration::from_secs(12 * 3600);

/// The dashboard's routes (the API's guard lets `/ui` through: these check their session).
pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/ui", get(overview::overview))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/jobs", get(find_job))
        .route("/ui/jobs/{id}", get(job_page))
        .route("/ui/jobs/{id}/cancel", post(cancel))
        .route("/ui/campaigns", get(campaigns::list))
        .route("/ui/campaigns/{id}", get(campaigns::campaign_page))
        .route("/ui/campaigns/{id}/results.csv", get(campaigns::results_csv))
        .route("/ui/campaigns/{id}/cancel", post(campaigns::cancel))
        .route("/ui/campaigns/{id}/requeue", post(campaigns::requeue))
        .route("/ui/style.css", get(stylesheet))
}

/// What signs sessions and CSRF tokens: drawn at start (sessions end with the process), or
/// derived from a secret the replicas share.
pub(super) struct Signer(ring::hmac::Key);

impl Signer {
    pub(super) fn new() -> Self {
        let key: [u8; 32] = rand::random();
        Self(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key))
    }

    /// The signer of every replica given `secret` (a key of its own, derived from it: the
    /// secret itself signs nothing).
    pub(super) fn shared(secret: &super::SessionSecret) -> Self {
        let derived =
            ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret.0), b"gcm-worker dashboard");
        Self(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref()))
    }

    fn sign(&self, text: &str) -> String {
        B64.encode(ring::hmac::sign(&self.0, text.as_bytes()).as_ref())
    }

    fn verify(&self, text: &str, signature: &str) -> bool {
        B64.decode(signature).is_ok_and(|tag| ring::hmac::verify(&self.0, text.as_bytes(), &tag).is_ok())
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(…)")
    }
}

/// Who is looking: a key's name (empty without authentication), from a valid session.
struct Session {
    name: String,
    /// The cookie's signed value: what the CSRF token is bound to.
    value: String,
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let cookies = headers.get_all(header::COOKIE).into_iter().filter_map(|value| value.to_str().ok());
    cookies.flat_map(|line| line.split(';')).find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

impl Session {
    /// The request's session: a signed, unexpired cookie of a key the server still knows;
    /// without authentication, everyone's.
    fn of(shared: &Shared, headers: &HeaderMap) -> Option<Self> {
        if shared.api.open {
            return Some(Self { name: String::new(), value: "open".to_owned() });
        }
        let value = cookie(headers, SESSION_COOKIE)?;
        let (payload, signature) = value.rsplit_once('.')?;
        if !shared.signer.verify(&format!("session.{payload}"), signature) {
            return None;
        }
        let (name, expires) = payload.split_once('.')?;
        let name = String::from_utf8(B64.decode(name).ok()?).ok()?;
        if expires.parse::<u64>().ok()? <= now_s() || shared.api.keys.scopes(&name).is_none() {
            return None;
        }
        Some(Self { name, value: value.to_owned() })
    }

    fn may(&self, shared: &Shared, scope: Scope) -> bool {
        shared.api.open || shared.api.keys.scopes(&self.name).is_some_and(|scopes| scopes.contains(&scope))
    }

    fn csrf(&self, shared: &Shared) -> String {
        shared.signer.sign(&format!("csrf.{}", self.value))
    }
}

/// A form's CSRF token.
#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    csrf: String,
}

/// A page: the layout, no cache, a policy that allows this origin alone.
fn page(title: &str, session: Option<(&Session, &Shared)>, refresh: Option<u32>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh { meta http-equiv="refresh" content=(seconds); }
                title { (title) " · gcm-worker" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                header {
                    a.brand href="/ui" { "gcm-worker" }
                    @if let Some((session, shared)) = session {
                        nav { a href="/ui" { "Overview" } " " a href="/ui/campaigns" { "Campaigns" } }
                        form.find method="get" action="/ui/jobs" {
                            input type="search" name="id" placeholder="job id" aria-label="job id";
                            button type="submit" { "Open" }
                        }
                        @if !shared.api.open {
                            form method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(session.csrf(shared));
                                button type="submit" { "Log out " (session.name) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    let mut response = markup.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'"),
    );
    response
}

fn refusal(status: StatusCode, why: &str) -> Response {
    let mut response = page("Refused", None, None, html! { h1 { "Refused" } p.error { (why) } });
    *response.status_mut() = status;
    response
}

fn to_login() -> Response {
    Redirect::to("/ui/login").into_response()
}

async fn stylesheet() -> Response {
    let headers = [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")];
    (headers, include_str!("ui/style.css")).into_response()
}

async fn login_form(State(shared): State<Shared>) -> Response {
    login_page(&shared, None)
}

/// The login form, with a fresh nonce in its own cookie and the token bound to it.
fn login_page(shared: &Shared, error: Option<&str>) -> Response {
    let nonce = B64.encode(rand::random::<[u8; 16]>());
    let token = shared.signer.sign(&format!("login.{nonce}"));
    let mut response = page(
        "Log in",
        None,
        None,
        html! {
            h1 { "Log in" }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form.login method="post" action="/ui/login" {
                label for="key" { "API key" }
                input #key type="password" name="key" autocomplete="current-password" required;
                input type="hidden" name="csrf" value=(token);
                button type="submit" { "Log in" }
            }
            p.hint { "A key with the read scope looks; one with send acts." }
        },
    );
    let cookie = format!("{LOGIN_COOKIE}={nonce}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=600");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    if error.is_some() {
        *response.status_mut() = StatusCode::UNAUTHORIZED;
    }
    response
}

async fn login(State(shared): State<Shared>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let nonce = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if nonce.is_empty() || !shared.signer.verify(&format!("login.{nonce}"), &form.csrf) {
        return refusal(StatusCode::FORBIDDEN, "the form's CSRF token is missing or wrong: reload the login page");
    }
    let bearer = format!("Bearer {}", form.key.trim());
    let Ok(Some(name)) = authorize(&shared.api.keys, false, Some(bearer.as_bytes()), Some(Scope::Read)) else {
        tracing::info!("refused: a dashboard login with an unknown key, or one without the read scope");
        return login_page(&shared, Some("Unknown key, or a key without the read scope."));
    };
    tracing::info!(key = %name, "dashboard login");
    let payload = format!("{}.{}", B64.encode(&name), now_s().saturating_add(SESSION.as_secs()));
    let value = format!("{payload}.{}", shared.signer.sign(&format!("session.{payload}")));
    let secure = headers.get("x-forwarded-proto").is_some_and(|proto| proto == "https");
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut response = Redirect::to("/ui").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

async fn logout(State(shared): State<Shared>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    let Some(session) = Session::of(&shared, &headers) else { return to_login() };
    if form.csrf != session.csrf(&shared) {
        return refusal(StatusCode::FORBIDDEN, "the form's CSRF token is missing or wrong");
    }
    let mut response = to_login();
    let expired = format!("{SESSION_COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

async fn find_job(RawQuery(query): RawQuery) -> Response {
    #[derive(Deserialize)]
    struct Find {
        #[serde(default)]
        id: String,
    }
    let id = serde_urlencoded::from_str::<Find>(query.as_deref().unwrap_or("")).map(|find| find.id).unwrap_or_default();
    let id = id.trim();
    if !is_job_id(id) {
        return Redirect::to("/ui").into_response();
    }
    Redirect::to(&format!("/ui/jobs/{id}")).into_response()
}

/// How often a page showing something in `status` reloads itself: every 2 s while it is
/// sent, every 30 s while it waits for its time, never once it is over.
fn refresh(status: JobStatus) -> Option<u32> {
    match status {
        JobStatus::Queued | JobStatus::Sending | JobStatus::Retrying => Some(2),
        JobStatus::Scheduled => Some(30),
        _ => None,
    }
}

/// The fates of a job, as the page lists them: name, element id, count.
fn fates(summary: &Summary) -> [(&'static str, &'static str, u64); 7] {
    [
        ("Delivered", "delivered", summary.delivered),
        ("Not registered", "not-registered", summary.not_registered),
        ("Failed", "failed", summary.failed),
        ("Given up", "given-up", summary.given_up),
        ("Parked", "parked", summary.parked),
        ("Cancelled", "cancelled", summary.cancelled),
        ("Pending", "pending", summary.pending),
    ]
}

async fn job_page(State(shared): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(session) = Session::of(&shared, &headers) else { return to_login() };
    let Ok(queue) = queue(&shared) else { return refusal(StatusCode::NOT_FOUND, "this server has no queue") };
    let summary = match known_job(queue, &id).await {
        Ok(summary) => summary,
        Err(error) => return refusal(error.0, &error.1.error),
    };
    let settled = summary.recipients.saturating_sub(summary.pending);
    let cancellable = !matches!(summary.status, JobStatus::Done | JobStatus::GivenUp | JobStatus::Cancelled);
    let body = html! {
        h1 { "Job " code { (summary.job_id) } }
        p { "Status: " strong #status { (summary.status) } " · attempts " (summary.attempts) }
        @if let Some(campaign) = &summary.campaign_id { p { "Campaign " a href={ "/ui/campaigns/" (campaign) } { code { (campaign) } } } }
        @if let Some(project) = &summary.project { p { "Project " (project) } }
        label for="settled" { "Settled " (settled) " of " (summary.recipients) }
        progress #settled max=(summary.recipients) value=(settled) { (settled) " of " (summary.recipients) }
        (campaigns::bar(&summary))
        @if let Some(at) = summary.retry_at_ms { p #retry { "Retry of " (summary.pending) " due " (campaigns::due(crate::job::millis(SystemTime::now()), at)) } }
        table.fates {
            @for (name, key, count) in fates(&summary) {
                tr {
                    th { (name) }
                    td #(key) { (count) }
                    td.meter { progress max=(summary.recipients.max(1)) value=(count) {} }
                }
            }
        }
        @if cancellable && session.may(&shared, Scope::Send) {
            form method="post" action={ "/ui/jobs/" (summary.job_id) "/cancel" } {
                input type="hidden" name="csrf" value=(session.csrf(&shared));
                button.danger #cancel type="submit" { "Cancel the job" }
            }
        }
    };
    page(&format!("Job {}", summary.job_id), Some((&session, &shared)), refresh(summary.status), body)
}

/// An action's checks: a session, its form's CSRF token, the send scope, a queue (boxed: a
/// response is large).
fn may_act<'a>(
    shared: &'a Shared,
    headers: &HeaderMap,
    form: &CsrfForm,
) -> Result<(Session, &'a crate::Queue), Box<Response>> {
    let Some(session) = Session::of(shared, headers) else { return Err(Box::new(to_login())) };
    if form.csrf != session.csrf(shared) {
        return Err(Box::new(refusal(StatusCode::FORBIDDEN, "the form's CSRF token is missing or wrong")));
    }
    if !session.may(shared, Scope::Send) {
        return Err(Box::new(refusal(StatusCode::FORBIDDEN, "this key has no send scope")));
    }
    let Ok(queue) = queue(shared) else {
        return Err(Box::new(refusal(StatusCode::NOT_FOUND, "this server has no queue")));
    };
    Ok((session, queue))
}

async fn cancel(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (session, queue) = match may_act(&shared, &headers, &form) {
        Ok(allowed) => allowed,
        Err(refused) => return *refused,
    };
    match cancel_known(queue, &id).await {
        Ok(summary) => {
            tracing::info!(job = %id, key = %session.name, cancelled = summary.cancelled, "job cancelled from the dashboard");
            Redirect::to(&format!("/ui/jobs/{id}")).into_response()
        }
        Err(error) => refusal(error.0, &error.1.error),
    }
}
