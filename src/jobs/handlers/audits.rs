//! `audits`: writes audit events to the `audit_logs` table. Jobs running at the same time
//! are written together: each hands its row to one writer task, which inserts whatever has
//! gathered in a single statement and then answers every job. A job succeeds only once its
//! row is committed, and the row's id is the job's, so a job delivered twice writes once.

use std::net::IpAddr;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::invalid::Invalid;
use crate::jobs::{Job, JobContext, JobError};

/// The most rows one statement inserts.
const MAX_BATCH: usize = 500;

pub struct Audits {
    rows: mpsc::Sender<Pending>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// Who acted: a user id, an API key name, `system`.
    #[serde(default)]
    pub actor: Option<String>,
    /// What happened, e.g. `files.created`.
    pub action: String,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub resource_id: Option<String>,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    #[serde(default)]
    pub ip: Option<IpAddr>,
    #[serde(default)]
    pub user_agent: Option<String>,
    /// When it happened; when the job runs if absent.
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
}

struct Row {
    id: uuid::Uuid,
    event: AuditEvent,
}

type Pending = (Row, oneshot::Sender<Result<(), String>>);

impl Audits {
    /// Starts the writer task; it ends when the handler is dropped.
    pub fn new(db: PgPool) -> Self {
        let (rows, inbox) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(write_batches(db, inbox));
        Self { rows }
    }
}

impl Job for Audits {
    const NAME: &'static str = "audits";
    const QUEUE: &'static str = "audits";
    type Payload = AuditEvent;

    fn validate(event: &AuditEvent) -> Result<(), Invalid> {
        let bounded = [
            ("payload.action", Some(&event.action), 128),
            ("payload.actor", event.actor.as_ref(), 256),
            ("payload.resource_type", event.resource_type.as_ref(), 128),
            ("payload.resource_id", event.resource_id.as_ref(), 256),
            ("payload.user_agent", event.user_agent.as_ref(), 1024),
        ];
        for (field, value, max) in bounded {
            if let Some(value) = value
                && value.chars().count() > max
            {
                return Err(Invalid::new(
                    field,
                    format!("must be at most {max} characters"),
                ));
            }
        }
        if event.action.trim().is_empty() {
            return Err(Invalid::new("payload.action", "must not be empty"));
        }
        if event.metadata.as_ref().is_some_and(|m| !m.is_object()) {
            return Err(Invalid::new("payload.metadata", "must be a JSON object"));
        }
        Ok(())
    }

    async fn run(&self, ctx: &JobContext, event: AuditEvent) -> Result<(), JobError> {
        let id = ctx
            .id
            .parse()
            .map_err(|_| JobError::Fatal(anyhow!("job id {} is not a UUID", ctx.id)))?;
        let (done, written) = oneshot::channel();
        self.rows
            .send((Row { id, event }, done))
            .await
            .map_err(|_| anyhow!("the audit writer has stopped"))?;
        match written.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(anyhow!("failed to write the audit row: {error}").into()),
            Err(_) => Err(anyhow!("the audit writer stopped before answering").into()),
        }
    }
}

/// Inserts rows as they gather, answering each job with the outcome of its statement.
async fn write_batches(db: PgPool, mut inbox: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while inbox.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (rows, answers): (Vec<Row>, Vec<_>) = batch.drain(..).unzip();
        let outcome = insert(&db, rows).await.map_err(|e| format!("{e:#}"));
        if let Err(error) = &outcome {
            tracing::warn!(
                error,
                rows = answers.len(),
                "audit batch failed; its jobs retry"
            );
        }
        for answer in answers {
            let _ = answer.send(outcome.clone());
        }
    }
}

async fn insert(db: &PgPool, rows: Vec<Row>) -> anyhow::Result<()> {
    let now = Utc::now();
    let mut ids = Vec::with_capacity(rows.len());
    let mut actors = Vec::with_capacity(rows.len());
    let mut actions = Vec::with_capacity(rows.len());
    let mut types = Vec::with_capacity(rows.len());
    let mut resource_ids = Vec::with_capacity(rows.len());
    let mut metadata = Vec::with_capacity(rows.len());
    let mut ips = Vec::with_capacity(rows.len());
    let mut agents = Vec::with_capacity(rows.len());
    let mut times = Vec::with_capacity(rows.len());
    for Row { id, event } in rows {
        ids.push(id);
        actors.push(event.actor);
        actions.push(event.action);
        types.push(event.resource_type);
        resource_ids.push(event.resource_id);
        metadata.push(event.metadata.unwrap_or_else(|| serde_json::json!({})));
        ips.push(event.ip.map(|ip| ip.to_string()));
        agents.push(event.user_agent);
        times.push(event.time.unwrap_or(now));
    }
    sqlx::query(
        "INSERT INTO audit_logs
             (id, actor, action, resource_type, resource_id, metadata, ip, user_agent, created_at)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::jsonb[], $7::text[], $8::text[], $9::timestamptz[])
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(ids)
    .bind(actors)
    .bind(actions)
    .bind(types)
    .bind(resource_ids)
    .bind(metadata)
    .bind(ips)
    .bind(agents)
    .bind(times)
    .execute(db)
    .await
    .context("failed to insert audit rows")?;
    Ok(())
}
