//! Publishing, and each channel's history in Redis.
//!
//! A publish is one script: it gives the event the channel's next offset, appends it to
//! the channel's stream (`XADD … MAXLEN ~ history_size`, with a TTL refreshed on every
//! event) and publishes it, in that order and atomically, so offsets on the wire and in
//! history agree and rise by one per event. The stream and the pub/sub channel share the
//! channel's hash tag, so on a Redis Cluster both are in one slot and the script publishes
//! with SPUBLISH to that slot's shard.
//!
//! Offsets start, for each run of a channel's history, at Redis's clock in microseconds
//! (a 16-digit integer, exact in JavaScript). So a history that expired and began again
//! continues above everything handed out before, and a client that was told "nothing yet"
//! (the clock, when a channel has no history) can recover from there. Each entry carries
//! its run's first offset (the seed): when the oldest kept entry is the seed, nothing of
//! this run was trimmed.
//!
//! Recovery from a client's offset `s` is complete (`recovered: true`) when:
//! - `s` lies within the kept history (`first - 1 ≤ s ≤ last`), or
//! - this run's history is untrimmed and began after `s`, less than half the TTL later
//!   (an earlier run with events after `s` would have needed a whole TTL of silence to
//!   expire), or
//! - the channel has no history and `s` is less than half the TTL old (an event after
//!   `s` would still be kept).
//!
//! Anything else is `recovered: false`: the client refetches its state.

use std::time::Duration;

use anyhow::Context;
use deadpool_redis::redis::{Script, Value};

use super::channel;
use crate::config::RealtimeSettings;

/// Realtime's keys in Redis: where a channel's events live and travel, and the
/// connection-attempt counters.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(redis_prefix: &str) -> Self {
        Self {
            prefix: format!("{redis_prefix}rt:"),
        }
    }

    /// The channel's history stream.
    pub fn history(&self, channel: &str) -> String {
        format!("{}{{{channel}}}:log", self.prefix)
    }

    /// The pub/sub channel its live events travel on.
    pub fn live(&self, channel: &str) -> String {
        format!("{}{{{channel}}}", self.prefix)
    }

    /// The hash where each hub reports its connections and busiest channels.
    pub fn hubs(&self) -> String {
        format!("{}hubs", self.prefix)
    }

    /// The count of connection attempts from `address` in the minute `minute`.
    pub fn attempts(&self, address: &str, minute: i64) -> String {
        format!("{}attempts:{address}:{minute}", self.prefix)
    }

    /// The realtime channel a pub/sub channel carries, if it is one of ours.
    pub fn channel_of<'a>(&self, live: &'a str) -> Option<&'a str> {
        live.strip_prefix(self.prefix.as_str())?
            .strip_prefix('{')?
            .strip_suffix('}')
    }
}

/// One event as every subscriber receives it: the JSON text frame, made once.
#[derive(Clone, Debug)]
pub struct Frame {
    pub offset: u64,
    pub text: String,
}

/// Splits a pub/sub message (`<offset> <frame>`) into its parts.
pub fn parse_live(payload: &[u8]) -> Option<Frame> {
    let text = std::str::from_utf8(payload).ok()?;
    let (offset, frame) = text.split_once(' ')?;
    Some(Frame {
        offset: offset.parse().ok()?,
        text: frame.to_owned(),
    })
}

/// Why a publish was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}")]
    Channel(String),
    #[error("an event name is 1 to 64 characters of letters, digits and . _ - :")]
    EventName,
    #[error("the event's data is {size} bytes of JSON, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error(transparent)]
    Redis(#[from] anyhow::Error),
}

const PUBLISH: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local offset, seed
if #last == 0 then
  seed = now + 1
  offset = seed
else
  offset = tonumber(string.sub(last[1][1], 3)) + 1
  seed = tonumber(last[1][2][2])
end
local off = string.format('%.0f', offset)
local frame = ARGV[2] .. ',"offset":' .. off .. ',"ts":' .. string.format('%.0f', math.floor(now / 1000)) .. '}'
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '0-' .. off, 's', string.format('%.0f', seed), 'f', frame)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call(ARGV[5], ARGV[1], off .. ' ' .. frame)
return off
"#;

const RECOVER: &str = r#"
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last == 0 then
  return {now}
end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local out = {now, first[1][1], first[1][2][2], last[1][1]}
if ARGV[1] ~= '' then
  local entries = redis.call('XRANGE', KEYS[1], '(0-' .. ARGV[1], '+')
  for _, entry in ipairs(entries) do
    table.insert(out, entry[1])
    table.insert(out, entry[2][4])
  end
end
return out
"#;

/// Publishes and recovers events.
#[derive(Clone)]
pub struct History {
    keys: Keys,
    pool: crate::redis::Redis,
    publish: Script,
    recover: Script,
    size: usize,
    ttl: Duration,
    max_event_bytes: usize,
}

/// What a subscriber gets when it subscribes.
#[derive(Debug)]
pub struct Recovery {
    /// The events after the client's offset, oldest first.
    pub events: Vec<Frame>,
    /// Whether those are all the events after its offset.
    pub recovered: bool,
    /// The offset the client is now at: the newest event's, or Redis's clock when the
    /// channel has no history.
    pub position: u64,
}

