//! The job queue in Redis: enqueue, leased fetch, ack, retry and lease recovery, each one
//! atomic. Delivery is at least once: a job leaves Redis only when a worker that still
//! holds its lease acknowledges it, and a lease that runs out puts the job back.
//!
//! # Why leased lists rather than streams
//! Redis streams with consumer groups recover a dead consumer's entries only when another
//! consumer claims them (XAUTOCLAIM) and keep no per-job state, delays or retries, so a
//! stream design needs the same sorted sets and hashes beside it. Lists plus sorted sets,
//! moved between by Lua scripts, give leases, delays, retries and per-job state in one
//! place, with every move atomic and the whole batch in one round trip.
//!
//! # Keys
//! Every key starts with `redis.key_prefix` and then its queue's hash tag, `{q:<queue>}`:
//! Redis Cluster places a key by the text between its first braces, so all of a queue's
//! keys, its jobs' records included, live in one slot, and every script below runs on the
//! one shard that owns it. Different queues spread over the shards. On one server the
//! tag is only part of the name.
//! - `{q}:ready`: LIST of job ids ready to run, oldest first (RPUSH, LPOP).
//! - `{q}:scheduled`: ZSET of delayed job ids by the millisecond they become due.
//! - `{q}:retry`: ZSET of failed job ids by the millisecond their backoff ends. Kept
//!   apart from `scheduled` so the API can count retrying jobs.
//! - `{q}:leased`: ZSET of leases, `{id}|{worker}`, by the millisecond they end. The
//!   member names the holder, so finishing a job is one ZREM that fails for any worker but
//!   the holder. A worker that dies stops renewing its leases; the next fetch on the queue
//!   finds them lapsed and puts those jobs back at the front of `ready`.
//! - `{q}:wake`: LIST holding at most one token. Enqueue, a retry, a hand-back and a
//!   fetch that leaves jobs behind push it; idle workers block on it with BLPOP (see
//!   [`Waiter`]), so a new job starts in about a millisecond without polling, and a
//!   sleeping worker shortens its sleep to a newly delayed job's due time.
//! - `{q}:idem:{key}`: STRING, the job id an idempotency key made, with the idempotency
//!   window as its TTL. Keys are per queue: the same key on two queues makes two jobs.
//! - `{q}:succeeded:{t}` and `{q}:failed:{t}`: counters of attempts finished in the
//!   10-second window `t`, kept a little over an hour (the TTL set once, when the
//!   window's first attempt makes the key), for the last minute's and the last hour's
//!   throughput.
//! - `{q}:job:{id}`: HASH with the job (`queue`, `kind`, `payload`, `attempts`,
//!   `max_attempts`, `timeout_ms`) and its progress (`state`, `lapses` (leases that ran
//!   out under it), `last_error`, `errors` as a JSON list,
//!   `created_ms`, `run_at_ms`, `started_ms`, `finished_ms`, and `keep_s` when the job
//!   keeps its record for its own time). It expires that long, or the retention setting,
//!   after the job succeeds or is cancelled. A job looked up by id alone is sought in
//!   every declared queue (one round trip on one server, one per queue on a cluster).
//! - `{q}:limbo`: ZSET of ids whose record a fetch could not find, by when it first
//!   missed it: a record still on its way during a cluster slot's migration. A later
//!   fetch puts each back in front of `ready` once its record is there (see `FETCH`).
//! - `{q}:dead`: LIST, the queue's outbox of jobs that died in Redis and are not yet in
//!   Postgres. The worker copies each to `dead_jobs` (idempotently) and only then removes
//!   it here, so a crash between the two loses nothing.
//!
//! Keys that are not a queue's have tags of their own, each one key per operation: the
//! scheduler's lease and last runs (`scheduler:*`), rate-limit budgets (`ratelimit:*`,
//! `webhooks:rate:*`), realtime's history and connection-attempt counters (tagged by
//! channel). Jobs written in the layout before this one (`queue:<q>:*`, `job:<id>`) are
//! adopted by workers: see `legacy.rs`.
//!
//! # Why each operation is atomic
//! Every operation that touches more than one key is one Lua script, and Redis runs a
//! script alone, so no other client sees a job half-moved: popped from `ready` but not yet
//! leased (the window that loses Sidekiq's BRPOP and Appwrite's pop-then-set jobs on a
//! crash), or acknowledged by a worker whose lease another worker has taken over.
//!
//! Scripts declare every key they can name before they run. The job records they reach
//! from ids they pop (FETCH's leased jobs, say) are not known in advance; those records
//! carry the queue's tag, so they are in the declared keys' slot, which Redis Cluster
//! allows a script to touch. Redis 7 or newer (SET with NX and GET; sharded pub/sub for
//! realtime on a cluster). Lease times come from the workers' clocks, which NTP keeps far
//! closer together than a lease is long.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use deadpool_redis::redis::{self, AsyncCommands};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::redis::Multiplexed;

