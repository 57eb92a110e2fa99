//! Request budgets in Redis, shared by every replica: GCRA (the generic cell rate
//! algorithm), one atomic script per decision. Each budget keeps one key, the theoretical
//! arrival time of the next request; a request is allowed when that time is within the
//! burst of now, and moves it on by one emission interval. The clock is Redis's (`TIME`),
//! so replicas whose clocks differ still share one budget. A key expires once its budget
//! is full again, so idle callers cost nothing.

use std::time::Duration;

use anyhow::Context;
use redis::Script;

use crate::redis::Multiplexed;

/// GCRA. KEYS[1] the budget; ARGV[1] the emission interval and ARGV[2] the burst
/// tolerance, both in microseconds. Returns {allowed, retry_after_us, full_in_us}.
const GCRA: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local allow_at = next_tat - tolerance
if now < allow_at then
  return {0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], next_tat, 'PX', math.floor((next_tat - now) / 1000) + 1)
return {1, 0, next_tat - now}
";

/// A budget: so many requests a second, so many at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    pub per_second: f64,
    pub burst: u32,
}

impl Budget {
    fn interval_us(&self) -> u64 {
        (1_000_000.0 / self.per_second).round().max(1.0) as u64
    }
}

/// What one request got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// When refused: how long until one request would be allowed.
    pub retry_after: Duration,
    /// Requests still allowed at once after this one.
    pub remaining: u32,
    /// How long until the budget is full again.
    pub full_in: Duration,
}

/// Decides requests against budgets under `<prefix>ratelimit:`, over one multiplexed
/// connection of its own: every request of the API asks it, concurrently, and a shared
/// pipelined connection costs a fraction of a pooled one per call.
#[derive(Clone)]
pub struct Limiter {
    conn: Multiplexed,
    prefix: String,
    script: Script,
}

impl Limiter {
    /// Decides over `conn` (one made at the first decision and remade after a failure),
    /// under `key_prefix`.
    pub fn new(conn: Multiplexed, key_prefix: &str) -> Self {
        Self {
            conn,
            prefix: format!("{key_prefix}ratelimit:"),
            script: Script::new(GCRA),
        }
    }

    /// Counts one request of `who` against `budget`.
    pub async fn check(&self, who: &str, budget: Budget) -> anyhow::Result<Decision> {
        let interval = budget.interval_us();
        // The tolerance lets `burst` requests through at once from a full budget.
        let tolerance = interval * u64::from(budget.burst);
        let mut conn = self.conn.clone();
        let (allowed, retry_us, full_us): (i64, i64, i64) = self
            .script
            .key(format!("{}{who}", self.prefix))
            .arg(interval)
            .arg(tolerance)
            .invoke_async(&mut conn)
            .await
            .context("the rate limit script failed")?;
        let used = (full_us.max(0) as u64).div_ceil(interval);
        Ok(Decision {
            allowed: allowed == 1,
            retry_after: Duration::from_micros(retry_us.max(0) as u64),
            remaining: u32::try_from(u64::from(budget.burst).saturating_sub(used)).unwrap_or(0),
            full_in: Duration::from_micros(full_us.max(0) as u64),
        })
    }
}
