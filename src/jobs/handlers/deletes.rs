//! `deletes`: the retention sweep. Removes dead jobs past `jobs.dead_retention_days`,
//! audit rows past `audit.retention_days`, relayed events and webhook deliveries (with
//! their attempts) past `events.retention_days`, the uses of single-use upload tokens
//! once the tokens have expired, and instance rows whose process stopped heartbeating a
//! day ago. An event still waiting in the outbox is never removed. Each table is cleared in bounded batches, oldest first, so no
//! statement holds a table for long. Then stored objects that no file row names and that
//! are older than `storage.orphan_grace_seconds` are removed. Finished job records in
//! Redis expire on their own (`jobs.retention_seconds`).

use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use sqlx::PgPool;

use crate::config::Settings;
use crate::jobs::{Job, JobContext, JobError};

/// Rows removed per statement.
const BATCH: i64 = 1000;

/// The sweep, with the retention it applies.
pub struct Deletes {
    /// `jobs.dead_retention_days`.
    dead_jobs: Duration,
    /// `audit.retention_days`.
    audit_logs: Duration,
    /// `events.retention_days`.
    events: Duration,
    /// `storage.orphan_grace_seconds`.
    orphan_grace: Duration,
}

impl Deletes {
    pub fn new(settings: &Settings) -> Self {
        let day = Duration::from_secs(86_400);
        Self {
            dead_jobs: day * settings.jobs.dead_retention_days,
            audit_logs: day * settings.audit.retention_days,
            events: day * settings.events.retention_days,
            orphan_grace: Duration::from_secs(settings.storage.orphan_grace_seconds),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletesPayload {}

/// One table's sweep: which rows are old, by which column, and the table of rows that
/// belong to each (by its `id`) and go with it.
struct Sweep {
    table: &'static str,
    column: &'static str,
    older_than: Duration,
    dependents: Option<(&'static str, &'static str)>,
}

impl Job for Deletes {
    const NAME: &'static str = "deletes";
    const QUEUE: &'static str = "deletes";
    type Payload = DeletesPayload;

    async fn run(&self, ctx: &JobContext, _: DeletesPayload) -> Result<(), JobError> {
        let day = Duration::from_secs(86_400);
        let sweeps = [
            Sweep {
                table: "dead_jobs",
                column: "died_at",
                older_than: self.dead_jobs,
                dependents: None,
            },
            Sweep {
                table: "audit_logs",
                column: "created_at",
                older_than: self.audit_logs,
                dependents: None,
            },
            Sweep {
                table: "events",
                column: "relayed_at",
                older_than: self.events,
                dependents: None,
            },
            Sweep {
                table: "webhook_deliveries",
                column: "created_at",
                older_than: self.events,
                dependents: Some(("webhook_attempts", "delivery_id")),
            },
            // A spent single-use upload token's row matters only until the token expires.
            Sweep {
                table: "storage_upload_token_uses",
                column: "expires_at",
                older_than: Duration::ZERO,
                dependents: None,
            },
            Sweep {
                table: "instances",
                column: "heartbeat_at",
                older_than: day,
                dependents: None,
            },
        ];
        for sweep in sweeps {
            let removed = sweep_table(&ctx.services.db, &sweep).await?;
            tracing::info!(
                job_id = ctx.id,
                table = sweep.table,
                removed,
                older_than_days = sweep.older_than.as_secs() / 86_400,
                "retention sweep"
            );
        }
        let services = &ctx.services;
        let removed =
            crate::storage::orphans::sweep(&services.storage, &services.db, self.orphan_grace)
                .await?;
        tracing::info!(job_id = ctx.id, removed, "orphaned object sweep");
        Ok(())
    }
}

async fn sweep_table(db: &PgPool, sweep: &Sweep) -> anyhow::Result<u64> {
    let cutoff = chrono::Utc::now()
        - chrono::Duration::from_std(sweep.older_than).unwrap_or(chrono::Duration::MAX);
    // The tables and columns come from the constant list above, never from input.
    let old_rows = format!(
        "DELETE FROM {table} WHERE ctid IN (
             SELECT ctid FROM {table} WHERE {column} < $1 ORDER BY {column} LIMIT $2)",
        table = sweep.table,
        column = sweep.column,
    );
    let dependents = sweep.dependents.map_or(String::new(), |(table, parent)| {
        format!(", dependents AS (DELETE FROM {table} WHERE {parent} IN (SELECT id FROM gone))")
    });
    let statement =
        format!("WITH gone AS ({old_rows} RETURNING id){dependents} SELECT count(*) FROM gone");
    let mut removed = 0;
    loop {
        let done: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(statement.as_str()))
            .bind(cutoff)
            .bind(BATCH)
            .fetch_one(db)
            .await
            .with_context(|| format!("failed to sweep {}", sweep.table))?;
        let done = done as u64;
        removed += done;
        if done < BATCH as u64 {
            return Ok(removed);
        }
        // Let other work at the table in between batches.
        tokio::task::yield_now().await;
    }
}
