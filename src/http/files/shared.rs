//! What the files routes share: the path they live under, finding a file, the events
//! they emit and the errors they answer with.

use crate::events::Event;
use crate::http::problem::ApiError;
use crate::state::AppState;
use crate::storage::files::{self, FileRecord};

/// Where the files routes live; the upload posts here and links point below it.
pub const FILES_PATH: &str = "/api/v1/files";

pub(super) fn storage_down(cause: object_store::Error) -> ApiError {
    ApiError::DependencyDown {
        what: "object storage",
        cause: cause.into(),
    }
}

pub(super) fn unknown_bucket(state: &AppState, name: &str) -> ApiError {
    let declared: Vec<&str> = state
        .storage
        .settings()
        .buckets
        .keys()
        .map(String::as_str)
        .collect();
    ApiError::NotFound(format!(
        "no bucket {name:?}; the declared buckets (storage.buckets) are {}",
        declared.join(", ")
    ))
}

pub(super) fn file_event(action: &'static str, file: &FileRecord) -> Event {
    Event {
        action,
        actor: "admin".into(),
        resource_type: "file",
        resource_id: file.id.to_string(),
        channel: "files".into(),
        data: serde_json::json!({
            "bucket": file.bucket,
            "name": file.name,
            "size": file.size,
            "content_type": file.content_type,
            "sha256": file.sha256,
        }),
    }
}

/// The file `id` names, or 404.
pub(super) async fn find(state: &AppState, id: &str) -> Result<FileRecord, ApiError> {
    let missing = || ApiError::NotFound(format!("no file {id:?}"));
    let id: uuid::Uuid = id.parse().map_err(|_| missing())?;
    files::get(&state.db, id).await?.ok_or_else(missing)
}
