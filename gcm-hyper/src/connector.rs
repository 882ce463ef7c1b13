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
/// `Debug` names the route only: a proxy's credentials never show.
#[derive(Clone)]
pub struct Transport(Route);

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let route = match &self.0 {
            Route::Direct(_) => "direct",
            Route::Proxy(_) => "proxy",
            #[cfg(feature = "env-proxy")]
            Route::FromEnv(..) => "as the environment says",
        };
        f.debug_tuple("Transport").field(&route).finish()
    }
}

#[derive(Clone)]
enum Route {
    Direct(HttpConnector),
    Proxy(Tunnel<HttpConnector>),
    /// Per destination, as the environment's proxy variables say.
    #[cfg(feature = "env-proxy")]
    FromEnv(std::sync::Arc<Matcher>, HttpConnector),
}

#[cfg(feature = "env-proxy")]
use hyper_util::client::proxy::matcher::Matcher;

impl Transport {
    pub(crate) fn direct(tcp: HttpConnector) -> Self {
        Self(Route::Direct(tcp))
    }

    /// `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` as curl reads them, read once.
    #[cfg(feature = "env-proxy")]
    pub(crate) fn from_env(tcp: HttpConnector) -> Self {
        Self(Route::FromEnv(std::sync::Arc::new(Matcher::from_env()), tcp))
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
            #[cfg(feature = "env-proxy")]
            Route::FromEnv(_, tcp) => tcp.poll_ready(cx).map_err(Into::into),
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
            #[cfg(feature = "env-proxy")]
            Route::FromEnv(matcher, tcp) => match matcher.intercept(&dst) {
                Some(intercept) => {
                    let tunnel = Tunnel::new(intercept.uri().clone(), tcp.clone());
                    let mut tunnel = match intercept.basic_auth() {
                        Some(auth) => tunnel.with_auth(auth.clone()),
                        None => tunnel,
                    };
                    Box::pin(async move { tunnel.call(dst).await.map_err(Into::into) })
                }
                None => {
                    let connecting = tcp.call(dst);
                    Box::pin(async move { connecting.await.map_err(Into::into) })
                }
            },
        }
    }
}
