//! Results in the queue's Redis: one key per settled attempt, a stream of result blocks
//! (up to 1000 records each, see `block`) whose ids are `0-<seq>`, and a hash of counts per
//! job. A Lua script writes a settlement's keys at once, or none when the attempt is settled
//! already.
//! Another script keeps each attempt's lease in a hash (owner, expiry, who it took over from).

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::block::{self, Page};
use super::{BoxFuture, Claim, ResultReader, ResultStore, Settled};
use crate::error::Error;
use crate::fate::{Enqueued, Record, Settlement, Summary};

mod webhooks;

/// Results stored in Redis beside the jobs, under keys that start with `prefix`.
#[derive(Clone)]
pub struct RedisResults {
    connection: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisResults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisResults").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// KEYS: settled key, blocks stream, sequence counter, job hash, totals hash, block times,
/// finished jobs, then the audience's tokens, flags, change feed and its counter, then the
/// webhook delivery's hash, the deliveries' counter, their log, the job's pending
/// deliveries, the due ones and the pending ones (see `webhooks`), then the prefix of the
/// counts of recipients sent per project and minute (`<prefix><project>:<minute>`, kept two
/// hours) and of the set of projects counted (`<prefix>projects`).
/// ARGV: retry JSON ("" for none), pending count, job id, attempt, the number of counts N,
/// the number of records, N pairs of count name and value, the number of blocks B, the
/// blocks, then `1` and the delivery's id, URL, project, attempt and body (or `0`: none), then the
/// audience's changes (change, token, value: see `audience`).
///
/// For retention, the block times hold the first block of each settlement scored by when
/// it was written (numbers padded to 20 digits, so that equal times sort them in order),
/// and the finished jobs each job whose last attempt settled, scored the same way. Blocks
/// written before there were times are dated by the first settlement after them. The job's
/// hash keeps each attempt's block numbers (`blocks:<attempt>` = `first-last`: what reads a
/// job's records) and when its retry is due (from the end of the retry's JSON).
const SETTLE: &str = r"
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1])
if redis.call('HEXISTS', KEYS[4], 'recipients') == 1 then redis.call('HINCRBY', KEYS[5], 'finals', ARGV[6]) end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local counted = 7 + 2 * tonumber(ARGV[5])
local cancelled = 0
for i = 7, counted - 1, 2 do
  redis.call('HINCRBY', KEYS[4], ARGV[i], ARGV[i + 1])
  if ARGV[i] == 'cancelled' then cancelled = tonumber(ARGV[i + 1]) end
end
local sent = tonumber(ARGV[6]) - cancelled + tonumber(ARGV[2])
if sent > 0 then
  local project = redis.call('HGET', KEYS[4], 'project') or ''
  local minute = KEYS[18] .. project .. ':' .. math.floor(now / 60000)
  redis.call('INCRBY', minute, sent)
  redis.call('EXPIRE', minute, 7200)
  redis.call('SADD', KEYS[18] .. 'projects', project)
end
local blocks = counted + 1
local hook = blocks + tonumber(ARGV[counted])
local changes = hook + 1
for i = blocks, hook - 1 do
  local seq = redis.call('INCR', KEYS[3])
  if i == blocks then redis.call('HSET', KEYS[4], 'blocks:' .. ARGV[4], seq .. '-' .. (seq + hook - 1 - blocks)) end
  if i == blocks then
    if seq > 1 and redis.call('EXISTS', KEYS[6]) == 0 then redis.call('ZADD', KEYS[6], now, string.format('%020d', 1)) end
    redis.call('ZADD', KEYS[6], now, string.format('%020d', seq))
  end
  redis.call('XADD', KEYS[2], '0-' .. seq, 'job', ARGV[3], 'attempt', ARGV[4], 'records', ARGV[i])
end
if ARGV[hook] == '1' then
  changes = hook + 6
  local id, seq = ARGV[hook + 1], redis.call('INCR', KEYS[13])
  redis.call('HSET', KEYS[12], 'seq', seq, 'id', id, 'job', ARGV[3], 'attempt', ARGV[hook + 4], 'url', ARGV[hook + 2],
    'project', ARGV[hook + 3], 'body', ARGV[hook + 5], 'state', 'pending', 'tries', 0, 'created', now, 'started', now)
  redis.call('ZADD', KEYS[14], seq, id)
  redis.call('ZADD', KEYS[15], seq, id)
  redis.call('ZADD', KEYS[17], seq, id)
  if redis.call('ZCARD', KEYS[15]) == 1 then redis.call('ZADD', KEYS[16], now, id) end
