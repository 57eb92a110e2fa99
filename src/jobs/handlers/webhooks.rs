//! `webhooks`: delivers one event to one endpoint, the Standard Webhooks way. The request
//! is a POST of the event with `webhook-id` (the event id, the same on every retry, for
//! the receiver to deduplicate), `webhook-timestamp` and `webhook-signature` (the current
//! secret's, and the previous one's during a rotation's overlap). A 2xx succeeds; 410
//! Gone disables the endpoint; anything else retries on `webhooks.retry_schedule`
//! (stretched to a longer `Retry-After`). Every attempt is written to the delivery log. An
//! endpoint's rate limit defers a delivery to a later second without using an attempt.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use chrono::Utc;

use crate::config::Settings;
use crate::jobs::{Job, JobContext, JobError};
use crate::outbound::{self, CallError};
use crate::sealed::Sealer;
use crate::webhooks::deliveries::DeliveryJob;
use crate::webhooks::endpoints::{self, Target};
use crate::webhooks::outcomes::{KEPT_BODY_BYTES, KEPT_HEADERS, Next, Outcome, Recorder};

/// How long an endpoint read from Postgres is used before it is read again: a change, a
/// rotation or a disable reaches deliveries within this.
const TARGET_TTL: Duration = Duration::from_secs(1);

pub struct Webhooks {
    sealer: Sealer,
    waits: Vec<Duration>,
    jitter: f64,
    recorder: Recorder,
    /// Endpoints by id, with when they were read; `None` for one that no longer exists.
    targets: Mutex<HashMap<uuid::Uuid, (Instant, Option<Target>)>>,
    /// `redis.key_prefix`, for the rate-limit counters.
    key_prefix: String,
}

impl Webhooks {
    pub fn new(db: sqlx::PgPool, settings: &Settings) -> Self {
        Self {
            sealer: Sealer::new(&settings.encryption),
            waits: settings.webhooks.retry_waits(),
            jitter: settings.webhooks.retry_jitter,
            recorder: Recorder::new(&db, &settings.webhooks),
            targets: Mutex::default(),
            key_prefix: settings.redis.key_prefix.clone(),
        }
    }

    async fn target(&self, ctx: &JobContext, id: uuid::Uuid) -> anyhow::Result<Option<Target>> {
        if let Ok(targets) = self.targets.lock()
            && let Some((read, target)) = targets.get(&id)
            && read.elapsed() < TARGET_TTL
        {
            return Ok(target.clone());
        }
        // Boxed: a cache miss is rare, and the query's future would otherwise make every
        // delivery's future (moved and freed once per delivery) several kilobytes larger.
        let target = Box::pin(endpoints::target(&ctx.services.db, &self.sealer, id)).await?;
        if let Ok(mut targets) = self.targets.lock() {
            targets.retain(|_, (read, _)| read.elapsed() < TARGET_TTL);
            targets.insert(id, (Instant::now(), target.clone()));
        }
        Ok(target)
    }

    /// How long to wait before sending to an endpoint over its rate limit, if it is: the
    /// deliveries of this second past the limit move to the seconds after it, spread so
    /// that each later second gets no more than the limit.
    async fn over_limit(
        &self,
        ctx: &JobContext,
        target: &Target,
    ) -> anyhow::Result<Option<Duration>> {
        let Some(limit) = target.rate_limit_per_second else {
            return Ok(None);
        };
        let now = Utc::now().timestamp_millis();
        let second = now.div_euclid(1000);
        let key = format!("{}webhooks:rate:{}:{second}", self.key_prefix, target.id);
        // Boxed: a pooled connection's checkout is kilobytes of future, and inline it would
        // make every delivery's future that much larger, rate-limited or not.
        let mut conn = Box::pin(ctx.services.redis.get()).await?;
        let (count,): (u64,) = deadpool_redis::redis::pipe()
            .atomic()
            .incr(&key, 1)
            .expire(&key, 5)
            .ignore()
            .query_async(&mut conn)
            .await?;
        if count <= u64::from(limit) {
            return Ok(None);
        }
        let later_seconds = (count - 1) / u64::from(limit);
        let start_of_turn = (second + later_seconds as i64) * 1000;
        Ok(Some(Duration::from_millis(
            (start_of_turn - now).max(1) as u64
        )))
    }

    /// What comes after a failed attempt, and the job's answer.
    fn after_failure(
        &self,
        ctx: &JobContext,
        retry_after: Option<Duration>,
        error: anyhow::Error,
    ) -> (Next, JobError) {
        if ctx.attempt >= ctx.max_attempts {
            return (Next::Failed, JobError::Fatal(error));
        }
        let scheduled = crate::webhooks::retry_wait(&self.waits, ctx.attempt, self.jitter, unit())
            .unwrap_or(Duration::from_secs(60));
        let wait = retry_after.map_or(scheduled, |r| r.max(scheduled));
        let at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        (Next::RetryAt(at), JobError::RetryAfter(wait, error))
    }
}

