//! What the API, the console and the metrics read about queues without changing them:
//! each queue's counts, its throughput minute by minute over the last hour, the jobs in
//! one state, and how long the next ready job has waited.
//! All of it is a live view: jobs move between states while it is read.

use anyhow::Context;
use deadpool_redis::redis;
use serde::Serialize;

use super::{JobRecord, Queues, WINDOW_MS};

/// A queue's numbers for the API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueueCounts {
    pub ready: u64,
    pub scheduled: u64,
    pub running: u64,
    pub retrying: u64,
    /// Attempts that succeeded in the last minute.
    pub succeeded_last_minute: u64,
    /// Attempts that failed in the last minute.
    pub failed_last_minute: u64,
}

/// A queue's finished attempts per minute, oldest first; the last minute ends now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Throughput {
    pub succeeded: Vec<u64>,
    pub failed: Vec<u64>,
}

/// The states whose jobs Redis lists (dead jobs live in Postgres).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Waiting to start, next first.
    Ready,
    /// Delayed, soonest due first.
    Scheduled,
    /// Leased by a worker, the lease that ends first first.
    Running,
    /// Waiting out a backoff, soonest due first.
    Retrying,
}

/// Windows in one minute.
const PER_MINUTE: i64 = 60_000 / WINDOW_MS;

impl Queues {
    /// Each queue's counts, in one round trip (one per queue, concurrently, on a
    /// cluster).
    pub async fn counts(&self, queues: &[String], now_ms: i64) -> anyhow::Result<Vec<QueueCounts>> {
        let windows: Vec<i64> = (0..PER_MINUTE).map(|i| now_ms - i * WINDOW_MS).collect();
        type Row = (u64, u64, u64, u64, Vec<Option<u64>>, Vec<Option<u64>>);
        let rows: Vec<Row> = self
            .per_queue(queues, "count queues", |pipe, queue| {
                pipe.llen(self.key(queue, "ready"))
                    .zcard(self.key(queue, "scheduled"))
                    .zcard(self.key(queue, "leased"))
                    .zcard(self.key(queue, "retry"));
                for what in ["succeeded", "failed"] {
                    pipe.mget(self.counters(queue, what, &windows));
                }
            })
            .await?;
        let sum = |v: Vec<Option<u64>>| v.into_iter().flatten().sum();
        Ok(rows
            .into_iter()
            .map(
                |(ready, scheduled, running, retrying, succeeded, failed)| QueueCounts {
                    ready,
                    scheduled,
                    running,
                    retrying,
                    succeeded_last_minute: sum(succeeded),
                    failed_last_minute: sum(failed),
                },
            )
            .collect())
    }

    /// Each queue's attempts per minute over the last `minutes` (at most an hour, what
    /// the counters are kept for), in one round trip (one per queue on a cluster).
    pub async fn throughput(
        &self,
        queues: &[String],
        now_ms: i64,
        minutes: u32,
    ) -> anyhow::Result<Vec<Throughput>> {
        let minutes = i64::from(minutes.clamp(1, 60));
        // Oldest window first, so each run of six is one minute in order.
        let windows: Vec<i64> = (0..minutes * PER_MINUTE)
            .rev()
            .map(|i| now_ms - i * WINDOW_MS)
            .collect();
        type Pair = (Vec<Option<u64>>, Vec<Option<u64>>);
        let pairs: Vec<Pair> = self
            .per_queue(queues, "read queue throughput", |pipe, queue| {
                for what in ["succeeded", "failed"] {
                    pipe.mget(self.counters(queue, what, &windows));
                }
            })
            .await?;
        let per_minute = |counts: &Vec<Option<u64>>| -> Vec<u64> {
            counts
                .chunks(PER_MINUTE as usize)
                .map(|minute| minute.iter().flatten().sum())
                .collect()
        };
        Ok(pairs
            .iter()
            .map(|(succeeded, failed)| Throughput {
                succeeded: per_minute(succeeded),
                failed: per_minute(failed),
            })
            .collect())
    }

