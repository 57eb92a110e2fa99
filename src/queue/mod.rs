//! The job queue in Redis: enqueue, leased fetch, ack, retry and lease recovery, each one
//! atomic. Delivery is at least once: a job leaves Redis only when a worker that still
//! holds its lease acknowledges it, and a lease that runs out puts the job back.
//!
//! # Keys (every key starts with `redis.key_prefix`)
//! - `queue:{q}:ready`: LIST of job ids ready to run, oldest first (RPUSH, LPOP).
//! - `queue:{q}:scheduled`: ZSET of job ids by the millisecond they become due: delayed
//!   jobs and retries waiting out their backoff.
//! - `queue:{q}:leased`: ZSET of job ids being run, by the millisecond their lease ends.
//!   A worker that dies stops extending its leases; the next fetch on the queue finds them
//!   expired and puts those jobs back at the front of `ready`.
//! - `queue:{q}:idem:{key}`: STRING, the job id an idempotency key already made, with the
//!   idempotency window as its TTL.
//! - `job:{id}`: HASH with the job itself (`queue`, `kind`, `payload`, `attempts`,
//!   `max_attempts`, `timeout_ms`) and its progress (`state`, `worker`, `last_error`,
//!   timestamps). It outlives the job by the retention setting once finished.
//!
//! # Why each operation is atomic
//! Every operation that touches more than one key is one Lua script, and Redis runs a
//! script alone, so no other client sees a job half-moved: popped from `ready` but not yet
//! leased (the window that loses Sidekiq's BRPOP and Appwrite's pop-then-set jobs on a
//! crash), or acknowledged by a worker whose lease another worker has taken over.
//! Fetch and ack work on batches, so one round trip serves many jobs.
//!
//! Scripts touch `job:{id}` keys they do not declare, which single-node Redis (Railway's)
//! allows; Redis Cluster is not supported.

use std::time::Duration;

use anyhow::Context;
use deadpool_redis::Pool;
use deadpool_redis::redis::Script;
use serde::{Deserialize, Serialize};

mod backoff;
mod scripts;

pub use backoff::Backoff;

/// A job to enqueue.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    /// Milliseconds since the epoch before which the job must not start; now when absent.
    pub run_at_ms: Option<i64>,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub idempotency_key: Option<String>,
}

/// What enqueue did.
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
}

/// The job queue over one Redis pool and key prefix.
#[derive(Clone)]
pub struct Queues {
    pool: Pool,
    prefix: String,
    /// How long a repeated idempotency key returns the first job.
    idempotency_window: Duration,
    /// How long a finished job's record stays readable.
    retention: Duration,
}

impl Queues {
    pub fn new(
        pool: Pool,
        prefix: &str,
        idempotency_window: Duration,
        retention: Duration,
    ) -> Self {
        Self {
            pool,
            prefix: prefix.to_owned(),
            idempotency_window,
            retention,
        }
    }

    fn key(&self, queue: &str, part: &str) -> String {
        format!("{}queue:{queue}:{part}", self.prefix)
    }

    fn job_prefix(&self) -> String {
        format!("{}job:", self.prefix)
    }

