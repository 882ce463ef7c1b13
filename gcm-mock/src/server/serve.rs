//! Serving: accepts connections (HTTP/1.1, or HTTP/2 with prior knowledge), reads each
//! body within its limits, hands the request to the engine (parsing and writing outside its
//! lock) and serves `GET /_mock/inbox` off the runtime's threads.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::Shared;

/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Without the `tls` feature there is no acceptor: connections are plain TCP.
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
pub(super) enum Acceptor {}
#[cfg(feature = "tls")]
pub(super) type Acceptor = tokio_rustls::TlsAcceptor;

pub(super) async fn serve(
    listener: TcpListener,
    acceptor: Option<Acceptor>,
    shared: Arc<Shared>,
    streams: u32,
    mut stopped: oneshot::Receiver<()>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let connection = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
                let shared = Arc::clone(&shared);
                let service = service_fn(move |request| handle(Arc::clone(&shared), request, connection));
                // HTTP/1.1, or HTTP/2 with prior knowledge (FCM v1 clients multiplex).
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    // No timer: hyper's 30 s header-read timeout arms, boxes and clears a timer
                    // on every keep-alive request (without it, 1-token load went from 85 % to
                    // 97 % of a minimal server). Bodies keep their timeout; hyper bounds headers.
                    // A client that shuts its write side after the request still gets the answer.
                    .half_close(true)
                    // No `Date` header: the same requests give the same response bytes.
                    .auto_date_header(false);
                builder.http2().timer(TokioTimer::new()).auto_date_header(false).max_concurrent_streams(streams);
                let Some(acceptor) = acceptor.clone() else {
                    let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
                    tokio::spawn(async move {
                        if let Err(error) = conn.await {
                            tracing::debug!(%error, connection, "connection ended with an error");
                        }
                    });
                    continue;
                };
                // The handshake runs in the connection's task: a slow client holds up no one.
                #[cfg(feature = "tls")]
                {
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let stream = match acceptor.accept(stream).await {
                            Ok(stream) => stream,
                            Err(error) => {
                                tracing::debug!(%error, connection, "TLS handshake failed");
                                return;
                            }
                        };
                        let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                        if let Err(error) = watcher.watch(conn).await {
                            tracing::debug!(%error, connection, "connection ended with an error");
                        }
                    });
                }
                #[cfg(not(feature = "tls"))]
                match acceptor {}
            }
            _ = &mut stopped => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    connection: u64,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    // A declared length over the limit is refused before the body arrives.
    if body.size_hint().lower() > shared.body_limit as u64 {
        return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large\n"));
    }
    let collecting = Limited::new(body, shared.body_limit).collect();
    let body = match tokio::time::timeout(shared.body_timeout, collecting).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large\n"));
        }
        Ok(Err(error)) => {
            return Ok(plain(StatusCode::BAD_REQUEST, &format!("cannot read the request body: {error}\n")));
        }
        Err(_) => {
            tracing::debug!(path = parts.uri.path(), connection, "request body timed out");
            let mut response = plain(StatusCode::REQUEST_TIMEOUT, "Request Timeout\n");
            // What is left of the body is never read: the connection cannot be reused.
            response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
            return Ok(response);
        }
    };
    let request = Request::from_parts(parts, body);
    // Parsing and writing the bodies happen outside the lock: only deciding is serialized.
    let prepared = crate::Prepared::new(&request);
    if prepared.is_inbox_read() {
        return Ok(inbox_page(&shared, request.uri().query()).await);
    }
    let now = (shared.clock)();
    let (answer, latency) = {
        let mut engine = shared.engine();
        (engine.answer(prepared, connection, now), engine.latency())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if *shared.hold.borrow() {
        shared.held.send_modify(|held| *held += 1);
        let _ = shared.hold.subscribe().wait_for(|hold| !hold).await;
        shared.held.send_modify(|held| *held -= 1);
    }
    let response = answer.into_response();
    if response.extensions().get::<crate::Hang>().is_some() {
        // A scripted hang: the client's timeout (or its closing the stream) ends this.
        std::future::pending::<()>().await;
    }
    tracing::debug!(
        method = %request.method(),
        path = request.uri().path(),
        status = response.status().as_u16(),
        connection,
        "request"
    );
    Ok(response.map(Full::new))
}

/// `GET /_mock/inbox`: a snapshot of pointers under the lock, serialized off the runtime's
/// threads, so that a large inbox never holds up a send.
async fn inbox_page(shared: &Shared, query: Option<&str>) -> Response<Full<Bytes>> {
    let (after, limit) = crate::engine::page_query(query);
    let page = shared.engine().inbox_page(after, limit);
    let body = tokio::task::spawn_blocking(move || serde_json::to_vec(&page)).await;
    match body {
        Ok(Ok(body)) => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json; charset=UTF-8"));
            response
        }
        _ => plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the inbox\n"),
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(text.as_bytes())));
    *response.status_mut() = status;
    response
}
