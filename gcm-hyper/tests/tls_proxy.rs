//! HTTPS through rustls with an explicitly trusted self-signed certificate, an HTTP proxy's
//! CONNECT tunnel (to plain and TLS endpoints), FCM v1's HTTP/2 over both, and the User-Agent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gcm_hyper::gcm_proto::Fate;
use gcm_hyper::{Client, Gcm, Message, USER_AGENT_VALUE};
use gcm_mock::MockServer;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const KEY: &str = "tls-key";
const ONE_RESULT: &str =
    r#"{"multicast_id":5,"success":1,"failure":0,"canonical_ids":0,"results":[{"message_id":"0:tls"}]}"#;

/// A TLS server for 127.0.0.1 answering every request with [`ONE_RESULT`] over HTTP/1.1;
/// it records the `User-Agent` of each request.
async fn tls_server() -> (String, CertificateDer<'static>, Arc<Mutex<Vec<String>>>) {
    let (base, cert, agents) = tls_server_speaking(false).await;
    (format!("{base}/gcm/send"), cert, agents)
}

/// The same for FCM v1: HTTP/2 only (ALPN `h2`), answering [`V1_NAME`]; its base URL.
#[cfg(feature = "v1")]
async fn tls_h2_server() -> (String, CertificateDer<'static>, Arc<Mutex<Vec<String>>>) {
    tls_server_speaking(true).await
}

const V1_NAME: &str = r#"{"name":"projects/mock-project/messages/1"}"#;

async fn tls_server_speaking(h2: bool) -> (String, CertificateDer<'static>, Arc<Mutex<Vec<String>>>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut config = config;
    if h2 {
        config.alpn_protocols = vec![b"h2".to_vec()];
    }
    let answer = if h2 { V1_NAME } else { ONE_RESULT };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let agents = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&agents);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let agent = request.headers().get("user-agent").map(|v| v.to_str().unwrap().to_owned());
                    seen.lock().unwrap().push(agent.unwrap_or_default());
                    async move { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(answer.as_bytes())))) }
                });
                let io = TokioIo::new(tls);
                #[cfg(feature = "v1")] // hyper's HTTP/2 comes with the feature
                if h2 {
                    let executor = hyper_util::rt::TokioExecutor::new();
                    let _ = hyper::server::conn::http2::Builder::new(executor).serve_connection(io, service).await;
                    return;
                }
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    (url, cert, agents)
}

fn trusting(cert: CertificateDer<'static>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A CONNECT-only HTTP proxy on loopback; counts the tunnels it opened.
async fn connect_proxy() -> (http::Uri, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri: http::Uri = format!("http://{}", listener.local_addr().unwrap()).parse().unwrap();
    let tunnels = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&tunnels);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8; 1];
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let Some(target) = head.strip_prefix("CONNECT ").and_then(|rest| rest.split(' ').next()) else {
                    let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n").await;
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let _ = client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (uri, tunnels)
}

#[tokio::test]
async fn https_through_rustls_with_an_explicitly_trusted_certificate() {
    let (url, cert, agents) = tls_server().await;
    let gcm = Gcm::new(KEY).unwrap().with_endpoint(&url).unwrap();
    let client = Client::builder(gcm.clone()).tls_config(trusting(cert)).build().unwrap();
    let outcome = client.send(&Message::to("a")).await.unwrap();
    assert_eq!(outcome.fate("a"), Some(&Fate::Delivered { message_id: "0:tls".into(), canonical: None }));
    assert_eq!(*agents.lock().unwrap(), [USER_AGENT_VALUE]);
    assert!(USER_AGENT_VALUE.starts_with("gcm-hyper/"));
    // Without trusting it, the certificate is refused (no check is disabled).
    let error = Client::new(gcm).unwrap().send(&Message::to("a")).await.unwrap_err();
    assert!(matches!(error, gcm_hyper::Error::Transport { connect: true, .. }), "{error:?}");
}