end
for i = changes, #ARGV, 3 do
  local change, token, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local changed = false
  if change == 'flagged' then
    changed = redis.call('ZSCORE', KEYS[8], token) and redis.call('HSETNX', KEYS[9], token, value) == 1
  elseif redis.call('ZREM', KEYS[8], token) == 1 then
    redis.call('HDEL', KEYS[9], token)
    if change == 'replaced' then redis.call('ZADD', KEYS[8], 'NX', 0, value) end
    changed = true
  end
  if changed then
    local seq = redis.call('INCR', KEYS[11])
    redis.call('XADD', KEYS[10], '0-' .. seq, 'token', token, 'change', change, 'value', value, 'job', ARGV[3], 'at', now)
  end
end
if ARGV[1] == '' then redis.call('ZADD', KEYS[7], now, ARGV[3]) end
redis.call('HINCRBY', KEYS[4], 'attempts', 1)
redis.call('HSET', KEYS[4], 'pending', ARGV[2])
local due = string.match(string.sub(ARGV[1], -40), '\34run_at_ms\34:(%d+)}$')
if due then redis.call('HSET', KEYS[4], 'retry_at_ms', due) else redis.call('HDEL', KEYS[4], 'retry_at_ms') end
return ARGV[1]
";

/// KEYS: blocks stream, block times, sequence counter. ARGV: cutoff in milliseconds, the
/// most blocks to delete. Trims the blocks written before the cutoff (at most so many),
/// then the times of the settlements trimmed; returns the blocks trimmed.
const PRUNE_RESULTS: &str = r"
local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #oldest == 0 then return 0 end
local first = tonumber(string.match(oldest[1][1], '%-(%d+)$'))
local kept = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf', 'LIMIT', 0, 1)
local keep_from
if #kept > 0 then keep_from = tonumber(kept[1]) else keep_from = tonumber(redis.call('GET', KEYS[3]) or '0') + 1 end
keep_from = math.min(keep_from, first + tonumber(ARGV[2]))
local trimmed = redis.call('XTRIM', KEYS[1], 'MINID', '0-' .. keep_from)
local marks = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, mark in ipairs(marks) do
  if tonumber(mark) < keep_from then redis.call('ZREM', KEYS[2], mark) end
end
return trimmed
";

/// KEYS: finished jobs. ARGV: cutoff in milliseconds, the most jobs, the key prefix.
/// Deletes the jobs that finished before the cutoff: their hash, settlements and claims,
/// and their place in their campaign (the campaign too, with its last job).
const PRUNE_JOBS: &str = r"
local jobs = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, job in ipairs(jobs) do
  local job_key = ARGV[3] .. ':job:' .. job
  local attempts = tonumber(redis.call('HGET', job_key, 'attempts') or '0')
  local campaign = redis.call('HGET', job_key, 'campaign_id')
  if campaign then
    local campaign_key = ARGV[3] .. ':campaign:' .. campaign
    redis.call('SREM', campaign_key, job)
    if redis.call('SCARD', campaign_key) == 0 then redis.call('ZREM', ARGV[3] .. ':campaigns', campaign) end
  end
  for attempt = 0, attempts - 1 do
    redis.call('DEL', ARGV[3] .. ':settled:' .. job .. ':' .. attempt, ARGV[3] .. ':claim:' .. job .. ':' .. attempt)
  end
  redis.call('DEL', job_key)
  redis.call('ZREM', KEYS[1], job)
end
return #jobs
";

/// KEYS: the claim hash, the settled key, the job hash. ARGV: owner, lease in milliseconds,
/// the hash's lifetime in seconds. Returns `{1, taken_over_from}` when granted, `{0, owner}`
/// when held, `{2, ''}` when the job is cancelled and nobody else holds a live lease.
/// Redis's own clock times the lease.
const CLAIM: &str = r"
local owner = redis.call('HGET', KEYS[1], 'owner')
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, owner or ''} end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local expires = tonumber(redis.call('HGET', KEYS[1], 'expires') or '0')
local cancelled = redis.call('HEXISTS', KEYS[3], 'cancelled_ms') == 1
if owner and owner ~= ARGV[1] then
  if expires >= now then return {0, owner} end
  if cancelled then return {2, ''} end
  redis.call('HSET', KEYS[1], 'taken_over_from', owner)
  redis.call('HINCRBY', KEYS[1], 'claims', 1)
elseif not owner then
  if cancelled then return {2, ''} end
  redis.call('HSET', KEYS[1], 'claims', 1)
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'expires', now + tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, redis.call('HGET', KEYS[1], 'taken_over_from') or ''}
";

/// KEYS: the bucket's hash. ARGV: messages a millisecond, messages taken, the most the
/// bucket holds. Returns what is left in the bucket (a text: Lua's numbers reach Redis
/// as integers) and the pause left in milliseconds (see `quota`).
const TAKE_QUOTA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or '0')
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or tostring(now))
if now > at then
  tokens = math.min(tonumber(ARGV[3]), tokens + (now - at) * tonumber(ARGV[1]))
  at = now
end
tokens = tokens - tonumber(ARGV[2])
local left = string.format('%.17g', tokens)
redis.call('HSET', KEYS[1], 'tokens', left, 'at', at)
return {left, at - now}
";

