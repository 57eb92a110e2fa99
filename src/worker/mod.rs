//! The worker engine behind `app worker`: fetches leased batches from its queues in
//! weighted rotation ([`rotation`]), keeps up to `concurrency` more jobs leased ahead of
//! free slots, runs each job on its own task under the job's timeout, renews the leases
//! of running jobs, acknowledges successes in batches, records failures with backoff, and
//! copies dead jobs to Postgres.
//!
//! On shutdown it stops fetching, lets running jobs finish within `shutdown.drain_seconds`
//! and then hands back, at once, the leases of any still running, so another worker picks
//! them up without waiting for the leases to lapse.
//!
//! It is process wiring: it takes what it runs with as a [`Worker`] (the queues, the
//! clients handlers use, the settings) and never sees the process state, which only the
//! modes and HTTP do.

mod options;
mod pace;
pub mod rotation;
mod sweeps;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::jobs::{JobContext, JobError, Registry, Services, dead};
use crate::queue::{Backoff, Done, Leased, Queues, Waiter, now_ms};
use crate::realtime::history::History;
pub use options::{Options, Worker};
use pace::{MAX_AHEAD, Pace};
use rotation::Rotation;
use sweeps::Sweeps;

/// The most jobs one fetch leases.
const MAX_BATCH: usize = 256;
/// The most jobs one acknowledgement finishes: whatever gathered while the last one was in
/// flight, up to this.
const MAX_ACK_BATCH: usize = 1024;
/// The longest an idle worker blocks before looking again (lapsed leases, new delays).
const IDLE_WAIT: Duration = Duration::from_secs(5);
/// How often dead jobs are copied to Postgres when nothing signals it sooner.
const DEAD_SWEEP: Duration = Duration::from_secs(30);
/// The longest a `Retry-After` may defer a retry.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// Shared by the fetch loop and every job task.
struct Engine {
    services: Arc<Services>,
    announcer: Option<History>,
    registry: Registry,
    queues: Queues,
    id: String,
    lease: Duration,
    backoff: Backoff,
    /// Jobs this worker holds a lease on (running or leased ahead), by id, with their
    /// queue: what lease renewal and hand-back work on.
    running: Mutex<HashMap<String, String>>,
    /// Successes waiting for the batch acknowledger.
    acks: mpsc::UnboundedSender<(String, Done)>,
    /// Wakes the dead-job mover when a job dies.
    died: Notify,
    /// Jobs started so far, for the fetcher's pace.
    started: AtomicU64,
    /// Signalled each time a job leaves the buffer.
    taken: Notify,
    /// Metric handles by queue, then kind.
    meters: Mutex<HashMap<String, HashMap<String, Meters>>>,
}