#[tokio::test]
async fn through_an_http_proxy_to_plain_and_tls_endpoints() {
    let (proxy, tunnels) = connect_proxy().await;
    let mock = MockServer::builder().api_key(KEY).start().await.unwrap();
    let gcm = Gcm::new(KEY).unwrap().with_endpoint(&mock.url()).unwrap();
    let client = Client::builder(gcm).proxy(proxy.clone()).build().unwrap();
    for i in 0..3 {
        client.send(&Message::to(format!("t{i}"))).await.unwrap();
    }
    assert_eq!(mock.inbox().len(), 3);
    assert_eq!(tunnels.load(Ordering::SeqCst), 1, "one tunnel, reused");

    let (url, cert, agents) = tls_server().await;
    let gcm = Gcm::new(KEY).unwrap().with_endpoint(&url).unwrap();
    let client = Client::builder(gcm).proxy(proxy).tls_config(trusting(cert)).build().unwrap();
    assert!(client.send(&Message::to("a")).await.unwrap().success().count() == 1);
    assert_eq!(tunnels.load(Ordering::SeqCst), 2);
    assert_eq!(agents.lock().unwrap().len(), 1);
}

#[cfg(feature = "v1")]
#[tokio::test]
async fn fcm_v1_over_tls_and_http2_through_a_proxy() {
    use gcm_hyper::FcmClient;
    use gcm_hyper::gcm_proto::oauth::ServiceAccountKey;
    use gcm_hyper::v1::{Fcm, Multicast};

    let (proxy, tunnels) = connect_proxy().await;
    let mock = MockServer::start().await.unwrap(); // the token endpoint, plain HTTP
    let (base_url, cert, agents) = tls_h2_server().await;
    let key = ServiceAccountKey::from_json(mock.service_account_json().unwrap()).unwrap();
    let fcm = Fcm::new("mock-project").unwrap().with_base_url(&base_url).unwrap();
    let client = FcmClient::builder(fcm, key).proxy(proxy).tls_config(trusting(cert)).build().unwrap();
    let report = client.send_multicast(&Multicast::new(["a", "b", "c"])).await.unwrap();
    assert_eq!(report.outcome.success().count(), 3, "{:?}", report.problems);
    assert_eq!(*agents.lock().unwrap(), [USER_AGENT_VALUE; 3]);
    assert_eq!(tunnels.load(Ordering::SeqCst), 2, "one tunnel to each origin, reused");
}

/// The child process of [`proxies_from_the_environment`]: sends one message to the
/// endpoint in `GCM_TEST_ENDPOINT` with a default client. Run only by that test.
#[tokio::test]
#[ignore = "a child process of proxies_from_the_environment, which sets its environment"]
async fn child_sends_with_the_default_client() {
    let url = std::env::var("GCM_TEST_ENDPOINT").expect("run by proxies_from_the_environment");
    let client = Client::new(Gcm::new(KEY).unwrap().with_endpoint(&url).unwrap()).unwrap();
    client.send(&Message::to("from-child")).await.unwrap();
}

/// `HTTP_PROXY` is honoured by a default client, and `NO_PROXY` exempts a host (the
/// environment is the child process's: tests may not change their own).
#[tokio::test]
async fn proxies_from_the_environment() {
    let (proxy, tunnels) = connect_proxy().await;
    let mock = MockServer::builder().api_key(KEY).start().await.unwrap();
    let child = |no_proxy: &str| {
        let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
        command.args(["--ignored", "--exact", "child_sends_with_the_default_client"]);
        for name in ["ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy", "no_proxy"] {
            command.env_remove(name);
        }
        command.env("GCM_TEST_ENDPOINT", mock.url()).env("HTTP_PROXY", proxy.to_string()).env("NO_PROXY", no_proxy);
        command.output()
    };
    let through = child("example.com").await.unwrap();
    assert!(through.status.success(), "{}", String::from_utf8_lossy(&through.stdout));
    assert_eq!(tunnels.load(Ordering::SeqCst), 1, "HTTP_PROXY was not used");
    let exempt = child("example.com, 127.0.0.1").await.unwrap();
    assert!(exempt.status.success(), "{}", String::from_utf8_lossy(&exempt.stdout));
    assert_eq!(tunnels.load(Ordering::SeqCst), 1, "NO_PROXY was not honoured");
    assert_eq!(mock.inbox().len(), 2);
}
