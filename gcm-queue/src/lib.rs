#![doc = include_str!("../README.md")]
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
