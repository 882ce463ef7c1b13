//! What the mock remembers: the inbox of deliveries and the log of requests, each bounded
//! by a count and a byte budget (the oldest go first, and are counted), so that no
//! traffic can exhaust the memory of a mock that records.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How many received requests the log keeps by default (the oldest are dropped first).
pub const REQUEST_LOG_CAPACITY: usize = 10_000;

/// What the inbox and the request log may hold before they drop their oldest entries.
/// Bytes are the payloads' and bodies' sizes plus a small fixed cost per entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingLimits {
    /// Deliveries the inbox keeps (default 1 000 000).
    pub inbox_entries: usize,
    /// Bytes the inbox keeps (default 256 MiB).
    pub inbox_bytes: usize,
    /// Requests the log keeps (default [`REQUEST_LOG_CAPACITY`]).
    pub log_entries: usize,
    /// Bytes of request bodies the log keeps (default 64 MiB).
    pub log_bytes: usize,
}

impl Default for RecordingLimits {
    fn default() -> Self {
        Self {
            inbox_entries: 1_000_000,
            inbox_bytes: 256 << 20,
            log_entries: REQUEST_LOG_CAPACITY,
            log_bytes: 64 << 20,
        }
    }
}

/// What the inbox and the log hold, and what they dropped to stay within their limits
/// (`GET /_mock/stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingStats {
    /// Deliveries held.
    pub inbox_entries: usize,
    /// Bytes the held deliveries count for.
    pub inbox_bytes: usize,
    /// Deliveries dropped, oldest first, since the start or the last reset.
    pub inbox_dropped: u64,
    /// Requests held.
    pub log_entries: usize,
    /// Bytes the held requests count for.
    pub log_bytes: usize,
    /// Requests dropped, oldest first, since the start or the last reset.
    pub log_dropped: u64,
}

/// A message the mock accepted for one recipient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The delivery's number (1 = first since the start or the last reset); the inbox's
    /// pages start after one (`GET /_mock/inbox?after=N&limit=M`).
    pub index: u64,
    /// The token (or `/topics/<name>`, or condition) as the request named it.
    pub token: String,
    /// The message id the mock answered with.
    pub message_id: String,
    /// The `data` payload (plain text: the `data.<key>` fields, as strings), shared by the
    /// request's deliveries.
    pub data: Arc<Map<String, Value>>,
    /// Every other field of the request (`collapse_key`, `notification`, unknown
    /// options…), shared by the request's deliveries.
    pub options: Arc<Map<String, Value>>,
    /// How many requests had named this recipient when it was delivered (1 = first try).
    pub attempt: u32,
    /// The sequence number of the request that delivered it (1 = first request).
    pub request: u64,
}

/// A request the mock received, as its log keeps it. The `Authorization` header is not
/// kept, only whether it was accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedRequest {
    /// Sequence number (1 = first request).
    pub seq: u64,
    /// Which TCP connection carried it (1 = first accepted connection).
    pub connection: u64,
    /// The HTTP method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// True when the credentials were accepted: the API key, the FCM v1 access token, or
    /// the token endpoint's assertion.
    pub authorized: bool,
    /// The body, as (lossy) UTF-8.
    pub body: String,
    /// The status the mock answered with.
    pub status: u16,
}

/// A fixed cost per entry, for the struct and its small strings' headers.
const ENTRY_OVERHEAD: usize = 128;

/// The inbox and the log, each within its limits.
#[derive(Debug, Default)]
pub(crate) struct Recording {
    pub(crate) limits: RecordingLimits,
    /// Each delivery with the bytes it counts for.
    inbox: VecDeque<(Arc<Delivery>, usize)>,
    log: VecDeque<(ReceivedRequest, usize)>,
    stats: RecordingStats,
    deliveries: u64,
}

impl Recording {
    pub(crate) fn new(limits: RecordingLimits) -> Self {
        Self { limits, ..Self::default() }
    }

    /// The next delivery's number.
    pub(crate) fn next_index(&mut self) -> u64 {
        self.deliveries += 1;
        self.deliveries
    }

    /// Keeps a delivery that counts for `payload_share` bytes of its request's payload.
    pub(crate) fn deliver(&mut self, delivery: Delivery, payload_share: usize) {
        let bytes = ENTRY_OVERHEAD + delivery.token.len() + delivery.message_id.len() + payload_share;
        self.inbox.push_back((Arc::new(delivery), bytes));
        self.stats.inbox_bytes = self.stats.inbox_bytes.saturating_add(bytes);
        while self.inbox.len() > self.limits.inbox_entries || self.stats.inbox_bytes > self.limits.inbox_bytes {
            let Some((_, bytes)) = self.inbox.pop_front() else { break };
            self.stats.inbox_bytes = self.stats.inbox_bytes.saturating_sub(bytes);
            self.stats.inbox_dropped += 1;
        }
    }

    /// Keeps a request.
    pub(crate) fn log(&mut self, request: ReceivedRequest) {
        let bytes = ENTRY_OVERHEAD + request.path.len() + request.body.len();
        self.log.push_back((request, bytes));
        self.stats.log_bytes = self.stats.log_bytes.saturating_add(bytes);
        while self.log.len() > self.limits.log_entries || self.stats.log_bytes > self.limits.log_bytes {
            let Some((_, bytes)) = self.log.pop_front() else { break };
            self.stats.log_bytes = self.stats.log_bytes.saturating_sub(bytes);
            self.stats.log_dropped += 1;
        }
    }

    /// The deliveries numbered after `after`, at most `limit`, shared (a snapshot that
    /// costs a pointer per delivery, serialized by the caller outside any lock).
    pub(crate) fn inbox_page(&self, after: u64, limit: usize) -> Vec<Arc<Delivery>> {
        // Indexes grow by one along the inbox: the first wanted is found by subtraction.
        let first = self.inbox.front().map_or(0, |(delivery, _)| delivery.index);
        let skip = usize::try_from(after.saturating_sub(first.saturating_sub(1))).unwrap_or(usize::MAX);
        self.inbox.iter().skip(skip).take(limit).map(|(delivery, _)| Arc::clone(delivery)).collect()
    }

    pub(crate) fn clear_inbox(&mut self) {
        self.inbox.clear();
        self.stats.inbox_bytes = 0;
    }

    pub(crate) fn requests(&self) -> impl Iterator<Item = &ReceivedRequest> {
        self.log.iter().map(|(request, _)| request)
    }

    pub(crate) fn stats(&self) -> RecordingStats {
        RecordingStats { inbox_entries: self.inbox.len(), log_entries: self.log.len(), ..self.stats }
    }
}
