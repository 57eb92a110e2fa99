//! One upload streamed into the object store. Bytes are hashed and counted as they pass;
//! nothing is written until the first part is gathered, so the media type can be judged
//! from the first bytes and a refused file leaves nothing behind. A file smaller than one
//! part becomes one PUT; a larger one a multipart upload with at most two parts in
//! flight, so memory stays at a few parts whatever the file's size.
//!
//! An upload that fails, or whose request is dropped mid-way, aborts: the multipart
//! upload's parts (or the local staging file) are removed.
//!
//! Every upload holds a [`Reservation`] of `storage.upload_memory` while it runs (and,
//! when it aborts, until its parts are gone), so concurrent uploads cannot together hold
//! more than that budget.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, WriteMultipart,
};
use ring::digest;
use tokio::sync::OwnedSemaphorePermit;

use crate::config::BucketSettings;

use super::names;

/// Bytes the media type is judged from.
const SNIFF_BYTES: usize = 8192;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// Why an upload did not complete.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the file is larger than this bucket's limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("files of type {content_type} are not accepted in this bucket")]
    TypeRefused { content_type: String },
    #[error("the object store failed: {0}")]
    Store(#[from] object_store::Error),
}

/// What the upload knows of the file before its bytes arrive.
pub struct Expected<'a> {
    pub bucket: &'a BucketSettings,
    pub name: &'a str,
    /// The client's `Content-Type` for the file, if it sent one.
    pub declared: Option<&'a str>,
    /// The upload token the file comes with, whose types narrow the bucket's.
    pub grant: Option<&'a super::grants::Grant>,
}

impl Expected<'_> {
    /// Whether a file of this type may be stored: the bucket's rule, and the token's.
    pub fn accepts(&self, content_type: &str) -> bool {
        self.bucket.accepts(content_type, self.name)
            && self
                .grant
                .is_none_or(|g| g.accepts(content_type, self.name))
    }
}

/// The stored object's facts.
#[derive(Debug)]
pub struct Stored {
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
}

/// One upload's share of `storage.upload_memory`, given back when it is dropped.
pub struct Reservation {
    /// Held, never read: dropping it frees the share.
    _permit: OwnedSemaphorePermit,
}

impl Reservation {
    pub(super) fn new(permit: OwnedSemaphorePermit) -> Self {
        Self { _permit: permit }
    }
}

/// An upload in progress.
pub struct Upload {
    store: Arc<dyn ObjectStore>,
    key: Path,
    limit: u64,
    part_size: usize,
    /// Whether the store keeps a media type with the object (S3 does, a directory not).
    typed: bool,
    hasher: digest::Context,
    size: u64,
    /// The first part, held until it is full or the file ends.
    head: Vec<Bytes>,
    head_len: usize,
    content_type: Option<String>,
    writer: Option<WriteMultipart>,
    finished: bool,
    /// Held until the upload ends; an abort hands it to the task that removes the parts.
    reservation: Option<Reservation>,
}

