//! Every public async fn of gcm-hyper returns a `Send` future: each one is spawned on a
//! multi-thread runtime, as an axum handler or a job-queue worker would run it, against
//! gcm-mock on loopback. A future that is not `Send` makes this file fail to compile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)] // a test may fail loudly

use gcm_hyper::gcm_proto::v1::{Message as V1Message, Multicast};
use gcm_hyper::{Client, FcmClient, Gcm, Message, RetryLoop};
use gcm_mock::MockServer;

/// The compile-time half: `future` must be `Send + 'static` to be spawned.
fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future)
}

async fn v1_client(mock: &MockServer) -> FcmClient {
    FcmClient::from_service_account(mock.service_account_json().unwrap())
        .unwrap()
        .base_url(&mock.v1_base_url())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_public_async_fn_can_be_spawned() {
    let mock = MockServer::builder().api_key("key").start().await.unwrap();
    let legacy = Client::new(Gcm::new("key").unwrap().with_endpoint(&mock.url()).unwrap()).unwrap();
    let v1 = v1_client(&mock).await;
    let multicast = Multicast::new(["a", "b"]).data("k", "v");

    let client = legacy.clone();
    let send = spawn(async move { client.send(&Message::multicast(["a"])).await });
    let client = legacy.clone();
    let run = spawn(async move { RetryLoop::new().run(&client, &Message::multicast(["b"])).await });
    let client = v1.clone();
    let send_v1 = spawn(async move { client.send(&V1Message::token("c")).await });
    let (client, message) = (v1.clone(), multicast.clone());
    let send_multicast = spawn(async move { client.send_multicast(&message).await });
    let (client, message) = (v1.clone(), multicast.clone());
    let run_multicast = spawn(async move { RetryLoop::new().run_multicast(&client, &message).await });
    // Discovery, pointed at the mock's metadata server.
    let metadata = mock.base_url();
    let discover = spawn(async move {
        let env = move |name: &str| (name == "GCE_METADATA_HOST").then(|| metadata.clone());
        FcmClient::application_default_from(&env).await.map(|client| client.fcm().project_id().to_owned())
    });
    let _compiles = || spawn(FcmClient::application_default());

    assert_eq!(send.await.unwrap().unwrap().success().count(), 1);
    assert_eq!(run.await.unwrap().outcome.success().count(), 1);
    assert!(matches!(send_v1.await.unwrap().unwrap().fate, gcm_hyper::gcm_proto::Fate::Delivered { .. }));
    assert_eq!(send_multicast.await.unwrap().unwrap().outcome.success().count(), 2);
    assert_eq!(run_multicast.await.unwrap().unwrap().outcome.success().count(), 2);
    assert_eq!(discover.await.unwrap().unwrap(), "mock-project");
}
