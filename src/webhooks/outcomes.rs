//! Writing what each attempt did: the attempt row, the delivery's new state and the
//! endpoint's health, for many attempts at once. Attempts finishing together hand their
//! outcome to one writer task, which writes whatever has gathered in one transaction of
//! two statements and answers each once it commits; at thousands of deliveries a second
//! that is two statements a batch instead of a few per delivery. The writer then disables
//! the endpoints whose failures crossed `webhooks.disable_after_days` or
//! `webhooks.disable_after_failures`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::{mpsc, oneshot};

use super::endpoints;
use crate::config::WebhooksSettings;

/// The most outcomes one transaction writes.
const MAX_BATCH: usize = 1000;

/// Response headers kept in the log.
pub const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "retry-after",
    "location",
    "server",
    "date",
    "x-request-id",
];

/// The most of a response body kept in the log.
pub const KEPT_BODY_BYTES: usize = 4096;

/// Where the delivery stands after this attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Succeeded,
    /// Another attempt comes at this time.
    RetryAt(DateTime<Utc>),
    /// No attempt comes: out of attempts, or trying again cannot help.
    Failed,
}

/// One finished attempt.
#[derive(Debug)]
pub struct Outcome {
    pub delivery: uuid::Uuid,
    pub endpoint: uuid::Uuid,
    pub attempt: u32,
    pub trigger: String,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration: Duration,
    pub headers: serde_json::Value,
    pub body: String,
    pub next: Next,
    pub at: DateTime<Utc>,
}

type Pending = (Outcome, oneshot::Sender<Result<(), String>>);

/// Hands outcomes to the writer task.
#[derive(Clone)]
pub struct Recorder {
    inbox: mpsc::Sender<Pending>,
}

impl Recorder {
    /// Starts the writer on a thread of its own, with its own connection to `db`'s
    /// database; it ends when the last recorder is dropped.
    ///
    /// Every attempt waits on the writer, so the writer must not wait on the attempts: on
    /// the runtime that runs them, each of its round trips would queue behind every
    /// delivery ready to run (at hundreds in flight, tens of milliseconds a round trip,
    /// and the deliveries waiting on it in turn). On its own thread the operating system
    /// shares the cores between them instead.
    pub fn new(db: &PgPool, settings: &WebhooksSettings) -> Self {
        let (inbox, outcomes) = mpsc::channel(MAX_BATCH * 4);
        let options = db.connect_options().as_ref().clone();
        let settings = settings.clone();
        let started = std::thread::Builder::new()
            .name("delivery-log".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        tracing::error!(%error, "the delivery log writer could not start");
                        return;
                    }
                };
                runtime.block_on(async move {
                    // Made here, so that its connections belong to this thread's runtime.
                    let db = PgPoolOptions::new()
                        .max_connections(2)
                        .connect_lazy_with(options);
                    write_batches(db, settings, outcomes).await;
                });
            });
        if let Err(error) = started {
            tracing::error!(%error, "the delivery log writer could not start");
        }
        Self { inbox }
    }

    /// Records one outcome; answers once it is committed.
    pub async fn record(&self, outcome: Outcome) -> anyhow::Result<()> {
        let (done, written) = oneshot::channel();
        self.inbox
            .send((outcome, done))
            .await
            .map_err(|_| anyhow::anyhow!("the delivery log writer has stopped"))?;
        match written.await {
            Ok(result) => {
                result.map_err(|e| anyhow::anyhow!("failed to write the delivery log: {e}"))
            }
            Err(_) => Err(anyhow::anyhow!(
                "the delivery log writer stopped before answering"
            )),
        }
    }
}

