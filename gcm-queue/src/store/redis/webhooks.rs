//! The webhook deliveries in Redis (see `crate::webhook`): a hash per delivery, the log of
//! every delivery scored by its number, per job a sorted set of its pending deliveries in
//! order, and per project the due set: the first pending delivery of each job, scored by
//! when it is due (a claim moves it to when its lease ends); for the gauges, the pending
//! and the dead ones. `SETTLE` writes a delivery with its settlement.

use std::time::Duration;

use super::{RedisResults, store_error};
use crate::error::Error;
use crate::webhook::{Delivery, DeliveryState, Tried};

/// The fields a delivery is read back with, in [`delivery`]'s order; the body last, so that
/// a listing can leave it out.
const FIELDS: [&str; 12] =
    ["seq", "id", "job", "attempt", "url", "project", "state", "tries", "error", "created", "started", "body"];

/// KEYS: the due set. ARGV: the lease in ms, the most to claim, the owner, the hashes'
/// prefix, then the fields to read. Returns each claimed delivery's fields.
const CLAIM: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local claimed = {}
for _, id in ipairs(ids) do
  local key = ARGV[4] .. id
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), id)
  redis.call('HINCRBY', key, 'tries', 1)
  redis.call('HSET', key, 'owner', ARGV[3])
  claimed[#claimed + 1] = redis.call('HMGET', key, unpack(ARGV, 5))
end
return claimed
";

/// KEYS: the delivery's hash, the due set, the done set, the pending set, the dead set.
/// ARGV: its id, the owner, the
/// outcome (`retry`, `delivered`, `dead`), the delay in ms, the error, the jobs' sets'
/// prefix. A delivered or dead delivery leaves its job's set, whose next one becomes due.
const FINISH: &str = r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] or redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return 0 end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[5]) end
redis.call('HSET', KEYS[1], 'owner', '')
if ARGV[3] == 'retry' then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
  return 1
end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'done', now)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], now, ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if ARGV[3] == 'dead' then redis.call('ZADD', KEYS[5], now, ARGV[1]) end
local job = ARGV[6] .. redis.call('HGET', KEYS[1], 'job')
redis.call('ZREM', job, ARGV[1])
local next = redis.call('ZRANGE', job, 0, 0)
if #next > 0 and not redis.call('ZSCORE', KEYS[2], next[1]) then redis.call('ZADD', KEYS[2], now, next[1]) end
return 1
";

/// KEYS: the log. ARGV: the cursor, the most to read, the hashes' prefix, then the fields.
const READ: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
local read = {}
for _, id in ipairs(ids) do read[#read + 1] = redis.call('HMGET', ARGV[3] .. id, unpack(ARGV, 4)) end
return read
";

/// KEYS: the log, the done set, the pending set, the dead set. ARGV: the cursor, the most to read, the hashes' prefix, the
/// jobs' sets' prefix, the due sets' prefix. Returns {replayed, the last cursor read, read}.
const REPLAY: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local replayed, last = 0, ARGV[1]
for i = 1, #ids, 2 do
  local id, seq = ids[i], ids[i + 1]
  last = seq
  local key = ARGV[3] .. id
  if redis.call('HGET', key, 'state') ~= 'pending' then
    replayed = replayed + 1
    redis.call('HSET', key, 'state', 'pending', 'tries', 0, 'owner', '', 'started', now)
    redis.call('HDEL', key, 'done')
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[3], seq, id)
    redis.call('ZREM', KEYS[4], id)
    local job = ARGV[4] .. redis.call('HGET', key, 'job')
    redis.call('ZADD', job, seq, id)
    local first = redis.call('ZRANGE', job, 0, 1)
    if first[1] == id then
      local due = ARGV[5] .. redis.call('HGET', key, 'project')
      redis.call('ZADD', due, now, id)
      -- The job's former first is no longer due (unless a try of it is in flight).
      local score = first[2] and redis.call('ZSCORE', due, first[2])
      if score and tonumber(score) <= now then redis.call('ZREM', due, first[2]) end
    end
  end