    /// Up to `limit` of a queue's jobs in `state` from position `offset` in that state's
    /// order, and how many it holds. A job that left the state while this read keeps its
    /// place with its new state; one whose record is gone is left out.
    pub async fn jobs_in(
        &self,
        queue: &str,
        state: JobState,
        offset: usize,
        limit: usize,
    ) -> anyhow::Result<(Vec<JobRecord>, u64)> {
        let (start, stop) = (offset as isize, (offset + limit.max(1)) as isize - 1);
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        let key = match state {
            JobState::Ready => {
                let key = self.key(queue, "ready");
                pipe.lrange(&key, start, stop).llen(&key);
                key
            }
            JobState::Scheduled | JobState::Running | JobState::Retrying => {
                let part = match state {
                    JobState::Scheduled => "scheduled",
                    JobState::Running => "leased",
                    _ => "retry",
                };
                let key = self.key(queue, part);
                pipe.zrange(&key, start, stop).zcard(&key);
                key
            }
        };
        let (members, total): (Vec<String>, u64) = pipe
            .query_async(&mut conn)
            .await
            .with_context(|| format!("failed to list {key}"))?;
        // A lease names its holder after the id: `{id}|{worker}`.
        let ids: Vec<&str> = members
            .iter()
            .map(|m| m.split_once('|').map_or(m.as_str(), |(id, _)| id))
            .collect();
        let mut reads = redis::pipe();
        for id in &ids {
            reads.hgetall(self.job_key(queue, id));
        }
        let hashes: Vec<std::collections::HashMap<String, String>> = if ids.is_empty() {
            Vec::new()
        } else {
            reads
                .query_async(&mut conn)
                .await
                .context("failed to read jobs")?
        };
        let jobs = ids
            .iter()
            .zip(hashes)
            .filter_map(|(id, hash)| JobRecord::from_hash(id, hash))
            .collect();
        Ok((jobs, total))
    }

    /// How long each queue's next ready job has waited, in milliseconds: since it was
    /// enqueued or, for a delayed one, since it came due. `None` for an empty queue. Two
    /// round trips however many queues and jobs there are (on a cluster, one per queue
    /// each, concurrently): the head of each ready list, then those jobs' times.
    pub async fn oldest_ready(
        &self,
        queues: &[String],
        now_ms: i64,
    ) -> anyhow::Result<Vec<Option<i64>>> {
        let heads: Vec<(Option<String>,)> = self
            .per_queue(
                queues,
                "read the heads of the ready lists",
                |pipe, queue| {
                    pipe.lindex(self.key(queue, "ready"), 0);
                },
            )
            .await?;
        let ids: Vec<Option<String>> = heads.into_iter().map(|(id,)| id).collect();
        let times: Vec<redis::Pipeline> = queues
            .iter()
            .zip(&ids)
            .map(|(queue, id)| {
                let mut pipe = redis::pipe();
                if let Some(id) = id {
                    pipe.cmd("HMGET")
                        .arg(self.job_key(queue, id))
                        .arg("created_ms")
                        .arg("run_at_ms");
                }
                pipe
            })
            .collect();
        let times = self
            .conn
            .pipelines(&times)
            .await
            .context("failed to read the oldest ready jobs")?;
        times
            .into_iter()
            .map(|reply| {
                let Some(value) = reply.into_iter().next() else {
                    return Ok(None);
                };
                let (created, due): (Option<i64>, Option<i64>) =
                    redis::from_redis_value(value).context("unexpected job times")?;
                Ok(created.max(due).map(|since| (now_ms - since).max(0)))
            })
            .collect()
    }

    /// One pipeline per queue, which `build` fills, run in one round trip (one per queue,
    /// concurrently, on a cluster); each queue's replies decoded as one `T`.
    pub(super) async fn per_queue<T: redis::FromRedisValue>(
        &self,
        queues: &[String],
        what: &str,
        build: impl Fn(&mut redis::Pipeline, &str),
    ) -> anyhow::Result<Vec<T>> {
        let pipes: Vec<redis::Pipeline> = queues
            .iter()
            .map(|queue| {
                let mut pipe = redis::pipe();
                build(&mut pipe, queue);
                pipe
            })
            .collect();
        let replies = self
            .conn
            .pipelines(&pipes)
            .await
            .with_context(|| format!("failed to {what}"))?;
        replies
            .into_iter()
            .map(|reply| {
                redis::from_redis_value(redis::Value::Array(reply))
                    .with_context(|| format!("unexpected reply when trying to {what}"))
            })
            .collect()
    }

    fn counters(&self, queue: &str, what: &str, windows: &[i64]) -> Vec<String> {
        windows
            .iter()
            .map(|&t| self.counter(queue, what, t))
            .collect()
    }
}