/// KEYS: the bucket's hash. ARGV: the pause in milliseconds.
const PAUSE_QUOTA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local time = redis.call('TIME')
local until_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + tonumber(ARGV[1])
if tonumber(redis.call('HGET', KEYS[1], 'tokens')) > 0 then redis.call('HSET', KEYS[1], 'tokens', 0) end
if tonumber(redis.call('HGET', KEYS[1], 'at')) < until_ms then redis.call('HSET', KEYS[1], 'at', until_ms) end
return 1
";

/// The names of the audiences: what retention walks to trim their feeds.
const AUDIENCES: &str = "gcm-queue:audiences";

/// An audience's keys: one per backend, whatever the queue's name (as SQL's tables).
struct Audience {
    /// A sorted set, every score 0: its tokens in byte order.
    tokens: String,
    /// Flagged tokens and their codes.
    flags: String,
    /// The change feed, ids `0-<seq>`.
    feed: String,
    feed_seq: String,
}

impl Audience {
    fn named(name: &str) -> Self {
        let base = format!("gcm-queue:audience:{name}");
        Self {
            flags: format!("{base}:flagged"),
            feed: format!("{base}:changes"),
            feed_seq: format!("{base}:changes:seq"),
            tokens: base,
        }
    }
}

/// How long a claim's hash outlives its last renewal: long after any retry of its attempt.
const CLAIM_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

fn store_error(error: redis::RedisError) -> Error {
    Error::Store(Box::new(error))
}

fn json_error(error: serde_json::Error) -> Error {
    Error::Store(Box::new(error))
}

fn settled_from(text: &str) -> Result<Settled, Error> {
    let retry = if text.is_empty() { None } else { Some(serde_json::from_str(text).map_err(json_error)?) };
    Ok(Settled { retry })
}

impl RedisResults {
    /// Results over `connection`, under keys that start with `gcm-queue:`.
    pub fn new(connection: ConnectionManager) -> Self {
        Self::with_prefix(connection, "gcm-queue")
    }

    /// Results over `connection`, under keys that start with `prefix:`.
    pub fn with_prefix(connection: ConnectionManager, prefix: &str) -> Self {
        Self { connection, prefix: prefix.to_owned() }
    }

    fn settled_key(&self, job_id: &str, attempt: u32) -> String {
        format!("{}:settled:{job_id}:{attempt}", self.prefix)
    }

    fn claim_key(&self, job_id: &str, attempt: u32) -> String {
        format!("{}:claim:{job_id}:{attempt}", self.prefix)
    }

    fn job_key(&self, job_id: &str) -> String {
        format!("{}:job:{job_id}", self.prefix)
    }

    /// What the counts of recipients sent per project and minute start with (see [`SETTLE`]).
    fn sent_prefix(&self) -> String {
        format!("{}:sent:", self.prefix)
    }

    /// Recipients sent by the attempts settled since `since_ms` (at most two hours back:
    /// what the counts keep), by project (`""` for none) and minute since the Unix epoch.
    pub(crate) async fn sent_per_minute(&self, since_ms: u64) -> Result<Vec<(String, u64, u64)>, Error> {
        let prefix = self.sent_prefix();
        let projects: Vec<String> =
            self.connection.clone().smembers(format!("{prefix}projects")).await.map_err(store_error)?;
        let now = crate::job::millis(std::time::SystemTime::now()) / 60_000;
        let minutes: Vec<u64> = (since_ms / 60_000..=now).rev().take(120).collect();
        if projects.is_empty() || minutes.is_empty() {
            return Ok(Vec::new()); // an empty MGET is an error
        }
        let mut reads = redis::pipe();
        for project in &projects {
            reads.mget(minutes.iter().map(|minute| format!("{prefix}{project}:{minute}")).collect::<Vec<_>>());
        }
        let counts: Vec<Vec<Option<u64>>> =
            reads.query_async(&mut self.connection.clone()).await.map_err(store_error)?;
        let mut sent = Vec::new();
        for (project, counts) in projects.iter().zip(counts) {
            for (minute, count) in minutes.iter().zip(counts) {
                sent.extend(count.map(|count| (project.clone(), *minute, count)));
            }
        }
        Ok(sent)
    }

    /// The campaigns, scored by when their first job was enqueued.
    fn campaigns_key(&self) -> String {
        format!("{}:campaigns", self.prefix)
    }

    /// A campaign's jobs.
    fn campaign_key(&self, campaign_id: &str) -> String {
        format!("{}:campaign:{campaign_id}", self.prefix)
    }

    /// Recipients registered and finals recorded for them, over all jobs.
    fn totals_key(&self) -> String {
        format!("{}:totals", self.prefix)
    }

    fn stream_key(&self) -> String {
        format!("{}:result-blocks", self.prefix)
    }

