//! The Lua scripts behind each queue operation. Redis runs each one without interleaving
//! another client's commands, which is what makes the moves between keys atomic.

/// KEYS: job hash, ready, scheduled, idempotency key ('' for none).
/// ARGV: id, now ms, due ms, idempotency TTL s, then field/value pairs of the job.
/// Returns {id, 1} for a new job, {existing id, 0} for a repeated idempotency key.
pub const ENQUEUE: &str = r#"
if KEYS[4] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing then return {existing, 0} end
  redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[4])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
if tonumber(ARGV[3]) > tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'state', 'scheduled')
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
else
  redis.call('HSET', KEYS[1], 'state', 'queued')
  redis.call('RPUSH', KEYS[2], ARGV[1])
end
return {ARGV[1], 1}
"#;

/// KEYS: ready, scheduled, leased.
/// ARGV: now ms, lease ms, max jobs, worker id, job key prefix.
/// Returns {id, kind, payload, attempt, max_attempts, timeout_ms} per leased job.
pub const FETCH: &str = r#"
local now = tonumber(ARGV[1])
local jobs = ARGV[5]
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('RPUSH', KEYS[1], id)
  redis.call('HSET', jobs .. id, 'state', 'queued')
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[3], id)
  redis.call('LPUSH', KEYS[1], id)
  redis.call('HSET', jobs .. id, 'state', 'queued', 'worker', '')
end
local ids = redis.call('LPOP', KEYS[1], ARGV[3])
if not ids then return {} end
local deadline = now + tonumber(ARGV[2])
local out = {}
for _, id in ipairs(ids) do
  local key = jobs .. id
  if redis.call('EXISTS', key) == 1 then
    redis.call('ZADD', KEYS[3], deadline, id)
    local attempt = redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'state', 'running', 'worker', ARGV[4], 'started_ms', now)
    local f = redis.call('HMGET', key, 'kind', 'payload', 'max_attempts', 'timeout_ms')
    out[#out + 1] = {id, f[1], f[2], attempt, tonumber(f[3]), tonumber(f[4])}
  end
end
return out
"#;

/// The lease check every script that finishes or changes a running job starts from: the
/// job is in `leased` (KEYS[1]) and its hash names this worker (ARGV[1]) as the holder.
/// Job hashes are ARGV[2] .. id. One definition, so the four scripts cannot drift apart.
macro_rules! with_lease_check {
    ($body:literal) => {
        concat!(
            r#"
local function holds(id)
  return redis.call('ZSCORE', KEYS[1], id)
    and redis.call('HGET', ARGV[2] .. id, 'worker') == ARGV[1]
end
"#,
            $body
        )
    };
}

/// KEYS: leased. ARGV: worker id, job key prefix, now ms, retention s, then job ids.
/// Returns how many of the ids this worker still held and has now finished.
pub const ACK: &str = with_lease_check!(
    r#"
local done = 0
for i = 5, #ARGV do
  local id = ARGV[i]
  local key = ARGV[2] .. id
  if holds(id) then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HSET', key, 'state', 'succeeded', 'finished_ms', ARGV[3])
    redis.call('EXPIRE', key, ARGV[4])
    done = done + 1
  end
end
return done
"#
);

/// KEYS: leased. ARGV: worker id, job key prefix, job id, new deadline ms.
/// Returns 1 when the lease was this worker's and now ends later, else 0.
pub const EXTEND: &str = with_lease_check!(
    r#"
if holds(ARGV[3]) then
  redis.call('ZADD', KEYS[1], 'XX', ARGV[4], ARGV[3])
  return 1
end
return 0
"#
);

/// KEYS: leased, scheduled.
/// ARGV: worker id, job key prefix, job id, error, retry-at ms (-1: no retry), now ms.
/// Returns 1 when the lease was this worker's, else 0 (the failure is not recorded).
pub const FAIL: &str = with_lease_check!(
    r#"
local key = ARGV[2] .. ARGV[3]
if not holds(ARGV[3]) then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[3])
if tonumber(ARGV[5]) >= 0 then
  redis.call('HSET', key, 'state', 'retrying', 'last_error', ARGV[4], 'worker', '', 'run_at_ms', ARGV[5])
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[3])
else
  redis.call('HSET', key, 'state', 'dead', 'last_error', ARGV[4], 'worker', '', 'finished_ms', ARGV[6])
end
return 1
"#
);

/// KEYS: leased, ready. ARGV: worker id, job key prefix, then job ids.
/// Hands back the jobs this worker still holds: they return to the front of `ready` at
/// once, and the interrupted run does not count as an attempt. Returns how many.
pub const RELEASE: &str = with_lease_check!(
    r#"
local released = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local key = ARGV[2] .. id
  if holds(id) then
    redis.call('ZREM', KEYS[1], id)
    redis.call('LPUSH', KEYS[2], id)
    redis.call('HINCRBY', key, 'attempts', -1)
    redis.call('HSET', key, 'state', 'queued', 'worker', '')
    released = released + 1
  end
end
return released
"#
);
