//! Events: what happened, recorded once and told to everyone who wants to know. An
//! [`Event`] (`{id, type, source, subject, time, data}`, CloudEvents' field names) is
//! written to the Postgres `events` outbox by [`record`]: a built-in event
//! (`files.created`, `jobs.dead`, ...) in the same transaction as the change it
//! describes, so a change that rolls back emits nothing, and an application's event from
//! `POST /api/v1/events`. The relay (`crate::relay`) then turns each into an audit row,
//! webhook deliveries and a realtime message; nothing here needs Redis, so an event
//! survives a Redis outage.
//!
//! Types are names such as `user.signup`; [`valid_type`] and [`Pattern`] say which names
//! and subscription patterns (`files.*`, `*`) are accepted. The audit log is read back
//! through [`audit`].

pub mod audit;
pub mod incoming;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::PgConnection;
use utoipa::ToSchema;

/// Namespaces Switchyard's own events use; an application's events may not.
pub const RESERVED_NAMESPACES: &[&str] = &[
    "files",
    "jobs",
    "schedules",
    "webhooks",
    "webhook",
    "databases",
    "keys",
];

/// The `source` of built-in events.
pub const SYSTEM_SOURCE: &str = "switchyard";

/// One event as stored and delivered.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Event {
    /// Unique: a second event with the same id is not stored.
    pub id: String,
    /// What happened, e.g. `files.created` or `user.signup`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Who sent it: `switchyard` for built-in events, the application's name otherwise.
    pub source: String,
    /// What it is about, e.g. a file's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub time: DateTime<Utc>,
    /// Kept and delivered as the JSON text it came as.
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    /// Who caused it, for the audit log: `admin`, `system` or the source.
    #[serde(skip)]
    pub actor: String,
    /// The realtime channel it is published on, if any.
    #[serde(skip)]
    pub channel: Option<String>,
    /// The audit log's resource type (`file`, `job`, ...), if any.
    #[serde(skip)]
    pub resource_type: Option<String>,
}

impl Event {
    /// A built-in event about one resource, published on `channel`.
    pub fn builtin(
        kind: &'static str,
        resource_type: &'static str,
        resource_id: impl Into<String>,
        actor: &str,
        channel: Option<&str>,
        data: &serde_json::Value,
    ) -> Self {
        Self {
            id: new_id(),
            kind: kind.to_owned(),
            source: SYSTEM_SOURCE.to_owned(),
            subject: Some(resource_id.into()),
            time: trunc(Utc::now()),
            data: serde_json::value::to_raw_value(data).unwrap_or_default(),
            actor: actor.to_owned(),
            channel: channel.map(str::to_owned),
            resource_type: Some(resource_type.to_owned()),
        }
    }

    /// The body a webhook delivery carries: the event with its `time` also as
    /// `timestamp`, the field name Standard Webhooks payloads use.
    pub fn body(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            id: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            source: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            subject: Option<&'a str>,
            timestamp: DateTime<Utc>,
            data: &'a RawValue,
        }
        serde_json::to_string(&Body {
            id: &self.id,
            kind: &self.kind,
            source: &self.source,
            subject: self.subject.as_deref(),
            timestamp: self.time,
            data: &self.data,
        })
        .unwrap_or_default()
    }
}

/// A fresh event id: `evt_` and a UUIDv7, so ids sort by creation.
pub fn new_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
}

/// Postgres keeps microseconds; an event reads back as it was made.
pub fn trunc(time: DateTime<Utc>) -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(time, 6)
}