    fn seq_key(&self) -> String {
        format!("{}:result-blocks:seq", self.prefix)
    }

    /// When each settlement's blocks were written (see [`SETTLE`]).
    fn times_key(&self) -> String {
        format!("{}:result-blocks:times", self.prefix)
    }

    /// The jobs whose last attempt is settled, by when.
    fn finished_key(&self) -> String {
        format!("{}:finished", self.prefix)
    }

    /// Deletes up to `limit` blocks of records written before `cutoff_ms`; returns how many.
    pub(crate) async fn prune_results(&self, cutoff_ms: u64, limit: usize) -> Result<u64, Error> {
        static SCRIPT: std::sync::LazyLock<redis::Script> =
            std::sync::LazyLock::new(|| redis::Script::new(PRUNE_RESULTS));
        SCRIPT
            .key(self.stream_key())
            .key(self.times_key())
            .key(self.seq_key())
            .arg(cutoff_ms)
            .arg(limit.max(1))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)
    }

    /// Deletes up to `limit` jobs that finished before `cutoff_ms`; returns how many.
    pub(crate) async fn prune_jobs(&self, cutoff_ms: u64, limit: usize) -> Result<u64, Error> {
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(PRUNE_JOBS));
        SCRIPT
            .key(self.finished_key())
            .arg(cutoff_ms)
            .arg(limit.max(1))
            .arg(&self.prefix)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)
    }

    /// A fleet bucket's hash: one per backend, whatever the queue's name (a project's
    /// quota is the project's).
    fn quota_key(bucket: &str) -> String {
        format!("gcm-queue:quota:{bucket}")
    }

    /// Takes `messages` from the fleet's bucket `bucket` in one script; returns the wait.
    pub(crate) async fn take_quota(
        &self,
        bucket: &str,
        rate: &super::quota::Rate,
        messages: u64,
    ) -> Result<Duration, Error> {
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(TAKE_QUOTA));
        let (tokens, paused_ms): (String, i64) = SCRIPT
            .key(Self::quota_key(bucket))
            .arg(rate.per_ms())
            .arg(messages)
            .arg(rate.burst())
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        let tokens = tokens.parse().map_err(|_| Error::Store(format!("a quota bucket holds {tokens:?}").into()))?;
        Ok(rate.wait(tokens, paused_ms))
    }

    /// Holds the fleet's bucket `bucket` empty for `pause`.
    pub(crate) async fn pause_quota(&self, bucket: &str, pause: Duration) -> Result<(), Error> {
        static SCRIPT: std::sync::LazyLock<redis::Script> =
            std::sync::LazyLock::new(|| redis::Script::new(PAUSE_QUOTA));
        let _: u8 = SCRIPT
            .key(Self::quota_key(bucket))
            .arg(u64::try_from(pause.as_millis()).unwrap_or(u64::MAX / 2))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        Ok(())
    }

    pub(crate) async fn put_audience_tokens(&self, name: &str, tokens: &[String]) -> Result<u64, Error> {
        let audience = Audience::named(name);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&audience.tokens).ignore().del(&audience.flags).ignore();
        pipe.sadd(AUDIENCES, name).ignore();
        for chunk in tokens.chunks(1000) {
            pipe.zadd_multiple(&audience.tokens, &chunk.iter().map(|token| (0, token)).collect::<Vec<_>>()).ignore();
        }
        pipe.zcard(&audience.tokens);
        let (held,): (u64,) = pipe.query_async(&mut self.connection.clone()).await.map_err(store_error)?;
        Ok(held)
    }

    pub(crate) async fn add_audience_tokens(&self, name: &str, tokens: &[String]) -> Result<u64, Error> {
        let audience = Audience::named(name);
        let () = self.connection.clone().sadd(AUDIENCES, name).await.map_err(store_error)?;
        let mut added = 0;
        for chunk in tokens.chunks(1000) {
            let members: Vec<_> = chunk.iter().map(|token| (0, token)).collect();
            let new: u64 = redis::cmd("ZADD")
                .arg(&audience.tokens)
                .arg("NX")
                .arg(&members)
                .query_async(&mut self.connection.clone())
                .await
                .map_err(store_error)?;
            added += new;
        }
        Ok(added)
    }

    pub(crate) async fn audience_tokens(
        &self,
        name: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<crate::AudienceToken>, Error> {
        let audience = Audience::named(name);
        let start = if after.is_empty() { "-".to_owned() } else { format!("({after}") };
        let tokens: Vec<String> = redis::cmd("ZRANGE")
            .arg(&audience.tokens)
            .arg(start)
            .arg("+")
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let flags: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&audience.flags)
            .arg(&tokens)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        Ok(tokens.into_iter().zip(flags).map(|(token, flagged)| crate::AudienceToken { token, flagged }).collect())
    }

    pub(crate) async fn audience_sendable(&self, name: &str) -> Result<Vec<String>, Error> {
        let audience = Audience::named(name);
        let (tokens, flagged): (Vec<String>, std::collections::HashSet<String>) = redis::pipe()
            .zrange(&audience.tokens, 0, -1)
            .hkeys(&audience.flags)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        Ok(tokens.into_iter().filter(|token| !flagged.contains(token)).collect())
    }

    pub(crate) async fn drop_audience(&self, name: &str) -> Result<bool, Error> {
        let audience = Audience::named(name);
        let (held,): (u64,) = redis::pipe()
            .atomic()
            .srem(AUDIENCES, name)
            .ignore()
            .del(&audience.tokens)
            .del(&audience.flags)
            .ignore()
            .del(&audience.feed)
            .ignore()
            .del(&audience.feed_seq)
            .ignore()
            .query_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        Ok(held > 0)
    }

    pub(crate) async fn audience_feed(
        &self,
        name: &str,
        since: u64,
        limit: usize,
    ) -> Result<Vec<crate::AudienceChange>, Error> {
        let audience = Audience::named(name);
        let reply: redis::streams::StreamRangeReply = self
            .connection
            .clone()
            .xrange_count(&audience.feed, format!("0-{}", since.saturating_add(1)), "+", limit)
            .await
            .map_err(store_error)?;
        reply
            .ids
            .into_iter()
            .map(|entry| {
                let cursor = entry.id.strip_prefix("0-").and_then(|seq| seq.parse().ok()).unwrap_or(0);
                let field = |name: &str| entry.get::<String>(name).unwrap_or_default();
                let (name, value) = (field("change"), field("value"));
                let change = crate::audience::Change::from_parts(&name, Some(value).filter(|value| !value.is_empty()))
                    .ok_or_else(|| Error::Store(format!("an audience change reads {name:?}").into()))?;
                let at_ms = field("at").parse().unwrap_or(0);
                Ok(crate::AudienceChange { cursor, token: field("token"), change, job_id: field("job"), at_ms })
            })
            .collect()
    }

    /// Deletes up to `limit` changes of audience feeds applied before `cutoff_ms`, from the
    /// front of each feed; returns how many.
    pub(crate) async fn prune_audience_changes(&self, cutoff_ms: u64, limit: usize) -> Result<u64, Error> {
        /// KEYS: a feed. ARGV: the cutoff, the most to read. Trims the changes before the
        /// cutoff among the first ones; returns how many.
        const PRUNE_FEED: &str = r"
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[2])
if #first == 0 then return 0 end
local keep = nil
for _, entry in ipairs(first) do
  local fields = entry[2]
  local at = 0
  for i = 1, #fields, 2 do if fields[i] == 'at' then at = tonumber(fields[i + 1]) end end
  if at >= tonumber(ARGV[1]) then keep = entry[1] break end
