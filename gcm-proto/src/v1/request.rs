//! Encoding: a v1 [`Message`] becomes `POST {base}/v1/projects/{project}/messages:send`.

use std::collections::BTreeMap;

use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Uri};
use serde::Serialize;

use super::message::{AndroidConfig, ApnsConfig, FcmOptions, Message, Notification, Target, WebpushConfig};
use crate::backoff::Backoff;
use crate::error::BuildError;
use crate::request::{CONTENT_TYPE_JSON, absolute_url};

/// Where FCM HTTP v1 lives.
pub const FCM_V1_BASE_URL: &str = "https://fcm.googleapis.com";

/// The project's v1 configuration: base URL, project id and backoff. It turns messages into
/// requests ([`Fcm::encode`]) and responses into fates ([`Fcm::decode`]); the OAuth2 access
/// token comes from the caller for each request (see [`crate::oauth`] with the `oauth`
/// feature).
#[derive(Clone, Debug)]
pub struct Fcm {
    project_id: String,
    send_url: Uri,
    pub(crate) backoff: Backoff,
}

impl Fcm {
    /// The sender of this Firebase project, on [`FCM_V1_BASE_URL`].
    pub fn new(project_id: &str) -> Result<Self, BuildError> {
        let valid = !project_id.is_empty()
            && project_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'_'));
        if !valid {
            return Err(BuildError::InvalidProjectId);
        }
        let send_url = send_url(FCM_V1_BASE_URL, project_id)?;
        Ok(Self { project_id: project_id.to_owned(), send_url, backoff: Backoff::default() })
    }

    /// Sends to another server: a mock such as `http://127.0.0.1:PORT`. The path
    /// `/v1/projects/{project}/messages:send` is appended.
    pub fn with_base_url(mut self, base: &str) -> Result<Self, BuildError> {
        self.send_url = send_url(base, &self.project_id)?;
        Ok(self)
    }

    /// Uses another backoff for the outcomes of this sender.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The project id.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// The send URL.
    pub fn send_url(&self) -> &Uri {
        &self.send_url
    }

    /// The backoff of the outcomes of this sender.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// Builds the request for `message`, authorized by this OAuth2 access token:
    /// `POST` to the send URL with `Authorization: Bearer …`, `Content-Type:
    /// application/json`, `Content-Length` and the body `{"message":{…}}` (with
    /// `"validate_only":true` when asked).
    pub fn encode(&self, message: &Message, access_token: &str) -> Result<Request<Vec<u8>>, BuildError> {
        let mut authorization =
            HeaderValue::try_from(format!("Bearer {access_token}")).map_err(|_| BuildError::InvalidAccessToken)?;
        authorization.set_sensitive(true);
        let body = encode_body(message);
        let mut request = Request::new(Vec::new());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.send_url.clone();
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, authorization);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_JSON));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        *request.body_mut() = body;
        Ok(request)
    }
}

/// `{base}/v1/projects/{project}/messages:send`; errors name `base`.
fn send_url(base: &str, project_id: &str) -> Result<Uri, BuildError> {
    let url = format!("{}/v1/projects/{project_id}/messages:send", base.trim_end_matches('/'));
    absolute_url(&url, base)
}

/// The JSON body alone.
pub fn encode_body(message: &Message) -> Vec<u8> {
    let (mut token, mut topic, mut condition) = (None, None, None);
    match &message.target {
        Target::Token(value) => token = Some(value.as_str()),
        Target::Topic(value) => topic = Some(value.as_str()),
        Target::Condition(value) => condition = Some(value.as_str()),
    }
    let wire = Wire {
        message: WireMessage {
            token,
            topic,
            condition,
            data: &message.data,
            notification: message.notification.as_ref(),
            android: message.android.as_ref(),
            apns: message.apns.as_ref(),
            webpush: message.webpush.as_ref(),
            fcm_options: message.fcm_options.as_ref(),
        },
        validate_only: message.validate_only,
    };
    // Room for the fixed parts and the data: one allocation for most messages.
    let data_len: usize = message.data.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    let mut body = Vec::with_capacity(128 + data_len);
    // Serializing strings and maps into memory cannot fail.
    let _ = serde_json::to_writer(&mut body, &wire);
    body
}

#[derive(Serialize)]
struct Wire<'a> {
    message: WireMessage<'a>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    validate_only: bool,
}

/// The message as the wire has it: the target is a field of its own name (one of the
/// three is set).
#[derive(Serialize)]
struct WireMessage<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    data: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notification: Option<&'a Notification>,
    #[serde(skip_serializing_if = "Option::is_none")]
    android: Option<&'a AndroidConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    apns: Option<&'a ApnsConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    webpush: Option<&'a WebpushConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fcm_options: Option<&'a FcmOptions>,
}
