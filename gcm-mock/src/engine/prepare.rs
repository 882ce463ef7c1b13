//! A send's body read before the engine is locked ([`Prepared`]): with the answer written
//! after it ([`Answer`](super::Answer)), most of a 1000-token send happens outside the lock,
//! so a server that keeps them out of it works on every core.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Request, Response};

use super::legacy::{self, ParsedSend};
use super::route::{Api, Route};
use super::v1;

/// A request with its send body parsed, for [`Engine::answer`](super::Engine::answer).
/// Parsing is pure: preparing a request and answering it later gives the bytes
/// [`Engine::handle`](super::Engine::handle) gives.
pub struct Prepared<'a, B> {
    pub(super) request: &'a Request<B>,
    pub(super) route: Route<'a>,
    pub(super) body: Body<'a>,
}

/// What was read from the body, by route.
#[allow(clippy::large_enum_variant)] // one per request, on its way from the parser to the engine
pub(super) enum Body<'a> {
    /// A legacy JSON send, or the parser's refusal (its 400 is decided under the lock, after
    /// the checks that come first).
    LegacyJson(Result<ParsedSend<'a>, serde_json::Error>),
    /// A v1 send, or its 400.
    V1(Result<v1::Send, Response<Bytes>>),
    /// Anything else: read under the lock, as it is small or rare.
    Unread,
}

impl<'a, B: AsRef<[u8]>> Prepared<'a, B> {
    /// Routes `request`, and reads its body if it is a send.
    pub fn new(request: &'a Request<B>) -> Self {
        let route = Route::of(request.method(), request.uri().path());
        let body = request.body().as_ref();
        let body = match route {
            Route::LegacySend if is_json(request) => Body::LegacyJson(legacy::parse_json_send(body)),
            Route::V1Send { .. } => Body::V1(v1::parse_send(body)),
            _ => Body::Unread,
        };
        Self { request, route, body }
    }

    /// True for `GET /_mock/inbox`, which a server may answer off its threads
    /// ([`Engine::inbox_page`](super::Engine::inbox_page)) instead of under the lock.
    pub(crate) fn is_inbox_read(&self) -> bool {
        self.route == Route::Api(Api::Inbox)
    }
}

/// `Content-Type: application/json…`: the legacy protocol's JSON format.
fn is_json<B>(request: &Request<B>) -> bool {
    let json = b"application/json";
    request.headers().get(CONTENT_TYPE).is_some_and(|ct| {
        ct.as_bytes().trim_ascii_start().get(..json.len()).is_some_and(|start| start.eq_ignore_ascii_case(json))
    })
}

impl<B> std::fmt::Debug for Prepared<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let read = !matches!(self.body, Body::Unread);
        f.debug_struct("Prepared").field("route", &self.route).field("read", &read).finish_non_exhaustive()
    }
}
