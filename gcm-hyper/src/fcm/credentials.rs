//! Where an [`FcmClient`](crate::FcmClient) gets its access tokens, found the way Google's
//! own SDKs find them: a key file (as text, a path, or `GOOGLE_APPLICATION_CREDENTIALS`),
//! the gcloud user file, the metadata server of Google Cloud, or your own source.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gcm_proto::oauth::{AccessToken, AuthorizedUser, KeyFile, METADATA_HOST, MetadataServer, ServiceAccountKey};

use crate::error::Error;

/// A boxed `Send` future, as [`TokenSource::fetch`] returns: futures-util's, re-exported.
pub use futures_util::future::BoxFuture;

/// Your own access-token source: gcp_auth, yup-oauth2, a secret manager. The client calls
/// [`fetch`](TokenSource::fetch) one at a time, caches the token until shortly before it
/// expires, and backs off after a failure.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use gcm_hyper::{BoxFuture, Credentials, Error, TokenSource};
/// use gcm_hyper::gcm_proto::oauth::AccessToken;
///
/// struct FromVault;
///
/// impl TokenSource for FromVault {
///     fn describe(&self) -> String {
///         "the vault's FCM token".into()
///     }
///     fn fetch(&self) -> BoxFuture<'_, Result<AccessToken, Error>> {
///         Box::pin(async {
///             // e.g. gcp_auth: provider.token(&[SCOPE]).await, mapped into an AccessToken
///             Ok(AccessToken::new("ya29.from-the-vault", SystemTime::now() + Duration::from_secs(3600)))
///         })
///     }
/// }
///
/// let credentials = Credentials::custom(FromVault);
/// assert_eq!(credentials.describe(), "the vault's FCM token");
/// ```
pub trait TokenSource: Send + Sync + 'static {
    /// What the source is, for errors and logs; never a secret.
    fn describe(&self) -> String;
    /// A new access token.
    fn fetch(&self) -> BoxFuture<'_, Result<AccessToken, Error>>;
}

/// The credentials an [`FcmClient`](crate::FcmClient) mints its access tokens with.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// A service account's key file: a JWT signed with its key, at its `token_uri`.
    ServiceAccount(ServiceAccountKey),
    /// The gcloud user file: its refresh token, at Google's token endpoint.
    AuthorizedUser(AuthorizedUser),
    /// The metadata server of a Google Cloud VM, Cloud Run service or GKE pod.
    Metadata(MetadataServer),
    /// Your own source.
    Custom(Arc<dyn TokenSource>),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl From<KeyFile> for Credentials {
    fn from(file: KeyFile) -> Self {
        match file {
            KeyFile::ServiceAccount(key) => Self::ServiceAccount(key),
            KeyFile::AuthorizedUser(user) => Self::AuthorizedUser(user),
        }
    }
}

impl From<ServiceAccountKey> for Credentials {
    fn from(key: ServiceAccountKey) -> Self {
        Self::ServiceAccount(key)
    }
}

/// The environment variable that names a credential file.
pub const CREDENTIALS_ENV: &str = "GOOGLE_APPLICATION_CREDENTIALS";
/// The environment variable that overrides the metadata server's host.
pub const METADATA_HOST_ENV: &str = "GCE_METADATA_HOST";

impl Credentials {
    /// A credential file's JSON text (a service account's key, or the gcloud user file).
    pub fn from_json(json: &str) -> Result<Self, Error> {
        KeyFile::from_json(json).map(Self::from).map_err(Error::Auth)
    }

    /// A credential file on disk; errors name the path.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read the credential file {}: {e}", path.display())))?;
        Self::from_json(&json).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// The file `GOOGLE_APPLICATION_CREDENTIALS` names, if it is set.
    pub fn from_env() -> Result<Option<Self>, Error> {
        std::env::var_os(CREDENTIALS_ENV).map(Self::from_file).transpose()
    }

    /// The metadata server, at `GCE_METADATA_HOST` if set, else `metadata.google.internal`.
    pub fn metadata_server() -> Result<Self, Error> {
        let host = std::env::var(METADATA_HOST_ENV).unwrap_or_else(|_| METADATA_HOST.to_owned());
        Self::metadata_server_at(&host)
    }

    /// The metadata server at `host` (`host:port`, or a mock's base URL).
    pub fn metadata_server_at(host: &str) -> Result<Self, Error> {
        MetadataServer::new(host).map(Self::Metadata).map_err(Error::Auth)
    }

    /// Your own source.
    pub fn custom(source: impl TokenSource) -> Self {
        Self::Custom(Arc::new(source))
    }

    /// The project the credentials name: a key file's `project_id`, a user file's
    /// `quota_project_id`.
    pub fn project_id(&self) -> Option<&str> {
        match self {
            Self::ServiceAccount(key) => key.project_id(),
            Self::AuthorizedUser(user) => user.quota_project_id.as_deref(),
            Self::Metadata(_) | Self::Custom(_) => None,
        }
    }

    /// What the credentials are, for errors and logs; never a secret.
    pub fn describe(&self) -> String {
        match self {
            Self::ServiceAccount(key) => {
                format!("service account {} (token endpoint {})", key.client_email(), key.token_uri())
            }
            Self::AuthorizedUser(_) => {
                "gcloud user credentials (token endpoint https://oauth2.googleapis.com/token)".into()
            }
            Self::Metadata(server) => format!("the metadata server ({})", server.token_url()),
            Self::Custom(source) => source.describe(),
        }
    }
}

/// The places application-default discovery looks, in Google's order.
#[derive(Clone, Debug)]
pub(crate) enum Candidate {
    /// `GOOGLE_APPLICATION_CREDENTIALS`.
    Env(PathBuf),
    /// gcloud's well-known file.
    WellKnown(PathBuf),
    /// The metadata server.
    Metadata(String),
}

/// Google's order, read from `env`: the variable's file, gcloud's well-known file
/// (`$CLOUDSDK_CONFIG`, else `~/.config/gcloud`, or `%APPDATA%\gcloud` on Windows), then
/// the metadata server.
pub(crate) fn candidates(env: &dyn Fn(&str) -> Option<String>) -> Vec<Candidate> {
    let mut found = Vec::new();
    if let Some(path) = env(CREDENTIALS_ENV).filter(|path| !path.is_empty()) {
        found.push(Candidate::Env(PathBuf::from(path)));
    }
    let gcloud = env("CLOUDSDK_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env("APPDATA").map(|dir| Path::new(&dir).join("gcloud")))
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".config").join("gcloud")));
    if let Some(dir) = gcloud {
        found.push(Candidate::WellKnown(dir.join("application_default_credentials.json")));
    }
    found.push(Candidate::Metadata(env(METADATA_HOST_ENV).unwrap_or_else(|| METADATA_HOST.to_owned())));
    found
}
