//! Events: what an API action tells the rest of the system once it has happened
//! (`files.created`, `files.deleted`). [`emit`] is the one place an event fans out: into
//! the audit log, through the `audits` queue, and to realtime subscribers on the event's
//! channel (`files`). Webhook deliveries join here with their feature, so every event
//! reaches all three.

use crate::jobs::enqueue::EnqueueRequest;
use crate::queue::now_ms;
use crate::state::AppState;

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

/// Fans `event` out. The action has already happened, so a failure here is logged and
/// does not undo it or fail the request.
pub async fn emit(state: &AppState, event: Event) {
    record_audit(state, &event).await;
    publish_realtime(state, &event).await;
    // Webhook deliveries (one job per matching subscription) are added here with their
    // feature.
}

/// Publishes the event on its channel: the action is the realtime event's name, and
/// `{actor, resource_id, data}` its data.
async fn publish_realtime(state: &AppState, event: &Event) {
    let data = serde_json::json!({
        "actor": event.actor,
        "resource_id": event.resource_id,
        "data": event.data,
    });
    if let Err(error) = state
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
async fn record_audit(state: &AppState, event: &Event) {
    if !state.settings.jobs.queues.iter().any(|q| q == "audits") {
        return;
    }
    let request = EnqueueRequest {
        kind: "audits".into(),
        queue: None,
        payload: serde_json::json!({
            "actor": event.actor,
            "action": event.action,
            "resource_type": event.resource_type,
            "resource_id": event.resource_id,
            "metadata": event.data,
            "time": chrono::Utc::now(),
        }),
        delay_seconds: None,
        run_at: None,
        max_attempts: None,
        timeout_seconds: None,
        idempotency_key: Some(format!("event:{}:{}", event.action, event.resource_id)),
    };
    let now = now_ms();
    let outcome = match request.into_job(&state.settings.jobs, now) {
        Ok(job) => state.queues.enqueue(&job, now).await.map(|_| ()),
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
