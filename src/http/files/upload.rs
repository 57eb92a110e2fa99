//! `POST /api/v1/files`: a file as `multipart/form-data` or as the raw body, streamed to
//! storage with its size, SHA-256 and media type taken on the way, then recorded.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::shared::{FILES_PATH, file_event, too_large, unknown_bucket, upload_error, with_event};
use crate::auth::Caller;
use crate::http::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::storage::files::{self, FileRecord};
use crate::storage::upload::Expected;
use crate::storage::{grants, names};

/// What a multipart body may add to the file: boundaries, part headers, small fields.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// A bucket declared in `storage.buckets`; `default` when absent.
    pub bucket: Option<String>,
    /// The file's name: needed for a raw body, and wins over a multipart file name.
    pub name: Option<String>,
}

/// Uploads a file as `multipart/form-data` (field `file`) or as the raw body with
/// `?name=`. The contents stream to storage; size, SHA-256 and the media type (from the
/// first bytes) are taken on the way.
///
/// A browser uploads with an upload token instead of a key (`Authorization: Bearer syu_…`
/// or `?token=`): the file goes to the token's bucket, within its size and types, named
/// under its prefix, and a single-use token makes one file.
#[utoipa::path(
    post,
    path = "/api/v1/files",
    tag = "files",
    security(("api_key" = ["files:write"]), ("upload_token" = [])),
    params(UploadQuery),
    request_body(content = Vec<u8>, description = "multipart/form-data with a `file` field, or the raw contents", content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored", body = FileRecord),
        (status = 400, description = "No file in the request", body = Problem),
        (status = 401, description = "No credentials, or an upload token expired, tampered with or already used", body = Problem),
        (status = 403, description = "The key lacks files:write, or the upload token is for another bucket", body = Problem),
        (status = 404, description = "No such bucket", body = Problem),
        (status = 408, description = "The client stopped sending", body = Problem),
        (status = 413, description = "Larger than the bucket allows", body = Problem),
        (status = 415, description = "A type the bucket refuses", body = Problem),
        (status = 503, description = "Storage or a database is down, or every upload slot stayed busy", body = Problem),
    )
)]
pub(super) async fn upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let grant = match &caller {
        Caller::Upload(grant) => Some(grant),
        _ => None,
    };
    let bucket_name = match (grant, query.bucket) {
        (Some(grant), Some(asked)) if asked != grant.bucket => {
            return Err(ApiError::Forbidden(format!(
                "this upload token is for the bucket {:?}, not {asked:?}",
                grant.bucket
            )));
        }
        (Some(grant), _) => grant.bucket.clone(),
        (None, asked) => asked.unwrap_or_else(|| "default".to_owned()),
    };
    let bucket = state
        .storage
        .bucket(&bucket_name)
        .ok_or_else(|| unknown_bucket(&state, &bucket_name))?
        .clone();
    let limit = grant.map_or(bucket.max_file_size.0, |g| {
        g.max_size.min(bucket.max_file_size.0)
    });
    let clean = |given: &str| grant.map_or_else(|| names::clean_name(given), |g| g.name(given));
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let boundary = content_type
        .as_deref()
        .filter(|t| {
            t.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        })
        .map(|t| {
            multer::parse_boundary(t).map_err(|e| {
                ApiError::BadRequest(format!("the multipart Content-Type is not usable: {e}"))
            })
        })
        .transpose()?;
    // A declared length over the limit is refused before a byte is read.
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let allowance = if boundary.is_some() {
        MULTIPART_OVERHEAD
    } else {
        0
    };
    if declared_length.is_some_and(|n| n > limit.saturating_add(allowance)) {
        return Err(too_large(limit));
    }
    let idle = state.settings.http.request_timeout();
    // Nothing of the body is read until the upload has its share of storage.upload_memory.
    let reservation = state.storage.reserve_upload(idle).await.ok_or_else(|| {
        ApiError::Busy(format!(
            "every upload slot has been busy for {}s (storage.upload_memory allows {} at once); \
             retry shortly",
            idle.as_secs(),
            state.storage.settings().concurrent_uploads()
        ))
    })?;
    let id = uuid::Uuid::now_v7();
    let key = state.storage.object_key(&bucket_name, id);
    let body = body.into_data_stream();

    let (name, stored) = match boundary {
        Some(boundary) => {
            let mut multipart = multer::Multipart::new(body, boundary);
            loop {
                let field = within(idle, multipart.next_field())
                    .await?
                    .map_err(multipart_error)?
                    .ok_or_else(|| {
                        ApiError::BadRequest(
                            "the form has no `file` field; send the file as the field named file"
                                .into(),
                        )
                    })?;
                if field.name() != Some("file") {
                    // Other fields are skipped; their size counts toward the allowance.
                    let mut skipped = 0u64;
                    let mut field = field;
                    while let Some(chunk) = within(idle, field.chunk())
                        .await?
                        .map_err(multipart_error)?
                    {
                        skipped += chunk.len() as u64;
                        if skipped > MULTIPART_OVERHEAD {
                            return Err(ApiError::BadRequest(
                                "form fields other than `file` are limited to 64 KiB".into(),
                            ));
                        }
                    }
                    continue;
                }
                let name = clean(
                    query
                        .name
                        .as_deref()
                        .or(field.file_name())
                        .unwrap_or("file"),
                );
                let declared = field.content_type().map(|m| m.to_string());
                let expected = Expected {
                    bucket: &bucket,
                    name: &name,
                    declared: declared.as_deref(),
                    grant,
                };
                let upload = state.storage.upload(key.clone(), limit, reservation);
                let chunks = field.map_err(multipart_error);
                let stored = receive(upload, chunks, &expected, idle).await?;
                break (name, stored);
            }
        }
        None => {
            let Some(given) = query.name.as_deref() else {
                return Err(ApiError::BadRequest(
                    "name the file with ?name=, or send multipart/form-data with a `file` field"
                        .into(),
                ));
            };
            let name = clean(given);
            let expected = Expected {
                bucket: &bucket,
                name: &name,
                declared: content_type.as_deref(),
                grant,
            };
            let upload = state.storage.upload(key.clone(), limit, reservation);
            let chunks =
                body.map_err(|e| ApiError::BadRequest(format!("the upload was interrupted: {e}")));
            let stored = receive(upload, chunks, &expected, idle).await?;
            (name, stored)
        }
    };

    let record = FileRecord {
        id,
        bucket: bucket_name,
        name,
        size: stored.size as i64,
        content_type: stored.content_type,
        sha256: stored.sha256,
        // Postgres keeps microseconds; the answer matches what a later read returns.
        created_at: chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6),
        object_key: key.as_ref().to_owned(),
    };
    let event = file_event("files.created", &record, &caller.actor());
    // A single-use token is spent in the transaction that records its file, so a replay
    // racing this upload records nothing.
    let insert = async |tx: &mut sqlx::PgConnection| {
        if let Some(grant) = grant.filter(|g| g.single_use)
            && !grants::claim(tx, grant, record.id).await?
        {
            return Ok(false);
        }
        files::insert(tx, &record).await.map(|()| true)
    };
    let recorded = with_event(&state, event, insert).await;
    if !matches!(recorded, Ok(true)) {
        // No row, so no object either; the sweep catches this delete failing too.
        let _ = state.storage.store().delete(&key).await;
        return Err(match recorded {
            Err(error) => error.into(),
            Ok(_) => ApiError::TokenRefused(grants::Refusal::Used.to_string()),
        });
    }
    metrics::counter!("switchyard_storage_upload_bytes_total").increment(stored.size);
    let location = HeaderValue::from_str(&format!("{FILES_PATH}/{id}"))
        .unwrap_or(HeaderValue::from_static(FILES_PATH));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(record),
    )
        .into_response())
}

