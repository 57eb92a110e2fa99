//! Each declared queue's jobs by state: the live counts from Redis and the dead jobs from
//! Postgres, side by side. What the queues API answers and the console's live stream sends.

use serde::Serialize;
use utoipa::ToSchema;

use crate::queue::{Queues, now_ms};

/// One queue's jobs by state.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
pub struct QueueView {
    pub name: String,
    /// Waiting to start.
    pub ready: u64,
    /// Delayed until a later time.
    pub scheduled: u64,
    /// Leased by a worker.
    pub running: u64,
    /// Waiting out a backoff.
    pub retrying: u64,
    /// In Postgres, retryable.
    pub dead: u64,
    /// Attempts that succeeded in the last minute.
    pub succeeded_last_minute: u64,
    /// Attempts that failed in the last minute.
    pub failed_last_minute: u64,
}

/// The queues `names`, in that order.
pub async fn summaries(
    queues: &Queues,
    db: &sqlx::PgPool,
    names: &[String],
) -> anyhow::Result<Vec<QueueView>> {
    let counts = queues.counts(names, now_ms()).await?;
    let dead = super::dead::counts(db).await?;
    Ok(names
        .iter()
        .zip(counts)
        .map(|(name, c)| QueueView {
            name: name.clone(),
            ready: c.ready,
            scheduled: c.scheduled,
            running: c.running,
            retrying: c.retrying,
            dead: dead
                .iter()
                .find(|(q, _)| q == name)
                .map_or(0, |(_, n)| *n as u64),
            succeeded_last_minute: c.succeeded_last_minute,
            failed_last_minute: c.failed_last_minute,
        })
        .collect())
}
