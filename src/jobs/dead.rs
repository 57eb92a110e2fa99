//! Dead jobs in Postgres: the copy from Redis's outbox, listing with a cursor, retry and
//! delete. A copy is idempotent (keyed by the job id) and happens before Redis forgets
//! the job, so a crash in between leaves it in both places, never in neither. The copy
//! records the `jobs.dead` event in the same transaction.

use std::collections::HashSet;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::cursor::{self, BadCursor};
use crate::events::Event;
use crate::queue::{AttemptError, JobRecord, Queues};

/// How many outbox entries one pass copies.
const OUTBOX_BATCH: usize = 100;

/// A dead job as the API shows it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct DeadJob {
    pub id: uuid::Uuid,
    pub queue: String,
    pub kind: String,
    /// The payload exactly as it was enqueued: passed through, never re-encoded, so any
    /// JSON the API accepted comes back as it went in.
    #[schema(value_type = Object)]
    #[sqlx(json)]
    pub payload: Box<RawValue>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub timeout_ms: i64,
    pub last_error: String,
    /// Every attempt's error: `[{attempt, error, at_ms}]`.
    #[schema(value_type = Vec<Object>)]
    pub errors: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub died_at: DateTime<Utc>,
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

/// Copies every job waiting in Redis's dead outbox to `dead_jobs`, then removes it from
/// Redis. Returns how many were moved.
pub async fn move_outbox(db: &PgPool, queues: &Queues) -> anyhow::Result<usize> {
    let mut moved = 0;
    for queue in queues.names() {
        moved += move_queue_outbox(db, queues, queue).await?;
    }
    Ok(moved)
}

