//! Encoding: a v1 [`Message`] becomes `POST {base}/v1/projects/{project}/messages:send`.

use std::collections::BTreeMap;

use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Uri};
use serde::Serialize;

use super::message::{Content, FcmOptions, Message, Multicast, Notification, Recipients, Target};
use super::{AndroidConfig, ApnsConfig, WebpushConfig};
use crate::backoff::Backoff;
use crate::error::BuildError;
use crate::json;
use crate::request::{CONTENT_TYPE_JSON, absolute_url};

/// Where FCM HTTP v1 lives.
pub const FCM_V1_BASE_URL: &str = "https://fcm.googleapis.com";
/// Where the Instance ID API (topic management) lives.
pub const IID_BASE_URL: &str = "https://iid.googleapis.com";

/// The project's v1 configuration: base URL, project id and backoff. It turns messages into
/// requests ([`Fcm::encode`]) and responses into fates ([`Fcm::decode`]); the OAuth2 access
/// token comes from the caller for each request (see the `oauth` module with the `oauth`
/// feature).
#[derive(Clone, Debug)]
pub struct Fcm {
    project_id: String,
    send_url: Uri,
    /// Where topic management calls go (see the `topics` module).
    pub(super) iid_base: String,
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
        Ok(Self {
            project_id: project_id.to_owned(),
            send_url,
            iid_base: IID_BASE_URL.to_owned(),
            backoff: Backoff::fcm_v1(),
        })
    }

    /// Sends to another server: a mock such as `http://127.0.0.1:PORT`. The path
    /// `/v1/projects/{project}/messages:send` is appended, and topic management goes there
    /// too (see [`with_iid_base_url`](Fcm::with_iid_base_url) to send it elsewhere).
    pub fn with_base_url(mut self, base: &str) -> Result<Self, BuildError> {
        self.send_url = send_url(base, &self.project_id)?;
        self.with_iid_base_url(base)
    }

    /// Uses another backoff for the outcomes of this sender (the default is
    /// [`Backoff::fcm_v1`]: at least 60 s after a quota error, 10 s after a server error).
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
        post_json(self.send_url.clone(), encode_body(message), access_token)
    }

    /// The request for one token of a multicast whose content `template` encodes: the same
    /// bytes as [`encode`](Fcm::encode) of that token's message, without serializing the
    /// content again.
    pub fn encode_token(
        &self,
        template: &Template,
        token: &str,
        access_token: &str,
    ) -> Result<Request<Vec<u8>>, BuildError> {
        post_json(self.send_url.clone(), template.body(token), access_token)
    }
}

/// `POST url` with a JSON `body`, authorized by an OAuth2 access token (a sensitive header).
pub(super) fn post_json(url: Uri, body: Vec<u8>, access_token: &str) -> Result<Request<Vec<u8>>, BuildError> {
    let mut authorization =
        HeaderValue::try_from(format!("Bearer {access_token}")).map_err(|_| BuildError::InvalidAccessToken)?;
    authorization.set_sensitive(true);
    let mut request = Request::new(Vec::new());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = url;
    let headers = request.headers_mut();
    headers.insert(AUTHORIZATION, authorization);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_JSON));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    *request.body_mut() = body;
    Ok(request)
}

/// `{base}/v1/projects/{project}/messages:send`; errors name `base`.
fn send_url(base: &str, project_id: &str) -> Result<Uri, BuildError> {
    let url = format!("{}/v1/projects/{project_id}/messages:send", base.trim_end_matches('/'));
    absolute_url(&url, base)
}

/// The JSON body alone.
pub fn encode_body(message: &Message) -> Vec<u8> {
    serialize(Some(&message.target), &message.content)
}

/// A multicast's [`Content`] encoded once: the body for a token is
/// `{"message":{"token":` (or `"fid":`) + the recipient as a JSON string + the rest, byte
/// for byte what [`encode_body`] gives for that recipient's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// How each body starts, up to the recipient.
    open: &'static [u8],
    /// Everything after the recipient: `,"data":{…}…}}`, or `}}` for an empty content.
    rest: Vec<u8>,
}

/// How every v1 body starts.
const MESSAGE_OPEN: &[u8] = br#"{"message":{"#;
/// How a token's body starts.
const TOKEN_OPEN: &[u8] = br#"{"message":{"token":"#;
/// How an installation id's body starts.
const FID_OPEN: &[u8] = br#"{"message":{"fid":"#;

impl Template {
    /// The template of a multicast: its content, to its kind of recipient.
    pub fn of(multicast: &Multicast) -> Self {
        let open = match multicast.recipient_kind() {
            Recipients::Tokens => TOKEN_OPEN,
            Recipients::Fids => FID_OPEN,
        };
        Self { open, ..Self::new(multicast.content()) }
    }

    /// Encodes `content` for registration tokens.
    pub fn new(content: &Content) -> Self {
        // With no target, the body is `{"message":{` followed by the fields or `}`.
        let untargeted = serialize(None, content);
        let fields = untargeted.get(MESSAGE_OPEN.len()..).unwrap_or_default();
        let mut rest = Vec::with_capacity(fields.len() + 1);
        if fields.first() != Some(&b'}') {
            rest.push(b',');
        }
        rest.extend_from_slice(fields);
        Self { open: TOKEN_OPEN, rest }
    }

    /// The body for one recipient.
    pub fn body(&self, token: &str) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.open.len() + token.len() + 2 + self.rest.len());
        body.extend_from_slice(self.open);
        json::push_str(&mut body, token);
        body.extend_from_slice(&self.rest);
        body
    }
}

fn serialize(target: Option<&Target>, content: &Content) -> Vec<u8> {
    let (mut token, mut topic, mut condition, mut fid) = (None, None, None, None);
    match target {
        Some(Target::Token(value)) => token = Some(value.as_str()),
        Some(Target::Topic(value)) => topic = Some(value.as_str()),
        Some(Target::Condition(value)) => condition = Some(value.as_str()),
        Some(Target::Fid(value)) => fid = Some(value.as_str()),
        None => {}
    }
    let wire = Wire {
        message: WireMessage {
            token,
            topic,
            condition,
            fid,
            data: &content.data,
            notification: content.notification.as_ref(),
            android: content.android.as_ref(),
            apns: content.apns.as_ref(),
            webpush: content.webpush.as_ref(),
            fcm_options: content.fcm_options.as_ref(),
            extra: &content.extra,
        },
        validate_only: content.validate_only,
    };
    // Room for the fixed parts and the data: one allocation for most messages.
    let data_len: usize = content.data.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
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
/// three is set, or none for a [`Template`]).
#[derive(Serialize)]
struct WireMessage<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fid: Option<&'a str>,
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
    #[serde(flatten, skip_serializing_if = "serde_json::Map::is_empty")]
    extra: &'a serde_json::Map<String, serde_json::Value>,
}
