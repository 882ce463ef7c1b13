//! A service account's key file, the RS256-signed JWT it makes, and its token request.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, Uri};
use ring::rand::SystemRandom;
use ring::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde::{Deserialize, Serialize};

use super::{
    ASSERTION_LIFETIME, AuthError, FIREBASE_MESSAGING_SCOPE, GOOGLE_TOKEN_URI, JWT_BEARER_GRANT_TYPE, form_post,
    invalid_json,
};
use crate::request::absolute_url;

/// A service account's key, read from the JSON file Firebase and Google Cloud hand out.
/// Clones share the parsed key. `Debug` shows the account, never the key.
#[derive(Clone)]
pub struct ServiceAccountKey {
    client_email: String,
    private_key_id: Option<String>,
    project_id: Option<String>,
    token_uri: Uri,
    key: Arc<RsaKeyPair>,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("project_id", &self.project_id)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct ServiceAccountFile {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

/// The claims of the assertion, as Google's token endpoint reads them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The service account's e-mail.
    pub iss: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The token endpoint.
    pub aud: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
}

impl ServiceAccountKey {
    /// Reads the key file's JSON (a value, so it may come from a file, an environment
    /// variable or a secret store). Needs `client_email` and `private_key`; `token_uri`
    /// defaults to [`GOOGLE_TOKEN_URI`].
    pub fn from_json(json: &str) -> Result<Self, AuthError> {
        let file: ServiceAccountFile = serde_json::from_str(json).map_err(|e| invalid_json(json, &e))?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(file.private_key.as_bytes())
            .map_err(|_| AuthError::InvalidPrivateKey)?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|_| AuthError::InvalidPrivateKey)?;
        let key = Self {
            client_email: file.client_email,
            private_key_id: file.private_key_id,
            project_id: file.project_id,
            token_uri: Uri::from_static(GOOGLE_TOKEN_URI),
            key: Arc::new(key),
        };
        match file.token_uri {
            Some(uri) => key.with_token_uri(&uri),
            None => Ok(key),
        }
    }

    /// Asks another token endpoint (a mock's).
    pub fn with_token_uri(mut self, uri: &str) -> Result<Self, AuthError> {
        self.token_uri = absolute_url(uri, uri).map_err(|_| AuthError::InvalidTokenUri(uri.to_owned()))?;
        Ok(self)
    }

    /// The service account's e-mail, the assertion's issuer.
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// The project the key belongs to, if the file names it.
    pub fn project_id(&self) -> Option<&str> {
        self.project_id.as_deref()
    }

    /// The token endpoint.
    pub fn token_uri(&self) -> &Uri {
        &self.token_uri
    }

    /// The RSA public key (PKCS#1 `RSAPublicKey`, DER), for a server that verifies the
    /// assertions, such as gcm-mock.
    pub fn public_key_der(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// The claims of an assertion made at `now`: issuer, the FCM scope, the token endpoint
    /// as audience, and one hour of validity.
    pub fn claims(&self, now: SystemTime) -> Claims {
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
        Claims {
            iss: self.client_email.clone(),
            scope: FIREBASE_MESSAGING_SCOPE.to_owned(),
            aud: self.token_uri.to_string(),
            iat,
            exp: iat + ASSERTION_LIFETIME.as_secs(),
        }
    }

    /// The signed JWT (RS256) made at `now`: `header.claims.signature`, base64url without
    /// padding. The header names the key by `kid` when the file has a `private_key_id`.
    pub fn assertion(&self, now: SystemTime) -> Result<String, AuthError> {
        let header = Header { alg: "RS256", typ: "JWT", kid: self.private_key_id.as_deref() };
        let mut jwt = encode_json(&header);
        jwt.push('.');
        jwt.push_str(&encode_json(&self.claims(now)));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), jwt.as_bytes(), &mut signature)
            .map_err(|_| AuthError::Signing)?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
        Ok(jwt)
    }

    /// The token request made at `now`: `POST` to the token endpoint, a form with
    /// `grant_type` (JWT bearer) and the signed `assertion`.
    pub fn token_request(&self, now: SystemTime) -> Result<Request<Vec<u8>>, AuthError> {
        let assertion = self.assertion(now)?;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER_GRANT_TYPE)
            .append_pair("assertion", &assertion)
            .finish()
            .into_bytes();
        Ok(form_post(self.token_uri.clone(), body))
    }
}

fn encode_json<T: Serialize>(value: &T) -> String {
    // Serializing strings and integers into memory cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}