/// Writes `events` to the outbox on `conn`, inside the caller's transaction. An event
/// whose id is already stored is skipped; the ids written are returned.
pub async fn record(conn: &mut PgConnection, events: &[Event]) -> anyhow::Result<Vec<String>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: fn(&Event) -> Option<String>| events.iter().map(f).collect::<Vec<_>>();
    let ids = column(|e| Some(e.id.clone()));
    let kinds = column(|e| Some(e.kind.clone()));
    let sources = column(|e| Some(e.source.clone()));
    let subjects = column(|e| e.subject.clone());
    let data = column(|e| Some(e.data.get().to_owned()));
    let actors = column(|e| Some(e.actor.clone()));
    let channels = column(|e| e.channel.clone());
    let resource_types = column(|e| e.resource_type.clone());
    let times: Vec<DateTime<Utc>> = events.iter().map(|e| e.time).collect();
    sqlx::query_scalar(
        "INSERT INTO events (id, type, source, subject, time, data, actor, channel, resource_type)
         SELECT i, k, s, sub, t, d::json, a, c, r
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::text[], $7::text[], $8::text[], $9::text[])
              AS e(i, k, s, sub, t, d, a, c, r)
         ON CONFLICT (id) DO NOTHING
         RETURNING id",
    )
    .bind(ids)
    .bind(kinds)
    .bind(sources)
    .bind(subjects)
    .bind(times)
    .bind(data)
    .bind(actors)
    .bind(channels)
    .bind(resource_types)
    .fetch_all(&mut *conn)
    .await
    .context("failed to write events to the outbox")
}

/// The columns [`Stored`] reads, for a `SELECT` from `events` named `table` in the query.
pub fn columns(table: &str) -> String {
    format!(
        "{t}.id, {t}.type, {t}.source, {t}.subject, {t}.time, {t}.data::text AS data, {t}.actor, \
         {t}.channel, {t}.resource_type, {t}.relayed_at",
        t = table
    )
}

/// An event row as read back, with when it was relayed (`None` while it waits in the
/// outbox).
#[derive(sqlx::FromRow)]
pub struct Stored {
    id: String,
    #[sqlx(rename = "type")]
    kind: String,
    source: String,
    subject: Option<String>,
    time: DateTime<Utc>,
    data: String,
    actor: String,
    channel: Option<String>,
    resource_type: Option<String>,
    pub relayed_at: Option<DateTime<Utc>>,
}

impl From<Stored> for Event {
    fn from(row: Stored) -> Self {
        Self {
            id: row.id,
            kind: row.kind,
            source: row.source,
            subject: row.subject,
            time: row.time,
            data: RawValue::from_string(row.data).unwrap_or_default(),
            actor: row.actor,
            channel: row.channel,
            resource_type: row.resource_type,
        }
    }
}

/// A stored event and when it was relayed.
pub async fn get(
    db: &sqlx::PgPool,
    id: &str,
) -> anyhow::Result<Option<(Event, Option<DateTime<Utc>>)>> {
    let row: Option<Stored> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM events WHERE id = $1",
        columns("events")
    )))
    .bind(id)
    .fetch_optional(db)
    .await
    .context("failed to read the event")?;
    Ok(row.map(|row| {
        let relayed_at = row.relayed_at;
        (Event::from(row), relayed_at)
    }))
}

/// Whether `name` is a well-formed event type: 1 to 128 characters, dot-separated
/// segments of letters, digits, `_`, `-`, `/` and `:`.
pub fn valid_type(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-/:".contains(&b))
        })
}

/// Whether an application may send an event of this type: not one of Switchyard's own.
pub fn reserved_type(name: &str) -> bool {
    let namespace = name.split('.').next().unwrap_or(name);
    RESERVED_NAMESPACES.contains(&namespace)
}

/// A subscription: an exact type, `prefix.*` (every type under `prefix.`), or `*`. The
/// relay matches events to endpoints in Postgres, with `switchyard_subscribed`
/// (migration 0011), which reads these three forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    All,
    Prefix(String),
    Exact(String),
}

impl Pattern {
    /// Parses a pattern, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Self::All);
        }
        if let Some(prefix) = text.strip_suffix(".*") {
            return if valid_type(prefix) {
                Ok(Self::Prefix(format!("{prefix}.")))
            } else {
                Err(format!(
                    "{text:?} is not a pattern: the part before \".*\" must be an event type"
                ))
            };
        }
        if valid_type(text) {
            Ok(Self::Exact(text.to_owned()))
        } else {
            Err(format!(
                "{text:?} is not an event type or pattern: use names like user.signup, a prefix \
                 like files.*, or *"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "",
            "files.",
            "*.created",
            "files.**",
            "fi les.*",
            "a..b",
            ".*",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn builtin_namespaces_are_reserved() {
        assert!(reserved_type("files.created"));
        assert!(reserved_type("webhook.test"));
        assert!(!reserved_type("user.signup"));
        assert!(!reserved_type("filesystem.full"));
    }
}
