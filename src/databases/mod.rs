//! The platform database registry: Postgres databases an application registers (name,
//! host, port, database, optional username and password) so that they can be listed and
//! checked. Input is checked field by field, each problem naming its field. The password
//! is sealed under `encryption.key` before it is stored and is never returned or logged.
//! Every change writes a `databases.*` event in its own transaction, so it is audited and
//! can reach webhooks. [`check`] tries a connection.
//!
//! It imports `config`, the stores, `outbound` (the SSRF rules), `sealed` and `events`;
//! never HTTP, a mode or the process state. Its routes are `http/databases.rs`.

pub mod check;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;

use crate::cursor::{self, BadCursor};
use crate::events::Event;
use crate::invalid::Invalid;
use crate::sealed::Sealer;

/// A registered database as the API shows it: never its password.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Database {
    pub id: uuid::Uuid,
    pub name: String,
    pub host: String,
    pub port: i32,
    pub database: String,
    pub username: Option<String>,
    /// Whether a password is stored.
    pub has_password: bool,
    /// `disable`, `prefer` or `require`.
    pub ssl_mode: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, host, port, database, username, password IS NOT NULL AS has_password, \
     ssl_mode, created_at, updated_at";

/// A database to register, or a change to one (`PATCH`: every field optional; `null`
/// removes the username or password).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseInput {
    /// 1 to 255 characters.
    pub name: Option<String>,
    /// A host name or IP address.
    pub host: Option<String>,
    /// 1 to 65535; 5432 when absent.
    pub port: Option<i64>,
    /// The database name.
    pub database: Option<String>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    #[schema(value_type = Option<String>)]
    pub username: Option<Option<String>>,
    /// Stored sealed, never returned.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    #[schema(value_type = Option<String>)]
    pub password: Option<Option<String>>,
    /// `disable`, `prefer` (the default) or `require`.
    pub ssl_mode: Option<String>,
}

impl DatabaseInput {
    /// Checks every field given; `creating` requires name, host and database.
    pub fn check(&self, creating: bool) -> Result<(), Invalid> {
        let required = |field: &str, value: &Option<String>| match value {
            None if creating => Err(Invalid::new(field, "is required")),
            _ => Ok(()),
        };
        required("name", &self.name)?;
        required("host", &self.host)?;
        required("database", &self.database)?;
        if let Some(name) = &self.name
            && (name.trim().is_empty() || name.chars().count() > 255)
        {
            return Err(Invalid::new("name", "must be 1-255 characters"));
        }
        if let Some(host) = &self.host
            && (host.trim().is_empty()
                || host.len() > 255
                || host
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "/?#@".contains(c)))
        {
            return Err(Invalid::new("host", "must be a host name or IP address"));
        }
        if let Some(port) = self.port
            && !(1..=65_535).contains(&port)
        {
            return Err(Invalid::new("port", "must be between 1 and 65535"));
        }
        if let Some(database) = &self.database
            && (database.is_empty() || database.len() > 255 || database.contains('\0'))
        {
            return Err(Invalid::new("database", "must be 1-255 characters"));
        }
        if let Some(Some(username)) = &self.username
            && (username.is_empty() || username.len() > 255 || username.contains('\0'))
        {
            return Err(Invalid::new(
                "username",
                "must be 1-255 characters, or null",
            ));
        }
        if let Some(Some(password)) = &self.password
            && (password.is_empty() || password.len() > 1024 || password.contains('\0'))
        {
            return Err(Invalid::new(
                "password",
                "must be 1-1024 characters, or null",
            ));
        }
        if let Some(mode) = &self.ssl_mode
            && !["disable", "prefer", "require"].contains(&mode.as_str())
        {
            return Err(Invalid::new(
                "ssl_mode",
                "must be disable, prefer or require",
            ));
        }
        Ok(())
    }

    /// Whether this change stores a password, so that sealing must be possible.
    pub fn sets_password(&self) -> bool {
        matches!(self.password, Some(Some(_)))
    }
}

/// Where a password is sealed for: its row, so it opens nowhere else.
fn context(id: uuid::Uuid) -> String {
    format!("databases.password:{id}")
}

/// The event of a change, with what it changed (never the password itself).
fn change_event(kind: &'static str, database: &Database) -> Event {
    Event::builtin(
        kind,
        "database",
        database.id.to_string(),
        "admin",
        Some("databases"),
        &serde_json::json!({
            "id": database.id,
            "name": database.name,
            "host": database.host,
            "port": database.port,
            "database": database.database,
            "username": database.username,
            "has_password": database.has_password,
            "ssl_mode": database.ssl_mode,
        }),
    )
}

