//! Events: what an API action tells the rest of the system once it has happened
//! (`files.created`, `files.deleted`). [`emit`] is the one place an event fans out: into
//! the audit log, through the `audits` queue, and to realtime subscribers on the event's
//! channel (`files`). Webhook deliveries join here with their feature, so every event
//! reaches all three; so do the Postgres outbox that makes an event survive a Redis
//! outage, and the relay that drains it.
//!
//! It takes the queues, the job settings and the realtime publisher it uses ([`Events`]);
//! it may import stores, clients and other domains, never the worker, a mode or HTTP.
//! The audit log is read back through [`audit`].

pub mod audit;

use crate::config::JobsSettings;
use crate::jobs::enqueue::EnqueueRequest;
use crate::queue::{Queues, now_ms};
use crate::realtime::history::History;

/// Something that happened to a resource.
#[derive(Clone, Debug)]
pub struct Event {
    /// `<resource>.<verb>`, e.g. `files.created`.
    pub action: &'static str,
    /// Who did it: `admin` for the admin token, `system` for the process itself.
    pub actor: String,
    pub resource_type: &'static str,
    pub resource_id: String,
    /// The realtime channel the event is published on, e.g. `files`.
    pub channel: String,
    /// What a subscriber needs to know without asking again.
    pub data: serde_json::Value,
}

/// Where events go: the audit log through the `audits` queue, and realtime.
#[derive(Clone)]
pub struct Events {
    queues: Queues,
    /// The job settings the audit job is checked against.
    jobs: JobsSettings,
    realtime: History,
}

impl Events {
    pub fn new(queues: Queues, jobs: &JobsSettings, realtime: History) -> Self {
        Self {
            queues,
            jobs: jobs.clone(),
            realtime,
        }
    }

    /// Fans `event` out. The action has already happened, so a failure here is logged and
    /// does not undo it or fail the request.
    pub async fn emit(&self, event: Event) {
        self.record_audit(&event).await;
        self.publish_realtime(&event).await;
        // Webhook deliveries (one job per matching subscription) are added here with
        // their feature.
    }

    /// Publishes the event on its channel: the action is the realtime event's name, and
    /// `{actor, resource_id, data}` its data.
    async fn publish_realtime(&self, event: &Event) {
        let data = serde_json::json!({
            "actor": event.actor,
            "resource_id": event.resource_id,
            "data": event.data,
        });
        if let Err(error) = self
            .realtime
            .publish(&event.channel, event.action, &data)
            .await
        {
            tracing::warn!(
                action = event.action,
                resource_id = event.resource_id,
                error = format!("{error:#}"),
                "failed to publish a realtime event"
            );
        }
    }

    /// Enqueues the event's audit-log row. The idempotency key makes a repeated emit of the
    /// same event one row.
    async fn record_audit(&self, event: &Event) {
        if !self.jobs.queues.iter().any(|q| q == "audits") {
            return;
        }
        let request = EnqueueRequest {
            kind: "audits".into(),
            queue: None,
            payload: crate::jobs::enqueue::payload(&serde_json::json!({
                "actor": event.actor,
                "action": event.action,
                "resource_type": event.resource_type,
                "resource_id": event.resource_id,
                "metadata": event.data,
                "time": chrono::Utc::now(),
            })),
            delay_seconds: None,
            run_at: None,
            max_attempts: None,
            timeout_seconds: None,
            idempotency_key: Some(format!("event:{}:{}", event.action, event.resource_id)),
        };
        let now = now_ms();
        let outcome = match request.into_job(&self.jobs, now) {
            Ok(job) => self.queues.enqueue(&job, now).await.map(|_| ()),
            Err(invalid) => Err(anyhow::anyhow!(invalid)),
        };
        if let Err(error) = outcome {
            tracing::warn!(
                action = event.action,
                resource_id = event.resource_id,
                error = format!("{error:#}"),
                "failed to record an audit event"
            );
        }
    }
}
