//! The engine's answer to a request ([`Answer`]): ready, or a legacy multicast whose body is
//! written after the engine's lock is released (its 1000 results are most of the work).

use std::io::Write as _;

use bytes::Bytes;
use http::{Response, StatusCode};

use super::http::{IdWriter, json_string, response, with_retry_after};
use super::recipient::TokenResult;

/// The engine's answer to a request; [`Answer::into_response`] writes it out.
pub struct Answer(pub(super) Reply);

pub(super) enum Reply {
    Ready(Response<Bytes>),
    Multicast(Multicast),
}

impl Answer {
    pub(super) fn multicast(multicast: Multicast) -> Self {
        Self(Reply::Multicast(multicast))
    }

    /// The status it will have.
    pub fn status(&self) -> StatusCode {
        match &self.0 {
            Reply::Ready(response) => response.status(),
            Reply::Multicast(_) => StatusCode::OK,
        }
    }

    /// The response, its body written now (a multicast's message ids and results).
    pub fn into_response(self) -> Response<Bytes> {
        match self.0 {
            Reply::Ready(response) => response,
            Reply::Multicast(multicast) => multicast.into_response(),
        }
    }
}

impl From<Response<Bytes>> for Answer {
    fn from(response: Response<Bytes>) -> Self {
        Self(Reply::Ready(response))
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer").field("status", &self.status()).finish_non_exhaustive()
    }
}

/// A multicast's results, written out after the engine's lock is released.
pub(super) struct Multicast {
    pub(super) multicast_id: i64,
    pub(super) results: Vec<TokenResult>,
    pub(super) id_base: u64,
}

impl Multicast {
    fn into_response(self) -> Response<Bytes> {
        multicast_response(self.multicast_id, &self.results, self.id_base)
    }
}

fn multicast_response(multicast_id: i64, results: &[TokenResult], id_base: u64) -> Response<Bytes> {
    let success = results.iter().filter(|r| matches!(r, TokenResult::Delivered { .. })).count();
    let canonical_ids =
        results.iter().filter(|r| matches!(r, TokenResult::Delivered { canonical: Some(_), .. })).count();
    let mut out = Vec::with_capacity(96 + 48 * results.len());
    let _ = write!(
        out,
        r#"{{"multicast_id":{multicast_id},"success":{success},"failure":{},"canonical_ids":{canonical_ids},"results":["#,
        results.len() - success
    );
    let ids = IdWriter::new(id_base);
    let mut retry_after = None;
    for (i, result) in results.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match result {
            TokenResult::Delivered { id, canonical } => {
                out.extend_from_slice(br#"{"message_id":""#);
                ids.write(*id, &mut out);
                out.push(b'"');
                if let Some(canonical) = canonical {
                    out.extend_from_slice(br#","registration_id":"#);
                    json_string(canonical, &mut out);
                }
                out.push(b'}');
            }
            TokenResult::Error { code, retry_after: after } => {
                retry_after = retry_after.or(after.as_deref());
                out.extend_from_slice(br#"{"error":"#);
                json_string(code, &mut out);
                out.push(b'}');
            }
        }
    }
    out.extend_from_slice(b"]}");
    with_retry_after(response(StatusCode::OK, "application/json; charset=UTF-8", Bytes::from(out)), retry_after)
}