impl History {
    pub fn new(pool: crate::redis::Redis, redis_prefix: &str, settings: &RealtimeSettings) -> Self {
        Self {
            keys: Keys::new(redis_prefix),
            pool,
            publish: Script::new(PUBLISH),
            recover: Script::new(RECOVER),
            size: settings.history_size,
            ttl: Duration::from_secs(settings.history_ttl_seconds),
            max_event_bytes: settings.max_event_bytes,
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// How live events travel: sharded pub/sub on a cluster, so each event goes only to
    /// the shard that owns its channel's slot (where its history is too) rather than to
    /// every node; plain pub/sub on one server.
    pub fn publish_command(&self) -> &'static str {
        if self.pool.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// The Redis pool it publishes through.
    pub fn pool(&self) -> &crate::redis::Redis {
        &self.pool
    }

    /// Publishes `event` with `data` on `channel`; returns its offset.
    pub async fn publish(
        &self,
        channel: &str,
        event: &str,
        data: &serde_json::Value,
    ) -> Result<u64, PublishError> {
        channel::check(channel).map_err(PublishError::Channel)?;
        if event.is_empty()
            || event.len() > 64
            || !event
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
        {
            return Err(PublishError::EventName);
        }
        let data = serde_json::to_string(data).context("failed to encode the event's data")?;
        if data.len() > self.max_event_bytes {
            return Err(PublishError::TooLarge {
                size: data.len(),
                limit: self.max_event_bytes,
            });
        }
        // The frame up to its offset and time, which the script appends. The channel and
        // event name need no escaping: both were checked above.
        let head =
            format!(r#"{{"type":"event","channel":"{channel}","event":"{event}","data":{data}"#);
        let mut conn = self.pool.get().await.context("no Redis connection")?;
        let offset: String = self
            .publish
            .key(self.keys.history(channel))
            .arg(self.keys.live(channel))
            .arg(head)
            .arg(self.size)
            .arg(self.ttl.as_millis() as u64)
            .arg(self.publish_command())
            .invoke_async(&mut conn)
            .await
            .context("failed to publish the event")?;
        offset
            .parse()
            .with_context(|| format!("the publish script returned {offset:?}"))
            .map_err(PublishError::Redis)
    }

    /// The events of `channel` after `since` (none asked for when `None`), and whether
    /// they are complete.
    pub async fn recover(&self, channel: &str, since: Option<u64>) -> anyhow::Result<Recovery> {
        let mut conn = self.pool.get().await.context("no Redis connection")?;
        let reply: Vec<Value> = self
            .recover
            .key(self.keys.history(channel))
            .arg(since.map(|s| s.to_string()).unwrap_or_default())
            .arg(self.size)
            .invoke_async(&mut conn)
            .await
            .context("failed to read the channel's history")?;
        let half_ttl = self.ttl.as_micros() as u64 / 2;
        let mut fields = reply.into_iter();
        let now = number(fields.next())?;
        let Some(first) = fields.next() else {
            // No history: nothing can have been published since a recent offset.
            return Ok(Recovery {
                events: Vec::new(),
                recovered: since.is_some_and(|s| s <= now && now - s < half_ttl),
                position: now,
            });
        };
        let first = entry_offset(Some(first))?;
        let seed = number(fields.next())?;
        let last = entry_offset(fields.next())?;
        let mut events = Vec::new();
        while let Some(id) = fields.next() {
            let offset = entry_offset(Some(id))?;
            let text = match fields.next() {
                Some(Value::BulkString(bytes)) => {
                    String::from_utf8(bytes).context("a history entry is not UTF-8")?
                }
                other => anyhow::bail!("a history entry without its frame: {other:?}"),
            };
            events.push(Frame { offset, text });
        }
        let recovered = since.is_some_and(|s| {
            (first.saturating_sub(1) <= s && s <= last)
                || (first == seed && s < seed && seed - s < half_ttl)
        });
        Ok(Recovery {
            events,
            recovered,
            position: last,
        })
    }
}

fn number(value: Option<Value>) -> anyhow::Result<u64> {
    match value {
        Some(Value::BulkString(bytes)) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .context("a history reply field is not a number"),
        Some(Value::Int(n)) => u64::try_from(n).context("a negative history reply field"),
        other => anyhow::bail!("a history reply field is missing: {other:?}"),
    }
}

/// The offset of a stream entry id (`0-<offset>`).
fn entry_offset(value: Option<Value>) -> anyhow::Result<u64> {
    match value {
        Some(Value::BulkString(bytes)) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|id| id.strip_prefix("0-"))
            .and_then(|n| n.parse().ok())
            .context("a history entry id is not 0-<offset>"),
        other => anyhow::bail!("a history entry id is missing: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_channel_and_give_it_back() {
        let keys = Keys::new("t1:");
        assert_eq!(keys.history("files"), "t1:rt:{files}:log");
        assert_eq!(keys.live("user.42"), "t1:rt:{user.42}");
        assert_eq!(keys.channel_of("t1:rt:{user.42}"), Some("user.42"));
        assert_eq!(keys.channel_of("t2:rt:{user.42}"), None);
        assert_eq!(keys.attempts("10.0.0.1", 7), "t1:rt:attempts:10.0.0.1:7");
    }

    #[test]
    fn a_live_message_is_its_offset_then_its_frame() {
        let frame = parse_live(br#"1800000000000001 {"type":"event"}"#).unwrap();
        assert_eq!(frame.offset, 1_800_000_000_000_001);
        assert_eq!(frame.text.as_str(), r#"{"type":"event"}"#);
        assert!(parse_live(b"nonsense").is_none());
    }
}