/// Registers a database from checked input.
pub async fn create(
    db: &PgPool,
    sealer: &Sealer,
    input: DatabaseInput,
) -> anyhow::Result<Database> {
    let id = uuid::Uuid::now_v7();
    let password = match input.password.flatten() {
        Some(password) => Some(sealer.seal(password.as_bytes(), &context(id))?),
        None => None,
    };
    let mut tx = db.begin().await.context("failed to start a transaction")?;
    let database: Database = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO databases (id, name, host, port, database, username, password, ssl_mode)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(input.name.unwrap_or_default())
    .bind(input.host.unwrap_or_default())
    .bind(input.port.unwrap_or(5432) as i32)
    .bind(input.database.unwrap_or_default())
    .bind(input.username.flatten())
    .bind(password)
    .bind(input.ssl_mode.unwrap_or_else(|| "prefer".into()))
    .fetch_one(&mut *tx)
    .await
    .context("failed to register the database")?;
    record(&mut tx, change_event("databases.created", &database)).await?;
    tx.commit()
        .await
        .context("failed to commit the registration")?;
    Ok(database)
}

async fn record(tx: &mut PgConnection, event: Event) -> anyhow::Result<()> {
    crate::events::record(tx, std::slice::from_ref(&event)).await?;
    Ok(())
}

pub async fn get(db: &PgPool, id: uuid::Uuid) -> anyhow::Result<Option<Database>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM databases WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
    .context("failed to read the database")
}

/// A page of registered databases, oldest first.
pub struct Page {
    pub databases: Vec<Database>,
    pub next_cursor: Option<String>,
}

pub async fn list(
    db: &PgPool,
    limit: usize,
    cursor: Option<&str>,
) -> anyhow::Result<Result<Page, BadCursor>> {
    let after = match cursor.map(cursor::decode).transpose() {
        Ok(after) => after,
        Err(bad) => return Ok(Err(bad)),
    };
    let (at, id) = after.map(|a| (a.at, a.id)).unzip();
    let mut databases: Vec<Database> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM databases
         WHERE ($1::timestamptz IS NULL OR (created_at, id) > ($1, $2))
         ORDER BY created_at, id LIMIT $3"
    )))
    .bind(at)
    .bind(id)
    .bind(limit as i64 + 1)
    .fetch_all(db)
    .await
    .context("failed to list databases")?;
    let next_cursor = cursor::next_page(&mut databases, limit, |d| (d.created_at, d.id));
    Ok(Ok(Page {
        databases,
        next_cursor,
    }))
}

/// Applies a checked change; `None` when there is no such database.
pub async fn update(
    db: &PgPool,
    sealer: &Sealer,
    id: uuid::Uuid,
    input: DatabaseInput,
) -> anyhow::Result<Option<Database>> {
    let (set_password, password) = match input.password {
        None => (false, None),
        Some(None) => (true, None),
        Some(Some(password)) => (true, Some(sealer.seal(password.as_bytes(), &context(id))?)),
    };
    let mut tx = db.begin().await.context("failed to start a transaction")?;
    let database: Option<Database> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE databases SET
             name = COALESCE($2, name),
             host = COALESCE($3, host),
             port = COALESCE($4, port),
             database = COALESCE($5, database),
             username = CASE WHEN $6 THEN $7 ELSE username END,
             password = CASE WHEN $8 THEN $9 ELSE password END,
             ssl_mode = COALESCE($10, ssl_mode),
             updated_at = now()
         WHERE id = $1
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(input.name)
    .bind(input.host)
    .bind(input.port.map(|p| p as i32))
    .bind(input.database)
    .bind(input.username.is_some())
    .bind(input.username.flatten())
    .bind(set_password)
    .bind(password)
    .bind(input.ssl_mode)
    .fetch_optional(&mut *tx)
    .await
    .context("failed to update the database")?;
    let Some(database) = database else {
        return Ok(None);
    };
    record(&mut tx, change_event("databases.updated", &database)).await?;
    tx.commit().await.context("failed to commit the change")?;
    Ok(Some(database))
}

/// Removes a registration; false when there was none.
pub async fn delete(db: &PgPool, id: uuid::Uuid) -> anyhow::Result<bool> {
    let mut tx = db.begin().await.context("failed to start a transaction")?;
    let database: Option<Database> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "DELETE FROM databases WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .context("failed to delete the database")?;
    let Some(database) = database else {
        return Ok(false);
    };
    record(&mut tx, change_event("databases.deleted", &database)).await?;
    tx.commit().await.context("failed to commit the deletion")?;
    Ok(true)
}

/// What connecting needs: the registration with its password opened.
pub struct Credentials {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ssl_mode: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// The credentials of a registration; `None` when there is no such database.
pub async fn credentials(
    db: &PgPool,
    sealer: &Sealer,
    id: uuid::Uuid,
) -> anyhow::Result<Option<Credentials>> {
    type Row = (String, i32, String, Option<String>, Option<Vec<u8>>, String);
    let row: Option<Row> = sqlx::query_as(
        "SELECT host, port, database, username, password, ssl_mode FROM databases WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
    .context("failed to read the database")?;
    let Some((host, port, database, username, sealed, ssl_mode)) = row else {
        return Ok(None);
    };
    let password = match sealed {
        Some(sealed) => Some(
            String::from_utf8(sealer.open(&sealed, &context(id))?)
                .context("the stored password is not text")?,
        ),
        None => None,
    };
    Ok(Some(Credentials {
        host,
        port: port as u16,
        database,
        username,
        password,
        ssl_mode,
    }))
}
