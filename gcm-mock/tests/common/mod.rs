//! A plain hyper client for talking to the mock in tests.

#![allow(dead_code)]

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub(crate) const KEY: &str = "test-key";

pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

pub(crate) fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub(crate) async fn request(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client.request(request.body(Full::new(body.into())).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer { status: parts.status, headers: parts.headers, body: String::from_utf8(body.to_vec()).unwrap() }
}

/// A JSON send with the right key.
pub(crate) async fn send_json(url: &str, body: &str) -> Answer {
    request(
        &client(),
        Method::POST,
        url,
        &[("authorization", &format!("key={KEY}")), ("content-type", "application/json")],
        body.to_owned(),
    )
    .await
}

/// A plain-text send with the right key.
pub(crate) async fn send_form(url: &str, body: &str) -> Answer {
    request(
        &client(),
        Method::POST,
        url,
        &[
            ("authorization", &format!("key={KEY}")),
            ("content-type", "application/x-www-form-urlencoded;charset=UTF-8"),
        ],
        body.to_owned(),
    )
    .await
}

/// A legacy multicast to 1000 tokens (of a real token's length, distinct per `round`) with
/// a notification of `notification` bytes.
#[allow(dead_code)] // not every test binary sends one
pub(crate) fn big_multicast(round: usize, notification: usize) -> String {
    let tokens: Vec<String> = (0..1000).map(|i| format!("\"{round:04}-{i:04}:APA91b{}\"", "x".repeat(137))).collect();
    format!(
        r#"{{"registration_ids":[{}],"notification":{{"title":"big","body":"{}"}},"data":{{"k":"v"}}}}"#,
        tokens.join(","),
        "n".repeat(notification)
    )
}
