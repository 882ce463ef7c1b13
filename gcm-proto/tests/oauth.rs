//! Service-account OAuth2: the exact assertion (checked against one signed by OpenSSL),
//! the token request bytes, the token response and the refresh rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gcm_proto::oauth::{AccessToken, AuthError, Claims, ServiceAccountKey, TokenCache, decode_token_response};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

const KEY_FILE: &str = include_str!("fixtures/service-account.json");
/// The same assertion, signed by `openssl dgst -sha256 -sign` over the same header and claims.
const OPENSSL_ASSERTION: &str = include_str!("fixtures/assertion-1700000000.jwt");

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn key() -> ServiceAccountKey {
    ServiceAccountKey::from_json(KEY_FILE).unwrap()
}

fn decode_part(part: &str) -> String {
    String::from_utf8(URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn the_assertion_has_the_exact_header_and_claims_and_matches_openssl() {
    let jwt = key().assertion(at(1_700_000_000)).unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(
        decode_part(parts[0]),
        r#"{"alg":"RS256","typ":"JWT","kid":"5f1d0c5e7a3b4c2d9e8f7a6b5c4d3e2f1a0b9c8d"}"#
    );
    assert_eq!(
        decode_part(parts[1]),
        r#"{"iss":"gcm-mock@mock-project.iam.gserviceaccount.com","scope":"https://www.googleapis.com/auth/firebase.messaging","aud":"https://oauth2.googleapis.com/token","iat":1700000000,"exp":1700003600}"#
    );
    // PKCS#1 v1.5 is deterministic: ring's signature is byte for byte OpenSSL's.
    assert_eq!(jwt, OPENSSL_ASSERTION.trim_end());
    // And it verifies with the public key.
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key().public_key_der())
        .verify(signed.as_bytes(), &signature)
        .unwrap();
}

#[test]
fn claims_follow_the_token_uri_and_now() {
    let key = key().with_token_uri("http://127.0.0.1:9/token").unwrap();
    assert_eq!(
        key.claims(at(10)),
        Claims {
            iss: "gcm-mock@mock-project.iam.gserviceaccount.com".into(),
            scope: "https://www.googleapis.com/auth/firebase.messaging".into(),
            aud: "http://127.0.0.1:9/token".into(),
            iat: 10,
            exp: 3610,
        }
    );
}

#[test]
fn the_token_request_is_a_jwt_bearer_form() {
    let request = key().token_request(at(1_700_000_000)).unwrap();
    assert_eq!(request.method(), "POST");
    assert_eq!(request.uri(), "https://oauth2.googleapis.com/token");
    assert_eq!(request.headers()["content-type"], "application/x-www-form-urlencoded;charset=UTF-8");
    let expected = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
        OPENSSL_ASSERTION.trim_end()
    );
    assert_eq!(std::str::from_utf8(request.body()).unwrap(), expected);
    assert_eq!(request.headers()["content-length"], expected.len().to_string().as_str());
}

#[test]
fn the_private_key_never_shows() {
    let key = key();
    let debug = format!("{key:?}");
    assert!(debug.contains("gcm-mock@mock-project.iam.gserviceaccount.com"));
    assert!(!debug.contains("PRIVATE KEY") && !debug.contains("MII"), "{debug}");
    let token = AccessToken::new("ya29.secret", at(5));
    assert!(!format!("{token:?}").contains("ya29"));
}

