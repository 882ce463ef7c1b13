//! Running a push platform: projects, the fleet's quota, audiences, campaigns, retention and webhooks, each on
//! every backend built. One test binary for the four: each binary links every dependency
//! once more, in each CI step that builds it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

#[path = "../common/mod.rs"]
mod common;

/// Held by the tests that share the Redis server's audiences: a retention test's prune,
/// days ahead of the clock, trims every audience's feed (audiences belong to the backend,
/// not to a queue).
#[cfg(feature = "redis")]
static SHARED_AUDIENCES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `test` on a PostgreSQL database of its own, dropped after: the results tables are
/// shared by every queue of a database (a prune days ahead would delete other tests'
/// finished jobs; a worker delivers any queue's webhooks).
#[cfg(feature = "postgres")]
pub(crate) async fn on_own_postgres_database<F: std::future::Future<Output = ()>>(test: impl FnOnce(String) -> F) {
    let server = common::server_url("GCM_QUEUE_POSTGRES_URL");
    let admin = sqlx::PgPool::connect(&server).await.unwrap();
    let base = server.rsplit_once('/').unwrap().0;
    let name = format!("gcm_test_{}", ulid::Ulid::generate().to_string().to_lowercase());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
    test(format!("{base}/{name}")).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).execute(&admin).await.unwrap();
}

/// One API exchange with `key`: the status and the JSON answer (null for none).
pub(crate) async fn call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_owned())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

mod activity;
mod audiences;
mod campaigns;
mod fleet_quota;
mod projects;
mod retention;
mod webhooks;
