//! What the files routes share: the path they live under, finding a file, the events
//! they emit and the errors they answer with.

use axum::http::HeaderMap;

use crate::events::Event;
use crate::http::problem::ApiError;
use crate::state::AppState;
use crate::storage::files::{self, FileRecord};
use crate::storage::upload::UploadError;

/// Where the files routes live; the upload posts here and links point below it.
pub const FILES_PATH: &str = "/api/v1/files";

pub(super) fn storage_down(cause: object_store::Error) -> ApiError {
    ApiError::DependencyDown {
        what: "object storage",
        cause: cause.into(),
    }
}

pub(super) fn unknown_bucket(state: &AppState, name: &str) -> ApiError {
    ApiError::NotFound(no_bucket(state, name))
}

/// Why `name` is no bucket, with the declared ones.
pub(super) fn no_bucket(state: &AppState, name: &str) -> String {
    let declared: Vec<&str> = state
        .storage
        .settings()
        .buckets
        .keys()
        .map(String::as_str)
        .collect();
    format!(
        "no bucket {name:?}; the declared buckets (storage.buckets) are {}",
        declared.join(", ")
    )
}

/// The answer to an upload (streamed or presigned) the store or the rules refused.
pub(super) fn upload_error(error: UploadError) -> ApiError {
    match error {
        UploadError::TooLarge { limit } => too_large(limit),
        UploadError::TypeRefused { .. } => ApiError::UnsupportedMediaType(error.to_string()),
        UploadError::Store(cause) => storage_down(cause),
    }
}

pub(super) fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge {
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
    }
}

/// The event of a file change made by `actor` (a caller's [`crate::auth::Caller::actor`]).
pub(super) fn file_event(kind: &'static str, file: &FileRecord, actor: &str) -> Event {
    Event::builtin(
        kind,
        "file",
        file.id.to_string(),
        actor,
        Some("files"),
        &serde_json::json!({
            "id": file.id,
            "bucket": file.bucket,
            "name": file.name,
            "size": file.size,
            "content_type": file.content_type,
            "sha256": file.sha256,
        }),
    )
}

/// Runs a file row change and records its event in one transaction: both happen, or
/// neither does. `change` answers whether it changed anything; when it did not, nothing
/// is committed and false is returned.
pub(super) async fn with_event(
    state: &AppState,
    event: Event,
    change: impl AsyncFnOnce(&mut sqlx::PgConnection) -> anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    use anyhow::Context;
    let mut tx = state
        .db
        .begin()
        .await
        .context("failed to start a transaction")?;
    if !change(&mut tx).await? {
        return Ok(false);
    }
    crate::events::record(&mut tx, std::slice::from_ref(&event)).await?;
    tx.commit()
        .await
        .context("failed to commit the file change")?;
    Ok(true)
}

/// The file `id` names, or 404.
pub(super) async fn find(state: &AppState, id: &str) -> Result<FileRecord, ApiError> {
    let missing = || ApiError::NotFound(format!("no file {id:?}"));
    let id: uuid::Uuid = id.parse().map_err(|_| missing())?;
    files::get(&state.db, id).await?.ok_or_else(missing)
}

/// Where links point: `app.public_url`, Railway's public domain, else the host this
/// request came to (it carries credentials, so its `Host` is trusted).
pub(super) fn link_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = state.settings.public_url() {
        return url.as_str().trim_end_matches('/').to_owned();
    }
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
    };
    let host = header_text("x-forwarded-host")
        .or_else(|| header_text("host"))
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let scheme = header_text("x-forwarded-proto")
        .filter(|p| p == "https" || p == "http")
        .unwrap_or_else(|| "http".to_owned());
    format!("{scheme}://{host}")
}
