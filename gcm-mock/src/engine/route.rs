//! Where a request goes, decided once from its method and path ([`Route::of`]).

use http::Method;

use gcm_proto::v1::TopicAction;

use super::{legacy, oauth, topics, v1};

/// A request's destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route<'a> {
    /// `POST /gcm/send`, `POST /fcm/send`.
    LegacySend,
    /// `POST /v1/projects/{project}/messages:send`.
    V1Send { project: &'a str },
    /// `POST /iid/v1:batchAdd` or `:batchRemove`: topic management.
    Topics { action: TopicAction },
    /// `POST` or `DELETE /v1/projects/{project}/registrations/{token}/topicSubscriptions…`:
    /// FCM v1's topic management, one token a request.
    Registration(topics::Registration<'a>),
    /// `POST /token`: the OAuth2 token endpoint.
    Token,
    /// `GET` the metadata server's token.
    MetadataToken,
    /// Everything else: answered at once, nothing logged.
    Api(Api),
}

/// The routes that are neither sends nor tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Api {
    /// `GET` the metadata server's project id.
    MetadataProjectId,
    /// A send or token path with another method than `POST`: 405.
    PostOnly,
    /// `GET /_mock/inbox`.
    Inbox,
    /// `DELETE /_mock/inbox`.
    ClearInbox,
    /// `GET /_mock/requests`.
    Requests,
    /// `GET /_mock/stats`.
    Stats,
    /// `GET /_mock/topics`.
    Topics,
    /// `GET /_mock/service-account`.
    ServiceAccount,
    /// `POST /_mock/reset`.
    Reset,
    NotFound,
}

impl<'a> Route<'a> {
    pub(super) fn of(method: &Method, path: &'a str) -> Self {
        let post = method == Method::POST;
        let post_only = |route| if post { route } else { Self::Api(Api::PostOnly) };
        if legacy::is_send_path(path) {
            return post_only(Self::LegacySend);
        }
        if let Some(project) = v1::project_of(path) {
            return post_only(Self::V1Send { project });
        }
        if let Some(action) = topics::action_of(path) {
            return post_only(Self::Topics { action });
        }
        if let Some(registration) = topics::registration_of(path) {
            return Self::Registration(registration);
        }
        if path == oauth::TOKEN_PATH {
            return post_only(Self::Token);
        }
        Self::Api(match (method, path) {
            (&Method::GET, gcm_proto::oauth::METADATA_TOKEN_PATH) => return Self::MetadataToken,
            (&Method::GET, gcm_proto::oauth::METADATA_PROJECT_ID_PATH) => Api::MetadataProjectId,
            (&Method::GET, "/_mock/inbox") => Api::Inbox,
            (&Method::DELETE, "/_mock/inbox") => Api::ClearInbox,
            (&Method::GET, "/_mock/requests") => Api::Requests,
            (&Method::GET, "/_mock/stats") => Api::Stats,
            (&Method::GET, "/_mock/topics") => Api::Topics,
            (&Method::GET, "/_mock/service-account") => Api::ServiceAccount,
            (&Method::POST, "/_mock/reset") => Api::Reset,
            _ => Api::NotFound,
        })
    }
}