mod backoff;
mod browse;
mod enqueue;
mod legacy;
mod scripts;
mod wait;

pub use backoff::Backoff;
pub use browse::{JobState, QueueCounts, Throughput};
pub use legacy::{Adopted, adopt as adopt_legacy};
pub use wait::Waiter;

/// A job to enqueue.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    /// The payload's JSON text, stored as it came, so any number survives exactly.
    pub payload: Box<RawValue>,
    /// Milliseconds since the epoch before which the job must not start; now when absent.
    pub run_at_ms: Option<i64>,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub idempotency_key: Option<String>,
    /// How long the key holds; `jobs.idempotency_window_seconds` when absent. Jobs made
    /// by the thousand (webhook deliveries) keep theirs short, as each costs Redis memory.
    #[serde(default)]
    pub idempotency_window: Option<Duration>,
    /// How long the record stays readable once the job succeeds; `jobs.retention_seconds`
    /// when absent. Jobs with a record of their own elsewhere (webhook deliveries) keep
    /// theirs briefly.
    #[serde(default)]
    pub retention: Option<Duration>,
}

impl NewJob {
    /// When the job comes due, enqueued at `now_ms`: never before then.
    pub fn due_ms(&self, now_ms: i64) -> i64 {
        self.run_at_ms.unwrap_or(now_ms).max(now_ms)
    }
}

/// A job's own retention as the scripts take it: whole seconds, at least one, or '' for
/// the retention setting.
fn keep_arg(retention: Option<Duration>) -> String {
    retention
        .map(|r| r.as_secs().max(1).to_string())
        .unwrap_or_default()
}

/// What enqueue did for one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enqueued {
    pub id: String,
    /// False when an idempotency key returned an earlier job instead of a new one.
    pub created: bool,
}

/// A job a worker holds a lease on.
#[derive(Clone, Debug)]
pub struct Leased {
    pub id: String,
    pub queue: String,
    pub kind: String,
    pub payload: String,
    /// This run included.
    pub attempt: u32,
    pub max_attempts: u32,
    pub timeout: Duration,
    /// How long the record stays once the job succeeds, when the job names its own time.
    pub retention: Option<Duration>,
}

impl Leased {
    /// What acknowledging this job needs of it.
    pub fn done(&self) -> Done {
        Done {
            id: self.id.clone(),
            retention: self.retention,
        }
    }
}

/// A leased job that succeeded, as [`Queues::ack`] takes it.
#[derive(Clone, Debug)]
pub struct Done {
    pub id: String,
    /// The job's own retention, as its lease carried it; the default when `None`.
    pub retention: Option<Duration>,
}

/// What one fetch returned.
#[derive(Debug, Default)]
pub struct Fetched {
    pub jobs: Vec<Leased>,
    /// When the next delayed job, retry or lease comes due, if any: the latest an idle
    /// worker should sleep.
    pub next_due_ms: Option<i64>,
}

