//! FCM v1's HTTP/2 transport: h2 connections per origin, shared by every request and
//! opened again when they close or idle too long. One connection carries requests until the
//! peer's `SETTINGS_MAX_CONCURRENT_STREAMS` is reached; then another is opened, up to a
//! cap, and past the cap the least loaded one queues the stream. hyper-util's pool hands
//! each request to the connection's task through a channel and spawns a task per request to
//! wait for the answer; h2's own handle opens the stream from the caller's task and wakes it
//! with the answer, which costs about a third less client CPU per message (BENCHMARKS.md).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use h2::client::SendRequest;
use http::header::{CONTENT_LENGTH, USER_AGENT};
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Uri};
use hyper_util::rt::TokioIo;
use tower_service::Service as _;

use crate::connector::DefaultConnector;
use crate::error::Error;
use crate::transport::{Limits, USER_AGENT_VALUE};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// hyper's HTTP/2 client defaults, kept so that nothing changes on the wire but the CPU.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
const MAX_HEADER_LIST: u32 = 16 * 1024;

/// Default cap of HTTP/2 connections per origin.
pub const DEFAULT_MAX_CONNECTIONS: usize = 8;

/// The connections of one client (and of its clones and `base_url` copies).
#[derive(Clone)]
pub(crate) struct Http2 {
    connector: DefaultConnector,
    idle_timeout: Duration,
    max_connections: usize,
    /// One entry per origin: the send endpoint, the token endpoint.
    origins: Arc<Mutex<Vec<Arc<Origin>>>>,
}

struct Origin {
    scheme: Scheme,
    authority: Authority,
    /// The open connections, oldest first.
    live: Mutex<Vec<Live>>,
    /// Held while connecting (one handshake at a time), with the last handshake's failure:
    /// the tasks that waited for it share it rather than each trying in turn.
    connecting: tokio::sync::Mutex<Option<Arc<dyn std::error::Error + Send + Sync>>>,
    /// Handshakes finished, for a waiting task to tell whether one ended while it waited.
    attempts: AtomicU64,
}

#[derive(Clone)]
struct Live {
    send: SendRequest<Bytes>,
    /// Set when the connection's task ends (GOAWAY, EOF, an error).
    closed: Arc<AtomicBool>,
    last_used: Instant,
    /// This client's streams open on the connection.
    in_flight: Arc<AtomicUsize>,
}

impl Live {
    /// One more stream on this connection, until the lease is dropped.
    fn lease(&mut self, now: Instant) -> Lease {
        self.last_used = now;
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Lease { live: self.clone() }
    }

    fn saturated(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) >= self.send.current_max_send_streams()
    }
}

/// A stream's place on a connection: its count goes down when the exchange ends, however
/// it ends (an answer, an error, a timeout that drops the future).
struct Lease {
    live: Live,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.live.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Http2 {
    pub(crate) fn new(connector: DefaultConnector, idle_timeout: Duration, max_connections: usize) -> Self {
        Self { connector, idle_timeout, max_connections: max_connections.max(1), origins: Arc::default() }
    }

    /// Sends `request` with the `User-Agent` and collects the answer within the limits.
    pub(crate) async fn exchange(
        &self,
        request: Request<Vec<u8>>,
        limits: Limits,
    ) -> Result<(http::response::Parts, Bytes), Error> {
        let endpoint = request.uri().clone();
        match tokio::time::timeout(limits.request_timeout, self.exchange_untimed(request, &endpoint, limits)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout { endpoint, after: limits.request_timeout }),
        }
    }

