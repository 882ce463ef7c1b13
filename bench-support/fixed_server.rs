//! The baseline server of the end-to-end and load benchmarks: a minimal hyper server that
//! reads each request and answers with the same fixed body.

// Each bench uses part of this file.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub async fn fixed_server(body: Bytes) -> SocketAddr {
    serve(body, false).await
}

/// The same server over HTTP/2 with prior knowledge (FCM v1 clients multiplex).
pub async fn fixed_server_h2(body: Bytes) -> SocketAddr {
    serve(body, true).await
}

async fn serve(body: Bytes, http2: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        let _ = request.into_body().collect().await;
                        let mut response = http::Response::new(Full::new(body));
                        response
                            .headers_mut()
                            .insert("content-type", "application/json; charset=UTF-8".parse().unwrap());
                        Ok::<_, Infallible>(response)
                    }
                });
                let io = TokioIo::new(stream);
                let _ = if http2 {
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(io, service)
                        .await
                } else {
                    hyper::server::conn::http1::Builder::new().serve_connection(io, service).await
                };
            });
        }
    });
    addr
}
