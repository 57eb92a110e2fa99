//! The delivery log: one row per (event, endpoint) pair and one per attempt, and the jobs
//! that carry deliveries to the worker. The relay makes the rows in the statement that
//! marks its events relayed, builds their jobs ([`first_round`]), enqueues them once it
//! has committed ([`enqueue`]) and stamps the events; a relay that dies in between
//! leaves events without the stamp, which [`stranded`] finds.
//! Replay and recover start a new generation of a delivery: a fresh job under a fresh
//! idempotency key, while the rows stay the same.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;

use super::{JOB_KIND, QUEUE};
use crate::config::Settings;
use crate::cursor::{self, BadCursor};
use crate::events::{Event, Stored, columns};
use crate::queue::{NewJob, Queues, now_ms};

/// A delivery as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Delivery {
    pub id: uuid::Uuid,
    pub endpoint_id: uuid::Uuid,
    pub event_id: String,
    pub event_type: String,
    /// `pending` (an attempt is due), `succeeded` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// The last answer's HTTP status; absent when none came.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// What started the current round: `scheduled`, `replay`, `recover` or `test`.
    pub trigger: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, endpoint_id, event_id, event_type, status, attempts, last_status, \
     last_error, next_attempt_at, trigger, created_at, updated_at";

/// One attempt as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Attempt {
    pub id: uuid::Uuid,
    pub attempt: i32,
    pub trigger: String,
    /// The HTTP status; absent when no answer came.
    pub status: Option<i32>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    pub duration_ms: i32,
    /// A subset of the response headers.
    #[schema(value_type = Object)]
    pub response_headers: serde_json::Value,
    /// The first 4 KiB of the response body.
    pub response_body: String,
    pub created_at: DateTime<Utc>,
}

/// What a delivery job carries: enough to send without reading the event again.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryJob {
    pub delivery: uuid::Uuid,
    pub endpoint: uuid::Uuid,
    pub generation: i32,
    pub trigger: String,
    pub event_id: String,
    pub event_type: String,
    /// The request body, as it is sent.
    pub body: Box<RawValue>,
}

impl DeliveryJob {
    /// The job for this delivery round; its idempotency key makes a repeated enqueue of
    /// the same round one job.
    pub fn to_job(&self, settings: &Settings) -> NewJob {
        NewJob {
            queue: QUEUE.to_owned(),
            kind: JOB_KIND.to_owned(),
            payload: serde_json::value::to_raw_value(self).unwrap_or_default(),
            run_at_ms: None,
            max_attempts: settings.webhooks.attempts(),
            // The call's own timeout, and time to record it.
            timeout: Duration::from_secs(settings.outbound.timeout_seconds + 15),
            idempotency_key: Some(format!("webhook:{}:{}", self.delivery, self.generation)),
            // Long enough to cover a relay that died before stamping its jobs enqueued
            // (the sweep re-enqueues within a minute); each key costs Redis memory, about
            // 100 bytes, so at thousands of deliveries a second the window stays short.
            idempotency_window: Some(Duration::from_secs(600)),
            // The delivery log is the record; a succeeded job's hash (about 1 KiB with its
            // event) need not stay in Redis for jobs.retention_seconds.
            retention: Some(Duration::from_secs(300)),
        }
    }
}

/// The first-round jobs of the deliveries the relay made for `event`, as
/// (delivery, endpoint) pairs; they share one copy of the request body.
pub fn first_round(
    event: &Event,
    made: impl Iterator<Item = (uuid::Uuid, uuid::Uuid)>,
) -> Vec<DeliveryJob> {
    let mut body = None;
    made.map(|(delivery, endpoint)| DeliveryJob {
        delivery,
        endpoint,
        generation: 0,
        trigger: "scheduled".into(),
        event_id: event.id.clone(),
        event_type: event.kind.clone(),
        body: body
            .get_or_insert_with(|| RawValue::from_string(event.body()).unwrap_or_default())
            .clone(),
    })
    .collect()
}

/// Enqueues delivery jobs; their idempotency keys keep a second enqueue of the same
/// round to one job.
pub async fn enqueue(
    queues: &Queues,
    settings: &Settings,
    jobs: &[DeliveryJob],
) -> anyhow::Result<()> {
    for chunk in jobs.chunks(1000) {
        let batch: Vec<NewJob> = chunk.iter().map(|j| j.to_job(settings)).collect();
        queues.enqueue_batch(&batch, now_ms()).await?;
    }
    Ok(())
}

/// Stamps events whose delivery jobs are all enqueued. The stamp only spares the sweep
/// work, so it is committed without waiting for the disk: one lost to a Postgres crash
/// makes the sweep enqueue those jobs again, which their idempotency keys make no-ops.
/// One statement, its own transaction: `set_config(.., true)` applies to that
/// transaction's commit and ends with it.
pub async fn stamp_enqueued(db: &PgPool, events: &[&str]) -> anyhow::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
         UPDATE events SET enqueued_at = now() FROM relaxed WHERE id = ANY($1)",
    )
    .bind(events)
    .execute(db)
    .await
    .context("failed to stamp events as enqueued")?;
    Ok(())
}

