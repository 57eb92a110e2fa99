//! Webhook endpoints in Postgres: what an application registers (a URL, the event types it
//! wants, headers to send, a rate limit) and the signing secret generated for it, sealed
//! at rest. The secret is shown once, when it is made; a rotation keeps the old one
//! signing beside the new for the overlap. Input is checked field by field here, each
//! problem naming its field.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::events::{Event, Pattern};
use crate::invalid::Invalid;
use crate::outbound::{SigningKey, UrlProblem, header_problem, url_problem};
use crate::sealed::Sealer;

/// Headers Switchyard sets on every delivery; an endpoint may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// An endpoint as the API shows it; never its secret.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Endpoint {
    pub id: uuid::Uuid,
    pub url: String,
    pub description: String,
    /// Patterns of the event types delivered: `user.signup`, `files.*`, `*`.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why it was disabled, when it was: `gone` (a 410), `failing` or `manual`.
    pub disabled_reason: Option<String>,
    /// Sent with every delivery.
    #[schema(value_type = BTreeMap<String, String>)]
    pub headers: sqlx::types::Json<BTreeMap<String, String>>,
    pub rate_limit_per_second: Option<i32>,
    /// When the current run of failed attempts began; absent while deliveries succeed.
    pub failing_since: Option<DateTime<Utc>>,
    /// Deliveries in a row that ran out of attempts.
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, url, description, event_types, enabled, disabled_reason, headers, \
     rate_limit_per_second, failing_since, consecutive_failures, created_at, updated_at";

/// The fields of a new endpoint, or of a change to one (`PATCH`: every field optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    /// An `https://` (or `http://`) URL; private addresses are refused unless allowed by
    /// `outbound.allow_hosts` or `outbound.allow_private`.
    pub url: Option<String>,
    /// At least one pattern: `user.signup`, `files.*` or `*`.
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
    /// At most this many deliveries a second; `null` removes the limit.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    #[schema(value_type = Option<u32>)]
    pub rate_limit_per_second: Option<Option<u32>>,
}

impl EndpointInput {
    /// Checks every field given. `creating` requires `url` and `event_types`.
    pub fn check(&self, creating: bool) -> Result<(), Invalid> {
        match &self.url {
            Some(url) => {
                check_url(url)?;
            }
            None if creating => return Err(Invalid::new("url", "is required")),
            None => {}
        }
        match &self.event_types {
            Some(types) => check_patterns(types)?,
            None if creating => return Err(Invalid::new("event_types", "is required")),
            None => {}
        }
        if let Some(description) = &self.description
            && description.chars().count() > 1024
        {
            return Err(Invalid::new(
                "description",
                "must be at most 1024 characters",
            ));
        }
        if let Some(headers) = &self.headers {
            check_headers(headers)?;
        }
        if let Some(Some(limit)) = self.rate_limit_per_second
            && !(1..=10_000).contains(&limit)
        {
            return Err(Invalid::new(
                "rate_limit_per_second",
                "must be between 1 and 10000, or null for no limit",
            ));
        }
        Ok(())
    }
}

/// The URL's shape; where it resolves is checked by the caller with the SSRF guard.
pub fn check_url(text: &str) -> Result<url::Url, Invalid> {
    let invalid = |message: &str| Invalid::new("url", message);
    if text.len() > 2048 {
        return Err(invalid("must be at most 2048 characters"));
    }
    let url =
        url::Url::parse(text).map_err(|e| Invalid::new("url", format!("is not a URL: {e}")))?;
    match url_problem(&url) {
        Some(UrlProblem::NotHttp) => {
            return Err(invalid("must be an absolute http:// or https:// URL"));
        }
        Some(UrlProblem::Credentials) => {
            return Err(invalid("must not carry credentials; send them in headers"));
        }
        None => {}
    }
    if url.fragment().is_some() {
        return Err(invalid("must not have a #fragment"));
    }
    Ok(url)
}

fn check_patterns(types: &[String]) -> Result<(), Invalid> {
    if types.is_empty() || types.len() > 100 {
        return Err(Invalid::new("event_types", "must name 1 to 100 patterns"));
    }
    for (i, pattern) in types.iter().enumerate() {
        Pattern::parse(pattern)
            .map_err(|problem| Invalid::new(format!("event_types[{i}]"), problem))?;
    }
    Ok(())
}

fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), Invalid> {
    if headers.len() > 20 {
        return Err(Invalid::new("headers", "must have at most 20 headers"));
    }
    for (name, value) in headers {
        let problem = if value.len() > 4096 {
            Some("is not a valid HTTP header")
        } else {
            header_problem(name, value, RESERVED_HEADERS)
        };
        if let Some(problem) = problem {
            return Err(Invalid::new(format!("headers.{name}"), problem));
        }
    }
    Ok(())
}