end
if keep == nil then
  local last = string.match(first[#first][1], '%-(%d+)$')
  keep = '0-' .. (tonumber(last) + 1)
end
return redis.call('XTRIM', KEYS[1], 'MINID', keep)
";
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(PRUNE_FEED));
        let names: Vec<String> = self.connection.clone().smembers(AUDIENCES).await.map_err(store_error)?;
        let mut deleted = 0u64;
        for name in names {
            let trimmed: u64 = SCRIPT
                .key(Audience::named(&name).feed)
                .arg(cutoff_ms)
                .arg(limit.max(1))
                .invoke_async(&mut self.connection.clone())
                .await
                .map_err(store_error)?;
            deleted = deleted.saturating_add(trimmed);
        }
        Ok(deleted)
    }

    /// The connection, for the queue's own upkeep of apalis's keys.
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    async fn find(&self, job_id: &str, attempt: u32) -> Result<Option<Settled>, Error> {
        let text: Option<String> =
            self.connection.clone().get(self.settled_key(job_id, attempt)).await.map_err(store_error)?;
        text.as_deref().map(settled_from).transpose()
    }

    async fn lease(&self, job_id: &str, attempt: u32, owner: &str, lease: Duration) -> Result<Claim, Error> {
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(CLAIM));
        let (granted, name): (u8, String) = SCRIPT
            .key(self.claim_key(job_id, attempt))
            .key(self.settled_key(job_id, attempt))
            .key(self.job_key(job_id))
            .arg(owner)
            .arg(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX / 2))
            .arg(CLAIM_KEPT.as_secs())
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        Ok(match granted {
            1 => Claim::Granted { taken_over_from: Some(name).filter(|name| !name.is_empty()) },
            2 => Claim::Cancelled,
            _ => Claim::Held { owner: name },
        })
    }

    async fn insert(&self, settlement: &Settlement) -> Result<Settled, Error> {
        let retry = settlement.retry.as_ref().map(serde_json::to_string).transpose().map_err(json_error)?;
        // The script's hash is computed once; Redis runs it by hash after the first call.
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(SETTLE));
        let mut invocation = SCRIPT.prepare_invoke();
        invocation
            .key(self.settled_key(&settlement.job_id, settlement.attempt))
            .key(self.stream_key())
            .key(self.seq_key())
            .key(self.job_key(&settlement.job_id))
            .key(self.totals_key())
            .key(self.times_key())
            .key(self.finished_key());
        let audience = Audience::named(settlement.audience.as_deref().unwrap_or_default());
        let delivery = crate::webhook::delivery_of(settlement, std::time::SystemTime::now());
        invocation
            .key(&audience.tokens)
            .key(&audience.flags)
            .key(&audience.feed)
            .key(&audience.feed_seq)
            .key(self.webhook_key(delivery.as_ref().map_or("", |delivery| &delivery.id)))
            .key(self.webhooks_seq_key())
            .key(self.webhooks_key())
            .key(self.webhooks_job_key(&settlement.job_id))
            .key(self.webhooks_due_key(
                delivery.as_ref().and_then(|delivery| delivery.project.as_deref()).unwrap_or_default(),
            ))
            .key(self.webhooks_pending_key())
            .key(self.sent_prefix())
            .arg(retry.unwrap_or_default())
            .arg(settlement.pending())
            .arg(&settlement.job_id)
            .arg(settlement.attempt);
        let mut counts = Summary::default();
        settlement.records.iter().for_each(|record| counts.count(&record.fate));
        let counts = [
            ("delivered", counts.delivered),
            ("canonical", counts.canonical),
            ("not_registered", counts.not_registered),
            ("failed", counts.failed),
            ("given_up", counts.given_up),
            ("parked", counts.parked),
            ("cancelled", counts.cancelled),
        ];
        let counts: Vec<_> = counts.into_iter().filter(|(_, count)| *count > 0).collect();
        invocation.arg(counts.len()).arg(settlement.records.len());
        for (name, count) in counts {
            invocation.arg(name).arg(count);
        }
        let blocks = block::blocks(&settlement.records).map_err(json_error)?;
        invocation.arg(blocks.len());
        for records in blocks {
            invocation.arg(records);
        }
        match delivery {
            Some(delivery) => {
                let project = delivery.project.unwrap_or_default();
                invocation
                    .arg(1)
                    .arg(delivery.id)
                    .arg(delivery.url)
                    .arg(project)
                    .arg(delivery.attempt)
                    .arg(delivery.body)
            }
            None => invocation.arg(0),
        };
        if settlement.audience.is_some() {
            for (token, change) in crate::audience::changes(settlement) {
                invocation.arg(change.name()).arg(token).arg(change.value().unwrap_or_default());
            }
        }
        let stored: String = invocation.invoke_async(&mut self.connection.clone()).await.map_err(store_error)?;
        settled_from(&stored)
    }

    async fn page(&self, cursor: u64, limit: usize) -> Result<Vec<(u64, Record)>, Error> {
        let mut page = Page::after(cursor, limit);
        while !page.is_full() {
            let reply: redis::streams::StreamRangeReply = self
                .connection
                .clone()
                .xrange_count(self.stream_key(), format!("0-{}", page.next_block()), "+", page.wanted())
                .await
                .map_err(store_error)?;
            let more = page.fetched(reply.ids.len());
            for entry in reply.ids {
                let seq = entry.id.strip_prefix("0-").and_then(|seq| seq.parse().ok()).unwrap_or(0);
                let job_id: String = entry.get("job").unwrap_or_default();
                let attempt: u32 = entry.get("attempt").unwrap_or_default();
                let records: String = entry.get("records").unwrap_or_default();
                page.add(seq, &job_id, attempt, &records).map_err(json_error)?;
            }
            if !more {
                break;
            }
        }
        Ok(page.records)
    }

    async fn register_job(&self, enqueued: &Enqueued) -> Result<(), Error> {
        // KEYS: the job hash, the totals hash, then for a campaign's job the campaigns (by
        // when their first job was enqueued) and the campaign's jobs. ARGV: recipients, the
        // job's id, then field and value pairs. A job is counted in the totals once.
        const REGISTER: &str = r"
if redis.call('HSETNX', KEYS[1], 'recipients', ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'recipients', ARGV[1])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if #KEYS == 4 then
  local fields = redis.call('HMGET', KEYS[1], 'enqueued_ms', 'campaign_id')
  redis.call('ZADD', KEYS[3], 'NX', fields[1], fields[2])
  redis.call('SADD', KEYS[4], ARGV[2])
end
return 1
";
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(REGISTER));
        let mut fields = vec![("enqueued_ms", enqueued.enqueued_ms.to_string())];
        fields.extend(enqueued.campaign_id.clone().map(|id| ("campaign_id", id)));
        fields.extend(enqueued.correlation_id.clone().map(|id| ("correlation_id", id)));
        fields.extend(enqueued.project.clone().map(|name| ("project", name)));
        fields.extend(enqueued.webhook.clone().map(|url| ("webhook", url)));
        fields.extend(enqueued.send_at_ms.map(|ms| ("send_at_ms", ms.to_string())));
        let mut invocation = SCRIPT.prepare_invoke();
        invocation.key(self.job_key(&enqueued.job_id)).key(self.totals_key());
        if let Some(campaign) = &enqueued.campaign_id {
            invocation.key(self.campaigns_key()).key(self.campaign_key(campaign));
        }
        invocation.arg(enqueued.recipients).arg(&enqueued.job_id);
        for (name, value) in fields {
            invocation.arg(name).arg(value);
        }
        let _: u8 = invocation.invoke_async(&mut self.connection.clone()).await.map_err(store_error)?;
        Ok(())
    }

    /// Recipients of registered jobs without a final fate yet.
    pub(crate) async fn pending_recipients(&self) -> Result<u64, Error> {
        let (recipients, finals): (Option<u64>, Option<u64>) =
            self.connection.clone().hmget(self.totals_key(), &["recipients", "finals"]).await.map_err(store_error)?;
        Ok(recipients.unwrap_or(0).saturating_sub(finals.unwrap_or(0)))
    }

    async fn keep(&self, key: &str, remembered: &str) -> Result<String, Error> {
        let key = format!("{}:idempotency:{key}", self.prefix);
        let (kept,): (String,) = redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(remembered)
            .arg("NX")
            .arg("EX")
            .arg(super::IDEMPOTENCY_KEPT.as_secs())
            .ignore()
            .get(&key)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        Ok(kept)
    }

    async fn cancel_job(&self, job_id: &str) -> Result<bool, Error> {
        // Only a registered job is cancelled; the first time stands.
        const CANCEL: &str = r"
if redis.call('HEXISTS', KEYS[1], 'recipients') == 0 then return 0 end
redis.call('HSETNX', KEYS[1], 'cancelled_ms', ARGV[1])
return 1
";
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(CANCEL));
        let now = crate::job::millis(std::time::SystemTime::now());
        let known: u8 = SCRIPT
            .key(self.job_key(job_id))
            .arg(now)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        Ok(known == 1)
    }

    async fn count(&self, job_id: &str) -> Result<Option<Summary>, Error> {
        let fields: HashMap<String, String> =
            self.connection.clone().hgetall(self.job_key(job_id)).await.map_err(store_error)?;
        // Attempts settled in order: the next one is numbered by the count of settled ones.
        let (expires, now): (Option<u64>, (u64, u64)) = redis::pipe()
            .hget(self.claim_key(job_id, next_attempt(&fields)), "expires")
            .cmd("TIME")
            .query_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        Ok(summary_of(job_id, &fields, expires, millis_of(now)))
    }

    /// The ids of the newest `limit` campaigns, by when their first job was enqueued.
    pub(crate) async fn campaigns(&self, limit: usize) -> Result<Vec<String>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let last = isize::try_from(limit).unwrap_or(isize::MAX).saturating_sub(1);
        self.connection.clone().zrevrange(self.campaigns_key(), 0, last).await.map_err(store_error)
    }

    /// The summaries of campaign `campaign_id`'s jobs (at most `limit`, in id order), in two
    /// round trips.
    pub(crate) async fn campaign_jobs(&self, campaign_id: &str, limit: usize) -> Result<Vec<Summary>, Error> {
        let mut jobs: Vec<String> =
            self.connection.clone().smembers(self.campaign_key(campaign_id)).await.map_err(store_error)?;
        jobs.sort_unstable();
        jobs.truncate(limit);
        if jobs.is_empty() {
            return Ok(Vec::new()); // an empty pipeline is an error
        }
        let mut reads = redis::pipe();
        for job in &jobs {
            reads.hgetall(self.job_key(job));
        }
        let hashes: Vec<HashMap<String, String>> =
            reads.query_async(&mut self.connection.clone()).await.map_err(store_error)?;
        let mut claims = redis::pipe();
        for (job, fields) in jobs.iter().zip(&hashes) {
            claims.hget(self.claim_key(job, next_attempt(fields)), "expires");
        }
        claims.cmd("TIME");
        let mut replies: Vec<redis::Value> =
            claims.query_async(&mut self.connection.clone()).await.map_err(store_error)?;
        let time = replies.pop().ok_or_else(|| Error::Store("Redis answered no TIME".into()))?;
        let now: (u64, u64) = redis::from_redis_value(time).map_err(|error| Error::Store(error.to_string().into()))?;
        let expires = replies.into_iter().map(|reply| redis::from_redis_value::<Option<u64>>(reply).ok().flatten());
        let now = millis_of(now);
        let summaries = jobs.iter().zip(&hashes).zip(expires);
        Ok(summaries.filter_map(|((job, fields), expires)| summary_of(job, fields, expires, now)).collect())
    }

    /// Every record of job `job_id`, in the order they were written (those its hash names
    /// the blocks of: settled by this release or later).
    pub(crate) async fn job_records(&self, job_id: &str) -> Result<Vec<Record>, Error> {
        let fields: HashMap<String, String> =
            self.connection.clone().hgetall(self.job_key(job_id)).await.map_err(store_error)?;
        let mut ranges: Vec<(u32, u64, u64)> = fields
            .iter()
            .filter_map(|(field, range)| {
                let attempt = field.strip_prefix("blocks:")?.parse().ok()?;
                let (first, last) = range.split_once('-')?;
                Some((attempt, first.parse().ok()?, last.parse().ok()?))
            })
            .collect();
        ranges.sort_unstable();
        let mut reads = redis::pipe();
        for (_, first, last) in &ranges {
            reads.xrange(self.stream_key(), format!("0-{first}"), format!("0-{last}"));
        }
        let replies: Vec<redis::streams::StreamRangeReply> = if ranges.is_empty() {
            Vec::new()
        } else {
            reads.query_async(&mut self.connection.clone()).await.map_err(store_error)?
        };
        let mut page = Page::after(0, usize::MAX);
        for ((attempt, _, _), reply) in ranges.iter().zip(replies) {
            for entry in reply.ids {
                let seq = entry.id.strip_prefix("0-").and_then(|seq| seq.parse().ok()).unwrap_or(0);
                let records: String = entry.get("records").unwrap_or_default();
                page.add(seq, job_id, *attempt, &records).map_err(json_error)?;
            }
        }
        Ok(page.records.into_iter().map(|(_, record)| record).collect())
    }
}

