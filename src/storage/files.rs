//! The `storage_files` table: one row per stored file, written only once its object is.

use std::collections::HashSet;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

/// A stored file's metadata.
#[derive(Clone, Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct FileRecord {
    pub id: uuid::Uuid,
    pub bucket: String,
    /// The client's file name, made safe: no path, no control characters.
    pub name: String,
    pub size: i64,
    /// Judged from the first bytes where they are recognised.
    pub content_type: String,
    /// Hex SHA-256 of the contents; the download's `ETag`.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    /// Where the object lives in the store; not shown.
    #[serde(skip)]
    pub object_key: String,
}

/// A page of files, newest first.
pub struct Page {
    pub files: Vec<FileRecord>,
    pub next_cursor: Option<String>,
}

/// Why a cursor was refused.
#[derive(Debug, thiserror::Error)]
#[error("the cursor is not one this API returned")]
pub struct BadCursor;

/// Which files a listing wants.
pub struct Filter<'a> {
    pub bucket: Option<&'a str>,
    pub name_prefix: Option<&'a str>,
    pub limit: usize,
    pub cursor: Option<&'a str>,
}

/// Writes a file's row on `conn`, inside the caller's transaction (with its event).
pub async fn insert(conn: &mut sqlx::PgConnection, file: &FileRecord) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO storage_files (id, bucket, name, object_key, size, content_type, sha256, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(file.id)
    .bind(&file.bucket)
    .bind(&file.name)
    .bind(&file.object_key)
    .bind(file.size)
    .bind(&file.content_type)
    .bind(&file.sha256)
    .bind(file.created_at)
    .execute(conn)
    .await
    .context("failed to record the file")?;
    Ok(())
}

pub async fn get(db: &PgPool, id: uuid::Uuid) -> anyhow::Result<Option<FileRecord>> {
    sqlx::query_as(
        "SELECT id, bucket, name, object_key, size, content_type, sha256, created_at
         FROM storage_files WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
    .context("failed to read the file's record")
}

/// Removes a file's row on `conn`, inside the caller's transaction; false when there was
/// none.
pub async fn delete(conn: &mut sqlx::PgConnection, id: uuid::Uuid) -> anyhow::Result<bool> {
    let done = sqlx::query("DELETE FROM storage_files WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .context("failed to delete the file's record")?;
    Ok(done.rows_affected() > 0)
}

/// Files newest first, by bucket and name prefix.
pub async fn list(db: &PgPool, filter: Filter<'_>) -> anyhow::Result<Result<Page, BadCursor>> {
    let after = match filter.cursor.map(decode_cursor).transpose() {
        Ok(after) => after,
        Err(bad) => return Ok(Err(bad)),
    };
    let pattern = filter
        .name_prefix
        .map(|p| format!("{}%", crate::db::like_escape(p)));
    let mut files: Vec<FileRecord> = sqlx::query_as(
        "SELECT id, bucket, name, object_key, size, content_type, sha256, created_at
         FROM storage_files
         WHERE ($1::text IS NULL OR bucket = $1)
           AND ($2::text IS NULL OR name LIKE $2)
           AND ($3::uuid IS NULL OR id < $3)
         ORDER BY id DESC
         LIMIT $4",
    )
    .bind(filter.bucket)
    .bind(pattern)
    .bind(after)
    .bind(filter.limit as i64 + 1)
    .fetch_all(db)
    .await
    .context("failed to list files")?;
    let next_cursor = if files.len() > filter.limit {
        files.truncate(filter.limit);
        files
            .last()
            .map(|f| URL_SAFE_NO_PAD.encode(f.id.as_bytes()))
    } else {
        None
    };
    Ok(Ok(Page { files, next_cursor }))
}

/// Which of these object keys have a row.
pub async fn known_keys(db: &PgPool, keys: &[String]) -> anyhow::Result<HashSet<String>> {
    let found: Vec<String> =
        sqlx::query_scalar("SELECT object_key FROM storage_files WHERE object_key = ANY($1)")
            .bind(keys)
            .fetch_all(db)
            .await
            .context("failed to look up object keys")?;
    Ok(found.into_iter().collect())
}

fn decode_cursor(cursor: &str) -> Result<uuid::Uuid, BadCursor> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| BadCursor)?;
    uuid::Uuid::from_slice(&raw).map_err(|_| BadCursor)
}