impl Job for Webhooks {
    const NAME: &'static str = crate::webhooks::JOB_KIND;
    const QUEUE: &'static str = crate::webhooks::QUEUE;
    type Payload = DeliveryJob;

    async fn run(&self, ctx: &JobContext, job: DeliveryJob) -> Result<(), JobError> {
        let Some(target) = self.target(ctx, job.endpoint).await? else {
            // The endpoint was deleted, and its deliveries with it.
            return Ok(());
        };
        let mut outcome = Outcome {
            delivery: job.delivery,
            endpoint: job.endpoint,
            attempt: ctx.attempt,
            trigger: job.trigger.clone(),
            status: None,
            error: None,
            duration: Duration::ZERO,
            headers: serde_json::json!({}),
            body: String::new(),
            next: Next::Failed,
            at: Utc::now(),
        };
        if !target.enabled {
            outcome.error =
                Some("the endpoint is disabled; recover its deliveries once it is enabled".into());
            self.log(outcome).await;
            return Ok(());
        }
        if let Some(wait) = self.over_limit(ctx, &target).await? {
            return Err(JobError::Defer(wait));
        }
        let body = job.body.get().as_bytes().to_vec();
        let timestamp = Utc::now().timestamp();
        let mut headers: Vec<(String, String)> = target
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        headers.push(("content-type".into(), "application/json".into()));
        headers.push(("webhook-id".into(), job.event_id.clone()));
        headers.push(("webhook-timestamp".into(), timestamp.to_string()));
        headers.push((
            "webhook-signature".into(),
            target.signature(&job.event_id, timestamp, &body),
        ));
        let request = outbound::Request {
            method: "POST".into(),
            url: target.url.clone(),
            headers,
            body: Some(body),
        };
        let began = Instant::now();
        let sent = ctx.services.outbound.deliver(request).await;
        outcome.duration = began.elapsed();
        outcome.at = Utc::now();
        let answer = match sent {
            Ok(response) => {
                let status = response.status;
                outcome.status = Some(status);
                outcome.headers = kept_headers(&response.headers);
                outcome.body = kept_body(&response.body);
                if (200..300).contains(&status) {
                    outcome.next = Next::Succeeded;
                    Ok(())
                } else if status == 410 {
                    let error = anyhow!("the endpoint answered 410 Gone; it is disabled");
                    outcome.error = Some(error.to_string());
                    let disabled = Box::pin(endpoints::disable(
                        &ctx.services.db,
                        target.id,
                        "gone",
                        "it answered 410 Gone",
                    ));
                    if let Err(e) = disabled.await {
                        tracing::warn!(endpoint = %target.id, error = format!("{e:#}"), "could not disable the endpoint");
                    }
                    Err(JobError::Fatal(error))
                } else {
                    let retry_after = response
                        .retry_after
                        .as_deref()
                        .filter(|_| matches!(status, 429 | 503))
                        .and_then(|v| outbound::retry_after(v, outcome.at.timestamp_millis()));
                    let error = anyhow!("the endpoint answered {status}");
                    outcome.error = Some(error.to_string());
                    let (next, answer) = self.after_failure(ctx, retry_after, error);
                    outcome.next = next;
                    Err(answer)
                }
            }
            Err(CallError::Refused(refused)) => {
                let error = anyhow!(refused);
                outcome.error = Some(error.to_string());
                Err(JobError::Fatal(error))
            }
            Err(other) => {
                let error = anyhow!("the endpoint did not answer: {other}");
                outcome.error = Some(error.to_string());
                let (next, answer) = self.after_failure(ctx, None, error);
                outcome.next = next;
                Err(answer)
            }
        };
        self.log(outcome).await;
        answer
    }
}

impl Webhooks {
    /// Writes the attempt to the delivery log. The call has been made either way, so a
    /// failure to log is reported, not retried (that would send the event again).
    async fn log(&self, outcome: Outcome) {
        let delivery = outcome.delivery;
        if let Err(error) = self.recorder.record(outcome).await {
            tracing::error!(%delivery, error = format!("{error:#}"), "could not log a webhook attempt");
        }
    }
}

/// The response headers the log keeps.
fn kept_headers(headers: &[(String, String)]) -> serde_json::Value {
    let kept: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .filter(|(name, _)| KEPT_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| {
            (
                name.clone(),
                value.chars().take(256).collect::<String>().into(),
            )
        })
        .collect();
    serde_json::Value::Object(kept)
}

/// The start of a response body the log keeps: at most 4 KiB, cut at a character.
fn kept_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(KEPT_BODY_BYTES)]);
    let mut text = text.into_owned();
    while text.len() > KEPT_BODY_BYTES {
        text.pop();
    }
    text.replace('\0', "")
}

/// A random number in `[0, 1)`.
fn unit() -> f64 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}
