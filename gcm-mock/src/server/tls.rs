//! HTTPS for the mock (feature `tls`): a certificate made on the spot for the names a
//! client will ask for — `localhost`, `127.0.0.1`, and Google's hosts, so that a client that
//! hard-codes `https://fcm.googleapis.com` (firebase-admin for Node) can be pointed at the
//! mock by name resolution alone and trust it through its extra CA file.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The names of Google's services a v1 client talks to.
pub const GOOGLE_HOSTS: [&str; 4] =
    ["fcm.googleapis.com", "iid.googleapis.com", "oauth2.googleapis.com", "www.googleapis.com"];

/// A self-signed certificate and the server configuration that presents it (ALPN `h2`,
/// then `http/1.1`).
#[derive(Clone)]
pub struct Tls {
    pub(super) acceptor: TlsAcceptor,
    cert_pem: String,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// A new certificate for `localhost`, `127.0.0.1`, `::1`, [`GOOGLE_HOSTS`] and `names`.
    pub fn self_signed(names: &[&str]) -> Result<Self, String> {
        let mut all: Vec<String> =
            ["localhost", "127.0.0.1", "::1"].iter().chain(&GOOGLE_HOSTS).map(|n| n.to_string()).collect();
        all.extend(names.iter().map(|name| name.to_string()));
        let certified =
            rcgen::generate_simple_self_signed(all).map_err(|e| format!("cannot make a certificate: {e}"))?;
        let cert = CertificateDer::from(certified.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(|e| format!("cannot use the certificate: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self { acceptor: TlsAcceptor::from(Arc::new(config)), cert_pem: certified.cert.pem() })
    }

    /// The certificate, PEM: what a client must trust (`NODE_EXTRA_CA_CERTS`,
    /// `REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }
}
