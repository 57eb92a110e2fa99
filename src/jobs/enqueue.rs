//! An enqueue request as the API and the CLI receive it, checked field by field and turned
//! into a [`NewJob`]. Checks name the field at fault; built-in kinds also have their
//! payload checked here, so a bad `http` URL is refused at once rather than dying later.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::handlers;
use crate::config::{JobsSettings, valid_queue_name};
use crate::invalid::Invalid;
use crate::queue::NewJob;

/// The longest an enqueue may defer a job.
const MAX_DELAY_SECONDS: i64 = 365 * 86_400;

/// A job to enqueue.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    /// The handler to run: a built-in (`http`, `audits`, `deletes`, `mails`, `noop`) or
    /// one a Rust application registered.
    pub kind: String,
    /// The queue; the kind's own queue when absent (`default` for other kinds).
    #[serde(default)]
    pub queue: Option<String>,
    /// The handler's input; `{}` when absent. Kept as the text it came as, so that
    /// numbers beyond 64 bits come back exactly.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    /// Start no sooner than this many seconds from now.
    #[serde(default)]
    pub delay_seconds: Option<i64>,
    /// Start no sooner than this time (RFC 3339).
    #[serde(default)]
    pub run_at: Option<DateTime<Utc>>,
    /// Attempts before the job is dead; `jobs.max_attempts` when absent.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Run time per attempt; `jobs.timeout_seconds` when absent.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// A repeat with the same key within `jobs.idempotency_window_seconds` returns the
    /// first job instead of making another.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

fn empty_object() -> Box<RawValue> {
    payload(&serde_json::json!({}))
}

/// A payload built in the process (a schedule's, an event's), as its JSON text.
pub fn payload(value: &serde_json::Value) -> Box<RawValue> {
    // A Value always serializes; `null` is the unreachable fallback.
    serde_json::value::to_raw_value(value).unwrap_or_default()
}

impl EnqueueRequest {
    /// Checks every field and builds the job. `now_ms` anchors `delay_seconds`.
    pub fn into_job(self, settings: &JobsSettings, now_ms: i64) -> Result<NewJob, Invalid> {
        let kind = self.kind.trim();
        if kind.is_empty()
            || kind.len() > 128
            || !kind
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
        {
            return Err(Invalid::new(
                "kind",
                "must be 1-128 characters of letters, digits, '.', '_', '-' or ':'",
            ));
        }
        let builtin = handlers::find(kind);
        let queue = self
            .queue
            .clone()
            .unwrap_or_else(|| builtin.map_or("default", |b| b.queue).to_owned());
        if !valid_queue_name(&queue) {
            return Err(Invalid::new(
                "queue",
                "must be 1-64 characters of a-z, 0-9, '_' or '-'",
            ));
        }
        if !settings.queues.contains(&queue) {
            return Err(Invalid::new(
                "queue",
                format!(
                    "unknown queue {queue:?}; the declared queues (jobs.queues) are {}",
                    settings.queues.join(", ")
                ),
            ));
        }
        let size = self.payload.get().len();
        if size > settings.max_payload_bytes {
            return Err(Invalid::new(
                "payload",
                format!(
                    "is {size} bytes of JSON; the limit (jobs.max_payload_bytes) is {}",
                    settings.max_payload_bytes
                ),
            ));
        }
        if let Some(builtin) = builtin {
            (builtin.validate)(&self.payload)?;
        }
        let run_at_ms = match (self.delay_seconds, self.run_at) {
            (Some(_), Some(_)) => {
                return Err(Invalid::new(
                    "delay_seconds",
                    "give delay_seconds or run_at, not both",
                ));
            }
            (Some(delay), None) if delay < 0 => {
                return Err(Invalid::new("delay_seconds", "must not be negative"));
            }
            (Some(delay), None) if delay > MAX_DELAY_SECONDS => {
                return Err(Invalid::new("delay_seconds", "must be at most a year"));
            }
            (Some(delay), None) => Some(now_ms + delay * 1000),
            (None, Some(at)) if at.timestamp_millis() > now_ms + MAX_DELAY_SECONDS * 1000 => {
                return Err(Invalid::new("run_at", "must be within a year"));
            }
            (None, Some(at)) => Some(at.timestamp_millis()),
            (None, None) => None,
        };
        let max_attempts = self.max_attempts.unwrap_or(settings.max_attempts);
        if !(1..=1000).contains(&max_attempts) {
            return Err(Invalid::new("max_attempts", "must be between 1 and 1000"));
        }
        let timeout = self.timeout_seconds.unwrap_or(settings.timeout_seconds);
        if !(1..=86_400).contains(&timeout) {
            return Err(Invalid::new(
                "timeout_seconds",
                "must be between 1 and 86400",
            ));
        }
        if let Some(key) = &self.idempotency_key
            && (key.is_empty() || key.len() > 256)
        {
            return Err(Invalid::new("idempotency_key", "must be 1-256 characters"));
        }
        Ok(NewJob {
            queue,
            kind: kind.to_owned(),
            payload: self.payload,
            run_at_ms,
            max_attempts,
            timeout: Duration::from_secs(timeout),
            idempotency_key: self.idempotency_key,
            idempotency_window: None,
            retention: None,
        })
    }
}
