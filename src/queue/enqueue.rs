//! Enqueue: one ENQUEUE script call per queue a set of jobs names, and the coalescer that
//! lets concurrent single enqueues share such a call.
//!
//! # Coalescing
//! Each script call costs Redis a fixed amount (parsing, the call into Lua, the reply)
//! and the process a round trip's system calls, whatever it carries; a job adds only its
//! own few commands. So [`Queues::enqueue`] does not call the script itself: it hands the
//! job to one task per [`Queues`] (and its clones), which takes every job waiting at that
//! moment, makes one call per queue among them, and answers each caller with its own
//! result. Nothing waits for a batch to fill: with nothing else waiting a job goes alone
//! at once, so a lone enqueue pays only the hand-over; under load, jobs gather while
//! [`IN_FLIGHT`] calls are out, which is when sharing pays.
//!
//! The guarantee does not change: a caller hears `Ok` only after Redis ran the call that
//! holds its job. A call that fails fails every job it held; Redis may have kept some of
//! them (a script that fails partway keeps its earlier writes), exactly as a timeout
//! after a lone call leaves its job unknown, which idempotency keys are for.

use std::sync::{Arc, OnceLock};

use anyhow::{Context, anyhow};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{Enqueued, NewJob, Queues, keep_arg, new_id, scripts};

/// Script calls the coalescer keeps out at once; more jobs wait and go together.
const IN_FLIGHT: usize = 2;
/// The most jobs one coalesced call carries.
const MAX_JOBS: usize = 256;
/// The most payload bytes one coalesced call carries, past its first job.
const MAX_BYTES: usize = 1 << 20;

/// One caller's job, waiting for the coalescer.
struct Waiting {
    job: NewJob,
    now_ms: i64,
    reply: oneshot::Sender<anyhow::Result<Enqueued>>,
}

/// The hand-over to the coalescing task, started by the first enqueue. Clones share it.
#[derive(Clone, Default)]
pub(super) struct Coalescer(Arc<OnceLock<mpsc::UnboundedSender<Waiting>>>);

impl Queues {
    /// Adds a job, or returns the job its idempotency key already made. Concurrent calls
    /// share script calls (see the module's comment); the answer comes once Redis holds
    /// the job.
    pub async fn enqueue(&self, job: &NewJob, now_ms: i64) -> anyhow::Result<Enqueued> {
        let (reply, answer) = oneshot::channel();
        let waiting = Waiting {
            job: job.clone(),
            now_ms,
            reply,
        };
        if let Err(refused) = self.coalescer().send(waiting) {
            // The task is gone with the runtime that started it: go alone.
            let job = &refused.0.job;
            let mut out = self.add(&[(job, now_ms)]).await?;
            return out.pop().context("enqueue returned nothing");
        }
        answer
            .await
            .map_err(|_| anyhow!("the enqueue was dropped before Redis answered"))?
    }

    /// Adds jobs in one round trip per queue they name; the result is in input order.
    pub async fn enqueue_batch(
        &self,
        jobs: &[NewJob],
        now_ms: i64,
    ) -> anyhow::Result<Vec<Enqueued>> {
        let timed: Vec<(&NewJob, i64)> = jobs.iter().map(|job| (job, now_ms)).collect();
        self.add(&timed).await
    }

