//! `[projects.<name>]` in the settings file: the Firebase projects one deployment sends for,
//! each with its credentials, its FCM endpoint and its rate for the whole fleet. A job names
//! its project; `run` keeps one client per project, `serve` and `enqueue` refuse a project
//! that is not configured.
//!
//! ```toml
//! [projects.shop]
//! credentials = "/etc/gcm-worker/shop.json"   # or "application-default", or "metadata"
//! rate = 600000                               # messages a minute, all workers together
//! [projects.news]
//! credentials = "metadata"
//! project-id = "news-prod"                    # the metadata server names no project
//! endpoint = "https://fcm.googleapis.com"     # FCM v1's base URL (default: Google's)
//! [projects.news.webhook]                     # where its jobs' settlements are posted
//! url = "https://hooks.news.example/push"
//! secrets = ["whsec_…"]                       # two during a rotation
//! job-urls = ["https://hooks.news.example/"]  # what a job's own webhook may start with
//! retry-for = "3d"                            # then a failing delivery is dead
//! ```
//!
//! A top-level `[webhook]` table is the webhook of jobs of no project.

use std::collections::BTreeMap;
use std::time::Duration;

use gcm_hyper::gcm_proto::Backoff;
use gcm_hyper::v1::Fcm;
use gcm_hyper::{Credentials, FcmClient};
use gcm_queue::http::{Projects, WebhookRoute};
use gcm_queue::webhook::{Endpoint, Secret};
use serde::Deserialize;

/// One project's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ProjectConfig {
    /// A key file's path, `application-default` (the file `GOOGLE_APPLICATION_CREDENTIALS`
    /// names, else the metadata server) or `metadata` (the metadata server).
    credentials: String,
    /// The Firebase project id; by default the key file's (the metadata server has none).
    project_id: Option<String>,
    /// FCM v1's base URL (default: Google's), e.g. a gcm-mock's.
    endpoint: Option<String>,
    /// Messages a minute every worker together sends for this project at most (0: no limit).
    #[serde(default)]
    pub(crate) rate: u32,
    /// Where its jobs' settlements are posted.
    webhook: Option<WebhookConfig>,
}

/// The configured projects, by name.
pub(crate) type ProjectConfigs = BTreeMap<String, ProjectConfig>;

/// `[webhook]`, or a project's: where jobs post their settlements, signed with `secrets`.
/// `Debug` never shows a secret.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct WebhookConfig {
    /// Every job's webhook, unless the job names its own.
    url: Option<String>,
    /// `whsec_…`: the first signs; during a rotation, each signs (a receiver holds either).
    secrets: Vec<Secret>,
    /// What a job's own webhook URL may start with (none: a job may not name one).
    #[serde(default)]
    job_urls: Vec<String>,
    /// How long a failing delivery is retried (default 3d).
    retry_for: Option<String>,
    /// How long one try may take (default 10s).
    timeout: Option<String>,
    /// The wait after the first failed try, doubled each next one (default 5s).
    first_retry: Option<String>,
}

impl WebhookConfig {
    fn route(&self) -> WebhookRoute {
        WebhookRoute { url: self.url.clone(), job_urls: self.job_urls.clone() }
    }

    /// How its deliveries are signed and timed; `table` names it in errors.
    fn endpoint(&self, table: &str) -> Result<Endpoint, String> {
        if self.secrets.is_empty() {
            return Err(format!("{table}: give secrets = [\"whsec_…\"]"));
        }
        let urls = self.url.iter().chain(&self.job_urls);
        if let Some(url) = urls.clone().find(|url| !url.starts_with("https://") && !url.starts_with("http://")) {
            return Err(format!("{table}: {url:?} is not an http:// or https:// URL"));
        }
        let duration = |text: &Option<String>, default: Duration| match text {
            Some(text) => humantime::parse_duration(text).map_err(|error| format!("{table}: {text:?}: {error}")),
            None => Ok(default),
        };
        let defaults = Endpoint::new(self.secrets.clone());
        Ok(Endpoint {
            retry_for: duration(&self.retry_for, defaults.retry_for)?,
            timeout: duration(&self.timeout, defaults.timeout)?.max(Duration::from_millis(1)),
            first_retry: duration(&self.first_retry, defaults.first_retry)?,
            ..defaults
        })
    }
}

/// What the settings file configures beside the flags: its projects, and the webhook of
/// jobs of none.
#[derive(Debug, Default)]
pub(crate) struct Platform {
    pub(crate) projects: ProjectConfigs,
    pub(crate) webhook: Option<WebhookConfig>,
}

impl Platform {
    /// `webhook`, each project's, by project (`None`: jobs of no project).
    fn webhooks(&self) -> impl Iterator<Item = (Option<&str>, &WebhookConfig)> {
        let projects =
            self.projects.iter().filter_map(|(name, project)| Some((Some(name.as_str()), project.webhook.as_ref()?)));
        self.webhook.iter().map(|webhook| (None, webhook)).chain(projects)
    }

    /// What a request may name: the projects, their rates, and where their jobs post.
    pub(crate) fn api_projects(&self) -> Projects {
        let projects = Projects::new(self.projects.keys());
        let projects =
            self.projects.iter().fold(projects, |projects, (name, project)| projects.rate(name, project.rate));
        self.webhooks().fold(projects, |projects, (name, webhook)| projects.webhook(name, webhook.route()))
    }