/// Where a secret is sealed for: its row and column, so it opens nowhere else.
fn context(id: uuid::Uuid, column: &str) -> String {
    format!("webhook_endpoints.{column}:{id}")
}

/// Creates an endpoint from checked input; returns it and its new secret, shown once.
pub async fn create(
    db: &PgPool,
    sealer: &Sealer,
    input: EndpointInput,
) -> anyhow::Result<(Endpoint, String)> {
    let id = uuid::Uuid::now_v7();
    let secret = SigningKey::generate()?;
    let sealed = sealer.seal(secret.as_bytes(), &context(id, "secret"))?;
    let headers = input.headers.unwrap_or_default();
    let endpoint = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_endpoints
             (id, url, description, event_types, enabled, headers, rate_limit_per_second, secret)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(input.url.unwrap_or_default())
    .bind(input.description.unwrap_or_default())
    .bind(input.event_types.unwrap_or_default())
    .bind(input.enabled.unwrap_or(true))
    .bind(sqlx::types::Json(headers))
    .bind(input.rate_limit_per_second.flatten().map(|n| n as i32))
    .bind(sealed)
    .fetch_one(db)
    .await
    .context("failed to create the webhook endpoint")?;
    Ok((endpoint, secret))
}

pub async fn get(db: &PgPool, id: uuid::Uuid) -> anyhow::Result<Option<Endpoint>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
    .context("failed to read the webhook endpoint")
}

/// Every endpoint, oldest first: a deployment has tens, not thousands.
pub async fn list(db: &PgPool) -> anyhow::Result<Vec<Endpoint>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhook_endpoints ORDER BY id LIMIT 1000"
    )))
    .fetch_all(db)
    .await
    .context("failed to list webhook endpoints")
}

/// Applies a checked change. Enabling an endpoint clears its failure record; disabling
/// one by hand records `manual`. `None` when there is no such endpoint.
pub async fn update(
    db: &PgPool,
    id: uuid::Uuid,
    input: EndpointInput,
) -> anyhow::Result<Option<Endpoint>> {
    let limit_given = input.rate_limit_per_second.is_some();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_endpoints SET
             url = COALESCE($2, url),
             description = COALESCE($3, description),
             event_types = COALESCE($4, event_types),
             enabled = COALESCE($5, enabled),
             disabled_reason = CASE WHEN $5 IS NULL THEN disabled_reason
                                    WHEN $5 THEN NULL ELSE 'manual' END,
             failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END,
             consecutive_failures = CASE WHEN $5 THEN 0 ELSE consecutive_failures END,
             headers = COALESCE($6, headers),
             rate_limit_per_second = CASE WHEN $7 THEN $8 ELSE rate_limit_per_second END,
             updated_at = now()
         WHERE id = $1
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(input.url)
    .bind(input.description)
    .bind(input.event_types)
    .bind(input.enabled)
    .bind(input.headers.map(sqlx::types::Json))
    .bind(limit_given)
    .bind(input.rate_limit_per_second.flatten().map(|n| n as i32))
    .fetch_optional(db)
    .await
    .context("failed to update the webhook endpoint")
}

/// Deletes an endpoint and its delivery log; false when there was none.
pub async fn delete(db: &PgPool, id: uuid::Uuid) -> anyhow::Result<bool> {
    let mut tx = db.begin().await.context("failed to start a transaction")?;
    // The row lock first: a relay pass fanning out to this endpoint holds it `FOR KEY
    // SHARE` until it commits, so its deliveries are in place before they are removed.
    let found: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .context("failed to lock the webhook endpoint")?;
    if found.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "WITH gone AS (DELETE FROM webhook_deliveries WHERE endpoint_id = $1 RETURNING id)
         DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM gone)",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .context("failed to delete the endpoint's delivery log")?;
    sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("failed to delete the webhook endpoint")?;
    tx.commit()
        .await
        .context("failed to commit the endpoint's deletion")?;
    Ok(true)
}

