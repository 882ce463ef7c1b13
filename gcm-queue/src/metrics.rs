//! Counters of a process, in Prometheus' text format (`GET /metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
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
    /// Seconds one attempt's send took (FCM's answers for all its messages, pauses aside).
    pub send_seconds: Histogram,
    /// Seconds recording one settlement took (its backend's write).
    pub settle_seconds: Histogram,
    /// Final fates by project (`""` for jobs of no project) and fate.
    pub project_fates: Family<ProjectFateLabel, Counter>,
    /// Webhook tries by outcome (`delivered`, `retry`, `dead`).
    pub webhook_tries: Family<OutcomeLabel, Counter>,
}

/// How a try ended, as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `delivered`, `retry` or `dead`.
    pub outcome: &'static str,
}

/// A project and a fate, as labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProjectFateLabel {
    /// The job's project, `""` for none.
    pub project: String,
    /// The fate's name (`delivered`, `not_registered`…).
    pub fate: String,
}

fn seconds_histogram() -> Histogram {
    // 5 ms to about 80 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
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
        let send_seconds = seconds_histogram();
        registry.register("send_seconds", "Seconds one attempt's send took", send_seconds.clone());
        let settle_seconds = seconds_histogram();
        registry.register("settle_seconds", "Seconds recording one settlement took", settle_seconds.clone());
        let backend_down = Gauge::default();
        registry.register("backend_down", "1 while the queue's backend fails", backend_down.clone());
        let project_fates = Family::<ProjectFateLabel, Counter>::default();
        registry.register("project_fates", "Final fates by project and fate", project_fates.clone());
        let webhook_tries = Family::<OutcomeLabel, Counter>::default();
        registry.register("webhook_tries", "Webhook deliveries tried, by outcome", webhook_tries.clone());
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
            send_seconds,
            settle_seconds,
            project_fates,
            webhook_tries,
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
            let label = ProjectFateLabel {
                project: record.project.clone().unwrap_or_default(),
                fate: record.fate.name().to_owned(),
            };
            self.project_fates.get_or_create(&label).inc();
        }
    }

    /// The counters in Prometheus' text exposition format.
    pub fn encode(&self) -> String {
        self.encode_with(None)
    }

    /// The counters, and the queue-wide gauges of `queue` (what `serve` shows).
    pub fn encode_with(&self, queue: Option<&QueueGauges>) -> String {
        use prometheus_client::encoding::text;
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = text::encode_registry(&mut out, &self.registry);
        if let Some(queue) = queue {
            let _ = text::encode_registry(&mut out, &queue.registry);
        }
        let _ = text::encode_eof(&mut out);
        out
    }
}

/// What a queue holds, read from its backend: the same for every process that reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Job attempts by the engine's state, lower case (`pending`, `scheduled`, `running`,
    /// `done`, `failed`…; the names are apalis's, and differ by backend).
    pub jobs: Vec<(String, u64)>,
    /// Seconds the oldest due job has waited for a worker (0 when none waits).
    pub oldest_due_lag_s: u64,
    /// Recipients of registered jobs without a final fate yet.
    pub pending_recipients: u64,
    /// Webhook deliveries not yet delivered (due, in flight or waiting to be tried again).
    pub pending_deliveries: u64,
    /// Webhook deliveries dead: still failing when their retry period ended.
    pub dead_deliveries: u64,
}

impl QueueStats {
    pub(crate) fn new(jobs: Vec<(String, i64)>, lag_s: Option<i64>, pending_recipients: u64) -> Self {
        let count = |value: i64| u64::try_from(value).unwrap_or(0);
        let jobs = jobs.into_iter().map(|(state, n)| (state.to_ascii_lowercase(), count(n))).collect();
        Self { jobs, oldest_due_lag_s: lag_s.map_or(0, count), pending_recipients, ..Self::default() }
    }
}

/// What a queue holds, read from its backend when `/metrics` of `serve` is scraped: the
/// same for every replica, unlike the process counters.
#[derive(Debug)]
pub struct QueueGauges {
    registry: Registry,
    /// Jobs (attempts) by the engine's state: `pending`, `scheduled`, `running`, `done`…
    pub jobs: Family<StateLabel, Gauge>,
    /// Seconds the oldest due job has waited for a worker (0 when none waits).
    pub oldest_due_lag_seconds: Gauge,
    /// Recipients of registered jobs without a final fate yet.
    pub pending_recipients: Gauge,
    /// Webhook deliveries by state: `pending`, `dead`.
    pub webhook_deliveries: Family<StateLabel, Gauge>,
    /// 1 when the last read of these gauges failed (they then keep their last values).
    pub read_failed: Gauge,
}

/// A job state, as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// The state.
    pub state: String,
}

impl Default for QueueGauges {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gcm_queue");
        let jobs = Family::<StateLabel, Gauge>::default();
        registry.register("jobs", "Job attempts in the queue by state", jobs.clone());
        let oldest_due_lag_seconds = Gauge::default();
        registry.register(
            "oldest_due_lag_seconds",
            "Seconds the oldest due job has waited",
            oldest_due_lag_seconds.clone(),
        );
        let pending_recipients = Gauge::default();
        registry.register("pending_recipients", "Recipients without a final fate yet", pending_recipients.clone());
        let webhook_deliveries = Family::<StateLabel, Gauge>::default();
        registry.register("webhook_deliveries", "Webhook deliveries pending or dead", webhook_deliveries.clone());
        let read_failed = Gauge::default();
        registry.register("gauges_read_failed", "1 when the queue's gauges could not be read", read_failed.clone());
        Self { registry, jobs, oldest_due_lag_seconds, pending_recipients, webhook_deliveries, read_failed }
    }
}

impl QueueGauges {
    /// Sets the gauges from `stats`.
    pub fn set(&self, stats: &QueueStats) {
        self.jobs.clear();
        for (state, count) in &stats.jobs {
            self.jobs
                .get_or_create(&StateLabel { state: state.clone() })
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        self.oldest_due_lag_seconds.set(i64::try_from(stats.oldest_due_lag_s).unwrap_or(i64::MAX));
        self.pending_recipients.set(i64::try_from(stats.pending_recipients).unwrap_or(i64::MAX));
        for (state, count) in [("pending", stats.pending_deliveries), ("dead", stats.dead_deliveries)] {
            let gauge = self.webhook_deliveries.get_or_create(&StateLabel { state: state.to_owned() });
            gauge.set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.read_failed.set(0);
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
