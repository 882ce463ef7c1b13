//! Durable FCM sending through a job queue: enqueue a multicast, and workers on any number
//! of machines send it, record every recipient's final fate, and schedule what needs a
//! retry as a delayed job, at the server's `Retry-After` or the backoff's delay.
//!
//! Built on [apalis](https://docs.rs/apalis): SQLite (embedded, the default), PostgreSQL
//! and Redis (cargo features `postgres`, `redis`).
//!
//! * A [`Job`] is a v1 multicast, a legacy multicast or v1 messages, with its attempt,
//!   its first enqueue time and an optional correlation id.
//! * A worker runs each job in one step ([`Processor::process`]): send, then settle
//!   (every final fate and the retry, recorded at once in the [`ResultStore`]), then push
//!   the retry. A job that runs again after a crash finds its settlement and does not send
//!   again; a job whose worker died before settling is sent again (at-least-once).
//! * [`ResultReader`] reads the fates back since a cursor: canonical replacements,
//!   not-registered and failed tokens, for the application's token database.
//!
//! ```no_run
//! use gcm_queue::{Job, Processor, Queue, Senders, WorkerOptions};
//! use gcm_hyper::{FcmClient, v1::Multicast};
//! use std::sync::Arc;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let queue = Arc::new(Queue::connect("sqlite:jobs.db").await?);
//! queue.enqueue(&Job::v1_multicast(Multicast::new(["token-a", "token-b"]).data("kind", "sync"))).await?;
//!
//! let senders = Senders { fcm: Some(FcmClient::from_key_file("service-account.json")?), legacy: None };
//! let processor = Processor::new(senders, queue.clone(), queue.clone());
//! queue.work(processor, &WorkerOptions::default(), async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod error;
mod fate;
mod gate;
pub mod http;
mod job;
mod metrics;
mod queue;
mod send;
mod store;

pub use error::{BoxError, Error};
pub use fate::{Final, Record, Scheduled, Settlement, Summary};
pub use gate::{Gate, RateLimit};
pub use job::{JOB_FORMAT, Job, Payload};
pub use metrics::Metrics;
pub use queue::{QUEUE_NAME, Queue, QueueConfig, WorkerOptions};
pub use send::{Enqueue, Policy, Processor, Senders, Unsure};
#[cfg(feature = "redis")]
pub use store::RedisResults;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use store::SqlResults;
pub use store::{BoxFuture, MemoryResults, ResultReader, ResultStore, Settled};

pub use gcm_hyper;
