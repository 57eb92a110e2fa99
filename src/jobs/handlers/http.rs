//! `http`: delivers a job as an HTTP call, the way other stacks get their background work
//! done by Switchyard. Every call carries Standard Webhooks signature headers, so the
//! receiver can check it came from here. A 2xx succeeds; 410 Gone stops retrying; 429 and
//! 503 wait out `Retry-After`; anything else, a timeout or a network error retries. The
//! SSRF guard in [`crate::outbound`] refuses internal addresses, and a refusal is final.

use std::collections::BTreeMap;

use anyhow::anyhow;
use serde::Deserialize;

use crate::config::OutboundSettings;
use crate::invalid::Invalid;
use crate::jobs::{Job, JobContext, JobError};
use crate::outbound::{self, SigningKey, UrlProblem, header_problem, url_problem};

/// Headers Switchyard sets itself; a job may not override them.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

pub struct Http {
    /// `None` when `outbound.signing_secret` is unset: attempts then fail and retry, so
    /// an operator who sets it in time loses no job.
    key: Option<SigningKey>,
}

impl Http {
    pub fn new(settings: &OutboundSettings) -> Self {
        let key = settings
            .signing_secret
            .as_ref()
            .and_then(|s| SigningKey::parse(s.expose()).ok());
        Self { key }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpPayload {
    pub url: url::Url,
    #[serde(default = "post")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Sent as JSON; no body when absent.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

fn post() -> String {
    "POST".to_owned()
}

impl Job for Http {
    const NAME: &'static str = "http";
    const QUEUE: &'static str = "http";
    type Payload = HttpPayload;

    fn validate(payload: &HttpPayload) -> Result<(), Invalid> {
        match url_problem(&payload.url) {
            Some(UrlProblem::NotHttp) => {
                return Err(Invalid::new(
                    "payload.url",
                    "must be an absolute http:// or https:// URL",
                ));
            }
            Some(UrlProblem::Credentials) => {
                return Err(Invalid::new(
                    "payload.url",
                    "must not carry credentials; send them in payload.headers",
                ));
            }
            None => {}
        }
        if !METHODS.contains(&payload.method.as_str()) {
            return Err(Invalid::new(
                "payload.method",
                format!("must be one of {}", METHODS.join(", ")),
            ));
        }
        for (name, value) in &payload.headers {
            if let Some(problem) = header_problem(name, value, RESERVED) {
                return Err(Invalid::new(format!("payload.headers.{name}"), problem));
            }
        }
        Ok(())
    }

    async fn run(&self, ctx: &JobContext, payload: HttpPayload) -> Result<(), JobError> {
        let key = self.key.as_ref().ok_or_else(|| {
            anyhow!("outbound.signing_secret (OUTBOUND_SIGNING_SECRET) is not set, so http jobs cannot be signed")
        })?;
        let body = match &payload.body {
            Some(value) => serde_json::to_vec(value).map_err(|e| JobError::Fatal(e.into()))?,
            None => Vec::new(),
        };
        let timestamp = chrono::Utc::now().timestamp();
        let mut headers: Vec<(String, String)> = payload.headers.into_iter().collect();
        if payload.body.is_some()
            && !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("content-type".into(), "application/json".into()));
        }
        headers.push(("webhook-id".into(), ctx.id.clone()));
        headers.push(("webhook-timestamp".into(), timestamp.to_string()));
        headers.push((
            "webhook-signature".into(),
            key.sign(&ctx.id, timestamp, &body),
        ));
        let request = outbound::Request {
            method: payload.method,
            url: payload.url,
            headers,
            body: payload.body.is_some().then_some(body),
        };
        super::deliver(ctx, request, "the target").await
    }
}