/// The attempt a job's hash says comes next: attempts settle in order.
fn next_attempt(fields: &HashMap<String, String>) -> u32 {
    fields.get("attempts").and_then(|value| value.parse::<u32>().ok()).unwrap_or(0)
}

/// Redis's `TIME` in milliseconds.
fn millis_of((seconds, micros): (u64, u64)) -> u64 {
    seconds.saturating_mul(1000).saturating_add(micros / 1000)
}

/// A job's summary from its hash and its next attempt's lease.
fn summary_of(job_id: &str, fields: &HashMap<String, String>, expires: Option<u64>, now: u64) -> Option<Summary> {
    let get = |field: &str| fields.get(field).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0);
    let enqueued = fields.contains_key("recipients").then(|| Enqueued {
        job_id: job_id.to_owned(),
        recipients: get("recipients"),
        campaign_id: fields.get("campaign_id").cloned(),
        correlation_id: fields.get("correlation_id").cloned(),
        project: fields.get("project").cloned(),
        webhook: fields.get("webhook").cloned(),
        enqueued_ms: get("enqueued_ms"),
        send_at_ms: fields.contains_key("send_at_ms").then(|| get("send_at_ms")),
        cancelled_ms: fields.contains_key("cancelled_ms").then(|| get("cancelled_ms")),
    });
    let summary = Summary {
        attempts: get("attempts"),
        delivered: get("delivered"),
        canonical: get("canonical"),
        not_registered: get("not_registered"),
        failed: get("failed"),
        given_up: get("given_up"),
        parked: get("parked"),
        cancelled: get("cancelled"),
        pending: get("pending"),
        retry_at_ms: fields.contains_key("retry_at_ms").then(|| get("retry_at_ms")),
        ..Summary::default()
    };
    summary.finish(job_id, enqueued, expires.is_some_and(|expires| expires > now), now)
}

