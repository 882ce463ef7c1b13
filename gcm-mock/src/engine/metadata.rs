//! Google Cloud's metadata server, as far as FCM v1 clients use it: an access token for the
//! built-in account and the project id, only with `Metadata-Flavor: Google`.

use std::time::SystemTime;

use bytes::Bytes;
use http::{Request, Response, StatusCode};

use super::Engine;
use super::http::response;

impl Engine {
    /// `GET /computeMetadata/v1/instance/service-accounts/default/token`: the metadata
    /// server's token for the built-in account, only with `Metadata-Flavor: Google`.
    pub(super) fn metadata_token<B>(&mut self, request: &Request<B>, now: SystemTime) -> (Response<Bytes>, bool) {
        if let Some(refusal) = metadata_flavor_missing(request) {
            return (refusal, false);
        }
        self.issue_token(now)
    }

    /// `GET /computeMetadata/v1/project/project-id`.
    pub(super) fn metadata_project_id<B>(&self, request: &Request<B>) -> Response<Bytes> {
        if let Some(refusal) = metadata_flavor_missing(request) {
            return refusal;
        }
        let project = self.oauth.project_id().unwrap_or_default().to_owned();
        let mut answer = response(StatusCode::OK, "application/text", Bytes::from(project));
        answer.headers_mut().insert("metadata-flavor", http::HeaderValue::from_static("Google"));
        answer
    }
}

/// The metadata server's 403 for a request without `Metadata-Flavor: Google`.
fn metadata_flavor_missing<B>(request: &Request<B>) -> Option<Response<Bytes>> {
    let flavored = request.headers().get("metadata-flavor").is_some_and(|value| value == "Google");
    (!flavored).then(|| response(StatusCode::FORBIDDEN, "text/html; charset=UTF-8", Bytes::from_static(METADATA_403)))
}

/// What Google's metadata server says to a request without the header.
const METADATA_403: &[u8] = b"Missing Metadata-Flavor:Google header.\n";
