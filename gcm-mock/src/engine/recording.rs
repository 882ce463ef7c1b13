//! What the mock remembers: the inbox of deliveries and the log of requests, each bounded
//! by a count and a byte budget (the oldest go first, and are counted), so that no
//! traffic can exhaust the memory of a mock that records.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::ser::SerializeSeq as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::http::MessageId;

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
    /// Bytes of each request body the log keeps (default 64 KiB); a longer body is cut
    /// there and ends with `…(N more bytes)`. What was delivered is in the inbox, whole.
    pub log_body_bytes: usize,
}

impl Default for RecordingLimits {
    fn default() -> Self {
        Self {
            inbox_entries: 1_000_000,
            inbox_bytes: 256 << 20,
            log_entries: REQUEST_LOG_CAPACITY,
            log_bytes: 64 << 20,
            log_body_bytes: 64 << 10,
        }
    }
}

/// What the inbox and the log hold, and what they dropped to stay within their limits
/// (`GET /_mock/stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingStats {
    /// Messages delivered (dry runs excepted) since the start or the last reset, whether
    /// or not anything records them: a load test counts duplicates with recording off.
    #[serde(default)]
    pub delivered: u64,
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
    /// For a device reached through a topic or condition it is subscribed to: that
    /// `/topics/<name>` or condition (the send itself is a delivery of its own, without).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
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
const ENTRY_OVERHEAD: usize = 96;

/// A delivery as the inbox keeps it: the token shared with the engine's attempt counter,
/// the payload shared by the request's deliveries, the message id as its number. It
/// becomes a [`Delivery`] when read.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) index: u64,
    pub(crate) token: Arc<str>,
    pub(crate) id: MessageId,
    pub(crate) data: Arc<Map<String, Value>>,
    pub(crate) options: Arc<Map<String, Value>>,
    pub(crate) attempt: u32,
    pub(crate) request: u64,
    pub(crate) via: Option<Arc<str>>,
}

impl Record {
    fn delivery(&self, id_base: u64) -> Delivery {
        Delivery {
            index: self.index,
            token: self.token.to_string(),
            message_id: self.id.text(id_base),
            data: Arc::clone(&self.data),
            options: Arc::clone(&self.options),
            attempt: self.attempt,
            request: self.request,
            via: self.via.as_deref().map(str::to_owned),
        }
    }
}

/// A page of the inbox, taken under the engine's lock at the cost of two reference counts
/// per delivery; it serializes as the JSON array of its [`Delivery`]s, outside the lock.
#[derive(Debug)]
pub struct InboxPage {
    records: Vec<Record>,
    id_base: u64,
}

impl InboxPage {
    /// The deliveries, in order.
    pub fn deliveries(&self) -> impl Iterator<Item = Delivery> + '_ {
        self.records.iter().map(|record| record.delivery(self.id_base))
    }

    /// How many deliveries the page holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when the page holds none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl Serialize for InboxPage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.records.len()))?;
        for delivery in self.deliveries() {
            seq.serialize_element(&delivery)?;
        }
        seq.end()
    }
}

/// Entries, oldest first, each with the bytes it counts for; within a count and a byte
/// budget by dropping the oldest, which it counts.
#[derive(Debug)]
struct Bounded<T> {
    entries: VecDeque<(T, usize)>,
    bytes: usize,
    dropped: u64,
}

impl<T> Default for Bounded<T> {
    fn default() -> Self {
        Self { entries: VecDeque::new(), bytes: 0, dropped: 0 }
    }
}

impl<T> Bounded<T> {
    fn push(&mut self, entry: T, bytes: usize, max_entries: usize, max_bytes: usize) {
        self.entries.push_back((entry, bytes));
        self.bytes = self.bytes.saturating_add(bytes);
        while self.entries.len() > max_entries || self.bytes > max_bytes {
            let Some((_, bytes)) = self.entries.pop_front() else { break };
            self.bytes = self.bytes.saturating_sub(bytes);
            self.dropped += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|(entry, _)| entry)
    }
}

/// The inbox and the log, each within its limits.
#[derive(Debug, Default)]
pub(crate) struct Recording {
    pub(crate) limits: RecordingLimits,
    inbox: Bounded<Record>,
    log: Bounded<ReceivedRequest>,
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
    pub(crate) fn deliver(&mut self, record: Record, payload_share: usize) {
        let bytes = ENTRY_OVERHEAD + record.token.len() + payload_share;
        self.inbox.push(record, bytes, self.limits.inbox_entries, self.limits.inbox_bytes);
    }

    /// Keeps a request, its body cut to the limit.
    pub(crate) fn log(&mut self, mut request: ReceivedRequest) {
        if request.body.len() > self.limits.log_body_bytes {
            let mut cut = self.limits.log_body_bytes;
            while !request.body.is_char_boundary(cut) {
                cut -= 1;
            }
            let more = request.body.len() - cut;
            request.body.truncate(cut);
            request.body.push_str(&format!("…({more} more bytes)"));
            request.body.shrink_to_fit();
        }
        let bytes = ENTRY_OVERHEAD + request.path.len() + request.body.len();
        self.log.push(request, bytes, self.limits.log_entries, self.limits.log_bytes);
    }

    /// The deliveries numbered after `after`, at most `limit`.
    pub(crate) fn inbox_page(&self, after: u64, limit: usize, id_base: u64) -> InboxPage {
        // Indexes grow by one along the inbox: the first wanted is found by subtraction.
        let first = self.inbox.iter().next().map_or(0, |record| record.index);
        let skip = usize::try_from(after.saturating_sub(first.saturating_sub(1))).unwrap_or(usize::MAX);
        let records = self.inbox.iter().skip(skip).take(limit).cloned().collect();
        InboxPage { records, id_base }
    }

    pub(crate) fn clear_inbox(&mut self) {
        self.inbox.entries.clear();
        self.inbox.bytes = 0;
    }

    pub(crate) fn requests(&self) -> impl Iterator<Item = &ReceivedRequest> {
        self.log.iter()
    }

    pub(crate) fn stats(&self) -> RecordingStats {
        RecordingStats {
            delivered: 0,
            inbox_entries: self.inbox.entries.len(),
            inbox_bytes: self.inbox.bytes,
            inbox_dropped: self.inbox.dropped,
            log_entries: self.log.entries.len(),
            log_bytes: self.log.bytes,
            log_dropped: self.log.dropped,
        }
    }
}
