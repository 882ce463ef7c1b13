//! The pieces every answer is made of: statuses, bodies, headers, message ids.

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
    /// Appends the id's text.
    pub(super) fn write(self, base: u64, out: &mut Vec<u8>) {
        IdWriter::new(base).write(self, out);
    }

    pub(super) fn text(self, base: u64) -> String {
        let mut out = Vec::with_capacity(36);
        self.write(base, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Writes the ids of one answer (a 1000-token answer writes 1000 of them): the hex part,
/// the same for all, is made once, and digits come from itoa, not from `core::fmt`.
pub(super) struct IdWriter {
    base: u64,
    /// `%` and the base as 16 lowercase hex digits (as `{:016x}` writes it).
    suffix: [u8; 17],
}

impl IdWriter {
    pub(super) fn new(base: u64) -> Self {
        let mut suffix = [b'%'; 17];
        for (nibble, slot) in suffix.iter_mut().skip(1).rev().enumerate() {
            let digit = char::from_digit(((base >> (nibble * 4)) & 0xf) as u32, 16);
            *slot = digit.map_or(b'0', |c| c as u8);
        }
        Self { base, suffix }
    }

    pub(super) fn write(&self, id: MessageId, out: &mut Vec<u8>) {
        let mut digits = itoa::Buffer::new();
        match id {
            MessageId::Device(n) => {
                // 16 digits: the shape of real ids, as `0:{:016}` writes them.
                let decimal = digits.format(1_400_000_000_000_000_u64.saturating_add(n)).as_bytes();
                out.extend_from_slice(b"0:");
                out.extend(std::iter::repeat_n(b'0', 16_usize.saturating_sub(decimal.len())));
                out.extend_from_slice(decimal);
                out.extend_from_slice(&self.suffix);
            }
            MessageId::Topic(n) => {
                out.extend_from_slice(digits.format((self.base % 1_000_000_000_000).saturating_add(n)).as_bytes());
            }
            MessageId::Fake => out.extend_from_slice(b"fake_message_id"),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_as_the_format_strings_write_them() {
        for (n, base) in [(0, 0), (1, u64::MAX), (42, 0x0123_4567_89ab_cdef), (8_599_999_999_999_999, 7)] {
            let written = |id: MessageId| {
                let mut out = Vec::new();
                id.write(base, &mut out);
                String::from_utf8(out).unwrap()
            };
            assert_eq!(written(MessageId::Device(n)), format!("0:{:016}%{base:016x}", 1_400_000_000_000_000 + n));
            assert_eq!(written(MessageId::Topic(n)), format!("{}", base % 1_000_000_000_000 + n));
        }
        let mut out = Vec::new();
        IdWriter::new(0xab).write(MessageId::Device(0), &mut out);
        assert_eq!(out, b"0:1400000000000000%00000000000000ab");
    }
}