    /// Adds jobs, each enqueued at its own time, in one script call per queue they name,
    /// the calls made concurrently; the result is in input order.
    async fn add(&self, jobs: &[(&NewJob, i64)]) -> anyhow::Result<Vec<Enqueued>> {
        let mut by_queue: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, (job, _)) in jobs.iter().enumerate() {
            match by_queue.iter_mut().find(|(q, _)| *q == job.queue) {
                Some((_, indexes)) => indexes.push(i),
                None => by_queue.push((&job.queue, vec![i])),
            }
        }
        let calls = by_queue.iter().map(|(queue, indexes)| async move {
            let mut call = scripts::ENQUEUE.prepare_invoke();
            call.key(self.key(queue, "ready"))
                .key(self.key(queue, "scheduled"))
                .key(self.wake_key(queue))
                .arg(*queue);
            let mut made = Vec::with_capacity(indexes.len());
            for &i in indexes {
                let (job, now_ms) = jobs[i];
                let window = job.idempotency_window.unwrap_or(self.idempotency_window);
                let id = new_id();
                let record = self.job_key(queue, &id);
                match &job.idempotency_key {
                    Some(key) => call
                        .key(&record)
                        .key(self.key(queue, &format!("idem:{key}"))),
                    None => call.key(&record).key(&record),
                };
                call.arg(&id)
                    .arg(now_ms)
                    .arg(job.due_ms(now_ms))
                    .arg(job.idempotency_key.as_deref().unwrap_or(""))
                    .arg(window.as_secs().max(1))
                    .arg(&job.kind)
                    .arg(job.payload.get())
                    .arg(job.max_attempts)
                    .arg(job.timeout.as_millis() as u64)
                    .arg(keep_arg(job.retention));
                made.push(Enqueued { id, created: true });
            }
            let mut conn = self.conn.clone();
            let repeated: Vec<(usize, String)> = call
                .invoke_async(&mut conn)
                .await
                .context("enqueue script failed")?;
            for (position, earlier) in repeated {
                let job = position
                    .checked_sub(1)
                    .and_then(|n| made.get_mut(n))
                    .context("enqueue script named a job it was not given")?;
                *job = Enqueued {
                    id: earlier,
                    created: false,
                };
            }
            anyhow::Ok(made)
        });
        let made = futures_util::future::try_join_all(calls).await?;
        let mut results: Vec<Option<Enqueued>> = vec![None; jobs.len()];
        for ((_, indexes), made) in by_queue.iter().zip(made) {
            for (&i, enqueued) in indexes.iter().zip(made) {
                results[i] = Some(enqueued);
            }
        }
        results
            .into_iter()
            .map(|r| r.context("a job was left out of every enqueue call"))
            .collect()
    }

    /// The hand-over to the coalescing task, starting the task on first use. The task
    /// holds a copy of these queues without the hand-over, so it ends once every clone
    /// of these is dropped.
    fn coalescer(&self) -> &mpsc::UnboundedSender<Waiting> {
        self.coalescer.0.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            let queues = Queues {
                coalescer: Coalescer::default(),
                ..self.clone()
            };
            tokio::spawn(coalesce(queues, receiver));
            sender
        })
    }
}

/// The failure of a call several jobs shared, for each of them: its cause stays in the
/// chain, so the API still tells a Redis outage (503) from a fault (500).
#[derive(Debug)]
struct SharedFailure(Arc<anyhow::Error>);

impl std::fmt::Display for SharedFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the enqueue call this job went in failed")
    }
}

impl std::error::Error for SharedFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref().as_ref())
    }
}

/// Takes every job waiting once a call may go out, and sends them in one call per queue.
async fn coalesce(queues: Queues, mut waiting: mpsc::UnboundedReceiver<Waiting>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = waiting.recv().await else {
            return;
        };
        let mut bytes = first.job.payload.get().len();
        let mut batch = vec![first];
        while batch.len() < MAX_JOBS && bytes < MAX_BYTES {
            let Ok(next) = waiting.try_recv() else {
                break;
            };
            bytes += next.job.payload.get().len();
            batch.push(next);
        }
        let queues = queues.clone();
        tokio::spawn(async move {
            let timed: Vec<(&NewJob, i64)> = batch.iter().map(|w| (&w.job, w.now_ms)).collect();
            let result = queues.add(&timed).await;
            drop(timed);
            match result {
                Ok(made) => {
                    for (w, enqueued) in batch.into_iter().zip(made) {
                        let _ = w.reply.send(Ok(enqueued));
                    }
                }
                Err(error) => {
                    let error = Arc::new(error);
                    for w in batch {
                        let shared = SharedFailure(error.clone());
                        let _ = w.reply.send(Err(anyhow::Error::new(shared)));
                    }
                }
            }
            drop(slot);
        });
    }
}