/// One failed attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    pub attempt: u32,
    pub error: String,
    pub at_ms: i64,
}

/// Everything Redis knows about one job.
#[derive(Clone, Debug)]
pub struct JobRecord {
    pub id: String,
    pub queue: String,
    pub kind: String,
    pub payload: String,
    pub state: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub timeout_ms: u64,
    pub last_error: Option<String>,
    pub errors: Vec<AttemptError>,
    pub created_ms: i64,
    pub run_at_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

impl JobRecord {
    fn from_hash(id: &str, mut hash: HashMap<String, String>) -> Option<Self> {
        let mut take = |field: &str| hash.remove(field).filter(|v| !v.is_empty());
        let number = |v: Option<String>| v.and_then(|v| v.parse::<i64>().ok());
        Some(Self {
            id: id.to_owned(),
            state: take("state")?,
            queue: take("queue")?,
            kind: take("kind")?,
            payload: take("payload").unwrap_or_else(|| "null".into()),
            attempts: number(take("attempts")).unwrap_or(0) as u32,
            max_attempts: number(take("max_attempts")).unwrap_or(1) as u32,
            timeout_ms: number(take("timeout_ms")).unwrap_or(0) as u64,
            last_error: take("last_error"),
            errors: take("errors")
                .and_then(|raw| serde_json::from_str(&raw).ok())
                .unwrap_or_default(),
            created_ms: number(take("created_ms")).unwrap_or(0),
            run_at_ms: number(take("run_at_ms")).unwrap_or(0),
            started_ms: number(take("started_ms")),
            finished_ms: number(take("finished_ms")),
        })
    }
}

/// What cancelling a job did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cancel {
    Cancelled,
    /// The job is past cancelling; this is its state.
    TooLate(String),
    NotFound,
}

/// The width of one throughput counter window.
const WINDOW_MS: i64 = 10_000;

/// The job queue over one Redis connection and key prefix.
///
/// Every operation goes over one multiplexed connection that reconnects by itself:
/// concurrent operations are pipelined on it, and none pays a pool's per-checkout health
/// check (a PING round trip that doubled the cost of each fetch and ack).
#[derive(Clone)]
pub struct Queues {
    conn: Multiplexed,
    prefix: String,
    /// The declared queues (`jobs.queues`), where a job looked up by id alone is sought.
    names: Arc<[String]>,
    /// How long a repeated idempotency key returns the first job.
    idempotency_window: Duration,
    /// How long a succeeded or cancelled job's record stays readable.
    retention: Duration,
    /// Where [`Queues::enqueue`] hands jobs to be sent together.
    coalescer: enqueue::Coalescer,
}