    /// Adds a job, or returns the job an idempotency key already made.
    pub async fn enqueue(&self, job: &NewJob, now_ms: i64) -> anyhow::Result<Enqueued> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let idem = job
            .idempotency_key
            .as_ref()
            .map(|k| self.key(&job.queue, &format!("idem:{k}")))
            .unwrap_or_default();
        let due = job.run_at_ms.unwrap_or(now_ms).max(now_ms);
        let mut conn = self.pool.get().await.context("no Redis connection")?;
        let (id, created): (String, i64) = Script::new(scripts::ENQUEUE)
            .key(format!("{}{id}", self.job_prefix()))
            .key(self.key(&job.queue, "ready"))
            .key(self.key(&job.queue, "scheduled"))
            .key(idem)
            .arg(&id)
            .arg(now_ms)
            .arg(due)
            .arg(self.idempotency_window.as_secs().max(1))
            .arg(&[
                ("queue", job.queue.clone()),
                ("kind", job.kind.clone()),
                ("payload", job.payload.to_string()),
                ("attempts", "0".to_owned()),
                ("max_attempts", job.max_attempts.to_string()),
                ("timeout_ms", job.timeout.as_millis().to_string()),
                ("created_ms", now_ms.to_string()),
                ("run_at_ms", due.to_string()),
            ])
            .invoke_async(&mut conn)
            .await
            .context("enqueue script failed")?;
        Ok(Enqueued {
            id,
            created: created == 1,
        })
    }

    /// Leases up to `max` jobs of `queue` to `worker` for `lease`. First moves due
    /// scheduled jobs to ready and puts jobs whose lease ran out back in front.
    pub async fn fetch(
        &self,
        queue: &str,
        worker: &str,
        max: usize,
        lease: Duration,
        now_ms: i64,
    ) -> anyhow::Result<Vec<Leased>> {
        let mut conn = self.pool.get().await.context("no Redis connection")?;
        type Row = (String, String, String, u32, u32, u64);
        let rows: Vec<Row> = Script::new(scripts::FETCH)
            .key(self.key(queue, "ready"))
            .key(self.key(queue, "scheduled"))
            .key(self.key(queue, "leased"))
            .arg(now_ms)
            .arg(lease.as_millis() as u64)
            .arg(max)
            .arg(worker)
            .arg(self.job_prefix())
            .invoke_async(&mut conn)
            .await
            .context("fetch script failed")?;
        Ok(rows
            .into_iter()
            .map(
                |(id, kind, payload, attempt, max_attempts, timeout_ms)| Leased {
                    id,
                    queue: queue.to_owned(),
                    kind,
                    payload,
                    attempt,
                    max_attempts,
                    timeout: Duration::from_millis(timeout_ms),
                },
            )
            .collect())
    }

    /// Marks jobs done. Only jobs whose lease `worker` still holds count; returns how
    /// many did. A worker whose lease expired and was taken over cannot finish a job twice.
    pub async fn ack(
        &self,
        queue: &str,
        worker: &str,
        ids: &[String],
        now_ms: i64,
    ) -> anyhow::Result<usize> {
        let mut conn = self.pool.get().await.context("no Redis connection")?;
        let done: usize = Script::new(scripts::ACK)
            .key(self.key(queue, "leased"))
            .arg(worker)
            .arg(self.job_prefix())
            .arg(now_ms)
            .arg(self.retention.as_secs().max(1))
            .arg(ids)
            .invoke_async(&mut conn)
            .await
            .context("ack script failed")?;
        Ok(done)
    }

    /// Extends `worker`'s lease on a job that is still running. False when the lease is no
    /// longer this worker's.
    pub async fn extend(
        &self,
        queue: &str,
        worker: &str,
        id: &str,
        lease: Duration,
        now_ms: i64,
    ) -> anyhow::Result<bool> {
        let mut conn = self.pool.get().await.context("no Redis connection")?;
        let held: i64 = Script::new(scripts::EXTEND)
            .key(self.key(queue, "leased"))
            .arg(worker)
            .arg(self.job_prefix())
            .arg(id)
            .arg(now_ms + lease.as_millis() as i64)
            .invoke_async(&mut conn)
            .await
            .context("extend script failed")?;
        Ok(held == 1)
    }

    /// Records a failed attempt: the job waits until `retry_at_ms` to run again, or, with
    /// no retry left (`None`), becomes `dead`. False when the lease was not `worker`'s.
    pub async fn fail(
        &self,
        queue: &str,
        worker: &str,
        id: &str,
        error: &str,
        retry_at_ms: Option<i64>,
        now_ms: i64,
    ) -> anyhow::Result<bool> {
        let mut conn = self.pool.get().await.context("no Redis connection")?;
        let held: i64 = Script::new(scripts::FAIL)
            .key(self.key(queue, "leased"))
            .key(self.key(queue, "scheduled"))
            .arg(worker)
            .arg(self.job_prefix())
            .arg(id)
            .arg(error)
            .arg(retry_at_ms.unwrap_or(-1))
            .arg(now_ms)
            .invoke_async(&mut conn)
            .await
            .context("fail script failed")?;
        Ok(held == 1)
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
        let mut conn = self.pool.get().await.context("no Redis connection")?;
        let released: usize = Script::new(scripts::RELEASE)
            .key(self.key(queue, "leased"))
            .key(self.key(queue, "ready"))
            .arg(worker)
            .arg(self.job_prefix())
            .arg(ids)
            .invoke_async(&mut conn)
            .await
            .context("release script failed")?;
        Ok(released)
    }

    /// A job's state (`scheduled`, `queued`, `running`, `retrying`, `succeeded`, `dead`),
    /// or `None` when Redis no longer has it.
    pub async fn state(&self, id: &str) -> anyhow::Result<Option<String>> {
        let mut conn = self.pool.get().await.context("no Redis connection")?;
        let state: Option<String> = deadpool_redis::redis::cmd("HGET")
            .arg(format!("{}{id}", self.job_prefix()))
            .arg("state")
            .query_async(&mut conn)
            .await?;
        Ok(state)
    }
}