/// Makes a new secret; the old one keeps signing beside it for `overlap`. Returns the new
/// secret, shown once, or `None` when there is no such endpoint.
pub async fn rotate_secret(
    db: &PgPool,
    sealer: &Sealer,
    id: uuid::Uuid,
    overlap: std::time::Duration,
) -> anyhow::Result<Option<String>> {
    let mut tx = db.begin().await.context("failed to start a transaction")?;
    let current: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE id = $1 FOR NO KEY UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .context("failed to read the webhook endpoint")?;
    let Some(current) = current else {
        return Ok(None);
    };
    // The old secret moves to the other column, so it is sealed again for that place.
    let old = sealer.open(&current, &context(id, "secret"))?;
    let previous = sealer.seal(&old, &context(id, "previous_secret"))?;
    let secret = SigningKey::generate()?;
    let sealed = sealer.seal(secret.as_bytes(), &context(id, "secret"))?;
    let until = Utc::now() + chrono::Duration::from_std(overlap).unwrap_or_default();
    sqlx::query(
        "UPDATE webhook_endpoints
         SET secret = $2, previous_secret = $3, previous_secret_until = $4, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(sealed)
    .bind(previous)
    .bind(until)
    .execute(&mut *tx)
    .await
    .context("failed to store the new secret")?;
    tx.commit().await.context("failed to commit the rotation")?;
    Ok(Some(secret))
}

/// An endpoint as a delivery uses it: where to send, what to add, how to sign.
#[derive(Clone, Debug)]
pub struct Target {
    pub id: uuid::Uuid,
    pub url: url::Url,
    pub enabled: bool,
    pub headers: BTreeMap<String, String>,
    pub rate_limit_per_second: Option<u32>,
    pub key: SigningKey,
    /// The secret before a rotation, and until when it also signs.
    pub previous: Option<(SigningKey, DateTime<Utc>)>,
}

impl Target {
    /// The `webhook-signature` value: the current secret's signature, then the previous
    /// one's while the overlap lasts, space-separated as Standard Webhooks allows.
    pub fn signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut signature = self.key.sign(id, timestamp, body);
        if let Some((previous, until)) = &self.previous
            && Utc::now() < *until
        {
            signature.push(' ');
            signature.push_str(&previous.sign(id, timestamp, body));
        }
        signature
    }
}

/// Reads one endpoint with its secrets opened, for delivering.
pub async fn target(
    db: &PgPool,
    sealer: &Sealer,
    id: uuid::Uuid,
) -> anyhow::Result<Option<Target>> {
    type Row = (
        String,
        bool,
        sqlx::types::Json<BTreeMap<String, String>>,
        Option<i32>,
        Vec<u8>,
        Option<Vec<u8>>,
        Option<DateTime<Utc>>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT url, enabled, headers, rate_limit_per_second, secret, previous_secret,
                previous_secret_until
         FROM webhook_endpoints WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
    .context("failed to read the webhook endpoint")?;
    let Some((url, enabled, headers, limit, secret, previous, until)) = row else {
        return Ok(None);
    };
    let open = |sealed: &[u8], column: &str| -> anyhow::Result<SigningKey> {
        let plain = sealer.open(sealed, &context(id, column))?;
        let text = String::from_utf8(plain).context("the stored secret is not text")?;
        SigningKey::parse(&text).map_err(|problem| anyhow::anyhow!("the stored secret {problem}"))
    };
    let previous = match (previous, until) {
        (Some(sealed), Some(until)) if until > Utc::now() => {
            Some((open(&sealed, "previous_secret")?, until))
        }
        _ => None,
    };
    Ok(Some(Target {
        id,
        url: url::Url::parse(&url).context("the stored URL does not parse")?,
        enabled,
        headers: headers.0,
        rate_limit_per_second: limit.map(|n| n as u32),
        key: open(&secret, "secret")?,
        previous,
    }))
}

/// Disables an endpoint for `reason` and records `webhooks.disabled` with it, once: an
/// endpoint already disabled is left as it is. Returns whether it was disabled now.
pub async fn disable(
    db: &PgPool,
    id: uuid::Uuid,
    reason: &str,
    detail: &str,
) -> anyhow::Result<bool> {
    let mut tx = db.begin().await.context("failed to start a transaction")?;
    let url: Option<String> = sqlx::query_scalar(
        "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now()
         WHERE id = $1 AND enabled RETURNING url",
    )
    .bind(id)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await
    .context("failed to disable the webhook endpoint")?;
    let Some(url) = url else {
        return Ok(false);
    };
    // The URL without its query, which may carry a token of the receiver's.
    let url = url.split(['?', '#']).next().unwrap_or_default().to_owned();
    let event = Event::builtin(
        "webhooks.disabled",
        "webhook",
        id.to_string(),
        "system",
        Some("webhooks"),
        &serde_json::json!({ "id": id, "url": url, "reason": reason, "detail": detail }),
    );
    crate::events::record(&mut tx, &[event]).await?;
    tx.commit()
        .await
        .context("failed to commit disabling the endpoint")?;
    tracing::warn!(endpoint = %id, reason, detail, "webhook endpoint disabled");
    Ok(true)
}
