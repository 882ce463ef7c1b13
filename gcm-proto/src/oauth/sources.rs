//! The other credential files and servers Google's SDKs read: the gcloud user file
//! (`authorized_user`) and the GCE / Cloud Run / GKE metadata server. Requests and
//! answers only; fetching is the adapter's.

use std::fmt;

use http::{HeaderValue, Request, Response, Uri};
use serde::Deserialize;

use super::{AuthError, GOOGLE_TOKEN_URI, ServiceAccountKey, invalid_json};
use crate::request::absolute_url;

/// The metadata server's host name on Google Cloud.
pub const METADATA_HOST: &str = "metadata.google.internal";
/// Where the metadata server hands out the default service account's access token.
pub const METADATA_TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
/// Where the metadata server tells the project id.
pub const METADATA_PROJECT_ID_PATH: &str = "/computeMetadata/v1/project/project-id";

/// A credential file, by its `type`: a service account's key, or the user credentials
/// `gcloud auth application-default login` writes.
#[derive(Clone, Debug)]
pub enum KeyFile {
    /// `"type": "service_account"`.
    ServiceAccount(ServiceAccountKey),
    /// `"type": "authorized_user"`.
    AuthorizedUser(AuthorizedUser),
}

impl KeyFile {
    /// Reads a credential file's JSON text. A text that is not JSON but looks like a path
    /// gets an error that says so.
    pub fn from_json(json: &str) -> Result<Self, AuthError> {
        #[derive(Deserialize)]
        struct Kind {
            #[serde(default, rename = "type")]
            kind: Option<String>,
        }
        let kind = serde_json::from_str::<Kind>(json).map_err(|e| invalid_json(json, &e))?;
        match kind.kind.as_deref() {
            Some("authorized_user") => AuthorizedUser::from_json(json).map(Self::AuthorizedUser),
            _ => ServiceAccountKey::from_json(json).map(Self::ServiceAccount),
        }
    }

    /// The project the file names (`project_id`, or a user file's `quota_project_id`).
    pub fn project_id(&self) -> Option<&str> {
        match self {
            Self::ServiceAccount(key) => key.project_id(),
            Self::AuthorizedUser(user) => user.quota_project_id.as_deref(),
        }
    }
}

/// The user credentials of `gcloud auth application-default login`: a refresh token
/// exchanged for access tokens. `Debug` shows the client id only.
#[derive(Clone, Deserialize)]
pub struct AuthorizedUser {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    /// The project billed for the calls, when the file names one.
    #[serde(default)]
    pub quota_project_id: Option<String>,
    /// The token endpoint, when the file names one (as Google's Python library reads it).
    #[serde(default)]
    token_uri: Option<String>,
}

impl fmt::Debug for AuthorizedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizedUser")
            .field("client_id", &self.client_id)
            .field("quota_project_id", &self.quota_project_id)
            .finish_non_exhaustive()
    }
}

impl AuthorizedUser {
    /// Reads the file's JSON text.
    pub fn from_json(json: &str) -> Result<Self, AuthError> {
        let user: Self = serde_json::from_str(json).map_err(|e| invalid_json(json, &e))?;
        if let Some(uri) = &user.token_uri {
            absolute_url(uri, uri).map_err(|_| AuthError::InvalidTokenUri(uri.clone()))?;
        }
        Ok(user)
    }

    /// The token endpoint: the file's `token_uri`, else Google's.
    pub fn token_uri(&self) -> &str {
        self.token_uri.as_deref().unwrap_or(GOOGLE_TOKEN_URI)
    }

    /// The token request: `POST` to [`token_uri`](Self::token_uri) with the refresh-token
    /// grant.
    pub fn token_request(&self) -> Request<Vec<u8>> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", &self.client_secret)
            .append_pair("refresh_token", &self.refresh_token)
            .finish()
            .into_bytes();
        // Checked when the file was read.
        let uri = self.token_uri().parse().unwrap_or_else(|_| Uri::from_static(GOOGLE_TOKEN_URI));
        super::form_post(uri, body)
    }
}

/// The metadata server of a Google Cloud VM, Cloud Run service or GKE pod: it hands out
/// the attached service account's access tokens to requests with `Metadata-Flavor: Google`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataServer {
    token_url: Uri,
    project_id_url: Uri,
}

impl MetadataServer {
    /// The server at `host`: a host name or `host:port` as `GCE_METADATA_HOST` holds it
    /// (default [`METADATA_HOST`]), or a base URL (`http://127.0.0.1:PORT` for a mock).
    pub fn new(host: &str) -> Result<Self, AuthError> {
        let base = if host.contains("://") { host.trim_end_matches('/').to_owned() } else { format!("http://{host}") };
        let url = |path: &str| {
            let url = format!("{base}{path}");
            absolute_url(&url, host).map_err(|_| AuthError::InvalidTokenUri(url))
        };
        Ok(Self { token_url: url(METADATA_TOKEN_PATH)?, project_id_url: url(METADATA_PROJECT_ID_PATH)? })
    }

    /// Where tokens come from.
    pub fn token_url(&self) -> &Uri {
        &self.token_url
    }

    /// `GET …/service-accounts/default/token` with `Metadata-Flavor: Google`; the answer
    /// reads with [`decode_token_response`](super::decode_token_response).
    pub fn token_request(&self) -> Request<Vec<u8>> {
        get(&self.token_url)
    }

    /// `GET …/project/project-id` with `Metadata-Flavor: Google`.
    pub fn project_id_request(&self) -> Request<Vec<u8>> {
        get(&self.project_id_url)
    }

    /// The project id from the answer to [`project_id_request`](Self::project_id_request).
    pub fn decode_project_id<B: AsRef<[u8]>>(response: &Response<B>) -> Result<String, AuthError> {
        let body = response.body().as_ref();
        let text = std::str::from_utf8(body).unwrap_or_default().trim();
        if !response.status().is_success() || text.is_empty() {
            return Err(AuthError::TokenRefused {
                status: response.status().as_u16(),
                error: "no project id".to_owned(),
                description: None,
                body: crate::RawBody(body.to_vec()),
            });
        }
        Ok(text.to_owned())
    }
}

fn get(url: &Uri) -> Request<Vec<u8>> {
    let mut request = Request::new(Vec::new());
    *request.uri_mut() = url.clone();
    request.headers_mut().insert("metadata-flavor", HeaderValue::from_static("Google"));
    request
}
