#![doc = include_str!("../README.md")]
//!
//! # Where things are
//! - [`Queue`] (`queue`): the apalis backend chosen by URL, with its result store; workers;
//!   [`Retention`] (`queue::retention`): what is finished, deleted when old.
//! - [`Job`] and [`Payload`] (`job`): one send and where it stands in its retries.
//! - [`Processor`] (`send`): one job, one step — claim, send, settle, schedule.
//! - [`Policy`] and [`Unsure`] (`round`): what a send learned, made a settlement (fates, the
//!   retry by position, its delay).
//! - [`Settlement`], [`Record`], [`Summary`], [`Final`] (`fate`): what an attempt ends with.
//! - [`ResultStore`] and [`ResultReader`] (`store`): where the fates go (SQL, Redis, memory);
//!   [`Quota`] (`store::quota`): the fleet's messages-per-minute bucket, in the backend.
//! - [`Gate`] (`gate`): the pause after a failure that concerns every message, and the rate.
//! - [`Metrics`] (`metrics`), [`http`]: the counters and the HTTP API of `gcm-worker`.
//! - [`Audiences`] ([`audience`]): token lists in the backend, cleaned by their results.
//! - [`webhook`]: settlements posted to a job's webhook, signed, durable, retried.
//! - [`Error`] (`error`): what can go wrong around a send.
#![deny(missing_docs)]

pub mod audience;
mod error;
mod fate;
mod gate;
pub mod http;
mod job;
mod metrics;
mod queue;
mod round;
mod send;
mod store;
pub mod webhook;

pub use audience::{AudienceChange, AudienceToken, Audiences, Change};
pub use error::{BoxError, Error};
pub use fate::{Enqueued, Final, JobStatus, Record, Scheduled, Settlement, Summary};
pub use gate::{Gate, RateLimit};
pub use job::{JOB_FORMAT, Job, Payload};
pub use metrics::{Metrics, OutcomeLabel, ProjectFateLabel, QueueGauges, QueueStats, StateLabel};
pub use queue::{
    CONNECT_TIMEOUT, Campaign, DEFAULT_RETENTION, MOST_CAMPAIGN_JOBS, PRUNE_BATCH, Pruned, QUEUE_NAME, Queue,
    QueueConfig, Requeued, RequeuedJob, Retention, Worker, WorkerOptions,
};
pub use round::{Policy, Unsure};
pub use send::{DEFAULT_LEASE, Enqueue, Processor, Senders};
#[cfg(feature = "redis")]
pub use store::RedisResults;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use store::SqlResults;
pub use store::{BoxFuture, Claim, IDEMPOTENCY_KEPT, MemoryResults, Quota, Rate, ResultReader, ResultStore, Settled};

pub use gcm_hyper;
