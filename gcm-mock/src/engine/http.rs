//! The pieces every answer is made of: statuses, bodies, headers, message ids.

use std::io::Write as _;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde::Serialize;

/// The body of a 401, as the real service sends it.
pub const UNAUTHORIZED_HTML: &str = "<HTML>\n<HEAD>\n<TITLE>Unauthorized</TITLE>\n</HEAD>\n\
<BODY BGCOLOR=\"#FFFFFF\" TEXT=\"#000000\">\n<H1>Unauthorized</H1>\n<H2>Error 401</H2>\n</BODY>\n</HTML>\n";

/// A message id, written out only when answering: devices get `0:<16 digits>%<16 hex>`
/// (the shape of real ids), topics a JSON number, dry runs `fake_message_id`.
#[derive(Clone, Copy, Debug)]
pub(super) enum MessageId {
    Device(u64),
    Topic(u64),
    Fake,
}

impl MessageId {
    pub(super) fn write(self, base: u64, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = match self {
            Self::Device(n) => write!(out, "0:{:016}%{base:016x}", 1_400_000_000_000_000 + n),
            Self::Topic(n) => write!(out, "{}", base % 1_000_000_000_000 + n),
            Self::Fake => write!(out, "fake_message_id"),
        };
    }

    pub(super) fn text(self, base: u64) -> String {
        let mut out = Vec::with_capacity(36);
        self.write(base, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Appends `text` as a JSON string.
pub(super) fn json_string(text: &str, out: &mut Vec<u8>) {
    // A string always serializes.
    let _ = serde_json::to_writer(&mut *out, text);
}

pub(super) fn unauthorized() -> Response<Bytes> {
    let mut response = text(StatusCode::UNAUTHORIZED, UNAUTHORIZED_HTML);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
    response
}

pub(super) fn bad_request(reason: &str) -> Response<Bytes> {
    text(StatusCode::BAD_REQUEST, &format!("{reason}\n"))
}

pub(super) fn with_retry_after(mut response: Response<Bytes>, retry_after: Option<&str>) -> Response<Bytes> {
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

pub(super) fn text(status: StatusCode, body: &str) -> Response<Bytes> {
    response(status, "text/plain; charset=UTF-8", Bytes::copy_from_slice(body.as_bytes()))
}

pub(super) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Bytes> {
    match serde_json::to_vec(value) {
        Ok(body) => response(status, "application/json; charset=UTF-8", Bytes::from(body)),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot encode the answer: {e}\n")),
    }
}

pub(super) fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(super) fn header_text(headers: &HeaderMap, name: &http::HeaderName) -> Option<String> {
    headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}
