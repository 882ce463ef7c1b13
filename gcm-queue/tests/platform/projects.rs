//! Many projects in one deployment: a request names its project (or the only one), an
//! unknown one is refused at enqueue, each job is sent with its project's credentials and
//! endpoint, and its results, summary and counters carry the project.

use std::sync::Arc;
use std::time::Duration;

use crate::call;
use crate::common::*;
use gcm_hyper::v1::Multicast;
use gcm_queue::http::{Api, ApiKeys, Projects, serve};
use gcm_queue::{Job, Metrics, Processor, Queue, ResultReader, ResultStore};

const KEY: &str = "sender-secret-0123456789abcdef0123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_project_sends_its_own_jobs() {
    let (shop, news) = (mock(gcm_mock::Scenario::default()).await, mock(gcm_mock::Scenario::default()).await);
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(Queue::connect(&format!("sqlite:{}", dir.path().join("q.db").display())).await.unwrap());
    let mut api = Api::new(Some(queue.clone()), Arc::new(Metrics::default()))
        .keys(ApiKeys::parse(&format!("app:send,read:{KEY}")).unwrap());
    api.projects = Projects::new(["news", "shop"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, api, std::future::pending()));

    // Refused at enqueue: a project nobody configured, or none of two.
    let (status, answer) =
        call(addr, "POST", "/jobs", KEY, &serde_json::json!({"tokens": ["x"], "project": "nope"}).to_string()).await;
    assert_eq!((status, answer["path"].as_str()), (400, Some("$.project")), "{answer}");
    let (status, answer) = call(addr, "POST", "/jobs", KEY, &serde_json::json!({"tokens": ["x"]}).to_string()).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("name one of the projects: news, shop"), "{answer}");

    let (status, answer) =
        call(addr, "POST", "/jobs", KEY, &serde_json::json!({"tokens": ["s-1", "s-2"], "project": "shop"}).to_string())
            .await;
    assert_eq!(status, 202, "{answer}");
    let shop_job = answer["job_ids"][0].as_str().unwrap().to_owned();
    let (status, answer) =
        call(addr, "POST", "/jobs", KEY, &serde_json::json!({"tokens": ["n-1"], "project": "news"}).to_string()).await;
    assert_eq!(status, 202, "{answer}");
    let news_job = answer["job_ids"][0].as_str().unwrap().to_owned();

    // A worker with both projects (each its own mock here: its own endpoint and key).
    let processor = Processor::new(gcm_queue::Senders::default(), queue.clone(), queue.clone())
        .project("shop", senders(&shop), 0)
        .project("news", senders(&news), 0);
    let metrics = processor.metrics().clone();
    drain(queue.clone(), processor, &[shop_job.clone(), news_job.clone()], Duration::from_secs(60)).await;
    assert_eq!(deliveries(&shop).keys().collect::<Vec<_>>(), ["s-1", "s-2"]);
    assert_eq!(deliveries(&news).keys().collect::<Vec<_>>(), ["n-1"]);

    let records = all_records(queue.as_ref()).await;
    for record in &records {
        let expected = if record.job_id == shop_job { "shop" } else { "news" };
        assert_eq!(record.project.as_deref(), Some(expected), "{record:?}");
    }
    assert_eq!(records.len(), 3);
    let summary = queue.summary(&shop_job).await.unwrap().unwrap();
    assert_eq!((summary.project.as_deref(), summary.delivered), (Some("shop"), 2), "{summary:?}");
    let text = metrics.encode();
    assert!(text.contains(r#"gcm_queue_project_fates_total{project="shop",fate="delivered"} 2"#), "{text}");
    assert!(text.contains(r#"gcm_queue_project_fates_total{project="news",fate="delivered"} 1"#), "{text}");
}

/// A worker that does not know a job's project leaves the job unsettled (the queue retries
/// it, for a worker that does), and never sends it with its own credentials.
#[tokio::test]
async fn a_worker_without_the_project_does_not_send_its_jobs() {
    let server = mock(gcm_mock::Scenario::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(Queue::connect(&format!("sqlite:{}", dir.path().join("q.db").display())).await.unwrap());
    let processor = Processor::new(senders(&server), queue.clone(), queue.clone());
    let job = Job::v1_multicast(Multicast::new(vec!["a".to_owned()])).project("shop");
    let error = processor.process(&job).await.unwrap_err().to_string();
    assert!(error.contains(r#"names project "shop", which this worker is not configured for"#), "{error}");
    assert!(server.inbox().is_empty());
    assert_eq!(queue.settled(&job.id, 0).await.unwrap(), None);
}
