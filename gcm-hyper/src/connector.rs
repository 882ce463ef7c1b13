//! The default connector: TCP, optionally through an HTTP proxy's CONNECT tunnel, then
//! rustls for `https://` endpoints.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The default connector of [`Client`](crate::Client): rustls over [`Transport`].
pub type DefaultConnector = hyper_rustls::HttpsConnector<Transport>;

/// TCP to the endpoint, or to an HTTP proxy that tunnels to it with `CONNECT`.
#[derive(Clone, Debug)]
pub struct Transport(Route);

#[derive(Clone, Debug)]
enum Route {
    Direct(HttpConnector),
    Proxy(Tunnel<HttpConnector>),
}

impl Transport {
    pub(crate) fn direct(tcp: HttpConnector) -> Self {
        Self(Route::Direct(tcp))
    }

    pub(crate) fn proxy(proxy: Uri, tcp: HttpConnector, authorization: Option<http::HeaderValue>) -> Self {
        let tunnel = Tunnel::new(proxy, tcp);
        Self(Route::Proxy(match authorization {
            Some(auth) => tunnel.with_auth(auth),
            None => tunnel,
        }))
    }
}

impl Service<Uri> for Transport {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match &mut self.0 {
            Route::Direct(tcp) => tcp.poll_ready(cx).map_err(Into::into),
            Route::Proxy(tunnel) => tunnel.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        match &mut self.0 {
            Route::Direct(tcp) => {
                let connecting = tcp.call(dst);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
            Route::Proxy(tunnel) => {
                let connecting = tunnel.call(dst);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
        }
    }
}