/// Runs the worker until `shutdown`, then drains.
pub async fn run(
    worker: Worker,
    registry: Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Worker {
        queues: job_queues,
        services,
        announcer,
        id,
        options,
    } = worker;
    let queues = options.queues;
    let concurrency = options.concurrency;
    let (acks, ack_inbox) = mpsc::unbounded_channel();
    let engine = Arc::new(Engine {
        queues: job_queues,
        id,
        lease: options.lease,
        backoff: options.backoff,
        services,
        announcer,
        registry,
        running: Mutex::default(),
        acks,
        died: Notify::new(),
        meters: Mutex::default(),
        started: AtomicU64::new(0),
        taken: Notify::new(),
    });
    let wake_keys = queues
        .iter()
        .map(|(q, _)| engine.queues.wake_key(q))
        .collect();
    let waiter = Waiter::connect(&options.redis, wake_keys).await?;
    let names: Vec<&str> = queues.iter().map(|(q, _)| q.as_str()).collect();
    tracing::info!(
        worker = engine.id,
        queues = names.join(","),
        concurrency,
        kinds = engine.registry.kinds().join(","),
        "worker started"
    );

    let background = CancellationToken::new();
    let acknowledger = tokio::spawn(acknowledge(engine.clone(), ack_inbox));
    let renewer = tokio::spawn(renew_leases(engine.clone(), background.clone()));
    let mover = tokio::spawn(move_dead(engine.clone(), background.clone()));

    // The fetcher leases jobs into a buffer (room for every slot plus the most leased
    // ahead); the starter takes them out as slots free up. Fetching thus overlaps
    // running, and batches stay large.
    let slots = Arc::new(Semaphore::new(concurrency));
    let (buffer, mut leased) = mpsc::channel(concurrency + MAX_AHEAD);
    let fetcher = tokio::spawn(fetch(
        engine.clone(),
        Rotation::new(&queues, concurrency),
        waiter,
        buffer,
        slots.clone(),
        shutdown.clone(),
    ));
    let tasks = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit,
            _ = shutdown.cancelled() => break,
        };
        let Ok(permit) = permit else { break };
        let job = tokio::select! {
            job = leased.recv() => job,
            _ = shutdown.cancelled() => break,
        };
        let Some(job) = job else { break };
        engine.started.fetch_add(1, Ordering::Relaxed);
        engine.taken.notify_one();
        start(&engine, &tasks, job, permit);
    }
    // Jobs leased ahead but never started go back to their queues at once.
    let _ = fetcher.await;
    leased.close();
    let mut unstarted = Vec::new();
    while let Some(job) = leased.recv().await {
        unstarted.push(job);
    }
    if !unstarted.is_empty() {
        engine.hand_back_unstarted(unstarted).await;
    }

    // Drain: running jobs get the drain time; the leases of any still running are
    // handed back so that another worker takes them at once.
    tasks.close();
    let running = engine.running.lock().map(|r| r.len()).unwrap_or(0);
    tracing::info!(running, "worker stopped fetching; waiting for running jobs");
    if tokio::time::timeout(options.drain, tasks.wait())
        .await
        .is_err()
    {
        hand_back(&engine).await;
    }
    background.cancel();
    let _ = renewer.await;
    // The acknowledger ends once the engine, and with it the last sender, is gone.
    let mover_done = mover.await;
    drop(engine);
    if tokio::time::timeout(Duration::from_secs(5), acknowledger)
        .await
        .is_err()
    {
        tracing::warn!("acknowledgements did not finish; those jobs run again after their lease");
    }
    if let Ok(Err(error)) = mover_done {
        tracing::warn!(
            error = format!("{error:#}"),
            "dead job mover stopped with an error"
        );
    }
    tracing::info!("worker drained");
    Ok(())
}

/// Leases jobs into `buffer` until `shutdown`: enough to fill the free slots, plus about
/// 50 ms of work at the pace jobs are starting ([`Pace`]), so that a slot that frees up
/// starts its next job without a round trip to Redis. It fetches once the buffer holds
/// less than half of that, from the next queue in the rotation; when every queue is empty
/// it blocks on their wake tokens until work arrives or something comes due.
///
/// Sizing the lease-ahead by pace rather than by concurrency keeps batches large for
/// short jobs and holds almost nothing back for long ones, which another worker may be
/// free to run. Leased-ahead jobs are held like running ones: their leases are renewed,
/// and on shutdown they go back to their queue at once. A fetch under way when shutdown
/// comes is finished, not dropped, so no job is leased without the worker knowing.
async fn fetch(
    engine: Arc<Engine>,
    mut rotation: Rotation,
    mut waiter: Waiter,
    buffer: mpsc::Sender<Leased>,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    let mut pace = Pace::new();
    let mut failing = false;
    let mut sweeps = Sweeps::default();
    'fetching: while !shutdown.is_cancelled() {
        let buffered = buffer.max_capacity() - buffer.capacity();
        let ahead = pace.jobs_ahead(engine.started.load(Ordering::Relaxed));
        let desired = slots.available_permits() + ahead;
        if buffered * 2 >= desired {
            tokio::select! {
                _ = engine.taken.notified() => {}
                _ = shutdown.cancelled() => break,
            }
            continue;
        }
        let room = desired - buffered;
        let mut next_due: Option<i64> = None;
        let mut fetched_any = false;
        for _ in 0..rotation.len() {
            let (queue, share) = rotation.turn();
            let want = room.min(2 * share + ahead).min(MAX_BATCH);
            let now = now_ms();
            let sweep = sweeps.due(queue, now);
            let fetched = match engine
                .queues
                .fetch_swept(queue, &engine.id, want, engine.lease, now, sweep)
                .await
            {
                Ok(fetched) => {
                    sweeps.fetched(queue, now, sweep, fetched.jobs.len() >= want);
                    fetched
                }
                Err(error) => {
                    if !failing {
                        tracing::error!(
                            error = format!("{error:#}"),
                            "fetching jobs failed; retrying"
                        );
                        failing = true;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => break 'fetching,
                    }
                    continue 'fetching;
                }
            };
            if failing {
                tracing::info!("fetching jobs works again");
                failing = false;
            }
            next_due = match (next_due, fetched.next_due_ms) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if fetched.jobs.is_empty() {
                continue;
            }
            fetched_any = true;
            if let Ok(mut running) = engine.running.lock() {
                for job in &fetched.jobs {
                    running.insert(job.id.clone(), job.queue.clone());
                }
            }
            // The buffer has room for every slot plus the most leased ahead, so this never
            // waits for long.
            for job in fetched.jobs {
                if buffer.send(job).await.is_err() {
                    break 'fetching;
                }
            }
            break;
        }
        if fetched_any {
            continue;
        }
        let wait = next_due
            .map(|due| Duration::from_millis((due - now_ms()).max(1) as u64))
            .unwrap_or(IDLE_WAIT)
            .min(IDLE_WAIT);
        tokio::select! {
            waited = waiter.wait(wait) => {
                if let Err(error) = waited {
                    tracing::warn!(error = format!("{error:#}"), "waiting for jobs failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    if let Ok(fresh) = waiter.reconnect().await {
                        waiter = fresh;
                    }
                }
            }
            _ = shutdown.cancelled() => break,
        }
    }
}

