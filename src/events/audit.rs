//! The audit log read back. The events relay writes a row per event and the `audits` job
//! the rows applications enqueue; this module lists them by actor, action prefix,
//! resource and time range, newest first with a keyset cursor, and exports a range oldest
//! first, read in pages, so an export of any size holds one page in memory and no long
//! transaction.

use std::collections::VecDeque;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures_util::Stream;
use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::cursor::{self, After, BadCursor};

/// Rows one export query reads.
const EXPORT_PAGE: usize = 500;

/// One audit row.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct AuditEntry {
    pub id: uuid::Uuid,
    /// Who acted: `admin`, `system`, a user or a key.
    pub actor: Option<String>,
    /// What happened, e.g. `files.created`.
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// What the event carried, as it was recorded.
    #[schema(value_type = Object)]
    #[sqlx(json)]
    pub metadata: Box<RawValue>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// When it happened.
    #[sqlx(rename = "created_at")]
    pub time: DateTime<Utc>,
}

/// Which rows a listing or an export wants; every part is optional.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub actor: Option<String>,
    /// Actions starting with this, matched literally (`files.` for every file action).
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// From this time on.
    pub since: Option<DateTime<Utc>>,
    /// Before this time.
    pub until: Option<DateTime<Utc>>,
}

/// A page of the log, newest first.
pub struct Page {
    pub entries: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

/// Which way a query walks the log.
#[derive(Clone, Copy)]
enum Order {
    NewestFirst,
    OldestFirst,
}

/// Up to `limit` rows after `after`, in `order`.
async fn page(
    db: &PgPool,
    filter: &Filter,
    after: Option<After>,
    order: Order,
    limit: usize,
) -> anyhow::Result<Vec<AuditEntry>> {
    let (beyond, direction) = match order {
        Order::NewestFirst => ("<", "DESC"),
        Order::OldestFirst => (">", "ASC"),
    };
    // Only the comparison and the direction vary, both from the two constants above.
    let statement = format!(
        "SELECT id, actor, action, resource_type, resource_id, metadata, ip, user_agent,
                created_at
         FROM audit_logs
         WHERE ($1::text IS NULL OR actor = $1)
           AND ($2::text IS NULL OR action LIKE $2)
           AND ($3::text IS NULL OR resource_type = $3)
           AND ($4::text IS NULL OR resource_id = $4)
           AND ($5::timestamptz IS NULL OR created_at >= $5)
           AND ($6::timestamptz IS NULL OR created_at < $6)
           AND ($7::timestamptz IS NULL OR (created_at, id) {beyond} ($7, $8))
         ORDER BY created_at {direction}, id {direction}
         LIMIT $9"
    );
    let (at, id) = after.map(|a| (a.at, a.id)).unzip();
    sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .bind(filter.actor.as_deref())
        .bind(
            filter
                .action
                .as_deref()
                .map(|a| format!("{}%", crate::db::like_escape(a))),
        )
        .bind(filter.resource_type.as_deref())
        .bind(filter.resource_id.as_deref())
        .bind(filter.since)
        .bind(filter.until)
        .bind(at)
        .bind(id)
        .bind(limit as i64)
        .fetch_all(db)
        .await
        .context("failed to read the audit log")
}

/// The rows `filter` wants, newest first, `limit` at most, after `cursor`.
pub async fn list(
    db: &PgPool,
    filter: &Filter,
    limit: usize,
    cursor: Option<&str>,
) -> anyhow::Result<Result<Page, BadCursor>> {
    let after = match cursor.map(cursor::decode).transpose() {
        Ok(after) => after,
        Err(bad) => return Ok(Err(bad)),
    };
    let mut entries = page(db, filter, after, Order::NewestFirst, limit + 1).await?;
    let next_cursor = cursor::next_page(&mut entries, limit, |e| (e.time, e.id));
    Ok(Ok(Page {
        entries,
        next_cursor,
    }))
}

/// Every row `filter` wants, oldest first, read a page at a time as the stream is polled.
/// A failed read ends the stream with the error.
pub fn export(
    db: PgPool,
    filter: Filter,
) -> impl Stream<Item = anyhow::Result<AuditEntry>> + Send + 'static {
    struct Walk {
        db: PgPool,
        filter: Filter,
        after: Option<After>,
        ready: VecDeque<AuditEntry>,
        done: bool,
    }
    let walk = Walk {
        db,
        filter,
        after: None,
        ready: VecDeque::new(),
        done: false,
    };
    futures_util::stream::unfold(walk, |mut walk| async move {
        if walk.ready.is_empty() && !walk.done {
            match page(
                &walk.db,
                &walk.filter,
                walk.after,
                Order::OldestFirst,
                EXPORT_PAGE,
            )
            .await
            {
                Ok(rows) => {
                    walk.done = rows.len() < EXPORT_PAGE;
                    walk.after = rows.last().map(|r| After {
                        at: r.time,
                        id: r.id,
                    });
                    walk.ready.extend(rows);
                }
                Err(error) => {
                    walk.done = true;
                    return Some((Err(error), walk));
                }
            }
        }
        let entry = walk.ready.pop_front()?;
        Some((Ok(entry), walk))
    })
}