#[test]
fn bad_key_files_are_errors() {
    assert!(matches!(ServiceAccountKey::from_json("{"), Err(AuthError::InvalidKeyFile(_))));
    assert!(matches!(
        ServiceAccountKey::from_json(r#"{"client_email":"a@b"}"#),
        Err(AuthError::InvalidKeyFile(reason)) if reason.contains("private_key")
    ));
    let bad_pem =
        r#"{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#;
    assert_eq!(ServiceAccountKey::from_json(bad_pem).unwrap_err(), AuthError::InvalidPrivateKey);
    let error =
        ServiceAccountKey::from_json(&KEY_FILE.replace("https://oauth2.googleapis.com/token", "nope")).unwrap_err();
    assert_eq!(error, AuthError::InvalidTokenUri("nope".into()));
}

#[test]
fn token_responses_and_refusals() {
    let now = at(1_000);
    let ok = http::Response::new(r#"{"access_token":"ya29.c.abc","expires_in":3599,"token_type":"Bearer"}"#);
    let token = decode_token_response(&ok, now).unwrap();
    assert_eq!(token.secret(), "ya29.c.abc");
    assert_eq!(token.expires_at(), at(4_599));

    let refused = http::Response::builder()
        .status(400)
        .body(r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#)
        .unwrap();
    let error = decode_token_response(&refused, now).unwrap_err();
    assert!(matches!(&error, AuthError::TokenRefused { status: 400, error, description: Some(d), .. }
        if error == "invalid_grant" && d == "Invalid JWT Signature."));
    assert!(!error.is_transient());
    let busy = http::Response::builder().status(503).body("<html>busy</html>").unwrap();
    assert!(decode_token_response(&busy, now).unwrap_err().is_transient());
    for body in [
        r#"{"expires_in":1}"#,
        r#"{"access_token":"a","expires_in":1,"token_type":"mac"}"#,
        r#"{"access_token":"a\nb","expires_in":1}"#,
        "[]",
    ] {
        let response = http::Response::new(body);
        assert!(
            matches!(decode_token_response(&response, now), Err(AuthError::MalformedTokenResponse { .. })),
            "{body}"
        );
    }
}

#[test]
fn the_cache_refreshes_five_minutes_before_expiry() {
    let mut cache = TokenCache::new();
    assert!(cache.needs_refresh(at(0)));
    cache.store(AccessToken::new("t", at(3_600)), at(0));
    assert_eq!(cache.current(at(0)).map(AccessToken::secret), Some("t"));
    assert!(!cache.needs_refresh(at(3_299)));
    assert!(cache.needs_refresh(at(3_300)));
    cache.clear();
    assert!(cache.needs_refresh(at(0)));
    let tight = TokenCache::new().with_refresh_margin(Duration::ZERO);
    let mut tight = tight;
    tight.store(AccessToken::new("t", at(10)), at(0));
    assert!(!tight.needs_refresh(at(9)));
    assert!(tight.needs_refresh(at(10)));
}

#[test]
fn short_lifetimes_shrink_the_margin_and_nonsense_is_an_error() {
    let now = at(0);
    let token = |expires_in: &str| {
        let body = format!(r#"{{"access_token":"ya29.t","expires_in":{expires_in},"token_type":"Bearer"}}"#);
        decode_token_response(&http::Response::new(body), now)
    };
    // 60 s (the mock's --token-lifetime 60): used for 30 s, not expired on arrival.
    let mut cache = TokenCache::new();
    cache.store(token("60").unwrap(), now);
    assert!(!cache.needs_refresh(at(29)));
    assert!(cache.needs_refresh(at(30)));
    // 1 s: used for half a second.
    cache.store(token("1").unwrap(), now);
    assert!(cache.current(now).is_some());
    // Huge: a day, without overflow.
    let huge = token(&u64::MAX.to_string()).unwrap();
    assert_eq!(huge.expires_at(), at(86_400));
    cache.store(huge, now);
    assert!(!cache.needs_refresh(at(86_400 - 301)));
    assert!(cache.needs_refresh(at(86_400 - 300)));
    // 0, negative, fractional, text: errors that keep the body but never show the token.
    for nonsense in ["0", "-1", "1.5", "\"3600\""] {
        let error = token(nonsense).unwrap_err();
        assert!(matches!(error, AuthError::MalformedTokenResponse { .. }), "{nonsense}: {error:?}");
        assert!(!format!("{error:?} {error}").contains("ya29"), "{nonsense}: {error:?}");
    }
}

#[test]
fn a_failed_refresh_backs_off_before_asking_again() {
    let mut cache = TokenCache::new();
    assert!(cache.may_refresh(at(0)));
    assert_eq!(cache.refresh_failed(at(10)), at(11));
    assert!(!cache.may_refresh(at(10)));
    assert!(cache.may_refresh(at(11)));
    assert_eq!(cache.refresh_failed(at(11)), at(13));
    assert_eq!(cache.refresh_failed(at(13)), at(17));
    for _ in 0..10 {
        cache.refresh_failed(at(100));
    }
    assert_eq!(cache.refresh_failed(at(100)), at(160), "capped at a minute");
    cache.store(AccessToken::new("t", at(3_700)), at(100));
    assert!(cache.may_refresh(at(100)), "a stored token forgets the failures");
}

#[test]
fn the_metadata_server_and_gcloud_user_files() {
    use gcm_proto::oauth::{KeyFile, METADATA_HOST, MetadataServer};

    let server = MetadataServer::new(METADATA_HOST).unwrap();
    let request = server.token_request();
    assert_eq!(request.method(), "GET");
    assert_eq!(
        request.uri(),
        "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
    );
    assert_eq!(request.headers()["metadata-flavor"], "Google");
    assert_eq!(
        server.project_id_request().uri(),
        "http://metadata.google.internal/computeMetadata/v1/project/project-id"
    );
    // GCE_METADATA_HOST holds a host:port; a mock's base URL works too.
    assert_eq!(MetadataServer::new("127.0.0.1:8080").unwrap().token_url().authority().unwrap(), "127.0.0.1:8080");
    assert_eq!(MetadataServer::new("http://127.0.0.1:9/").unwrap().token_url().port_u16(), Some(9));
    let project = http::Response::new("my-project\n");
    assert_eq!(MetadataServer::decode_project_id(&project).unwrap(), "my-project");
    assert!(MetadataServer::decode_project_id(&http::Response::builder().status(404).body("").unwrap()).is_err());

    // The file `gcloud auth application-default login` writes.
    let user = r#"{"client_id":"123.apps.googleusercontent.com","client_secret":"d-FL95Q19q7MQmFpd7hHD0Ty","refresh_token":"1//refresh-secret","quota_project_id":"my-project","type":"authorized_user"}"#;
    let KeyFile::AuthorizedUser(user) = KeyFile::from_json(user).unwrap() else { panic!("a user file") };
    assert_eq!(user.quota_project_id.as_deref(), Some("my-project"));
    let request = user.token_request();
    assert_eq!(request.uri(), "https://oauth2.googleapis.com/token");
    let body = String::from_utf8(request.body().clone()).unwrap();
    assert_eq!(
        body,
        "grant_type=refresh_token&client_id=123.apps.googleusercontent.com&client_secret=d-FL95Q19q7MQmFpd7hHD0Ty&refresh_token=1%2F%2Frefresh-secret"
    );
    let shown = format!("{user:?}");
    assert!(!shown.contains("refresh-secret") && !shown.contains("d-FL95"), "{shown}");
    // A service-account file reads as one.
    let key = KeyFile::from_json(include_str!("fixtures/service-account.json")).unwrap();
    assert!(matches!(key, KeyFile::ServiceAccount(_)));
    assert!(key.project_id().is_some());
}

#[test]
fn a_path_where_the_json_belongs_says_so() {
    for path in ["/etc/secrets/sa.json", "sa.json", "C:\\keys\\sa.json"] {
        let error = ServiceAccountKey::from_json(path).unwrap_err();
        assert!(error.to_string().contains("looks like a file path"), "{path}: {error}");
    }
    let error = ServiceAccountKey::from_json("{").unwrap_err();
    assert!(!error.to_string().contains("path"), "{error}");
}