impl Upload {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        key: Path,
        limit: u64,
        part_size: usize,
        typed: bool,
        reservation: Reservation,
    ) -> Self {
        Self {
            store,
            key,
            limit,
            part_size,
            typed,
            hasher: digest::Context::new(&digest::SHA256),
            size: 0,
            head: Vec::new(),
            head_len: 0,
            content_type: None,
            writer: None,
            finished: false,
            reservation: Some(reservation),
        }
    }

    /// Takes the next chunk of the file.
    pub async fn push(&mut self, chunk: Bytes, expected: &Expected<'_>) -> Result<(), UploadError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(UploadError::TooLarge { limit: self.limit });
        }
        self.hasher.update(&chunk);
        if let Some(writer) = self.writer.as_mut() {
            writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            writer.put(chunk);
            return Ok(());
        }
        self.head_len += chunk.len();
        self.head.push(chunk);
        if self.head_len >= self.part_size {
            // The file is at least a part long: judge it and start the multipart upload.
            let content_type = self.judge(expected)?;
            let upload = self
                .store
                .put_multipart_opts(
                    &self.key,
                    PutMultipartOptions {
                        attributes: self.attributes(&content_type),
                        ..Default::default()
                    },
                )
                .await?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
            for bytes in self.head.drain(..) {
                writer.put(bytes);
            }
            self.writer = Some(writer);
        }
        Ok(())
    }

    /// Ends the file: writes what is held and completes the upload.
    pub async fn finish(mut self, expected: &Expected<'_>) -> Result<Stored, UploadError> {
        let content_type = match self.writer.take() {
            Some(writer) => {
                writer.finish().await?;
                self.content_type.take().unwrap_or_default()
            }
            None => {
                let content_type = self.judge(expected)?;
                let payload: PutPayload = std::mem::take(&mut self.head).into_iter().collect();
                self.store
                    .put_opts(
                        &self.key,
                        payload,
                        PutOptions {
                            attributes: self.attributes(&content_type),
                            ..Default::default()
                        },
                    )
                    .await?;
                content_type
            }
        };
        self.finished = true;
        let sha256 = hex(self.hasher.clone().finish().as_ref());
        Ok(Stored {
            size: self.size,
            sha256,
            content_type,
        })
    }

    /// Gives up: removes whatever was written.
    pub async fn abort(mut self) {
        self.finished = true;
        if let Some(writer) = self.writer.take()
            && let Err(error) = writer.abort().await
        {
            tracing::warn!(key = %self.key, error = %error, "failed to abort a multipart upload; the orphan sweep will remove it");
        }
    }

    fn attributes(&self, content_type: &str) -> Attributes {
        let mut attributes = Attributes::new();
        if self.typed {
            attributes.insert(Attribute::ContentType, content_type.to_owned().into());
        }
        attributes
    }

    /// The media type from the first bytes, checked against the bucket.
    fn judge(&mut self, expected: &Expected<'_>) -> Result<String, UploadError> {
        let mut sniff = Vec::with_capacity(SNIFF_BYTES.min(self.head_len));
        for bytes in &self.head {
            let room = SNIFF_BYTES - sniff.len();
            sniff.extend_from_slice(&bytes[..bytes.len().min(room)]);
            if sniff.len() == SNIFF_BYTES {
                break;
            }
        }
        let content_type = names::content_type(&sniff, expected.declared);
        if !expected.accepts(&content_type) {
            return Err(UploadError::TypeRefused { content_type });
        }
        self.content_type = Some(content_type.clone());
        Ok(content_type)
    }
}

/// Reads an object something else wrote (a browser's presigned POST) as an upload would
/// have taken it: its size within `limit`, its SHA-256, and its media type from its first
/// bytes, checked against `expected`. Nothing is removed here: on a refusal the caller
/// decides.
pub async fn inspect(
    store: &dyn ObjectStore,
    key: &Path,
    limit: u64,
    expected: &Expected<'_>,
) -> Result<Stored, UploadError> {
    use futures_util::StreamExt;
    let found = store.get_opts(key, Default::default()).await?;
    if found.meta.size > limit {
        return Err(UploadError::TooLarge { limit });
    }
    let declared = found
        .attributes
        .get(&Attribute::ContentType)
        .map(|v| v.to_string());
    let mut hasher = digest::Context::new(&digest::SHA256);
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let mut size = 0u64;
    let mut chunks = found.into_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(UploadError::TooLarge { limit });
        }
        hasher.update(&chunk);
        let room = SNIFF_BYTES - head.len();
        head.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    let declared = expected.declared.or(declared.as_deref());
    let content_type = names::content_type(&head, declared);
    if !expected.accepts(&content_type) {
        return Err(UploadError::TypeRefused { content_type });
    }
    Ok(Stored {
        size,
        sha256: hex(hasher.finish().as_ref()),
        content_type,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Drop for Upload {
    /// A request dropped mid-upload (the client went away) still removes its parts.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some(writer) = self.writer.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let reservation = self.reservation.take();
            runtime.spawn(async move {
                let _ = writer.abort().await;
                drop(reservation);
            });
        }
    }
}
