//! Service-account OAuth2: the exact assertion (checked against one signed by OpenSSL),
//! the token request bytes, the token response and the refresh rule.

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
    cache.store(AccessToken::new("t", at(3_600)));
    assert_eq!(cache.current(at(0)).map(AccessToken::secret), Some("t"));
    assert!(!cache.needs_refresh(at(3_299)));
    assert!(cache.needs_refresh(at(3_300)));
    cache.clear();
    assert!(cache.needs_refresh(at(0)));
    let tight = TokenCache::new().with_refresh_margin(Duration::ZERO);
    let mut tight = tight;
    tight.store(AccessToken::new("t", at(10)));
    assert!(!tight.needs_refresh(at(9)));
    assert!(tight.needs_refresh(at(10)));
}