/// Writes batches one after another: the outcomes that finish while one batch commits
/// make the next. One writer makes the batches as large as the load makes them, and
/// per-statement costs (on both sides) are paid once per batch instead of once per
/// handful; measured against four concurrent writers it halved the Postgres time per
/// delivery.
async fn write_batches(db: PgPool, settings: WebhooksSettings, mut inbox: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if inbox.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let (outcomes, answers): (Vec<Outcome>, Vec<_>) = batch.drain(..).unzip();
        let written = write(&db, &outcomes).await.map_err(|e| format!("{e:#}"));
        if let Err(error) = &written {
            tracing::warn!(
                error,
                outcomes = outcomes.len(),
                "writing the delivery log failed"
            );
        }
        for answer in answers {
            let _ = answer.send(written.clone());
        }
        if written.is_ok()
            && let Err(error) = disable_failing(&db, &settings, &outcomes).await
        {
            tracing::warn!(
                error = format!("{error:#}"),
                "checking failing endpoints failed"
            );
        }
    }
}

async fn write(db: &PgPool, outcomes: &[Outcome]) -> anyhow::Result<()> {
    let mut tx = db.begin().await.context("failed to start a transaction")?;
    let ids: Vec<uuid::Uuid> = outcomes.iter().map(|_| uuid::Uuid::now_v7()).collect();
    let deliveries: Vec<uuid::Uuid> = outcomes.iter().map(|o| o.delivery).collect();
    let attempts: Vec<i32> = outcomes.iter().map(|o| o.attempt as i32).collect();
    let triggers: Vec<&str> = outcomes.iter().map(|o| o.trigger.as_str()).collect();
    let statuses: Vec<Option<i32>> = outcomes.iter().map(|o| o.status.map(i32::from)).collect();
    let errors: Vec<Option<&str>> = outcomes.iter().map(|o| o.error.as_deref()).collect();
    let durations: Vec<i32> = outcomes
        .iter()
        .map(|o| o.duration.as_millis().min(i32::MAX as u128) as i32)
        .collect();
    let headers: Vec<&serde_json::Value> = outcomes.iter().map(|o| &o.headers).collect();
    let bodies: Vec<&str> = outcomes.iter().map(|o| o.body.as_str()).collect();
    let times: Vec<DateTime<Utc>> = outcomes.iter().map(|o| o.at).collect();
    // Each endpoint's health from its latest outcome in the batch: a success clears the
    // failure record, a failure starts it, and a delivery out of attempts counts one more.
    let mut latest: HashMap<uuid::Uuid, (Next, DateTime<Utc>, i32)> = HashMap::new();
    for outcome in outcomes {
        let entry = latest
            .entry(outcome.endpoint)
            .or_insert((outcome.next, outcome.at, 0));
        entry.0 = outcome.next;
        match outcome.next {
            Next::Succeeded => entry.2 = 0,
            Next::Failed => entry.2 += 1,
            Next::RetryAt(_) => {}
        }
    }
    let mut endpoint_ids = Vec::with_capacity(latest.len());
    let mut healthy = Vec::with_capacity(latest.len());
    let mut since = Vec::with_capacity(latest.len());
    let mut failed = Vec::with_capacity(latest.len());
    for (id, (next, at, n)) in latest {
        endpoint_ids.push(id);
        healthy.push(next == Next::Succeeded);
        since.push(at);
        failed.push(n);
    }
    // The endpoints first, then the deliveries: the order in which deleting an endpoint
    // locks them, so that the two cannot wait on each other. Concurrent writers lock the
    // endpoint rows they change in one order (the ordered `FOR NO KEY UPDATE` below) for
    // the same reason. A batch of healthy endpoints with nothing to clear locks and
    // writes none.
    sqlx::query(
        "WITH u AS (
             SELECT * FROM UNNEST($1::uuid[], $2::bool[], $3::timestamptz[], $4::int[])
                 AS u(id, healthy, at, n)),
         locked AS (
             SELECT e.id FROM webhook_endpoints e JOIN u ON u.id = e.id
             WHERE NOT u.healthy OR e.failing_since IS NOT NULL OR e.consecutive_failures > 0
             ORDER BY e.id
             FOR NO KEY UPDATE OF e)
         UPDATE webhook_endpoints w
         SET failing_since = CASE WHEN u.healthy THEN NULL
                                  ELSE COALESCE(w.failing_since, u.at) END,
             consecutive_failures = CASE WHEN u.healthy THEN 0
                                         ELSE w.consecutive_failures + u.n END
         FROM u JOIN locked ON locked.id = u.id
         WHERE w.id = u.id",
    )
    .bind(&endpoint_ids)
    .bind(&healthy)
    .bind(&since)
    .bind(&failed)
    .execute(&mut *tx)
    .await
    .context("failed to record endpoint health")?;
    let states: Vec<&str> = outcomes
        .iter()
        .map(|o| match o.next {
            Next::Succeeded => "succeeded",
            Next::RetryAt(_) => "pending",
            Next::Failed => "failed",
        })
        .collect();
    let next_at: Vec<Option<DateTime<Utc>>> = outcomes
        .iter()
        .map(|o| match o.next {
            Next::RetryAt(at) => Some(at),
            _ => None,
        })
        .collect();
    // The delivery first, and the attempt only for a delivery updated: one whose endpoint
    // was deleted meanwhile is gone, and its attempt with it. Attempts of one delivery
    // never finish in the same batch (one job runs at a time), so each row is updated at
    // most once here.
    sqlx::query(
        "WITH updated AS (
             UPDATE webhook_deliveries w
             SET status = u.state, attempts = w.attempts + 1, last_status = u.s,
                 last_error = u.e, next_attempt_at = u.next, updated_at = u.at
             FROM UNNEST($2::uuid[], $11::text[], $5::int[], $6::text[], $12::timestamptz[],
                         $10::timestamptz[]) AS u(d, state, s, e, next, at)
             WHERE w.id = u.d
             RETURNING w.id)
         INSERT INTO webhook_attempts (id, delivery_id, attempt, trigger, status, error,
             duration_ms, response_headers, response_body, created_at)
         SELECT a.* FROM UNNEST($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::int[],
                                $6::text[], $7::int[], $8::jsonb[], $9::text[],
                                $10::timestamptz[]) AS a(id, d, n, t, s, e, ms, h, b, at)
         WHERE a.d IN (SELECT id FROM updated)",
    )
    .bind(&ids)
    .bind(&deliveries)
    .bind(&attempts)
    .bind(&triggers)
    .bind(&statuses)
    .bind(&errors)
    .bind(&durations)
    .bind(&headers)
    .bind(&bodies)
    .bind(&times)
    .bind(&states)
    .bind(&next_at)
    .execute(&mut *tx)
    .await
    .context("failed to write delivery attempts")?;
    tx.commit()
        .await
        .context("failed to commit the delivery log")?;
    Ok(())
}

