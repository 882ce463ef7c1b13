//! The queue's webhook deliveries, in its backend (see [`crate::webhook`]).

use std::time::Duration;

use crate::error::Error;
use crate::store::BoxFuture;
use crate::webhook::{Delivery, Tried, WebhookOutbox};

use super::{Backend, Queue};

impl WebhookOutbox for Queue {
    fn claim_deliveries<'a>(
        &'a self,
        project: Option<&'a str>,
        owner: &'a str,
        lease: Duration,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Delivery>, Error>> {
        let project = project.unwrap_or_default();
        Box::pin(async move {
            each_backend!(self, |_storage, results| results.claim_deliveries(project, owner, lease, limit).await)
        })
    }

    fn finish<'a>(
        &'a self,
        delivery: &'a Delivery,
        owner: &'a str,
        tried: &'a Tried,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            each_backend!(self, |_storage, results| results.finish_delivery(delivery, owner, tried).await)
        })
    }

    fn deliveries<'a>(&'a self, since: u64, limit: usize) -> BoxFuture<'a, Result<Vec<Delivery>, Error>> {
        Box::pin(async move { each_backend!(self, |_storage, results| results.read_deliveries(since, limit).await) })
    }

    fn replay(&self, since: u64) -> BoxFuture<'_, Result<u64, Error>> {
        Box::pin(async move { each_backend!(self, |_storage, results| results.replay_deliveries(since).await) })
    }
}