impl Engine {
    /// Returns prefetched jobs that never started to their queues at once.
    async fn hand_back_unstarted(&self, jobs: Vec<Leased>) {
        if let Ok(mut running) = self.running.lock() {
            for job in &jobs {
                running.remove(&job.id);
            }
        }
        let released = self
            .release(by_queue(jobs.into_iter().map(|job| (job.queue, job.id))))
            .await;
        tracing::info!(released, "handed back jobs leased ahead");
    }

    /// Hands jobs back to their queues at once. Returns how many went back; those that
    /// could not run again when their leases lapse.
    async fn release(&self, jobs: HashMap<String, Vec<String>>) -> usize {
        let mut released = 0;
        for (queue, ids) in jobs {
            match self.queues.release(&queue, &self.id, &ids).await {
                Ok(n) => released += n,
                Err(e) => tracing::error!(
                    queue,
                    error = format!("{e:#}"),
                    "could not hand jobs back; they run again when their leases lapse"
                ),
            }
        }
        released
    }
}

/// `(queue, job)` pairs grouped by queue, as each queue operation takes them.
fn by_queue<T>(jobs: impl IntoIterator<Item = (String, T)>) -> HashMap<String, Vec<T>> {
    let mut grouped: HashMap<String, Vec<T>> = HashMap::new();
    for (queue, id) in jobs {
        grouped.entry(queue).or_default().push(id);
    }
    grouped
}

/// Runs one leased job on its own task, holding a slot until it has finished.
fn start(engine: &Arc<Engine>, tasks: &TaskTracker, job: Leased, permit: OwnedSemaphorePermit) {
    let engine = engine.clone();
    tasks.spawn(async move {
        engine
            .announce(&job, "job.active", serde_json::json!({}))
            .await;
        let began = Instant::now();
        let outcome = engine.attempt(&job).await;
        let elapsed = began.elapsed();
        if let Ok(mut running) = engine.running.lock() {
            running.remove(&job.id);
        }
        drop(permit);
        let meters = engine.meters(&job.queue, &job.kind);
        meters.duration.record(elapsed.as_secs_f64());
        match outcome {
            Ok(()) => {
                meters.succeeded.increment(1);
                tracing::debug!(
                    job_id = job.id,
                    kind = job.kind,
                    duration_ms = elapsed.as_millis() as u64,
                    "job succeeded"
                );
                let _ = engine.acks.send((job.queue.clone(), job.done()));
                engine
                    .announce(
                        &job,
                        "job.succeeded",
                        serde_json::json!({"duration_ms": elapsed.as_millis() as u64}),
                    )
                    .await;
            }
            // Boxed, as the rare paths: inline, their futures would make every job's
            // task (moved and freed once per job) larger.
            Err(JobError::Defer(wait)) => Box::pin(engine.defer(&job, wait)).await,
            Err(error) => {
                meters.failed.increment(1);
                Box::pin(engine.record_failure(&job, error)).await;
            }
        }
    });
}

/// The metric handles of one queue and kind, registered once rather than per job.
#[derive(Clone)]
struct Meters {
    duration: metrics::Histogram,
    succeeded: metrics::Counter,
    failed: metrics::Counter,
}

impl Meters {
    fn new(queue: &str, kind: &str) -> Self {
        let labels = [("queue", queue.to_owned()), ("kind", kind.to_owned())];
        Self {
            duration: metrics::histogram!("switchyard_job_duration_seconds", &labels),
            succeeded: metrics::counter!("switchyard_jobs_succeeded_total", &labels),
            failed: metrics::counter!("switchyard_jobs_failed_total", &labels),
        }
    }
}

