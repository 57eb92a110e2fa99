//! `[jobs]` and `[worker]`: the queues that exist, the defaults every job gets, and what
//! one worker process consumes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Check, list_or_csv, positive};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSettings {
    /// The queues that exist; an enqueue elsewhere is refused.
    #[serde(deserialize_with = "list_or_csv")]
    pub queues: Vec<String>,
    pub max_attempts: u32,
    pub timeout_seconds: u64,
    pub backoff_base_ms: u64,
    pub backoff_cap_seconds: u64,
    pub idempotency_window_seconds: u64,
    /// How long succeeded and cancelled jobs stay queryable in Redis.
    pub retention_seconds: u64,
    pub dead_retention_days: u32,
    pub max_payload_bytes: usize,
    /// Accept a kind no live worker on its queue handles, instead of refusing it.
    pub accept_unknown_kinds: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// `name` or `name:weight` entries.
    #[serde(deserialize_with = "list_or_csv")]
    pub queues: Vec<String>,
    pub concurrency: usize,
    pub lease_seconds: u64,
}

impl WorkerSettings {
    /// The queues `worker.queues` names, each with its weight (1 when not given).
    pub fn weighted_queues(&self) -> Vec<(String, u32)> {
        self.queues
            .iter()
            .map(|entry| match entry.split_once(':') {
                Some((name, weight)) => (name.to_owned(), weight.parse().unwrap_or(1)),
                None => (entry.clone(), 1),
            })
            .collect()
    }

    /// How long a job's lease lasts before another worker may take it.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }
}

/// Queue names become Redis key parts and metric labels, so they stay plain.
pub fn valid_queue_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

pub(super) fn validate(jobs: &JobsSettings, worker: &WorkerSettings) -> Check {
    let plain =
        |name: &str| format!("queue name {name:?} must be 1-64 characters of a-z, 0-9, '_' or '-'");
    if jobs.queues.is_empty() {
        return Err(("jobs.queues", "name at least one queue".into()));
    }
    if let Some(bad) = jobs.queues.iter().find(|q| !valid_queue_name(q)) {
        return Err(("jobs.queues", plain(bad)));
    }
    if worker.queues.is_empty() {
        return Err(("worker.queues", "name at least one queue".into()));
    }
    for entry in &worker.queues {
        let (name, weight) = entry.split_once(':').unwrap_or((entry, "1"));
        if !valid_queue_name(name) {
            return Err(("worker.queues", plain(name)));
        }
        if !weight.parse::<u32>().is_ok_and(|w| (1..=100).contains(&w)) {
            return Err((
                "worker.queues",
                format!("weight {weight:?} of queue {name:?} must be a whole number from 1 to 100"),
            ));
        }
        if !jobs.queues.iter().any(|q| q == name) {
            return Err((
                "worker.queues",
                format!("queue {name:?} is not declared in jobs.queues (JOBS_QUEUES)"),
            ));
        }
    }
    if !(1..=1024).contains(&worker.concurrency) {
        return Err(("worker.concurrency", "must be between 1 and 1024".into()));
    }
    if !(2..=3600).contains(&worker.lease_seconds) {
        return Err(("worker.lease_seconds", "must be between 2 and 3600".into()));
    }
    if !(1..=1000).contains(&jobs.max_attempts) {
        return Err(("jobs.max_attempts", "must be between 1 and 1000".into()));
    }
    positive(&[
        ("jobs.timeout_seconds", jobs.timeout_seconds),
        ("jobs.backoff_base_ms", jobs.backoff_base_ms),
        ("jobs.backoff_cap_seconds", jobs.backoff_cap_seconds),
        (
            "jobs.idempotency_window_seconds",
            jobs.idempotency_window_seconds,
        ),
        ("jobs.retention_seconds", jobs.retention_seconds),
        ("jobs.dead_retention_days", jobs.dead_retention_days.into()),
    ])?;
    if jobs.max_payload_bytes < 1024 {
        return Err(("jobs.max_payload_bytes", "must be at least 1024".into()));
    }
    Ok(())
}
