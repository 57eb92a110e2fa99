//! The figures `/metrics` reads when it is scraped, beside the counters and histograms the
//! process keeps as it works: jobs per queue and state, how long each queue's next ready
//! job has waited, live instances by mode, the Postgres and Redis pools, and the standard
//! process metrics. A scrape costs three Redis round trips and two Postgres queries however
//! many jobs and queues there are, each bounded by `health.check_timeout_ms`; a store that
//! does not answer leaves its families out of that scrape instead of failing it.

use crate::state::AppState;
use crate::telemetry::exposition::{escape, family, sample};

/// The scrape-time families in the Prometheus text format.
pub async fn render(state: &AppState) -> String {
    let mut out = String::new();
    let queues = &state.settings.jobs.queues;
    let now = crate::queue::now_ms();
    let limit = state.settings.health.check_timeout();
    let (counts, oldest, dead, instances) = tokio::join!(
        bounded(limit, state.queues.counts(queues, now)),
        bounded(limit, state.queues.oldest_ready(queues, now)),
        bounded(limit, crate::jobs::dead::counts(&state.db)),
        bounded(limit, crate::instances::live_by_mode(&state.db)),
    );

    if counts.is_some() || dead.is_some() {
        family(
            &mut out,
            "switchyard_queue_jobs",
            "gauge",
            "Jobs in each queue by state (dead jobs are kept in Postgres).",
        );
        if let Some(counts) = &counts {
            for (queue, c) in queues.iter().zip(counts) {
                for (name, n) in [
                    ("ready", c.ready),
                    ("scheduled", c.scheduled),
                    ("running", c.running),
                    ("retrying", c.retrying),
                ] {
                    let labels = format!("queue=\"{}\",state=\"{name}\"", escape(queue));
                    sample(&mut out, "switchyard_queue_jobs", &labels, n);
                }
            }
        }
        if let Some(dead) = &dead {
            for queue in queues {
                let n = dead.iter().find(|(q, _)| q == queue).map_or(0, |(_, n)| *n);
                let labels = format!("queue=\"{}\",state=\"dead\"", escape(queue));
                sample(&mut out, "switchyard_queue_jobs", &labels, n);
            }
        }
    }
    if let Some(oldest) = &oldest {
        family(
            &mut out,
            "switchyard_queue_oldest_ready_age_seconds",
            "gauge",
            "How long each queue's next ready job has waited since it was enqueued or came \
             due; 0 for an empty queue.",
        );
        for (queue, age) in queues.iter().zip(oldest) {
            let seconds = age.map_or(0.0, |ms| ms as f64 / 1000.0);
            let labels = format!("queue=\"{}\"", escape(queue));
            sample(
                &mut out,
                "switchyard_queue_oldest_ready_age_seconds",
                &labels,
                seconds,
            );
        }
    }
    if let Some(instances) = &instances {
        family(
            &mut out,
            "switchyard_instances",
            "gauge",
            "Processes that heartbeated within the last minute, by mode.",
        );
        for (mode, n) in instances {
            let labels = format!("mode=\"{}\"", escape(mode));
            sample(&mut out, "switchyard_instances", &labels, n);
        }
    }
    pools(&mut out, state);
    crate::telemetry::process::render(&mut out);
    out
}

/// The Postgres and Redis pools of this process: connections open and in use, the cap,
/// and (Redis) callers waiting for a connection.
fn pools(out: &mut String, state: &AppState) {
    let db_open = u64::from(state.db.size());
    let db_idle = state.db.num_idle() as u64;
    let redis = state.redis.status();
    family(
        out,
        "switchyard_db_pool_connections",
        "gauge",
        "Postgres connections of this process's pool, idle or in use.",
    );
    sample(
        out,
        "switchyard_db_pool_connections",
        "state=\"idle\"",
        db_idle,
    );
    sample(
        out,
        "switchyard_db_pool_connections",
        "state=\"in_use\"",
        db_open.saturating_sub(db_idle),
    );
    family(
        out,
        "switchyard_db_pool_max_connections",
        "gauge",
        "The cap on this process's Postgres connections (database.max_connections).",
    );
    sample(
        out,
        "switchyard_db_pool_max_connections",
        "",
        state.settings.database.max_connections,
    );
    family(
        out,
        "switchyard_redis_pool_connections",
        "gauge",
        "Redis connections of this process's pool, idle or in use.",
    );
    sample(
        out,
        "switchyard_redis_pool_connections",
        "state=\"idle\"",
        redis.available,
    );
    sample(
        out,
        "switchyard_redis_pool_connections",
        "state=\"in_use\"",
        redis.size.saturating_sub(redis.available),
    );
    family(
        out,
        "switchyard_redis_pool_max_connections",
        "gauge",
        "The cap on this process's pooled Redis connections.",
    );
    sample(
        out,
        "switchyard_redis_pool_max_connections",
        "",
        redis.max_size,
    );
    family(
        out,
        "switchyard_redis_pool_waiting",
        "gauge",
        "Callers waiting for a pooled Redis connection.",
    );
    sample(out, "switchyard_redis_pool_waiting", "", redis.waiting);
}

/// What `work` read within `limit`; `None` (logged at debug) when it failed or took longer.
async fn bounded<T>(
    limit: std::time::Duration,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> Option<T> {
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(error)) => {
            tracing::debug!(error = format!("{error:#}"), "a scrape left out a figure");
            None
        }
        Err(_) => {
            tracing::debug!(?limit, "a scrape left out a figure that took too long");
            None
        }
    }
}