    /// The endpoints that sign the deliveries, by project; none when no webhook is configured.
    pub(crate) fn endpoints(&self) -> Result<BTreeMap<Option<String>, Endpoint>, String> {
        self.webhooks()
            .map(|(name, webhook)| {
                let table = name.map_or("[webhook]".to_owned(), |name| format!("[projects.{name}.webhook]"));
                Ok((name.map(str::to_owned), webhook.endpoint(&table)?))
            })
            .collect()
    }
}

/// The top-level `webhook` table of the settings file.
pub(crate) fn webhook_from_toml(value: toml::Value) -> Result<WebhookConfig, String> {
    value.try_into().map_err(|error| format!("[webhook]: {error}"))
}

/// The `projects` table of the settings file.
pub(crate) fn from_toml(value: toml::Value) -> Result<ProjectConfigs, String> {
    let projects: ProjectConfigs = value.try_into().map_err(|error| format!("[projects]: {error}"))?;
    for name in projects.keys() {
        let fine = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !fine {
            return Err(format!("[projects.{name}]: a project's name is 1 to 64 letters, digits, - or _"));
        }
    }
    Ok(projects)
}

impl ProjectConfig {
    /// The FCM v1 client of project `name`, its retries after `backoff`.
    pub(crate) fn client(&self, name: &str, backoff: Backoff) -> Result<FcmClient, String> {
        let error = |error: gcm_hyper::Error| format!("[projects.{name}]: {error}");
        let credentials = match self.credentials.as_str() {
            "metadata" => Credentials::metadata_server().map_err(error)?,
            "application-default" => match Credentials::from_env().map_err(error)? {
                Some(credentials) => credentials,
                None => Credentials::metadata_server().map_err(error)?,
            },
            path => Credentials::from_file(path).map_err(error)?,
        };
        let project_id = self
            .project_id
            .as_deref()
            .or(credentials.project_id())
            .ok_or_else(|| format!("[projects.{name}]: the credentials name no project: give project-id"))?;
        let mut fcm = Fcm::new(project_id).map_err(|e| format!("[projects.{name}]: {e}"))?.with_backoff(backoff);
        if let Some(endpoint) = &self.endpoint {
            fcm = fcm.with_base_url(endpoint).map_err(|e| format!("[projects.{name}]: endpoint: {e}"))?;
        }
        FcmClient::new(fcm, credentials).map_err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProjectConfigs, String> {
        let mut table: toml::Table = toml::from_str(text).unwrap();
        from_toml(table.remove("projects").unwrap())
    }

    #[test]
    fn projects_are_read_with_their_settings_and_typos_refused() {
        let projects = parse(
            "[projects.shop]\ncredentials = \"shop.json\"\nrate = 600000\n\
             [projects.news]\ncredentials = \"metadata\"\nproject-id = \"news-prod\"\nendpoint = \"http://127.0.0.1:1\"\n",
        )
        .unwrap();
        assert_eq!(projects.keys().collect::<Vec<_>>(), ["news", "shop"]);
        assert_eq!((projects["shop"].rate, projects["news"].project_id.as_deref()), (600_000, Some("news-prod")));
        let typo = parse("[projects.shop]\ncredentials = \"shop.json\"\nrates = 1\n").unwrap_err();
        assert!(typo.contains("unknown field `rates`"), "{typo}");
        let missing = parse("[projects.shop]\nrate = 1\n").unwrap_err();
        assert!(missing.contains("missing field `credentials`"), "{missing}");
        let name = parse("[projects.\"a b\"]\ncredentials = \"x\"\n").unwrap_err();
        assert!(name.contains("a project's name is"), "{name}");
    }

    #[test]
    fn webhooks_are_read_with_their_secrets_kept_out_of_debug() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let projects = parse(&format!(
            "[projects.shop]\ncredentials = \"shop.json\"\n[projects.shop.webhook]\nurl = \"https://h.shop/p\"\n\
             secrets = [\"{secret}\"]\njob-urls = [\"https://h.shop/\"]\nretry-for = \"2h\"\n"
        ))
        .unwrap();
        assert!(!format!("{projects:?}").contains("MfKQ9r8"), "{projects:?}");
        let platform = Platform { projects, webhook: None };
        let endpoints = platform.endpoints().unwrap();
        let shop = &endpoints[&Some("shop".to_owned())];
        assert_eq!((shop.retry_for, shop.timeout), (Duration::from_secs(7200), Duration::from_secs(10)));
        let jobs = platform.api_projects();
        assert_eq!(jobs.job_webhook_urls().collect::<Vec<_>>(), ["https://h.shop/"]);
        let bad = parse("[projects.shop]\ncredentials = \"x\"\n[projects.shop.webhook]\nsecrets = [\"whsec_AAAA\"]\n");
        assert!(bad.unwrap_err().contains("24 to 64 bytes"));
        let none = Platform {
            projects: ProjectConfigs::new(),
            webhook: Some(webhook_from_toml(toml::from_str("secrets = []").unwrap()).unwrap()),
        };
        assert_eq!(none.endpoints().unwrap_err(), "[webhook]: give secrets = [\"whsec_…\"]");
    }

    #[test]
    fn the_metadata_server_names_no_project() {
        let projects = parse("[projects.news]\ncredentials = \"metadata\"\n").unwrap();
        let error = projects["news"].client("news", Backoff::fcm_v1()).unwrap_err();
        assert_eq!(error, "[projects.news]: the credentials name no project: give project-id");
    }
}
