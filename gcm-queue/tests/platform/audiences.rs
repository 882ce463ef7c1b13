//! Audiences on each backend: token lists kept in the queue's backend, which the results of
//! their campaigns clean — not registered removes, a canonical id replaces (legacy), an
//! invalid token is flagged — each change applied once, even when a settlement is recorded
//! again, and listed once in the audience's feed. Then the issue's campaign: 100 000
//! tokens, 5 % uninstalled, leave exactly the 95 000 live ones.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use gcm_hyper::Message;
use gcm_hyper::v1::Multicast;
use gcm_mock::{Behaviour, Scenario, TokenRule};
use gcm_queue::{Audiences, Change, Job, Processor, Queue, QueueConfig};

/// A job of `tokens` from audience `name`.
fn job_of(name: &str, tokens: Vec<String>, legacy: bool) -> Job {
    let mut job =
        if legacy { Job::legacy(Message::multicast(tokens)) } else { Job::v1_multicast(Multicast::new(tokens)) };
    job.audience = Some(name.to_owned());
    job
}

async fn an_audience_cleans_itself(url: &str) {
    let run = ulid::Ulid::generate().to_string().to_lowercase();
    let token = |i: usize| format!("aud-{run}-{i}");
    let mut scenario = Scenario::default();
    for gone in [3, 7] {
        scenario.tokens.insert(token(gone), TokenRule::new(Behaviour::NotRegistered));
    }
    scenario.tokens.insert(token(5), TokenRule::new(Behaviour::Invalid));
    scenario.tokens.insert(format!("old-{run}"), TokenRule::canonical(format!("new-{run}")));
    let server = mock(scenario).await;
    let config = QueueConfig { name: format!("audience-{run}"), ..QueueConfig::default() };
    let queue = Arc::new(Queue::connect_with(url, &config).await.unwrap());
    let processor = Processor::new(senders(&server), queue.clone(), queue.clone());

    let name = format!("users-{run}");
    let tokens: Vec<String> = (0..20).map(token).chain([token(0)]).collect();
    assert_eq!(queue.put_audience(&name, &tokens).await.unwrap(), 20, "a duplicate is held once");
    assert_eq!(queue.add_to_audience(&name, &[token(20)]).await.unwrap(), 1);
    assert_eq!(queue.add_to_audience(&name, &[token(20)]).await.unwrap(), 0);

    let job = job_of(&name, queue.audience_recipients(&name).await.unwrap(), false);
    assert_eq!(job.payload.len(), 21);
    assert_eq!(processor.process(&job).await.unwrap(), None);
    // Recorded again (a worker that died after its settlement): nothing applied twice.
    assert_eq!(processor.process(&job).await.unwrap(), None);

    let held = queue.audience_page(&name, "", 100).await.unwrap();
    assert_eq!(held.len(), 19, "{held:?}");
    assert!(held.iter().all(|entry| entry.token != token(3) && entry.token != token(7)));
    let flagged: Vec<_> = held.iter().filter(|entry| entry.flagged.is_some()).collect();
    assert_eq!(flagged.len(), 1);
    assert_eq!((flagged[0].token.clone(), flagged[0].flagged.as_deref()), (token(5), Some("INVALID_ARGUMENT")));
    assert_eq!(queue.audience_recipients(&name).await.unwrap().len(), 18, "flagged tokens are not sent to");
    // Paged in byte order.
    let first = queue.audience_page(&name, "", 5).await.unwrap();
    let next = queue.audience_page(&name, &first[4].token, 100).await.unwrap();
    let pages: Vec<_> = first.iter().chain(&next).map(|entry| entry.token.clone()).collect();
    let mut sorted = pages.clone();
    sorted.sort();
    assert_eq!((pages.len(), pages), (19, sorted));

    let changes = queue.audience_changes(&name, 0, 100).await.unwrap();
    let listed: Vec<_> = changes.iter().map(|change| (change.token.clone(), change.change.clone())).collect();
    let mut expected = vec![
        (token(3), Change::Removed),
        (token(5), Change::Flagged { code: "INVALID_ARGUMENT".into() }),
        (token(7), Change::Removed),
    ];
    let mut sorted = listed.clone();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(sorted, expected, "each change once");
    assert!(changes.iter().all(|change| change.job_id == job.id));
    let after = queue.audience_changes(&name, changes[0].cursor, 100).await.unwrap();
    assert_eq!(after.len(), 2, "read on from a cursor");

    // Legacy: a canonical id replaces its token.
    let legacy = format!("legacy-{run}");
    queue.put_audience(&legacy, &[format!("old-{run}"), format!("keep-{run}")]).await.unwrap();
    let job = job_of(&legacy, queue.audience_recipients(&legacy).await.unwrap(), true);
    processor.process(&job).await.unwrap();
    let held: Vec<_> = queue.audience_page(&legacy, "", 10).await.unwrap().into_iter().map(|e| e.token).collect();
    assert_eq!(held, [format!("keep-{run}"), format!("new-{run}")]);
    let changes = queue.audience_changes(&legacy, 0, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].token.clone(), changes[0].change.clone()),
        (format!("old-{run}"), Change::Replaced { by: format!("new-{run}") })
    );

    assert!(queue.delete_audience(&name).await.unwrap());
    assert!(queue.audience_page(&name, "", 10).await.unwrap().is_empty());
    assert!(queue.audience_changes(&name, 0, 10).await.unwrap().is_empty());
    assert!(!queue.delete_audience(&name).await.unwrap());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_audiences_clean_themselves() {
    let dir = tempfile::tempdir().unwrap();
    an_audience_cleans_itself(&format!("sqlite:{}", dir.path().join("q.db").display())).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_audiences_clean_themselves() {
    an_audience_cleans_itself(&server_url("GCM_QUEUE_POSTGRES_URL")).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_audiences_clean_themselves() {
    let _audiences = crate::SHARED_AUDIENCES.lock().await;
    an_audience_cleans_itself(&server_url("GCM_QUEUE_REDIS_URL")).await;
}

/// The issue's campaign: 100 000 tokens, every twentieth uninstalled, sent by a worker in
/// jobs of 1000; the audience ends with exactly the 95 000 others, and the feed lists the
/// 5 000 removals once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_to_100_000_tokens_leaves_the_95_000_live_ones() {
    const TOKENS: usize = 100_000;
    let token = |i: usize| format!("campaign-token-{i:06}");
    let mut scenario = Scenario::default();
    for i in (0..TOKENS).step_by(20) {
        scenario.tokens.insert(token(i), TokenRule::new(Behaviour::NotRegistered));
    }
    let server = mock(scenario).await;
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(Queue::connect(&format!("sqlite:{}", dir.path().join("q.db").display())).await.unwrap());
    let tokens: Vec<String> = (0..TOKENS).map(token).collect();
    assert_eq!(queue.put_audience("everyone", &tokens).await.unwrap(), TOKENS as u64);

    let recipients = queue.audience_recipients("everyone").await.unwrap();
    let mut jobs = Vec::new();
    for chunk in recipients.chunks(1000) {
        let job = job_of("everyone", chunk.to_vec(), false);
        queue.enqueue(&job).await.unwrap();
        jobs.push(job.id);
    }
    let processor = Processor::new(senders(&server), queue.clone(), queue.clone());
    drain(queue.clone(), processor, &jobs, Duration::from_secs(600)).await;

    let live = queue.audience_recipients("everyone").await.unwrap();
    let expected: Vec<String> = (0..TOKENS).filter(|i| i % 20 != 0).map(token).collect();
    assert_eq!(live.len(), 95_000);
    assert!(live == expected, "exactly the live tokens");
    let mut removed = Vec::new();
    let mut cursor = 0;
    loop {
        let page = queue.audience_changes("everyone", cursor, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = last.cursor;
        removed.extend(page.into_iter().map(|change| {
            assert_eq!(change.change, Change::Removed);
            change.token
        }));
    }
    removed.sort();
    let expected: Vec<String> = (0..TOKENS).step_by(20).map(token).collect();
    assert_eq!(removed.len(), 5_000);
    assert!(removed == expected, "each removal listed once");
}

mod api {
    use super::*;
    use crate::call;
    use gcm_queue::http::{Api, ApiKeys, serve};

    const SEND: &str = "sender-secret-0123456789abcdef0123";
    const READ: &str = "reader-secret-0123456789abcdef0123";

    /// The routes, end to end: set, add, page, target with `POST /jobs`, follow the feed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn audiences_over_http() {
        let mut scenario = Scenario::default();
        scenario.tokens.insert("gone".into(), TokenRule::new(Behaviour::NotRegistered));
        let server = mock(scenario).await;
        let dir = tempfile::tempdir().unwrap();
        let queue = Arc::new(Queue::connect(&format!("sqlite:{}", dir.path().join("q.db").display())).await.unwrap());
        let keys = ApiKeys::parse(&format!("app:send,read:{SEND}\nreporting:read:{READ}")).unwrap();
        let api = Api::new(Some(queue.clone()), Arc::new(gcm_queue::Metrics::default())).keys(keys);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, api, std::future::pending()));

        let (status, _) = call(addr, "PUT", "/audiences/users", READ, r#"{"tokens": ["a"]}"#).await;
        assert_eq!(status, 403, "setting an audience takes the send scope");
        let (status, answer) =
            call(addr, "PUT", "/audiences/users", SEND, r#"{"tokens": ["b", "gone", "a", "b"]}"#).await;
        assert_eq!((status, answer["tokens"].as_u64()), (200, Some(3)), "{answer}");
        let (status, answer) = call(addr, "POST", "/audiences/users/tokens", SEND, r#"{"tokens": ["c", "a"]}"#).await;
        assert_eq!((status, answer["tokens"].as_u64()), (200, Some(1)), "{answer}");
        let (status, answer) = call(addr, "PUT", "/audiences/users", SEND, r#"{"tokens": ["a", ""]}"#).await;
        assert_eq!((status, answer["path"].as_str()), (400, Some("$.tokens[1]")), "{answer}");
        let (status, answer) = call(addr, "GET", "/audiences/users?limit=2", READ, "").await;
        assert_eq!(status, 200);
        assert_eq!(answer["tokens"], serde_json::json!([{"token": "a"}, {"token": "b"}]));
        let (_, answer) = call(addr, "GET", "/audiences/users?after=b", READ, "").await;
        assert_eq!(answer["tokens"], serde_json::json!([{"token": "c"}, {"token": "gone"}]));

        let (status, answer) = call(addr, "POST", "/jobs", SEND, r#"{"audience": "users", "tokens": ["x"]}"#).await;
        assert_eq!((status, answer["path"].as_str()), (400, Some("$.tokens")), "{answer}");
        let (status, _) = call(addr, "POST", "/jobs", SEND, r#"{"audience": "nobody"}"#).await;
        assert_eq!(status, 404, "an audience with no token");
        let body = r#"{"audience": "users", "message": {"data": {"k": "v"}}}"#;
        let (status, answer) = call(addr, "POST", "/jobs", SEND, body).await;
        assert_eq!((status, answer["recipients"].as_u64()), (202, Some(4)), "{answer}");
        let job = answer["job_ids"][0].as_str().unwrap().to_owned();
        let processor = Processor::new(senders(&server), queue.clone(), queue.clone());
        drain(queue.clone(), processor, std::slice::from_ref(&job), Duration::from_secs(60)).await;

        let (status, answer) = call(addr, "GET", "/audiences/users/changes?since=0", READ, "").await;
        assert_eq!(status, 200);
        let changes = answer["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 1, "{answer}");
        assert_eq!((changes[0]["token"].as_str(), changes[0]["change"].as_str()), (Some("gone"), Some("removed")));
        assert_eq!(changes[0]["job_id"].as_str(), Some(job.as_str()));
        let next = answer["next"].as_u64().unwrap();
        let (_, answer) = call(addr, "GET", &format!("/audiences/users/changes?since={next}"), READ, "").await;
        assert_eq!(answer["changes"], serde_json::json!([]));
        let (_, answer) = call(addr, "GET", "/audiences/users", READ, "").await;
        assert_eq!(answer["tokens"], serde_json::json!([{"token": "a"}, {"token": "b"}, {"token": "c"}]));

        let (status, _) = call(addr, "DELETE", "/audiences/users", SEND, "").await;
        assert_eq!(status, 204);
        let (status, _) = call(addr, "DELETE", "/audiences/users", SEND, "").await;
        assert_eq!(status, 404);
        let (status, _) = call(addr, "GET", "/audiences/bad%20name", READ, "").await;
        assert_eq!(status, 400);
    }
}