/// [`move_outbox`] for one queue's outbox.
async fn move_queue_outbox(db: &PgPool, queues: &Queues, queue: &str) -> anyhow::Result<usize> {
    let mut moved = 0;
    loop {
        let batch = queues.dead_outbox_batch(queue, OUTBOX_BATCH).await?;
        if batch.is_empty() {
            return Ok(moved);
        }
        let mut tx = db.begin().await.context("failed to start a transaction")?;
        let mut died = Vec::new();
        for job in &batch {
            let id: uuid::Uuid = job.id.parse().unwrap_or_else(|_| uuid::Uuid::nil());
            // Stored as the text Redis holds. Text that is not JSON (never written by the
            // API) is kept as a JSON string, so one bad job cannot stop the outbox.
            let payload = match serde_json::from_str::<&RawValue>(&job.payload) {
                Ok(_) => job.payload.clone(),
                Err(_) => serde_json::Value::String(job.payload.clone()).to_string(),
            };
            let copied = sqlx::query(
                "INSERT INTO dead_jobs (id, queue, kind, payload, attempts, max_attempts,
                     timeout_ms, last_error, errors, created_at, died_at)
                 VALUES ($1, $2, $3, $4::json, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(&job.queue)
            .bind(&job.kind)
            .bind(payload)
            .bind(job.attempts as i32)
            .bind(job.max_attempts as i32)
            .bind(job.timeout_ms as i64)
            .bind(job.last_error.as_deref().unwrap_or("unknown"))
            .bind(serde_json::to_value(&job.errors).unwrap_or_default())
            .bind(at(job.created_ms))
            .bind(at(job.finished_ms.unwrap_or(job.created_ms)))
            .execute(&mut *tx)
            .await
            .context("failed to record a dead job")?;
            if copied.rows_affected() == 1 && job.kind != crate::webhooks::JOB_KIND {
                died.push(dead_event(job));
            }
        }
        crate::events::record(&mut tx, &died).await?;
        tx.commit().await.context("failed to commit dead jobs")?;
        let ids: Vec<String> = batch.iter().map(|job| job.id.clone()).collect();
        queues.forget_dead(queue, &ids).await?;
        moved += ids.len();
    }
}

/// `jobs.dead`, written with the dead job's row. A webhook delivery that dies emits none:
/// its failure is in the delivery log, and an endpoint subscribed to `*` that is down
/// would otherwise be sent an event about each failed delivery to itself, without end.
fn dead_event(job: &JobRecord) -> Event {
    let mut event = Event::builtin(
        "jobs.dead",
        "job",
        job.id.clone(),
        "system",
        Some("jobs"),
        &serde_json::json!({
            "id": job.id,
            "queue": job.queue,
            "kind": job.kind,
            "attempts": job.attempts,
            "error": job.last_error,
        }),
    );
    // One event per death, however often the copy of it is repeated.
    event.id = format!(
        "evt_dead_{}_{}",
        job.id.replace('-', ""),
        job.finished_ms.unwrap_or(job.created_ms)
    );
    event
}

/// A page of dead jobs, newest first.
pub struct Page {
    pub jobs: Vec<DeadJob>,
    pub next_cursor: Option<String>,
}

/// Lists dead jobs of `queue` (all queues when `None`), newest first.
pub async fn list(
    db: &PgPool,
    queue: Option<&str>,
    limit: usize,
    cursor: Option<&str>,
) -> anyhow::Result<Result<Page, BadCursor>> {
    let after = match cursor.map(cursor::decode).transpose() {
        Ok(after) => after,
        Err(bad) => return Ok(Err(bad)),
    };
    let (died_at, id) = after.map(|a| (a.at, a.id)).unzip();
    let mut jobs: Vec<DeadJob> = sqlx::query_as(
        "SELECT id, queue, kind, payload, attempts, max_attempts, timeout_ms, last_error,
                errors, created_at, died_at
         FROM dead_jobs
         WHERE ($1::text IS NULL OR queue = $1)
           AND ($2::timestamptz IS NULL OR (died_at, id) < ($2, $3))
         ORDER BY died_at DESC, id DESC
         LIMIT $4",
    )
    .bind(queue)
    .bind(died_at)
    .bind(id)
    .bind(limit as i64 + 1)
    .fetch_all(db)
    .await
    .context("failed to list dead jobs")?;
    let next_cursor = cursor::next_page(&mut jobs, limit, |job| (job.died_at, job.id));
    Ok(Ok(Page { jobs, next_cursor }))
}

/// One dead job.
pub async fn get(db: &PgPool, id: uuid::Uuid) -> anyhow::Result<Option<DeadJob>> {
    sqlx::query_as(
        "SELECT id, queue, kind, payload, attempts, max_attempts, timeout_ms, last_error,
                errors, created_at, died_at
         FROM dead_jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
    .context("failed to read a dead job")
}

/// Queues a dead job again, with fresh attempts and its error history, under its own id.
/// `None` when there is no such dead job.
pub async fn retry(
    db: &PgPool,
    queues: &Queues,
    id: uuid::Uuid,
    now_ms: i64,
) -> anyhow::Result<Option<DeadJob>> {
    // A job that died moments ago may still be in Redis's outbox.
    move_outbox(db, queues).await?;
    revive(db, queues, id, now_ms).await
}

/// [`retry`] once the outbox is moved. The row is deleted in the same transaction that
/// found it, after Redis has the job, so a failure on either side leaves it dead and
/// retryable.
async fn revive(
    db: &PgPool,
    queues: &Queues,
    id: uuid::Uuid,
    now_ms: i64,
) -> anyhow::Result<Option<DeadJob>> {
    let mut tx = db.begin().await.context("failed to start a transaction")?;
    let job: Option<DeadJob> = sqlx::query_as(
        "DELETE FROM dead_jobs WHERE id = $1
         RETURNING id, queue, kind, payload, attempts, max_attempts, timeout_ms, last_error,
                   errors, created_at, died_at",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .context("failed to take a dead job")?;
    let Some(job) = job else {
        return Ok(None);
    };
    queues.revive(&record(&job), now_ms).await?;
    tx.commit().await.context("failed to commit the retry")?;
    Ok(Some(job))
}

/// Retries every dead job of `queue` (all queues when `None`) that was dead when the call
/// began, each once. Returns how many.
///
/// A job revived here can die again while the call goes on (a target still down fails in
/// milliseconds). It stays dead: taking it again would revive it without end, and the
/// caller would never get an answer. So the call walks the rows in `(died_at, id)` order
/// up to the last death it saw at the start, and skips an id it already revived.
pub async fn retry_all(
    db: &PgPool,
    queues: &Queues,
    queue: Option<&str>,
    now_ms: i64,
) -> anyhow::Result<usize> {
    move_outbox(db, queues).await?;
    let last_death: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT max(died_at) FROM dead_jobs WHERE ($1::text IS NULL OR queue = $1)",
    )
    .bind(queue)
    .fetch_one(db)
    .await
    .context("failed to read the last death")?;
    let Some(last_death) = last_death else {
        return Ok(0);
    };
    let mut revived = HashSet::new();
    let mut after: Option<(DateTime<Utc>, uuid::Uuid)> = None;
    loop {
        let (at, id) = after.unzip();
        let page: Vec<(DateTime<Utc>, uuid::Uuid)> = sqlx::query_as(
            "SELECT died_at, id FROM dead_jobs
             WHERE ($1::text IS NULL OR queue = $1) AND died_at <= $2
               AND ($3::timestamptz IS NULL OR (died_at, id) > ($3, $4))
             ORDER BY died_at, id LIMIT 500",
        )
        .bind(queue)
        .bind(last_death)
        .bind(at)
        .bind(id)
        .fetch_all(db)
        .await
        .context("failed to list dead jobs")?;
        let Some(&last) = page.last() else {
            return Ok(revived.len());
        };
        for (_, id) in page {
            if !revived.contains(&id) && revive(db, queues, id, now_ms).await?.is_some() {
                revived.insert(id);
            }
        }
        after = Some(last);
    }
}

/// Deletes a dead job for good. False when there was none.
pub async fn delete(db: &PgPool, queues: &Queues, id: uuid::Uuid) -> anyhow::Result<bool> {
    move_outbox(db, queues).await?;
    let deleted = sqlx::query("DELETE FROM dead_jobs WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .context("failed to delete a dead job")?
        .rows_affected();
    Ok(deleted == 1)
}

/// Deletes every dead job of `queue` that died before `died_before` (all of them when
/// `None`), for good. Returns how many.
pub async fn delete_all(
    db: &PgPool,
    queues: &Queues,
    queue: &str,
    died_before: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<u64> {
    move_outbox(db, queues).await?;
    let deleted = sqlx::query(
        "DELETE FROM dead_jobs WHERE queue = $1 AND ($2::timestamptz IS NULL OR died_at < $2)",
    )
    .bind(queue)
    .bind(died_before)
    .execute(db)
    .await
    .context("failed to delete dead jobs")?
    .rows_affected();
    Ok(deleted)
}

/// Dead jobs per queue.
pub async fn counts(db: &PgPool) -> anyhow::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT queue, count(*) FROM dead_jobs GROUP BY queue")
        .fetch_all(db)
        .await
        .context("failed to count dead jobs")
}

/// The Redis shape of a dead row, for reviving it.
fn record(job: &DeadJob) -> JobRecord {
    JobRecord {
        id: job.id.to_string(),
        queue: job.queue.clone(),
        kind: job.kind.clone(),
        payload: job.payload.get().to_owned(),
        state: "dead".into(),
        attempts: 0,
        max_attempts: job.max_attempts.max(1) as u32,
        timeout_ms: job.timeout_ms.max(1) as u64,
        last_error: Some(job.last_error.clone()),
        errors: serde_json::from_value::<Vec<AttemptError>>(job.errors.clone()).unwrap_or_default(),
        created_ms: job.created_at.timestamp_millis(),
        run_at_ms: 0,
        started_ms: None,
        finished_ms: None,
    }
}