impl Engine {
    /// Publishes a state change of `job` on its realtime channel `jobs.<id>`, when
    /// `realtime.job_events` is on. A failure to publish is logged; the job goes on.
    async fn announce(&self, job: &Leased, event: &str, mut data: serde_json::Value) {
        let Some(announcer) = &self.announcer else {
            return;
        };
        if let Some(fields) = data.as_object_mut() {
            fields.insert("queue".into(), job.queue.clone().into());
            fields.insert("kind".into(), job.kind.clone().into());
            fields.insert("attempt".into(), job.attempt.into());
        }
        let channel = format!("jobs.{}", job.id);
        // Boxed: a publish's future (a pooled Redis connection's checkout among it) is
        // kilobytes, and inline it would make every job's task that much larger, announcer
        // or not.
        if let Err(error) = Box::pin(announcer.publish(&channel, event, &data)).await {
            tracing::warn!(
                job_id = job.id,
                event,
                error = format!("{error:#}"),
                "failed to publish a job event"
            );
        }
    }

    /// One attempt. A panic fails this attempt only; past the job's timeout the handler's
    /// future is dropped, which cancels it at its next await.
    async fn attempt(&self, job: &Leased) -> Result<(), JobError> {
        let ctx = JobContext {
            id: job.id.clone(),
            queue: job.queue.clone(),
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            services: self.services.clone(),
        };
        let Some(run) = self.registry.start(&job.kind, ctx, &job.payload) else {
            return Err(JobError::Fatal(anyhow!(
                "no handler for job kind {:?} in this worker (it runs: {})",
                job.kind,
                self.registry.kinds().join(", ")
            )));
        };
        match tokio::time::timeout(job.timeout, crate::panic::catch_unwind(run)).await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => Err(JobError::Retry(anyhow!(
                "the handler panicked: {}",
                crate::panic::message(panic.as_ref())
            ))),
            Err(_) => Err(JobError::Retry(anyhow!(
                "timed out after {}s and was cancelled",
                job.timeout.as_secs_f64()
            ))),
        }
    }

    /// Puts a job the handler deferred back for later, its attempt refunded. A failure to
    /// do so leaves the lease to lapse, which also runs it again.
    async fn defer(&self, job: &Leased, wait: Duration) {
        let at = now_ms() + wait.min(MAX_RETRY_AFTER).as_millis() as i64;
        if let Err(error) = self.queues.defer(&job.queue, &self.id, &job.id, at).await {
            tracing::warn!(
                job_id = job.id,
                error = format!("{error:#}"),
                "could not defer a job; it runs again when its lease lapses"
            );
        }
    }

    /// Records a failed attempt: a retry after the backoff (or `Retry-After`), or death
    /// when attempts ran out or the error is final.
    async fn record_failure(&self, job: &Leased, error: JobError) {
        let now = now_ms();
        let wait = match &error {
            JobError::Fatal(_) => None,
            _ if job.attempt >= job.max_attempts => None,
            // Handled by `defer`; counted as a plain retry if it ever arrives here.
            JobError::Defer(wait) => Some((*wait).min(MAX_RETRY_AFTER)),
            JobError::RetryAfter(wait, _) => Some((*wait).min(MAX_RETRY_AFTER)),
            JobError::Retry(_) => Some(self.backoff.delay(job.attempt, jitter())),
        };
        let message = error.to_string();
        let retry_at = wait.map(|w| now + w.as_millis() as i64);
        let recorded = self
            .queues
            .fail(&job.queue, &self.id, &job.id, &message, retry_at, now)
            .await;
        if let Ok(Some(state)) = &recorded {
            let (event, data) = if state == "dead" {
                ("job.dead", serde_json::json!({"error": message}))
            } else {
                (
                    "job.retrying",
                    serde_json::json!({"error": message, "retry_at_ms": retry_at}),
                )
            };
            self.announce(job, event, data).await;
        }
        match recorded {
            Ok(Some(state)) if state == "dead" => {
                tracing::error!(
                    job_id = job.id,
                    queue = job.queue,
                    kind = job.kind,
                    attempt = job.attempt,
                    error = message,
                    "job is dead"
                );
                self.died.notify_one();
            }
            Ok(Some(_)) => tracing::warn!(
                job_id = job.id,
                queue = job.queue,
                kind = job.kind,
                attempt = job.attempt,
                retry_in_ms = wait.map(|w| w.as_millis() as u64),
                error = message,
                "job failed; it will retry"
            ),
            Ok(None) => tracing::warn!(
                job_id = job.id,
                "job failed after its lease passed to another worker; the failure is not recorded"
            ),
            Err(e) => tracing::error!(
                job_id = job.id,
                error = format!("{e:#}"),
                "could not record a failed attempt; the job runs again when its lease lapses"
            ),
        }
    }
}

