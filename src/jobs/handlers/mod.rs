//! The built-in job handlers, one per file, and the table the API uses to check their
//! payloads at enqueue time.

pub mod audits;
pub mod deletes;
pub mod http;
pub mod mails;
pub mod noop;
pub mod webhooks;

use anyhow::anyhow;

use super::{Job, JobError, Registry, Services};
use crate::config::Settings;
use crate::invalid::Invalid;
use crate::outbound::{self, Response};

impl Registry {
    /// Every built-in handler, each built with the clients and settings it uses.
    pub fn builtin(services: &Services, settings: &Settings) -> Self {
        Self::new()
            .register(http::Http::new(&settings.outbound))
            .register(audits::Audits::new(services.db.clone()))
            .register(deletes::Deletes::new(settings))
            .register(mails::Mails::new(&settings.mail))
            .register(noop::Noop)
            .register(webhooks::Webhooks::new(services.db.clone(), settings))
    }
}

/// A built-in kind: its default queue and its payload check.
pub struct Builtin {
    pub name: &'static str,
    pub queue: &'static str,
    pub validate: fn(&serde_json::value::RawValue) -> Result<(), Invalid>,
}

fn check<J: Job>(payload: &serde_json::value::RawValue) -> Result<(), Invalid> {
    let decoded: J::Payload = serde_json::from_str(payload.get())
        .map_err(|e| Invalid::new("payload", format!("not a valid {} payload: {e}", J::NAME)))?;
    J::validate(&decoded)
}

const fn builtin<J: Job>() -> Builtin {
    Builtin {
        name: J::NAME,
        queue: J::QUEUE,
        validate: check::<J>,
    }
}

/// The built-in kinds.
pub const BUILTIN: &[Builtin] = &[
    builtin::<http::Http>(),
    builtin::<audits::Audits>(),
    builtin::<deletes::Deletes>(),
    builtin::<mails::Mails>(),
    builtin::<noop::Noop>(),
    builtin::<webhooks::Webhooks>(),
];

/// The built-in kind named `kind`, if it is one.
pub fn find(kind: &str) -> Option<&'static Builtin> {
    BUILTIN.iter().find(|b| b.name == kind)
}

/// Makes an outbound call for a job and judges the answer. A refusal by the SSRF guard is
/// final; no answer at all retries.
async fn deliver(
    ctx: &super::JobContext,
    request: outbound::Request,
    who: &str,
) -> Result<(), JobError> {
    let response = ctx
        .services
        .outbound
        .send(request)
        .await
        .map_err(|error| match error {
            outbound::CallError::Refused(refused) => JobError::Fatal(anyhow!(refused)),
            other => JobError::Retry(anyhow!("{who} did not answer: {other}")),
        })?;
    judge(&response, who)
}

/// What an HTTP answer means for a job that made the call: a 2xx succeeds, 410 Gone is
/// final, 429 and 503 wait out `Retry-After` when given, and anything else retries.
fn judge(response: &Response, who: &str) -> Result<(), JobError> {
    let status = response.status;
    if (200..300).contains(&status) {
        return Ok(());
    }
    let snippet: String = String::from_utf8_lossy(&response.body)
        .chars()
        .take(200)
        .collect();
    let error = anyhow!("{who} answered {status}: {}", snippet.trim());
    let now_ms = chrono::Utc::now().timestamp_millis();
    match status {
        410 => Err(JobError::Fatal(anyhow!(
            "{error:#} (410 Gone: not retried)"
        ))),
        429 | 503 => match response
            .retry_after
            .as_deref()
            .and_then(|value| outbound::retry_after(value, now_ms))
        {
            Some(wait) => Err(JobError::RetryAfter(wait, error)),
            None => Err(JobError::Retry(error)),
        },
        _ => Err(JobError::Retry(error)),
    }
}
