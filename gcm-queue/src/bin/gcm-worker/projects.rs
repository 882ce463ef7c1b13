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
//! ```

use std::collections::BTreeMap;

use gcm_hyper::gcm_proto::Backoff;
use gcm_hyper::v1::Fcm;
use gcm_hyper::{Credentials, FcmClient};
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
}

/// The configured projects, by name.
pub(crate) type ProjectConfigs = BTreeMap<String, ProjectConfig>;

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
    fn the_metadata_server_names_no_project() {
        let projects = parse("[projects.news]\ncredentials = \"metadata\"\n").unwrap();
        let error = projects["news"].client("news", Backoff::fcm_v1()).unwrap_err();
        assert_eq!(error, "[projects.news]: the credentials name no project: give project-id");
    }
}