/// A random fraction in [0, 1) for backoff jitter.
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

/// Acknowledges successes in batches: whatever has gathered while the last batch was in
/// flight goes in the next, one script call per queue.
async fn acknowledge(engine: Arc<Engine>, mut inbox: mpsc::UnboundedReceiver<(String, Done)>) {
    let queues = engine.queues.clone();
    let id = engine.id.clone();
    // Only the channel keeps this task alive, so it ends when the last sender drops.
    drop(engine);
    let mut batch = Vec::with_capacity(MAX_ACK_BATCH);
    while inbox.recv_many(&mut batch, MAX_ACK_BATCH).await > 0 {
        for (queue, jobs) in by_queue(batch.drain(..)) {
            let mut tries = 0;
            loop {
                match queues.ack(&queue, &id, &jobs, now_ms()).await {
                    Ok(_) => break,
                    Err(e) if tries < 3 => {
                        tries += 1;
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "acknowledging jobs failed; retrying"
                        );
                        tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                    }
                    Err(e) => {
                        tracing::error!(
                            error = format!("{e:#}"),
                            jobs = jobs.len(),
                            "could not acknowledge jobs; they run again when their leases lapse"
                        );
                        break;
                    }
                }
            }
        }
    }
}

/// Renews the leases of running jobs every third of the lease.
async fn renew_leases(engine: Arc<Engine>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(engine.lease / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        for (queue, ids) in engine.running_by_queue() {
            match engine
                .queues
                .extend(&queue, &engine.id, &ids, engine.lease, now_ms())
                .await
            {
                Ok(lost) => {
                    for job_id in lost {
                        // Finished meanwhile, or the lease lapsed and another worker took it.
                        if engine.is_running(&job_id) {
                            tracing::warn!(
                                job_id,
                                "lost the lease of a running job; it may run twice"
                            );
                        }
                    }
                }
                Err(e) => tracing::warn!(error = format!("{e:#}"), "renewing leases failed"),
            }
        }
    }
}

impl Engine {
    fn meters(&self, queue: &str, kind: &str) -> Meters {
        let Ok(mut cache) = self.meters.lock() else {
            return Meters::new(queue, kind);
        };
        // Looked up by &str, so a hit allocates nothing.
        if let Some(meters) = cache.get(queue).and_then(|kinds| kinds.get(kind)) {
            return meters.clone();
        }
        let meters = Meters::new(queue, kind);
        cache
            .entry(queue.to_owned())
            .or_default()
            .insert(kind.to_owned(), meters.clone());
        meters
    }

    fn running_by_queue(&self) -> HashMap<String, Vec<String>> {
        match self.running.lock() {
            Ok(running) => by_queue(running.iter().map(|(id, q)| (q.clone(), id.clone()))),
            Err(_) => HashMap::new(),
        }
    }

    fn is_running(&self, id: &str) -> bool {
        self.running.lock().is_ok_and(|r| r.contains_key(id))
    }
}

/// Hands back the leases of jobs still running at the drain deadline.
async fn hand_back(engine: &Engine) {
    let released = engine.release(engine.running_by_queue()).await;
    tracing::warn!(
        released,
        "drain time is up; handed running jobs back to the queue"
    );
}

/// Copies dead jobs to Postgres when one dies, every so often, and once more at the end.
/// Also adopts jobs of the old Redis key layout (see `queue::legacy`) on each pass, its
/// idempotency keys on the first.
async fn move_dead(engine: Arc<Engine>, stop: CancellationToken) -> anyhow::Result<()> {
    let mut first = true;
    loop {
        if let Err(e) = crate::queue::adopt_legacy(&engine.queues, first, now_ms()).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "adopting jobs of the old key layout failed; retrying later"
            );
        }
        first = false;
        match dead::move_outbox(&engine.services.db, &engine.queues).await {
            Ok(0) => {}
            Ok(moved) => tracing::info!(moved, "dead jobs recorded in Postgres"),
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "recording dead jobs failed; retrying later"
            ),
        }
        if stop.is_cancelled() {
            return Ok(());
        }
        tokio::select! {
            _ = engine.died.notified() => {}
            _ = tokio::time::sleep(DEAD_SWEEP) => {}
            _ = stop.cancelled() => {}
        }
    }
}
