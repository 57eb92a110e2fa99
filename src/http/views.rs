//! How the API shows a job, wherever it is (Redis while it lives, Postgres once dead):
//! the view the jobs and queues routes share.

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::jobs::dead::DeadJob;
use crate::queue::{AttemptError, JobRecord};

/// A job and its progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    pub queue: String,
    pub kind: String,
    /// `scheduled`, `queued`, `running`, `retrying`, `succeeded`, `dead` or `cancelled`;
    /// `expired` only when a repeated idempotency key names a job whose record is past
    /// `jobs.retention_seconds`.
    pub state: String,
    /// As it was enqueued, passed through without re-encoding.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    /// Attempts started so far.
    pub attempts: u32,
    pub max_attempts: u32,
    pub timeout_ms: u64,
    pub last_error: Option<String>,
    /// Every failed attempt's error.
    pub errors: Vec<AttemptView>,
    pub created_at: Option<DateTime<Utc>>,
    /// When the job may (next) start.
    pub run_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// On enqueue: false when an idempotency key returned an earlier job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub attempt: u32,
    pub error: String,
    pub at: Option<DateTime<Utc>>,
}

impl JobView {
    /// What is known of a job whose record expired: what the repeated request asked for.
    pub(super) fn expired(id: String, job: crate::queue::NewJob) -> Self {
        Self {
            id,
            queue: job.queue,
            kind: job.kind,
            state: "expired".into(),
            payload: null(),
            attempts: 0,
            max_attempts: job.max_attempts,
            timeout_ms: job.timeout.as_millis() as u64,
            last_error: None,
            errors: Vec::new(),
            created_at: None,
            run_at: None,
            started_at: None,
            finished_at: None,
            created: None,
        }
    }
}

impl JobView {
    /// A job the enqueue just created, from what was enqueued: the record holds exactly
    /// this, so the answer needs no read back.
    pub(super) fn created(id: String, job: crate::queue::NewJob, now_ms: i64) -> Self {
        let run_at_ms = job.due_ms(now_ms);
        Self {
            id,
            queue: job.queue,
            kind: job.kind,
            state: if run_at_ms > now_ms {
                "scheduled"
            } else {
                "queued"
            }
            .into(),
            payload: job.payload,
            attempts: 0,
            max_attempts: job.max_attempts,
            timeout_ms: job.timeout.as_millis() as u64,
            last_error: None,
            errors: Vec::new(),
            created_at: time(now_ms),
            run_at: time(run_at_ms),
            started_at: None,
            finished_at: None,
            created: Some(true),
        }
    }
}

/// JSON `null`, for a payload that is not known.
fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).unwrap_or_default()
}

fn time(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

impl From<JobRecord> for JobView {
    fn from(job: JobRecord) -> Self {
        Self {
            payload: RawValue::from_string(job.payload).unwrap_or_else(|_| null()),
            errors: job.errors.into_iter().map(AttemptView::from).collect(),
            created_at: time(job.created_ms),
            run_at: time(job.run_at_ms),
            started_at: job.started_ms.and_then(time),
            finished_at: job.finished_ms.and_then(time),
            id: job.id,
            queue: job.queue,
            kind: job.kind,
            state: job.state,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            timeout_ms: job.timeout_ms,
            last_error: job.last_error,
            created: None,
        }
    }
}

impl From<AttemptError> for AttemptView {
    fn from(e: AttemptError) -> Self {
        Self {
            attempt: e.attempt,
            error: e.error,
            at: time(e.at_ms),
        }
    }
}

impl From<DeadJob> for JobView {
    fn from(job: DeadJob) -> Self {
        let errors: Vec<AttemptError> = serde_json::from_value(job.errors).unwrap_or_default();
        Self {
            id: job.id.to_string(),
            queue: job.queue,
            kind: job.kind,
            state: "dead".into(),
            payload: job.payload,
            attempts: job.attempts.max(0) as u32,
            max_attempts: job.max_attempts.max(0) as u32,
            timeout_ms: job.timeout_ms.max(0) as u64,
            last_error: Some(job.last_error),
            errors: errors.into_iter().map(AttemptView::from).collect(),
            created_at: Some(job.created_at),
            run_at: None,
            started_at: None,
            finished_at: Some(job.died_at),
            created: None,
        }
    }
}
