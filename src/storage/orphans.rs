//! The orphan sweep, run by the `deletes` job: objects under `files/` with no row in
//! `storage_files` and older than `storage.orphan_grace_seconds` are removed. They come
//! from a process that died between writing an object and committing its row, or from a
//! delete whose row went first by hand. The grace period keeps the sweep away from
//! uploads still in progress.

use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use object_store::path::Path;
use sqlx::PgPool;

use super::{Storage, files};

/// Keys checked against Postgres per query.
const BATCH: usize = 1000;

/// Removes orphaned objects; returns how many.
pub async fn sweep(storage: &Storage, db: &PgPool, grace: Duration) -> anyhow::Result<u64> {
    let cutoff =
        chrono::Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let mut listing = storage.store().list(Some(&storage.files_prefix()));
    let mut old = Vec::with_capacity(BATCH);
    let mut removed = 0;
    while let Some(meta) = listing.next().await {
        let meta = meta.context("failed to list stored objects")?;
        if meta.last_modified < cutoff {
            old.push(meta.location);
        }
        if old.len() == BATCH {
            removed += remove_unrecorded(storage, db, std::mem::take(&mut old)).await?;
        }
    }
    if !old.is_empty() {
        removed += remove_unrecorded(storage, db, old).await?;
    }
    Ok(removed)
}

async fn remove_unrecorded(storage: &Storage, db: &PgPool, keys: Vec<Path>) -> anyhow::Result<u64> {
    let names: Vec<String> = keys.iter().map(|k| k.as_ref().to_owned()).collect();
    let known = files::known_keys(db, &names).await?;
    let orphans: Vec<object_store::Result<Path>> = keys
        .into_iter()
        .filter(|k| !known.contains(k.as_ref()))
        .map(Ok)
        .collect();
    let mut removed = 0;
    let mut results = storage
        .store()
        .delete_stream(futures_util::stream::iter(orphans).boxed());
    while let Some(result) = results.next().await {
        match result {
            Ok(path) => {
                tracing::info!(key = %path, "removed an orphaned object");
                removed += 1;
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(error).context("failed to remove an orphaned object"),
        }
    }
    Ok(removed)
}