end
return {replayed, tonumber(last), #ids / 2}
";

/// KEYS: the done set, the log, the dead set. ARGV: the cutoff, the most to delete, the
/// hashes' prefix.
const PRUNE: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('DEL', ARGV[3] .. id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
return #ids
";

/// A delivery from its [`FIELDS`] (the body may be left out).
fn delivery(fields: Vec<Option<String>>) -> Delivery {
    let mut fields = fields.into_iter();
    let mut next = || fields.next().flatten().unwrap_or_default();
    let (seq, id, job_id, attempt, url, project) = (next(), next(), next(), next(), next(), next());
    let (state, tries, error, created, started, body) = (next(), next(), next(), next(), next(), next());
    Delivery {
        cursor: seq.parse().unwrap_or(0),
        id,
        job_id,
        attempt: attempt.parse().unwrap_or(0),
        url,
        project: Some(project).filter(|project| !project.is_empty()),
        state: DeliveryState::parse(&state),
        tries: tries.parse().unwrap_or(0),
        last_error: Some(error).filter(|error| !error.is_empty()),
        created_ms: created.parse().unwrap_or(0),
        started_ms: started.parse().unwrap_or(0),
        body,
    }
}

impl RedisResults {
    /// A delivery's hash, by id.
    pub(super) fn webhook_key(&self, id: &str) -> String {
        format!("{}:webhook:{id}", self.prefix)
    }

    /// Every delivery, scored by its number.
    pub(super) fn webhooks_key(&self) -> String {
        format!("{}:webhooks", self.prefix)
    }

    pub(super) fn webhooks_seq_key(&self) -> String {
        format!("{}:webhooks:seq", self.prefix)
    }

    /// A job's pending deliveries, scored by number.
    pub(super) fn webhooks_job_key(&self, job_id: &str) -> String {
        format!("{}:webhooks:job:{job_id}", self.prefix)
    }

    /// The due deliveries of `project`'s jobs ("": of no project).
    pub(super) fn webhooks_due_key(&self, project: &str) -> String {
        format!("{}:webhooks:due:{project}", self.prefix)
    }

    /// Delivered and dead deliveries, scored by when.
    fn webhooks_done_key(&self) -> String {
        format!("{}:webhooks:done", self.prefix)
    }

    /// Pending deliveries, scored by number.
    pub(super) fn webhooks_pending_key(&self) -> String {
        format!("{}:webhooks:pending", self.prefix)
    }

    /// Dead deliveries, scored by when.
    fn webhooks_dead_key(&self) -> String {
        format!("{}:webhooks:dead", self.prefix)
    }

    /// How many deliveries are pending, and how many dead.
    pub(crate) async fn delivery_counts(&self) -> Result<(u64, u64), Error> {
        redis::pipe()
            .zcard(self.webhooks_pending_key())
            .zcard(self.webhooks_dead_key())
            .query_async(&mut self.connection.clone())
            .await
            .map_err(store_error)
    }

    pub(crate) async fn claim_deliveries(
        &self,
        project: &str,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Delivery>, Error> {
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(CLAIM));
        let claimed: Vec<Vec<Option<String>>> = SCRIPT
            .key(self.webhooks_due_key(project))
            .arg(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX / 2))
            .arg(limit)
            .arg(owner)
            .arg(self.webhook_key(""))
            .arg(&FIELDS[..])
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        Ok(claimed.into_iter().map(delivery).collect())
    }

    pub(crate) async fn finish_delivery(&self, delivery: &Delivery, owner: &str, tried: &Tried) -> Result<(), Error> {
        let id = &delivery.id;
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(FINISH));
        let (outcome, delay, error) = match tried {
            Tried::Delivered => (DeliveryState::Delivered.as_str(), Duration::ZERO, ""),
            Tried::Retry { after, error } => ("retry", *after, error.as_str()),
            Tried::Dead { error } => (DeliveryState::Dead.as_str(), Duration::ZERO, error.as_str()),
        };
        let _: u8 = SCRIPT
            .key(self.webhook_key(id))
            .key(self.webhooks_due_key(delivery.project.as_deref().unwrap_or_default()))
            .key(self.webhooks_done_key())
            .key(self.webhooks_pending_key())
            .key(self.webhooks_dead_key())
            .arg(id)
            .arg(owner)
            .arg(outcome)
            .arg(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX / 2))
            .arg(error)
            .arg(self.webhooks_job_key(""))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        Ok(())
    }

    pub(crate) async fn read_deliveries(&self, since: u64, limit: usize) -> Result<Vec<Delivery>, Error> {
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(READ));
        let read: Vec<Vec<Option<String>>> = SCRIPT
            .key(self.webhooks_key())
            .arg(since)
            .arg(limit)
            .arg(self.webhook_key(""))
            .arg(FIELDS.split_last().map_or(FIELDS.as_slice(), |(_body, listed)| listed))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        Ok(read.into_iter().map(delivery).collect())
    }

    pub(crate) async fn replay_deliveries(&self, since: u64) -> Result<u64, Error> {
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(REPLAY));
        let (mut cursor, mut replayed) = (since, 0u64);
        loop {
            let (count, last, read): (u64, u64, usize) = SCRIPT
                .key(self.webhooks_key())
                .key(self.webhooks_done_key())
                .key(self.webhooks_pending_key())
                .key(self.webhooks_dead_key())
                .arg(cursor)
                .arg(crate::PRUNE_BATCH)
                .arg(self.webhook_key(""))
                .arg(self.webhooks_job_key(""))
                .arg(self.webhooks_due_key(""))
                .invoke_async(&mut self.connection.clone())
                .await
                .map_err(store_error)?;
            replayed = replayed.saturating_add(count);
            cursor = last;
            if read < crate::PRUNE_BATCH {
                return Ok(replayed);
            }
        }
    }

    pub(crate) async fn prune_deliveries(&self, cutoff_ms: u64, limit: usize) -> Result<u64, Error> {
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(PRUNE));
        SCRIPT
            .key(self.webhooks_done_key())
            .key(self.webhooks_key())
            .key(self.webhooks_dead_key())
            .arg(cutoff_ms)
            .arg(limit)
            .arg(self.webhook_key(""))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)
    }
}