impl Queues {
    /// The queues `names` on `conn`, every key under `prefix`.
    pub fn new(
        conn: Multiplexed,
        prefix: &str,
        names: &[String],
        idempotency_window: Duration,
        retention: Duration,
    ) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
            names: names.into(),
            idempotency_window,
            retention,
            coalescer: enqueue::Coalescer::default(),
        }
    }

    /// The declared queues.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The start of every key of `queue`: the prefix and the queue's hash tag, which
    /// puts all of them in one cluster slot.
    fn tag(&self, queue: &str) -> String {
        format!("{}{{q:{queue}}}", self.prefix)
    }

    fn key(&self, queue: &str, part: &str) -> String {
        format!("{}:{part}", self.tag(queue))
    }

    fn job_prefix(&self, queue: &str) -> String {
        self.key(queue, "job:")
    }

    fn job_key(&self, queue: &str, id: &str) -> String {
        format!("{}{id}", self.job_prefix(queue))
    }

    fn job_keys(&self, queue: &str, ids: &[String]) -> Vec<String> {
        ids.iter().map(|id| self.job_key(queue, id)).collect()
    }

    fn dead_outbox(&self, queue: &str) -> String {
        self.key(queue, "dead")
    }

    fn counter(&self, queue: &str, what: &str, now_ms: i64) -> String {
        self.key(queue, &format!("{what}:{}", now_ms.div_euclid(WINDOW_MS)))
    }

    /// The key idle workers block on for `queue`.
    pub fn wake_key(&self, queue: &str) -> String {
        self.key(queue, "wake")
    }

    /// Leases up to `max` jobs of `queue` to `worker` for `lease`, after moving due
    /// delayed and retrying jobs to ready and putting lapsed leases back in front.
    pub async fn fetch(
        &self,
        queue: &str,
        worker: &str,
        max: usize,
        lease: Duration,
        now_ms: i64,
    ) -> anyhow::Result<Fetched> {
        self.fetch_swept(queue, worker, max, lease, now_ms, true)
            .await
    }

    /// [`Queues::fetch`], moving due and lapsed jobs first only when `sweep`. A worker
    /// that swept a moment ago and took a full batch skips it: three commands a batch
    /// fewer while a backlog drains, and what came due waits that moment longer.
    pub async fn fetch_swept(
        &self,
        queue: &str,
        worker: &str,
        max: usize,
        lease: Duration,
        now_ms: i64,
        sweep: bool,
    ) -> anyhow::Result<Fetched> {
        let mut conn = self.conn.clone();
        type Row = (String, String, u32, u64, u32, Option<String>, String);
        let (rows, next_due): (Vec<Row>, i64) = scripts::FETCH
            .key(self.key(queue, "ready"))
            .key(self.key(queue, "scheduled"))
            .key(self.key(queue, "retry"))
            .key(self.key(queue, "leased"))
            .key(self.wake_key(queue))
            .key(self.dead_outbox(queue))
            .key(self.key(queue, "limbo"))
            .arg(self.job_prefix(queue))
            .arg(now_ms)
            .arg(now_ms + lease.as_millis() as i64)
            .arg(max)
            .arg(worker)
            .arg(if sweep { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await
            .context("fetch script failed")?;
        let jobs = rows
            .into_iter()
            .map(
                |(kind, payload, max_attempts, timeout_ms, attempt, keep_s, id)| Leased {
                    id,
                    queue: queue.to_owned(),
                    kind,
                    payload,
                    attempt,
                    max_attempts,
                    timeout: Duration::from_millis(timeout_ms),
                    retention: keep_s
                        .and_then(|keep| keep.parse().ok())
                        .map(Duration::from_secs),
                },
            )
            .collect();
        Ok(Fetched {
            jobs,
            next_due_ms: (next_due >= 0).then_some(next_due),
        })
    }

    /// Marks jobs done. Only jobs whose lease `worker` still holds count; returns how
    /// many did. A worker whose lease lapsed and was taken over cannot finish a job twice.
    pub async fn ack(
        &self,
        queue: &str,
        worker: &str,
        jobs: &[Done],
        now_ms: i64,
    ) -> anyhow::Result<usize> {
        let mut conn = self.conn.clone();
        let mut call = scripts::ACK.prepare_invoke();
        call.key(self.key(queue, "leased"))
            .key(self.counter(queue, "succeeded", now_ms))
            .arg(worker)
            .arg(now_ms)
            .arg(self.retention.as_secs().max(1));
        for job in jobs {
            call.key(self.job_key(queue, &job.id))
                .arg(&job.id)
                .arg(keep_arg(job.retention));
        }
        let done: usize = call
            .invoke_async(&mut conn)
            .await
            .context("ack script failed")?;
        Ok(done)
    }

    /// Renews `worker`'s leases on running jobs until `now_ms + lease`. Returns the ids
    /// whose lease is no longer this worker's.
    pub async fn extend(
        &self,
        queue: &str,
        worker: &str,
        ids: &[String],
        lease: Duration,
        now_ms: i64,
    ) -> anyhow::Result<Vec<String>> {
        let mut conn = self.conn.clone();
        let lost: Vec<String> = scripts::EXTEND
            .key(self.key(queue, "leased"))
            .arg(worker)
            .arg(now_ms + lease.as_millis() as i64)
            .arg(ids)
            .invoke_async(&mut conn)
            .await
            .context("extend script failed")?;
        Ok(lost)
    }

    /// Records a failed attempt: the job waits until `retry_at_ms` to run again, or, with
    /// no retry left (`None`), becomes `dead` and enters the outbox for Postgres. Returns
    /// the new state, or `None` when the lease was not `worker`'s (nothing recorded).
    pub async fn fail(
        &self,
        queue: &str,
        worker: &str,
        id: &str,
        error: &str,
        retry_at_ms: Option<i64>,
        now_ms: i64,
    ) -> anyhow::Result<Option<String>> {
        let mut conn = self.conn.clone();
        let state: String = scripts::FAIL
            .key(self.key(queue, "leased"))
            .key(self.key(queue, "retry"))
            .key(self.dead_outbox(queue))
            .key(self.counter(queue, "failed", now_ms))
            .key(self.wake_key(queue))
            .key(self.job_key(queue, id))
            .arg(worker)
            .arg(id)
            .arg(error)
            .arg(retry_at_ms.unwrap_or(-1))
            .arg(now_ms)
            .invoke_async(&mut conn)
            .await
            .context("fail script failed")?;
        Ok((!state.is_empty()).then_some(state))
    }

    /// Defers a job `worker` holds until `run_at_ms` without using an attempt. Returns
    /// false when the lease was not `worker`'s (nothing changed).
    pub async fn defer(
        &self,
        queue: &str,
        worker: &str,
        id: &str,
        run_at_ms: i64,
    ) -> anyhow::Result<bool> {
        let mut conn = self.conn.clone();
        let deferred: i64 = scripts::DEFER
            .key(self.key(queue, "leased"))
            .key(self.key(queue, "scheduled"))
            .key(self.wake_key(queue))
            .key(self.job_key(queue, id))
            .arg(worker)
            .arg(id)
            .arg(run_at_ms)
            .invoke_async(&mut conn)
            .await
            .context("defer script failed")?;
        Ok(deferred == 1)
    }

    /// Hands back the leases `worker` still holds on `ids`, for a worker that stops before
    /// they finish (SIGTERM past the drain time): the jobs are ready again at once rather
    /// than after their lease runs out. Returns how many were handed back.
    pub async fn release(
        &self,
        queue: &str,
        worker: &str,
        ids: &[String],
    ) -> anyhow::Result<usize> {
        let mut conn = self.conn.clone();
        let released: usize = scripts::RELEASE
            .key(self.key(queue, "leased"))
            .key(self.key(queue, "ready"))
            .key(self.wake_key(queue))
            .key(self.job_keys(queue, ids))
            .arg(worker)
            .arg(ids)
            .invoke_async(&mut conn)
            .await
            .context("release script failed")?;
        Ok(released)
    }

    /// Cancels a job that has not started yet.
    pub async fn cancel(&self, id: &str, now_ms: i64) -> anyhow::Result<Cancel> {
        let Some(job) = self.get(id).await? else {
            return Ok(Cancel::NotFound);
        };
        let queue = &job.queue;
        let mut conn = self.conn.clone();
        let outcome: String = scripts::CANCEL
            .key(self.key(queue, "ready"))
            .key(self.key(queue, "scheduled"))
            .key(self.key(queue, "retry"))
            .key(self.job_key(queue, id))
            .arg(id)
            .arg(now_ms)
            .arg(self.retention.as_secs().max(1))
            .invoke_async(&mut conn)
            .await
            .context("cancel script failed")?;
        Ok(match outcome.as_str() {
            "" => Cancel::NotFound,
            "ok" => Cancel::Cancelled,
            _ => Cancel::TooLate(outcome),
        })
    }

    /// Everything Redis holds on a job, or `None` when it has no such job (never made,
    /// past its retention, or moved to Postgres once dead). The id alone does not say
    /// the queue, so every declared queue is asked: one round trip on one server, one
    /// per queue, concurrently, on a cluster.
    pub async fn get(&self, id: &str) -> anyhow::Result<Option<JobRecord>> {
        let hashes: Vec<(HashMap<String, String>,)> = self
            .per_queue(&self.names, "read a job", |pipe, queue| {
                pipe.hgetall(self.job_key(queue, id));
            })
            .await?;
        if let Some(job) = hashes
            .into_iter()
            .find_map(|(hash,)| JobRecord::from_hash(id, hash))
        {
            return Ok(Some(job));
        }
        legacy::get(self, id).await
    }

    /// [`Queues::get`] for a job known to be in `queue`: one read.
    pub async fn get_in(&self, queue: &str, id: &str) -> anyhow::Result<Option<JobRecord>> {
        let mut conn = self.conn.clone();
        let hash: HashMap<String, String> = conn
            .hgetall(self.job_key(queue, id))
            .await
            .context("failed to read a job")?;
        Ok(JobRecord::from_hash(id, hash))
    }

    /// A job's state, or `None` when Redis does not have it.
    pub async fn state(&self, id: &str) -> anyhow::Result<Option<String>> {
        Ok(self.get(id).await?.map(|job| job.state))
    }

    /// Up to `limit` jobs in `queue`'s dead outbox, oldest first, for copying to Postgres.
    pub async fn dead_outbox_batch(
        &self,
        queue: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<JobRecord>> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .lrange(self.dead_outbox(queue), 0, limit.max(1) as isize - 1)
            .await
            .context("failed to read the dead outbox")?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut reads = redis::pipe();
        for id in &ids {
            reads.hgetall(self.job_key(queue, id));
        }
        let hashes: Vec<HashMap<String, String>> = reads
            .query_async(&mut conn)
            .await
            .context("failed to read dead jobs")?;
        let mut jobs = Vec::with_capacity(ids.len());
        let mut gone = Vec::new();
        for (id, hash) in ids.into_iter().zip(hashes) {
            match JobRecord::from_hash(&id, hash) {
                Some(job) if job.state == "dead" => jobs.push(job),
                // Retried or deleted meanwhile: nothing left to copy.
                _ => gone.push(id),
            }
        }
        if !gone.is_empty() {
            self.forget_dead(queue, &gone).await?;
        }
        Ok(jobs)
    }

    /// Drops jobs of `queue` that Postgres now holds from its outbox and from Redis.
    pub async fn forget_dead(&self, queue: &str, ids: &[String]) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = scripts::FORGET_DEAD
            .key(self.dead_outbox(queue))
            .key(self.job_keys(queue, ids))
            .arg(ids)
            .invoke_async(&mut conn)
            .await
            .context("failed to clear the dead outbox")?;
        Ok(())
    }

    /// Queues a dead job again under its own id with fresh attempts. False when Redis
    /// already has it alive.
    pub async fn revive(&self, job: &JobRecord, now_ms: i64) -> anyhow::Result<bool> {
        let mut conn = self.conn.clone();
        let revived: i64 = scripts::REVIVE
            .key(self.key(&job.queue, "ready"))
            .key(self.wake_key(&job.queue))
            .key(self.job_key(&job.queue, &job.id))
            .arg(&job.id)
            .arg(&job.queue)
            .arg(&job.kind)
            .arg(&job.payload)
            .arg(job.max_attempts)
            .arg(job.timeout_ms)
            .arg(job.created_ms)
            .arg(now_ms)
            .arg(serde_json::to_string(&job.errors).unwrap_or_else(|_| "[]".into()))
            .invoke_async(&mut conn)
            .await
            .context("revive script failed")?;
        Ok(revived == 1)
    }
}

/// Milliseconds since the Unix epoch, the clock every queue operation takes.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A new job id: a UUIDv7, so ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