    async fn exchange_untimed(
        &self,
        request: Request<Vec<u8>>,
        endpoint: &Uri,
        limits: Limits,
    ) -> Result<(http::response::Parts, Bytes), Error> {
        let (mut head, body) = request.into_parts();
        let origin = self.origin(&head.uri)?;
        head.headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if !body.is_empty() {
            head.headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        let request = Request::from_parts(head, ());
        let broke = |error: h2::Error| Error::transport(endpoint, false, Box::new(error));

        let (mut send, _lease) = self.ready(&origin, endpoint).await?;
        let (response, mut stream) = send
            .send_request(request, body.is_empty())
            .map_err(|error| Error::transport(endpoint, true, Box::new(error)))?;
        if !body.is_empty() {
            stream.send_data(Bytes::from(body), true).map_err(broke)?;
        }
        let (parts, mut body) = response.await.map_err(broke)?.into_parts();
        let limit = limits.max_response_body;
        let too_large = Error::BodyTooLarge { limit, status: parts.status.as_u16() };
        let declared = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(too_large);
        }
        let mut collected = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(broke)?;
            // Flow control: the window reopens as the body is read.
            let _ = body.flow_control().release_capacity(chunk.len());
            if collected.len().saturating_add(chunk.len()) > limit {
                return Err(too_large);
            }
            collected.extend_from_slice(&chunk);
        }
        Ok((parts, collected.freeze()))
    }

    /// The origin of `uri`, added on first use.
    fn origin(&self, uri: &Uri) -> Result<Arc<Origin>, Error> {
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(Error::Config(format!("{uri} is not an absolute URL")));
        };
        let mut origins = self.origins.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = origins.iter().find(|o| &o.scheme == scheme && &o.authority == authority) {
            return Ok(Arc::clone(found));
        }
        let origin = Arc::new(Origin {
            scheme: scheme.clone(),
            authority: authority.clone(),
            live: Mutex::new(Vec::new()),
            connecting: tokio::sync::Mutex::default(),
            attempts: AtomicU64::new(0),
        });
        origins.push(Arc::clone(&origin));
        Ok(origin)
    }

    /// A handle ready to open a stream, with its lease: a live connection's, or a new
    /// connection's. A connection that closed since its last use fails here, before
    /// anything is written: one more try, on a new connection.
    async fn ready(&self, origin: &Origin, endpoint: &Uri) -> Result<(SendRequest<Bytes>, Lease), Error> {
        // Connecting is boxed: it is rare, and its state would make every request's future
        // larger (each is moved into the fan-out's set).
        let lease = match origin.pick(self.idle_timeout, self.max_connections) {
            Some(lease) => lease,
            None => Box::pin(self.connect(origin, endpoint)).await?,
        };
        match lease.live.send.clone().ready().await {
            Ok(send) => Ok((send, lease)),
            Err(_) => {
                lease.live.closed.store(true, Ordering::Release);
                drop(lease);
                let lease = Box::pin(self.connect(origin, endpoint)).await?;
                let send = lease.live.send.clone().ready().await;
                send.map(|send| (send, lease)).map_err(|error| Error::transport(endpoint, true, Box::new(error)))
            }
        }
    }

    /// Connects, unless another task did while this one waited and its connection has
    /// room: then that connection, or its failure.
    async fn connect(&self, origin: &Origin, endpoint: &Uri) -> Result<Lease, Error> {
        let finished = origin.attempts.load(Ordering::Acquire);
        let mut failure = origin.connecting.lock().await;
        if let Some(lease) = origin.pick(self.idle_timeout, self.max_connections) {
            return Ok(lease);
        }
        if let Some(failure) = failure.as_ref().filter(|_| origin.attempts.load(Ordering::Acquire) != finished) {
            return Err(Error::transport(endpoint, true, Box::new(Shared(Arc::clone(failure)))));
        }
        // Another connection is opened because the open ones are full: its limit must be
        // known before it is picked again.
        let another = !origin.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).is_empty();
        let result = self.handshake(endpoint, another).await;
        origin.attempts.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(mut live) => {
                *failure = None;
                let lease = live.lease(Instant::now());
                origin.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(live);
                Ok(lease)
            }
            Err(error) => {
                let shared: Arc<dyn std::error::Error + Send + Sync> = Arc::from(error);
                *failure = Some(Arc::clone(&shared));
                Err(Error::transport(endpoint, true, Box::new(Shared(shared))))
            }
        }
    }

    /// TCP (through the proxy, if any), TLS with ALPN `h2`, the HTTP/2 preface; the
    /// connection's task runs on the runtime. With `learn_limit`, also one PING: the
    /// server's SETTINGS come before its answer, so once answered the connection's stream
    /// limit is the server's, not h2's unlimited default. The first connection of an origin
    /// skips it: it learns the limit with its first answer. (A PING on every connection
    /// also changed what a server that closes each connection after one answer saw: two
    /// connections for three sends, in `v1_hostile`; not understood, so kept off the common
    /// path.)
    async fn handshake(&self, endpoint: &Uri, learn_limit: bool) -> Result<Live, BoxError> {
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx)).await?;
        let stream = connector.call(endpoint.clone()).await?;
        let (send, mut connection) = h2::client::Builder::new()
            .enable_push(false)
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_header_list_size(MAX_HEADER_LIST)
            .handshake::<_, Bytes>(TokioIo::new(stream))
            .await?;
        let ping = connection.ping_pong();
        let closed = Arc::new(AtomicBool::new(false));
        let on_close = Arc::clone(&closed);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "fcm http/2 connection closed");
            }
            on_close.store(true, Ordering::Release);
        });
        if let Some(mut ping) = ping.filter(|_| learn_limit) {
            ping.ping(h2::Ping::opaque()).await?;
        }
        Ok(Live { send, closed, last_used: Instant::now(), in_flight: Arc::default() })
    }
}

impl Origin {
    /// A lease on the first open connection with room for one more stream; with none, `None`
    /// while there may be another connection, else the least loaded one (h2 queues the
    /// stream until one of its own ends). Closed connections, and connections idle past
    /// `idle_timeout`, are dropped first.
    fn pick(&self, idle_timeout: Duration, max_connections: usize) -> Option<Lease> {
        let mut live = self.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        live.retain(|connection| {
            let idle = connection.in_flight.load(Ordering::Acquire) == 0
                && now.saturating_duration_since(connection.last_used) > idle_timeout;
            !connection.closed.load(Ordering::Acquire) && !idle
        });
        if let Some(roomy) = live.iter_mut().find(|connection| !connection.saturated()) {
            return Some(roomy.lease(now));
        }
        if live.len() < max_connections {
            return None;
        }
        live.iter_mut().min_by_key(|connection| connection.in_flight.load(Ordering::Acquire)).map(|c| c.lease(now))
    }
}

/// A connection failure shared by the tasks that waited for that connection: it reads as
/// the original (same text, same causes).
#[derive(Debug)]
struct Shared(Arc<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Shared {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