/// The jobs of `ids` rebuilt from their rows and events (a sweep, a replay, a recover).
/// A delivery whose event is no longer kept is left out.
pub async fn jobs_for(
    conn: &mut PgConnection,
    ids: &[uuid::Uuid],
) -> anyhow::Result<Vec<DeliveryJob>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        delivery: uuid::Uuid,
        endpoint: uuid::Uuid,
        generation: i32,
        trigger: String,
        #[sqlx(flatten)]
        event: Stored,
    }
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT d.id AS delivery, d.endpoint_id AS endpoint, d.generation, d.trigger, {}
         FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.id = ANY($1)",
        columns("e")
    )))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .context("failed to read deliveries to enqueue")?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let event = Event::from(row.event);
            DeliveryJob {
                delivery: row.delivery,
                endpoint: row.endpoint,
                generation: row.generation,
                trigger: row.trigger,
                body: RawValue::from_string(event.body()).unwrap_or_default(),
                event_id: event.id,
                event_type: event.kind,
            }
        })
        .collect())
}

/// Events relayed more than `older_than` ago whose delivery jobs were never stamped
/// enqueued (their relay died after its commit, or Redis failed it), claimed so that
/// concurrent sweeps take different ones, with the jobs of their deliveries that have not
/// run. The caller enqueues the jobs and stamps the events before committing `conn`'s
/// transaction.
pub async fn stranded(
    conn: &mut PgConnection,
    older_than: Duration,
    limit: usize,
) -> anyhow::Result<(Vec<String>, Vec<DeliveryJob>)> {
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM events
         WHERE enqueued_at IS NULL AND relayed_at < now() - make_interval(secs => $1)
         ORDER BY relayed_at LIMIT $2
         FOR UPDATE SKIP LOCKED",
    )
    .bind(older_than.as_secs_f64())
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await
    .context("failed to find stranded events")?;
    if events.is_empty() {
        return Ok((events, Vec::new()));
    }
    // The relay's own round: a delivery that has run an attempt had its job.
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM webhook_deliveries
         WHERE event_id = ANY($1) AND status = 'pending' AND generation = 0 AND attempts = 0",
    )
    .bind(&events)
    .fetch_all(&mut *conn)
    .await
    .context("failed to find stranded deliveries")?;
    let jobs = jobs_for(conn, &ids).await?;
    Ok((events, jobs))
}

/// Why a delivery cannot be sent again.
#[derive(Debug, thiserror::Error)]
pub enum Resend {
    #[error("no such delivery")]
    NotFound,
    #[error("the delivery is still pending; it is sent again by its own retries")]
    Pending,
    #[error("the delivery's event is no longer kept (events.retention_days)")]
    EventGone,
}

/// Starts a new round of one delivery (`trigger` `replay` or `test`), and enqueues it.
pub async fn resend(
    db: &PgPool,
    queues: &Queues,
    settings: &Settings,
    id: uuid::Uuid,
    endpoint: Option<uuid::Uuid>,
) -> anyhow::Result<Result<Delivery, Resend>> {
    let mut tx = db.begin().await.context("failed to start a transaction")?;
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM webhook_deliveries
         WHERE id = $1 AND ($2::uuid IS NULL OR endpoint_id = $2) FOR UPDATE",
    )
    .bind(id)
    .bind(endpoint)
    .fetch_optional(&mut *tx)
    .await
    .context("failed to read the delivery")?;
    match status.as_deref() {
        None => return Ok(Err(Resend::NotFound)),
        Some("pending") => return Ok(Err(Resend::Pending)),
        Some(_) => {}
    }
    let delivery: Delivery = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_deliveries
         SET status = 'pending', generation = generation + 1, trigger = 'replay',
             next_attempt_at = now(), updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .context("failed to start the replay")?;
    let jobs = jobs_for(&mut tx, &[id]).await?;
    if jobs.is_empty() {
        return Ok(Err(Resend::EventGone));
    }
    // Enqueued before the commit: a failure leaves the delivery as it was. An attempt
    // that finishes first waits on this transaction's lock to log its outcome.
    enqueue(queues, settings, &jobs).await?;
    tx.commit().await.context("failed to commit the replay")?;
    Ok(Ok(delivery))
}

/// Sends again every failed delivery of `endpoint` made since `since`; returns how many.
pub async fn recover(
    db: &PgPool,
    queues: &Queues,
    settings: &Settings,
    endpoint: uuid::Uuid,
    since: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let mut tx = db.begin().await.context("failed to start a transaction")?;
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE webhook_deliveries
         SET status = 'pending', generation = generation + 1, trigger = 'recover',
             next_attempt_at = now(), updated_at = now()
         WHERE endpoint_id = $1 AND status = 'failed' AND created_at >= $2
           AND EXISTS (SELECT 1 FROM events e WHERE e.id = event_id)
         RETURNING id",
    )
    .bind(endpoint)
    .bind(since)
    .fetch_all(&mut *tx)
    .await
    .context("failed to start the recovery")?;
    let jobs = jobs_for(&mut tx, &ids).await?;
    // Enqueued before the commit, as a replay is: a failure changes nothing.
    enqueue(queues, settings, &jobs).await?;
    tx.commit().await.context("failed to commit the recovery")?;
    Ok(ids.len())
}

