//! Counters of a process, in Prometheus' text format (`GET /metrics`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::fate::{Final, Settlement};

/// What a process has done since it started. Each counter is per process: Prometheus
/// sums them across workers.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Jobs enqueued by this process (`enqueue`, `serve`).
    pub enqueued: Counter,
    /// Attempts settled.
    pub jobs: Counter,
    /// Messages sent (one per recipient per attempt).
    pub sent: Counter,
    /// Recipients delivered.
    pub delivered: Counter,
    /// Delivered recipients with a canonical replacement.
    pub canonical: Counter,
    /// Recipients not registered.
    pub not_registered: Counter,
    /// Recipients refused for good.
    pub failed: Counter,
    /// Recipients scheduled for another attempt.
    pub retried: Counter,
    /// Recipients given up after the last attempt.
    pub given_up: Counter,
    /// Recipients parked for review.
    pub parked: Counter,
    /// Recipients not sent because their job was cancelled.
    pub cancelled: Counter,
    /// Pauses after a failure that concerned every message.
    pub paused: Counter,
    /// Attempts claimed after another worker's lease ran out (it died or stalled while
    /// sending): that worker's messages may have been sent twice.
    pub takeovers: Counter,
    /// 1 while the queue's backend (database, Redis) fails, 0 once it answers again.
    pub backend_down: Gauge,
    /// Settlements cut off before they were recorded (the process stopped after its grace
    /// period): what FCM answered for them is lost, and the queue sends them again.
    pub unrecorded: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gcm_queue");
        let mut counter = |name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let enqueued = counter("enqueued_jobs", "Jobs enqueued by this process");
        let jobs = counter("settled_jobs", "Job attempts settled");
        let sent = counter("sent_messages", "Messages sent, one per recipient and attempt");
        let delivered = counter("delivered_messages", "Recipients delivered");
        let canonical = counter("canonical_messages", "Delivered recipients with a canonical replacement");
        let not_registered = counter("not_registered_messages", "Recipients no longer registered");
        let failed = counter("failed_messages", "Recipients refused for good");
        let retried = counter("retried_messages", "Recipients scheduled for another attempt");
        let given_up = counter("given_up_messages", "Recipients given up after the last attempt");
        let parked = counter("parked_messages", "Recipients parked for review (may have reached the server)");
        let cancelled = counter("cancelled_messages", "Recipients not sent because their job was cancelled");
        let paused = counter("pauses", "Pauses after a failure that concerned every message");
        let takeovers = counter("takeovers", "Attempts claimed after another worker's lease ran out");
        let unrecorded = counter("unrecorded_settlements", "Settlements not recorded before the worker stopped");
        let backend_down = Gauge::default();
        registry.register("backend_down", "1 while the queue's backend fails", backend_down.clone());
        Self {
            registry,
            enqueued,
            jobs,
            sent,
            delivered,
            canonical,
            not_registered,
            failed,
            retried,
            given_up,
            parked,
            cancelled,
            paused,
            takeovers,
            backend_down,
            unrecorded,
        }
    }
}

impl Metrics {
    /// Counts a settlement of an attempt that sent `sent` messages.
    pub fn count(&self, sent: usize, settlement: &Settlement) {
        self.jobs.inc();
        self.sent.inc_by(sent as u64);
        self.retried.inc_by(settlement.pending() as u64);
        for record in &settlement.records {
            let counter = match &record.fate {
                Final::Delivered { canonical, .. } => {
                    if canonical.is_some() {
                        self.canonical.inc();
                    }
                    &self.delivered
                }
                Final::NotRegistered => &self.not_registered,
                Final::Failed { .. } => &self.failed,
                Final::GivenUp { .. } => &self.given_up,
                Final::Parked { .. } => &self.parked,
                Final::Cancelled => &self.cancelled,
            };
            counter.inc();
        }
    }

    /// The counters in Prometheus' text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_read_in_prometheus_text() {
        let metrics = Metrics::default();
        metrics.delivered.inc_by(3);
        let text = metrics.encode();
        assert!(text.contains("# TYPE gcm_queue_delivered_messages counter"), "{text}");
        assert!(text.contains("gcm_queue_delivered_messages_total 3"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