/// Disables the endpoints of this batch whose failures crossed either limit.
async fn disable_failing(
    db: &PgPool,
    settings: &WebhooksSettings,
    outcomes: &[Outcome],
) -> anyhow::Result<()> {
    let touched: Vec<uuid::Uuid> = outcomes
        .iter()
        .filter(|o| o.next != Next::Succeeded)
        .map(|o| o.endpoint)
        .collect();
    if touched.is_empty() {
        return Ok(());
    }
    let crossed: Vec<(uuid::Uuid, i32, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT id, consecutive_failures, failing_since FROM webhook_endpoints
         WHERE id = ANY($1) AND enabled
           AND (consecutive_failures >= $2
                OR failing_since < now() - make_interval(days => $3))",
    )
    .bind(&touched)
    .bind(settings.disable_after_failures as i32)
    .bind(settings.disable_after_days as i32)
    .fetch_all(db)
    .await
    .context("failed to find failing endpoints")?;
    for (id, failures, since) in crossed {
        let detail = match since {
            Some(since) if failures < settings.disable_after_failures as i32 => {
                format!("every attempt has failed since {}", since.to_rfc3339())
            }
            _ => format!("{failures} deliveries in a row ran out of attempts"),
        };
        endpoints::disable(db, id, "failing", &detail).await?;
    }
    Ok(())
}