/// Which deliveries a listing wants.
pub struct Filter {
    pub endpoint: Option<uuid::Uuid>,
    pub event: Option<String>,
    pub status: Option<String>,
    pub event_type: Option<String>,
}

/// A page of deliveries.
pub struct Page {
    pub deliveries: Vec<Delivery>,
    pub next_cursor: Option<String>,
}

/// Deliveries newest first.
pub async fn list(
    db: &PgPool,
    filter: &Filter,
    limit: usize,
    cursor: Option<&str>,
) -> anyhow::Result<Result<Page, BadCursor>> {
    let after = match cursor.map(cursor::decode).transpose() {
        Ok(after) => after,
        Err(bad) => return Ok(Err(bad)),
    };
    let (at, id) = after.map(|a| (a.at, a.id)).unzip();
    let mut deliveries: Vec<Delivery> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhook_deliveries
         WHERE ($1::uuid IS NULL OR endpoint_id = $1)
           AND ($2::text IS NULL OR event_id = $2)
           AND ($3::text IS NULL OR status = $3)
           AND ($4::text IS NULL OR event_type = $4)
           AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
         ORDER BY created_at DESC, id DESC
         LIMIT $7"
    )))
    .bind(filter.endpoint)
    .bind(&filter.event)
    .bind(&filter.status)
    .bind(&filter.event_type)
    .bind(at)
    .bind(id)
    .bind(limit as i64 + 1)
    .fetch_all(db)
    .await
    .context("failed to list deliveries")?;
    let next_cursor = cursor::next_page(&mut deliveries, limit, |d| (d.created_at, d.id));
    Ok(Ok(Page {
        deliveries,
        next_cursor,
    }))
}

/// One delivery of `endpoint`, with every attempt, oldest first.
pub async fn get(
    db: &PgPool,
    endpoint: uuid::Uuid,
    id: uuid::Uuid,
) -> anyhow::Result<Option<(Delivery, Vec<Attempt>)>> {
    let delivery: Option<Delivery> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2"
    )))
    .bind(id)
    .bind(endpoint)
    .fetch_optional(db)
    .await
    .context("failed to read the delivery")?;
    let Some(delivery) = delivery else {
        return Ok(None);
    };
    let attempts = sqlx::query_as(
        "SELECT id, attempt, trigger, status, error, duration_ms, response_headers,
                response_body, created_at
         FROM webhook_attempts WHERE delivery_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(db)
    .await
    .context("failed to read the delivery's attempts")?;
    Ok(Some((delivery, attempts)))
}

/// Sends a `webhook.test` event to one endpoint alone: the event is stored as already
/// relayed (so no other endpoint gets it) with one delivery, and its job is enqueued.
/// `None` when there is no such endpoint.
pub async fn send_test(
    db: &PgPool,
    queues: &Queues,
    settings: &Settings,
    endpoint: uuid::Uuid,
) -> anyhow::Result<Option<Delivery>> {
    let event = Event::builtin(
        "webhook.test",
        "webhook",
        endpoint.to_string(),
        "admin",
        None,
        &serde_json::json!({ "endpoint": endpoint, "message": "a test delivery from Switchyard" }),
    );
    let mut tx = db.begin().await.context("failed to start a transaction")?;
    // Held until the commit, so the endpoint is not deleted under its delivery.
    let found: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE id = $1 FOR KEY SHARE")
            .bind(endpoint)
            .fetch_optional(&mut *tx)
            .await
            .context("failed to read the webhook endpoint")?;
    if found.is_none() {
        return Ok(None);
    }
    crate::events::record(&mut tx, std::slice::from_ref(&event)).await?;
    // Relayed already, so no other endpoint gets it; its one job is stamped below.
    sqlx::query("UPDATE events SET relayed_at = now() WHERE id = $1")
        .bind(&event.id)
        .execute(&mut *tx)
        .await
        .context("failed to store the test event")?;
    let delivery: Delivery = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, trigger)
         VALUES ($1, $2, $3, $4, 'test') RETURNING {COLUMNS}"
    )))
    .bind(uuid::Uuid::now_v7())
    .bind(endpoint)
    .bind(&event.id)
    .bind(&event.kind)
    .fetch_one(&mut *tx)
    .await
    .context("failed to record the test delivery")?;
    tx.commit()
        .await
        .context("failed to commit the test delivery")?;
    let job = DeliveryJob {
        delivery: delivery.id,
        endpoint,
        generation: 0,
        trigger: "test".into(),
        event_id: event.id.clone(),
        event_type: event.kind.clone(),
        body: RawValue::from_string(event.body()).unwrap_or_default(),
    };
    // After the commit, so that the attempt finds its delivery row to log against; a
    // failure here leaves the event to the relays' sweep.
    enqueue(queues, settings, &[job]).await?;
    stamp_enqueued(db, &[event.id.as_str()]).await?;
    Ok(Some(delivery))
}
