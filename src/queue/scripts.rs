//! The Lua scripts behind each queue operation. Redis runs each one without interleaving
//! another client's commands, which is what makes the moves between keys atomic.
//!
//! Each script is hashed once per process ([`LazyLock`]) and called by its SHA (EVALSHA),
//! falling back to loading it when Redis does not know it yet (after a restart).
//!
//! Every script declares the keys it touches, job records included, so Redis Cluster
//! checks them before it runs a script, and during a slot's migration answers ASK or
//! TRYAGAIN instead of running it on a node that holds only some of them. FETCH alone
//! pops ids it could not name in advance; see its comment.

use std::sync::LazyLock;

use deadpool_redis::redis::Script;

/// Helpers every script may use. `add_error` appends one attempt's error to a job's
/// `errors` list; `wake` leaves the queue's wake token.
macro_rules! script {
    ($body:expr) => {
        LazyLock::new(|| {
            Script::new(concat!(
                r#"
local function add_error(key, attempt, message, now)
  local raw = redis.call('HGET', key, 'errors')
  local list = {}
  if raw and raw ~= '' and raw ~= '[]' then list = cjson.decode(raw) end
  list[#list + 1] = {attempt = tonumber(attempt), error = message, at_ms = tonumber(now)}
  redis.call('HSET', key, 'errors', cjson.encode(list), 'last_error', message)
end
local function wake(key)
  redis.call('LPUSH', key, 1)
  redis.call('LTRIM', key, 0, 0)
end
-- How long a throughput counter is kept: the hour the console charts, and a window more.
local COUNTER_KEEP_S = 3620
"#,
                $body
            ))
        })
    };
}

/// KEYS: ready, scheduled, wake, then per job its record's key and its idempotency key
/// (the record's again when it has none).
/// ARGV: queue name, then 10 values per job: id, enqueued at ms, due ms, idempotency key
/// ('' for none), idempotency TTL s, kind, payload, max_attempts, timeout_ms, retention s
/// once succeeded ('' for the default). Each job carries its own time, so the jobs of
/// several callers can share one call.
/// Returns, flat, the position in the call (from 1) and the earlier job's id of each job
/// whose idempotency key was taken: nothing more to send back for the new jobs, whose ids
/// the caller made.
pub static ENQUEUE: LazyLock<Script> = script!(
    r#"
local out, ready, scheduled = {}, {}, {}
local added = 0
local k = 4
for i = 2, #ARGV, 10 do
  local id, now, due, idem = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3]
  local key = KEYS[k]
  local earlier = false
  -- Claims the key and reads an earlier claim in one call (SET NX GET, Redis 7).
  if idem ~= '' then
    earlier = redis.call('SET', KEYS[k + 1], id, 'NX', 'GET', 'EX', ARGV[i + 4])
  end
  k = k + 2
  if earlier then
    out[#out + 1] = (i - 2) / 10 + 1
    out[#out + 1] = earlier
  else
    local state = 'queued'
    if due > now then state = 'scheduled' end
    -- One HSET whether or not the job keeps its own retention: each call has a cost.
    if ARGV[i + 9] ~= '' then
      redis.call('HSET', key, 'queue', ARGV[1], 'kind', ARGV[i + 5], 'payload', ARGV[i + 6],
        'attempts', 0, 'max_attempts', ARGV[i + 7], 'timeout_ms', ARGV[i + 8],
        'created_ms', now, 'run_at_ms', due, 'state', state, 'keep_s', ARGV[i + 9])
    else
      redis.call('HSET', key, 'queue', ARGV[1], 'kind', ARGV[i + 5], 'payload', ARGV[i + 6],
        'attempts', 0, 'max_attempts', ARGV[i + 7], 'timeout_ms', ARGV[i + 8],
        'created_ms', now, 'run_at_ms', due, 'state', state)
    end
    if due > now then
      scheduled[#scheduled + 1] = due
      scheduled[#scheduled + 1] = id
    else
      ready[#ready + 1] = id
    end
    added = added + 1
  end
end
-- One push per set for the whole call, in the jobs' order: each call has a fixed cost.
-- In slices of 1000 arguments (whole pairs for ZADD), within what unpack takes.
for _, push in ipairs({{'RPUSH', KEYS[1], ready}, {'ZADD', KEYS[2], scheduled}}) do
  local args = push[3]
  for from = 1, #args, 1000 do
    redis.call(push[1], push[2], unpack(args, from, math.min(from + 999, #args)))
  end
end
-- Idle workers wake for delayed jobs too, to shorten their sleep to the new due time.
if added > 0 then wake(KEYS[3]) end
return out
"#
);

/// KEYS: ready, scheduled, retry, leased, wake, dead outbox, limbo.
/// ARGV: job record key prefix, now ms, lease deadline ms, max jobs, worker id, and '0'
/// to skip the sweep below ('1' otherwise).
/// Moves due delayed and retrying jobs to `ready`, returns jobs whose lease lapsed to the
/// front of `ready` with their attempt refunded (or, at their third lapse, to the dead
/// outbox), then leases up to `max` jobs. Leaves a wake token when jobs remain for other
/// workers.
/// Returns {{kind, payload, max_attempts, timeout_ms, attempt, keep_s (nil for the
/// default), id}...}, and, when the batch is not full, the earliest time anything in
/// `scheduled`, `retry` or `leased` comes due (-1: nothing, or a full batch).
///
/// The one script that reaches records it cannot declare: the ids it pops. On a cluster
/// slot that is migrating, such a record may already be on the importing node (reading
/// it fails) or not there yet (it reads as missing). Each job is handled whole or not at
/// all: a record out of reach stops the script there, the jobs not handled stay where
/// they were, and with nothing leased the script answers TRYAGAIN, which the cluster
/// client retries. A record that reads as missing parks its id in `limbo`; a later fetch
/// returns it to the front of `ready` once the record is there, or drops it after an
/// hour (a record that will never come: deleted, or evicted by a misconfigured Redis).
pub static FETCH: LazyLock<Script> = script!(
    r#"
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local LIMBO_MS = 3600000
local function moving()
  return redis.error_reply('TRYAGAIN a job record of this queue is moving between cluster nodes')
end
-- true: here; false: missing; nil: out of reach (moved to another node).
local function present(key)
  local found = redis.pcall('EXISTS', key)
  if type(found) == 'table' then return nil end
  return found == 1
end
-- The sweep: due delayed and retrying jobs to ready, lapsed leases back. A worker that
-- just swept and took a full batch skips it for a while (ARGV[6] = '0').
if ARGV[6] ~= '0' then
  for _, set in ipairs({KEYS[2], KEYS[3]}) do
    local due = redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, 1000)
    for _, id in ipairs(due) do
      local here = present(prefix .. id)
      if here == nil then return moving() end
      redis.call('ZREM', set, id)
      if here then
        redis.call('RPUSH', KEYS[1], id)
        redis.call('HSET', prefix .. id, 'state', 'queued')
      else
        redis.call('ZADD', KEYS[7], 'NX', now, id)
      end
    end
  end
  -- A lapsed lease means the worker died, not that the job failed (it may not even have
  -- started: workers lease a few jobs ahead). The attempt is refunded; a job that outlives
  -- three workers is taken for a job that kills them, and dies.
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 1000)
  for _, lease in ipairs(lapsed) do
    local bar = string.find(lease, '|', 1, true) or (#lease + 1)
    local id = string.sub(lease, 1, bar - 1)
    local key = prefix .. id
    local attempts = redis.pcall('HGET', key, 'attempts')
    if type(attempts) == 'table' then return moving() end
    redis.call('ZREM', KEYS[4], lease)
    local holder = string.sub(lease, bar + 1)
    if attempts then
      local lapses = redis.call('HINCRBY', key, 'lapses', 1)
      redis.call('HINCRBY', key, 'attempts', -1)
      if lapses >= 3 then
        add_error(key, attempts, 'its worker stopped renewing the lease 3 times (crashed or killed ' ..
          'while holding it, last ' .. holder .. '); treated as a job that kills workers', now)
        redis.call('HSET', key, 'state', 'dead', 'finished_ms', now)
        redis.call('RPUSH', KEYS[6], id)
      else
        add_error(key, attempts, 'its worker (' .. holder .. ') stopped renewing the lease; queued again', now)
        redis.call('HSET', key, 'state', 'queued')
        redis.call('LPUSH', KEYS[1], id)
      end
    else
      redis.call('ZADD', KEYS[7], 'NX', now, id)
    end
  end
end
local out = {}
local ids = redis.call('LPOP', KEYS[1], ARGV[4])
if ids then
  -- The hot loop passes Redis strings through untouched: numbers formatted by Lua cost
  -- a float conversion each.
  local worker, started, deadline = ARGV[5], ARGV[2], ARGV[3]
  local leases, n = {}, 0
  for i, id in ipairs(ids) do
    local key = prefix .. id
    local f = redis.pcall('HMGET', key, 'kind', 'payload', 'max_attempts', 'timeout_ms', 'attempts',
      'keep_s')
    if f.err then
      -- Out of reach: this job and the rest go back to the front, in their order.
      for j = #ids, i, -1 do redis.call('LPUSH', KEYS[1], ids[j]) end
      if n == 0 then return moving() end
      break
    end
    if f[1] then
      -- Attempts stay below 2^53, where Lua numbers print as plain integers.
      local attempt = string.format('%d', tonumber(f[5]) + 1)
      redis.call('HSET', key, 'state', 'running', 'started_ms', started, 'attempts', attempt)
      n = n + 1
      leases[2 * n - 1] = deadline
      leases[2 * n] = id .. '|' .. worker
      -- The row is the record's own fields, the attempt and the id added: no table more.
      f[5] = attempt
      f[7] = id
      out[n] = f
    else
      redis.call('ZADD', KEYS[7], 'NX', now, id)
    end
  end
  -- One ZADD for the whole batch: each redis.call has a fixed cost.
  if n > 0 then redis.call('ZADD', KEYS[4], unpack(leases)) end
end
local next_due = -1
if #out == tonumber(ARGV[4]) then
  -- A full batch: more may be waiting for other workers, and this one comes back soon.
  if redis.call('LLEN', KEYS[1]) > 0 then wake(KEYS[5]) end
  return {out, next_due}
end
-- Parked ids whose record has arrived go back in front; those waited on for an hour go.
for _, id in ipairs(redis.call('ZRANGE', KEYS[7], 0, 99)) do
  local here = present(prefix .. id)
  if here then
    redis.call('ZREM', KEYS[7], id)
    redis.call('HSET', prefix .. id, 'state', 'queued')
    redis.call('LPUSH', KEYS[1], id)
    wake(KEYS[5])
  elseif here == false and tonumber(redis.call('ZSCORE', KEYS[7], id)) < now - LIMBO_MS then
    redis.call('ZREM', KEYS[7], id)
  end
end
for _, set in ipairs({KEYS[2], KEYS[3], KEYS[4]}) do
  local first = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
  if first[2] then
    local at = tonumber(first[2])
    if next_due < 0 or at < next_due then next_due = at end
  end
end
return {out, next_due}
"#
);

/// Scripts that finish or change a running job work on its lease: the member
/// `{id}|{worker}` of `leased` (KEYS[1]), for this worker (ARGV[1]). The lease names its
/// holder, so removing it (ZREM answers 1) is the ownership check itself: a worker whose
/// lease lapsed and went to another worker finds nothing to remove. One definition, so
/// the scripts cannot drift apart. Each declares the records it touches.
macro_rules! leased_script {
    ($body:literal) => {
        script!(concat!(
            r#"
local function lease(id) return id .. '|' .. ARGV[1] end
"#,
            $body
        ))
    };
}

/// KEYS: leased, succeeded counter, then each job's record. ARGV: worker id, now ms,
/// retention s, then per job, in the records' order, its id and how long it keeps its
/// record ('' for the retention), as FETCH returned it: passing it saves a read per job.
/// Returns how many of the jobs this worker still held and has now finished.
pub static ACK: LazyLock<Script> = leased_script!(
    r#"
local done = 0
local worker, finished, retention = ARGV[1], ARGV[2], ARGV[3]
-- Which leases this worker still holds, and their removal, one call each for the batch.
local leases = {}
for i = 4, #ARGV, 2 do leases[#leases + 1] = ARGV[i] .. '|' .. worker end
local scores = redis.call('ZMSCORE', KEYS[1], unpack(leases))
local held = {}
for i = 1, #leases do
  if scores[i] then held[#held + 1] = i end
end
if #held > 0 then
  local gone = {}
  for _, i in ipairs(held) do gone[#gone + 1] = leases[i] end
  redis.call('ZREM', KEYS[1], unpack(gone))
  for _, i in ipairs(held) do
    local key, keep = KEYS[i + 2], ARGV[3 + 2 * i]
    if keep == '' then keep = retention end
    redis.call('HSET', key, 'state', 'succeeded', 'finished_ms', finished)
    redis.call('EXPIRE', key, keep)
  end
  done = #held
end
if done > 0 then
  if redis.call('INCRBY', KEYS[2], done) == done then
    redis.call('EXPIRE', KEYS[2], COUNTER_KEEP_S)
  end
end
return done
"#
);

/// KEYS: leased. ARGV: worker id, new deadline ms, then job ids.
/// Returns the ids whose lease is no longer this worker's.
pub static EXTEND: LazyLock<Script> = leased_script!(
    r#"
local lost = {}
for i = 3, #ARGV do
  local held = lease(ARGV[i])
  if redis.call('ZSCORE', KEYS[1], held) then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], held)
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"#
);

/// KEYS: leased, retry, dead outbox, failed counter, wake, the job's record.
/// ARGV: worker id, job id, error, retry-at ms (-1: no retry), now ms.
/// Returns the new state, or '' when the lease was not this worker's (nothing recorded).
pub static FAIL: LazyLock<Script> = leased_script!(
    r#"
local id, key = ARGV[2], KEYS[6]
if redis.call('ZREM', KEYS[1], lease(id)) == 0 then return '' end
add_error(key, redis.call('HGET', key, 'attempts'), ARGV[3], ARGV[5])
if redis.call('INCR', KEYS[4]) == 1 then
  redis.call('EXPIRE', KEYS[4], COUNTER_KEEP_S)
end
if tonumber(ARGV[4]) >= 0 then
  redis.call('HSET', key, 'state', 'retrying', 'run_at_ms', ARGV[4])
  redis.call('ZADD', KEYS[2], ARGV[4], id)
  wake(KEYS[5])
  return 'retrying'
end
redis.call('HSET', key, 'state', 'dead', 'finished_ms', ARGV[5])
redis.call('RPUSH', KEYS[3], id)
return 'dead'
"#
);

/// KEYS: leased, scheduled, wake, the job's record. ARGV: worker id, job id, run-at ms.
/// Puts a job its handler deferred into `scheduled` until run-at, the attempt refunded
/// and no error recorded. Returns 1, or 0 when the lease was not this worker's.
pub static DEFER: LazyLock<Script> = leased_script!(
    r#"
local id = ARGV[2]
if redis.call('ZREM', KEYS[1], lease(id)) == 0 then return 0 end
redis.call('HINCRBY', KEYS[4], 'attempts', -1)
redis.call('HSET', KEYS[4], 'state', 'scheduled', 'run_at_ms', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], id)
wake(KEYS[3])
return 1
"#
);

/// KEYS: leased, ready, wake, then each job's record. ARGV: worker id, then job ids, in
/// the records' order.
/// Hands back the jobs this worker still holds: they return to the front of `ready` at
/// once, and the interrupted run does not count as an attempt. Returns how many.
pub static RELEASE: LazyLock<Script> = leased_script!(
    r#"
local released = 0
for i = 2, #ARGV do
  local id, key = ARGV[i], KEYS[i + 2]
  if redis.call('ZREM', KEYS[1], lease(id)) == 1 then
    redis.call('LPUSH', KEYS[2], id)
    redis.call('HINCRBY', key, 'attempts', -1)
    redis.call('HSET', key, 'state', 'queued')
    released = released + 1
  end
end
if released > 0 then wake(KEYS[3]) end
return released
"#
);

/// KEYS: ready, scheduled, retry, the job's record. ARGV: job id, now ms, retention s.
/// Cancels a job that has not started. Returns 'ok', the state that prevented it
/// (`cancelled` included), or '' when there is no such job.
pub static CANCEL: LazyLock<Script> = script!(
    r#"
local key = KEYS[4]
local state = redis.call('HGET', key, 'state')
if not state then return '' end
local removed = 0
if state == 'queued' then removed = redis.call('LREM', KEYS[1], 1, ARGV[1])
elseif state == 'scheduled' then removed = redis.call('ZREM', KEYS[2], ARGV[1])
elseif state == 'retrying' then removed = redis.call('ZREM', KEYS[3], ARGV[1])
end
if removed == 0 then return state end
redis.call('HSET', key, 'state', 'cancelled', 'finished_ms', ARGV[2])
redis.call('EXPIRE', key, ARGV[3])
return 'ok'
"#
);

/// KEYS: ready, wake, the job's record. ARGV: job id, queue, kind, payload,
/// max_attempts, timeout_ms, created ms, now ms, errors (JSON).
/// Puts a dead job back with fresh attempts under its own id. Returns 0 when Redis still
/// has that job alive (a retry already happened), else 1.
pub static REVIVE: LazyLock<Script> = script!(
    r#"
local key = KEYS[3]
local state = redis.call('HGET', key, 'state')
if state and state ~= 'dead' then return 0 end
redis.call('DEL', key)
redis.call('HSET', key, 'queue', ARGV[2], 'kind', ARGV[3], 'payload', ARGV[4], 'attempts', 0,
  'max_attempts', ARGV[5], 'timeout_ms', ARGV[6], 'created_ms', ARGV[7], 'run_at_ms', ARGV[8],
  'state', 'queued', 'errors', ARGV[9])
redis.call('RPUSH', KEYS[1], ARGV[1])
wake(KEYS[2])
return 1
"#
);

/// KEYS: dead outbox, then each job's record. ARGV: the job ids that Postgres now holds,
/// in the records' order.
/// Removes them from the outbox, and their records if they are still dead there.
pub static FORGET_DEAD: LazyLock<Script> = script!(
    r#"
for i = 1, #ARGV do
  redis.call('LREM', KEYS[1], 0, ARGV[i])
  if redis.call('HGET', KEYS[i + 1], 'state') == 'dead' then redis.call('DEL', KEYS[i + 1]) end
end
return #ARGV
"#
);

/// KEYS: the old layout's ready, scheduled, retry, leased and shared dead outbox, then
/// the current layout's ready, scheduled, retry, leased, dead outbox and wake.
/// ARGV: old job prefix, current job prefix, now ms, queue, batch size.
/// Moves up to a batch of each structure's entries (see `legacy`), renaming each job's
/// record. Returns {entries moved, leases still running in the old layout}.
pub static ADOPT: LazyLock<Script> = script!(
    r#"
local batch = tonumber(ARGV[5])
local moved = 0
local function adopt(id)
  local old = ARGV[1] .. id
  if redis.call('EXISTS', old) == 1 then redis.call('RENAME', old, ARGV[2] .. id) end
  moved = moved + 1
end
-- The newest of the old ready list first, each pushed to the front: the old jobs keep
-- their order and run before those enqueued since.
local ids = redis.call('RPOP', KEYS[1], batch)
if ids then
  for _, id in ipairs(ids) do
    adopt(id)
    redis.call('LPUSH', KEYS[6], id)
  end
end
for _, pair in ipairs({{KEYS[2], KEYS[7]}, {KEYS[3], KEYS[8]}}) do
  local entries = redis.call('ZRANGE', pair[1], 0, batch - 1, 'WITHSCORES')
  for j = 1, #entries, 2 do
    adopt(entries[j])
    redis.call('ZADD', pair[2], entries[j + 1], entries[j])
    redis.call('ZREM', pair[1], entries[j])
  end
end
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[3], 'WITHSCORES', 'LIMIT', 0, batch)
for j = 1, #lapsed, 2 do
  local lease = lapsed[j]
  local bar = string.find(lease, '|', 1, true) or (#lease + 1)
  adopt(string.sub(lease, 1, bar - 1))
  redis.call('ZADD', KEYS[9], lapsed[j + 1], lease)
  redis.call('ZREM', KEYS[4], lease)
end
for _, id in ipairs(redis.call('LRANGE', KEYS[5], 0, batch - 1)) do
  if redis.call('HGET', ARGV[1] .. id, 'queue') == ARGV[4] then
    adopt(id)
    redis.call('RPUSH', KEYS[10], id)
    redis.call('LREM', KEYS[5], 1, id)
  end
end
if moved > 0 then wake(KEYS[11]) end
return {moved, redis.call('ZCARD', KEYS[4])}
"#
);