impl ResultStore for RedisResults {
    fn settled<'a>(&'a self, job_id: &'a str, attempt: u32) -> BoxFuture<'a, Result<Option<Settled>, Error>> {
        Box::pin(self.find(job_id, attempt))
    }

    fn claim<'a>(
        &'a self,
        job_id: &'a str,
        attempt: u32,
        owner: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Claim, Error>> {
        Box::pin(self.lease(job_id, attempt, owner, lease))
    }

    fn settle<'a>(&'a self, settlement: &'a Settlement) -> BoxFuture<'a, Result<Settled, Error>> {
        Box::pin(self.insert(settlement))
    }

    fn register<'a>(&'a self, enqueued: &'a Enqueued) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.register_job(enqueued))
    }

    fn cancel<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(self.cancel_job(job_id))
    }

    fn remember<'a>(&'a self, key: &'a str, remembered: &'a str) -> BoxFuture<'a, Result<String, Error>> {
        Box::pin(self.keep(key, remembered))
    }
}

impl ResultReader for RedisResults {
    fn since<'a>(&'a self, cursor: u64, limit: usize) -> BoxFuture<'a, Result<Vec<(u64, Record)>, Error>> {
        Box::pin(self.page(cursor, limit))
    }

    fn summary<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<Option<Summary>, Error>> {
        Box::pin(self.count(job_id))
    }
}
