//! What a worker runs with: the handles it is given and the settings it reads.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{RedisSettings, Settings};
use crate::jobs::Services;
use crate::queue::{Backoff, Queues};
use crate::realtime::history::History;

/// What a worker runs with.
pub struct Worker {
    /// The job queues in Redis.
    pub queues: Queues,
    /// What every job's handler may use.
    pub services: Arc<Services>,
    /// Publishes each job's state changes on `jobs.<id>`; `None` when
    /// `realtime.job_events` is off.
    pub announcer: Option<History>,
    /// This process's name on the leases it holds, unique across replicas and restarts.
    pub id: String,
    pub options: Options,
}

/// How a worker runs, from `[worker]`, `[jobs]`, `[shutdown]` and `[redis]`.
#[derive(Clone, Debug)]
pub struct Options {
    /// The queues to consume, each with its weight.
    pub queues: Vec<(String, u32)>,
    pub concurrency: usize,
    pub lease: Duration,
    pub backoff: Backoff,
    /// How long running jobs may finish after shutdown begins.
    pub drain: Duration,
    /// Where the connections that idle workers block on go.
    pub redis: RedisSettings,
}

impl Options {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            queues: settings.worker.weighted_queues(),
            concurrency: settings.worker.concurrency,
            lease: settings.worker.lease(),
            backoff: Backoff {
                base: Duration::from_millis(settings.jobs.backoff_base_ms),
                cap: Duration::from_secs(settings.jobs.backoff_cap_seconds),
            },
            drain: settings.shutdown.drain(),
            redis: settings.redis.clone(),
        }
    }
}