/// Streams `chunks` into `upload`; on any failure the partial object is removed.
async fn receive(
    mut upload: crate::storage::upload::Upload,
    chunks: impl Stream<Item = Result<Bytes, ApiError>>,
    expected: &Expected<'_>,
    idle: Duration,
) -> Result<crate::storage::upload::Stored, ApiError> {
    let mut chunks = std::pin::pin!(chunks);
    loop {
        let next = match within(idle, chunks.next()).await {
            Ok(next) => next,
            Err(error) => {
                upload.abort().await;
                return Err(error);
            }
        };
        let outcome = match next {
            None => break,
            Some(Ok(chunk)) => upload.push(chunk, expected).await.map_err(upload_error),
            Some(Err(error)) => Err(error),
        };
        if let Err(error) = outcome {
            upload.abort().await;
            return Err(error);
        }
    }
    upload.finish(expected).await.map_err(upload_error)
}

/// Waits for the client, at most `idle`.
async fn within<T>(idle: Duration, next: impl Future<Output = T>) -> Result<T, ApiError> {
    tokio::time::timeout(idle, next)
        .await
        .map_err(|_| ApiError::BodyTimeout {
            seconds: idle.as_secs(),
        })
}

fn multipart_error(error: multer::Error) -> ApiError {
    ApiError::BadRequest(format!("the multipart body is not valid: {error}"))
}
