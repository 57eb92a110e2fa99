//! `/api/v1/files`: streaming upload, listing, metadata, download with ranges and
//! conditional requests, delete, and signed download URLs.
//!
//! [`router`] holds the admin-token routes. [`content_router`] holds the download, which
//! authorizes itself: the admin token, a signed URL, or a public bucket.
//!
//! Uploads stream: the edge leaves `POST /api/v1/files` out of `http.body_limit_bytes`
//! and the request deadline (see [`streams_body`]); the bucket's `max_file_size` bounds
//! it instead, and `http.request_timeout_seconds` bounds each silence of the client.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth;
use super::extract::Json;
use super::problem::{ApiError, Problem};
use crate::events::Event;
use crate::invalid::Invalid;
use crate::state::AppState;
use crate::storage::files::{self, FileRecord, Filter};
use crate::storage::range::{self, Wanted};
use crate::storage::upload::{Expected, UploadError};
use crate::storage::{local, names, signed};

/// The upload route, which the edge lets stream past the JSON body limit.
pub const UPLOAD_PATH: &str = "/api/v1/files";
/// What a multipart body may add to the file: boundaries, part headers, small fields.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload, list))
        .routes(routes!(get_file, delete_file))
        .routes(routes!(sign_url))
}

/// The download, open to signed URLs and public buckets.
pub fn content_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(content))
}

/// Whether the edge should let this request's body stream to its handler unbounded by
/// `http.body_limit_bytes` and the request deadline.
pub fn streams_body(method: &Method, path: &str) -> bool {
    method == Method::POST && path.trim_end_matches('/') == UPLOAD_PATH
}

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
#[utoipa::path(
    post,
    path = "/api/v1/files",
    tag = "files",
    security(("admin_token" = [])),
    params(UploadQuery),
    request_body(content = Vec<u8>, description = "multipart/form-data with a `file` field, or the raw contents", content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored", body = FileRecord),
        (status = 400, description = "No file in the request", body = Problem),
        (status = 404, description = "No such bucket", body = Problem),
        (status = 408, description = "The client stopped sending", body = Problem),
        (status = 413, description = "Larger than the bucket allows", body = Problem),
        (status = 415, description = "A type the bucket refuses", body = Problem),
        (status = 503, description = "Storage or a database is down", body = Problem),
    )
)]
async fn upload(
    State(state): State<AppState>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bucket_name = query.bucket.unwrap_or_else(|| "default".to_owned());
    let bucket = state
        .storage
        .bucket(&bucket_name)
        .ok_or_else(|| unknown_bucket(&state, &bucket_name))?
        .clone();
    let limit = bucket.max_file_size.0;
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
                let name = names::clean_name(
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
                };
                let upload = state.storage.upload(key.clone(), limit);
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
            let name = names::clean_name(given);
            let expected = Expected {
                bucket: &bucket,
                name: &name,
                declared: content_type.as_deref(),
            };
            let upload = state.storage.upload(key.clone(), limit);
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
    if let Err(error) = files::insert(&state.db, &record).await {
        // No row, so no object either; the sweep catches this delete failing too.
        let _ = state.storage.store().delete(&key).await;
        return Err(error.into());
    }
    metrics::counter!("switchyard_storage_upload_bytes_total").increment(stored.size);
    state
        .events
        .emit(file_event("files.created", &record))
        .await;
    let location = HeaderValue::from_str(&format!("{UPLOAD_PATH}/{id}"))
        .unwrap_or(HeaderValue::from_static(UPLOAD_PATH));
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

fn upload_error(error: UploadError) -> ApiError {
    match error {
        UploadError::TooLarge { limit } => too_large(limit),
        UploadError::TypeRefused { .. } => ApiError::UnsupportedMediaType(error.to_string()),
        UploadError::Store(cause) => storage_down(cause),
    }
}

fn multipart_error(error: multer::Error) -> ApiError {
    ApiError::BadRequest(format!("the multipart body is not valid: {error}"))
}

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge {
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
    }
}

fn storage_down(cause: object_store::Error) -> ApiError {
    ApiError::DependencyDown {
        what: "object storage",
        cause: cause.into(),
    }
}

fn unknown_bucket(state: &AppState, name: &str) -> ApiError {
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

fn file_event(action: &'static str, file: &FileRecord) -> Event {
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this bucket's files.
    pub bucket: Option<String>,
    /// Only files whose name starts with this, matched literally.
    pub name_prefix: Option<String>,
    /// 1 to 200; 50 when absent.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FilePage {
    pub files: Vec<FileRecord>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Files, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/files",
    tag = "files",
    security(("admin_token" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of files", body = FilePage),
        (status = 404, description = "No such bucket", body = Problem),
        (status = 422, description = "Bad limit or cursor", body = Problem),
    )
)]
async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<FilePage>, ApiError> {
    if let Some(bucket) = &query.bucket
        && state.storage.bucket(bucket).is_none()
    {
        return Err(unknown_bucket(&state, bucket));
    }
    let limit = super::queues::page_limit(query.limit)?;
    let page = files::list(
        &state.db,
        Filter {
            bucket: query.bucket.as_deref(),
            name_prefix: query.name_prefix.as_deref(),
            limit,
            cursor: query.cursor.as_deref(),
        },
    )
    .await?
    .map_err(|bad| Invalid::new("cursor", bad.to_string()))?;
    Ok(axum::Json(FilePage {
        files: page.files,
        next_cursor: page.next_cursor,
    }))
}

/// A file's metadata.
#[utoipa::path(
    get,
    path = "/api/v1/files/{id}",
    tag = "files",
    security(("admin_token" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The file", body = FileRecord),
        (status = 404, description = "No such file", body = Problem),
    )
)]
async fn get_file(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<FileRecord>, ApiError> {
    Ok(axum::Json(find(&state, &id).await?))
}

/// Deletes a file: its object, then its row. Repeating a delete that failed half-way
/// finishes it.
#[utoipa::path(
    delete,
    path = "/api/v1/files/{id}",
    tag = "files",
    security(("admin_token" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such file", body = Problem),
        (status = 503, description = "Storage or a database is down", body = Problem),
    )
)]
async fn delete_file(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let file = find(&state, &id).await?;
    let key = object_store::path::Path::from(file.object_key.as_str());
    match state.storage.store().delete(&key).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(error) => return Err(storage_down(error)),
    }
    if files::delete(&state.db, file.id).await? {
        state.events.emit(file_event("files.deleted", &file)).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// What a signed URL should allow.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// Lifetime in seconds, up to a week; `storage.signed_url_ttl_seconds` when absent.
    pub expires_in_seconds: Option<u64>,
    /// Serve it as an attachment (a download) even when a browser could show it.
    #[serde(default)]
    pub download: bool,
    /// Also return an S3 presigned URL straight to the bucket (S3 backends only).
    #[serde(default)]
    pub presigned: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedUrl {
    /// Works without the admin token until `expires_at`.
    pub url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The S3 presigned URL, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presigned_url: Option<String>,
}

/// A time-limited download URL that needs no token: for browsers of the user's app.
#[utoipa::path(
    post,
    path = "/api/v1/files/{id}/url",
    tag = "files",
    security(("admin_token" = [])),
    params(("id" = String, Path)),
    request_body(content = Option<SignRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "The URL", body = SignedUrl),
        (status = 404, description = "No such file", body = Problem),
        (status = 422, description = "A bad lifetime, or a presigned URL on the local backend", body = Problem),
        (status = 503, description = "app.secret is not configured", body = Problem),
    )
)]
async fn sign_url(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<axum::Json<SignedUrl>, ApiError> {
    let base = link_base(&state, request.headers());
    // The body is optional: an empty one takes every default.
    let (parts, body) = request.into_parts();
    let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, 64 * 1024))
        .await
        .map_err(|e| ApiError::BadRequest(format!("the request body could not be read: {e}")))?
        .to_bytes();
    let options = if body.is_empty() {
        SignRequest::default()
    } else {
        let request = Request::from_parts(parts, Body::from(body));
        Json::<SignRequest>::from_request(request, &state).await?.0
    };
    let lifetime = options
        .expires_in_seconds
        .unwrap_or(state.storage.settings().signed_url_ttl_seconds);
    if !(1..=604_800).contains(&lifetime) {
        return Err(Invalid::new(
            "expires_in_seconds",
            "must be between 1 and 604800 (a week)",
        )
        .into());
    }
    let key = state.storage.url_key().ok_or_else(|| {
        ApiError::Unavailable("signed URLs need a signing key: set app.secret (APP_SECRET)".into())
    })?;
    let file = find(&state, &id).await?;
    let expires_at = chrono::Utc::now() + chrono::Duration::seconds(lifetime as i64);
    let expires = expires_at.timestamp();
    let signature = key.sign(file.id, expires);
    let mut url = format!(
        "{base}{UPLOAD_PATH}/{}/content?expires={expires}&signature={signature}",
        file.id
    );
    if options.download {
        url.push_str("&download=true");
    }
    let presigned_url = if options.presigned {
        let object = object_store::path::Path::from(file.object_key.as_str());
        match state
            .storage
            .presign(&object, Duration::from_secs(lifetime))
            .await
        {
            Some(signed) => Some(signed?.to_string()),
            None => {
                return Err(Invalid::new(
                    "presigned",
                    "the local storage backend has no presigned URLs; use `url`",
                )
                .into());
            }
        }
    } else {
        None
    };
    Ok(axum::Json(SignedUrl {
        url,
        expires_at,
        presigned_url,
    }))
}

/// Where links point: `app.public_url`, Railway's public domain, else the host this
/// request came to (it carries the admin token, so its `Host` is trusted).
fn link_base(state: &AppState, headers: &HeaderMap) -> String {
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentQuery {
    /// Of a signed URL: when it expires (unix seconds).
    pub expires: Option<i64>,
    /// Of a signed URL: its signature.
    pub signature: Option<String>,
    /// Serve as an attachment.
    #[serde(default)]
    pub download: bool,
}

/// Downloads a file. Needs the admin token, a signed URL's `expires` and `signature`, or
/// a public bucket. Supports one `Range` (206, or 416 when no byte of it exists),
/// `If-None-Match` (304) and `If-Range`.
#[utoipa::path(
    get,
    path = "/api/v1/files/{id}/content",
    tag = "files",
    params(("id" = String, Path), ContentQuery),
    responses(
        (status = 200, description = "The contents", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range", content_type = "application/octet-stream"),
        (status = 304, description = "Unchanged (If-None-Match)"),
        (status = 401, description = "No credentials", body = Problem),
        (status = 403, description = "An expired or tampered signed URL", body = Problem),
        (status = 404, description = "No such file", body = Problem),
        (status = 416, description = "No byte of the range exists", body = Problem),
        (status = 503, description = "Storage is down", body = Problem),
    )
)]
async fn content(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ContentQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let admin = auth::is_admin(&state, &headers);
    let signed = match (&query.expires, &query.signature) {
        (Some(expires), Some(signature)) if !admin => {
            let parsed = id
                .parse::<uuid::Uuid>()
                .map_err(|_| forbidden_url(signed::Refusal::BadSignature))?;
            let key = state
                .storage
                .url_key()
                .ok_or_else(|| forbidden_url(signed::Refusal::BadSignature))?;
            key.verify(parsed, *expires, signature, chrono::Utc::now().timestamp())
                .map_err(forbidden_url)?;
            true
        }
        (None, None) => false,
        _ if admin => false,
        _ => return Err(forbidden_url(signed::Refusal::BadSignature)),
    };
    let file = if admin || signed {
        find(&state, &id).await?
    } else {
        // Without credentials, a missing file and a private one look the same.
        match find(&state, &id).await {
            Ok(file) if state.storage.bucket(&file.bucket).is_some_and(|b| b.public) => file,
            Ok(_) | Err(ApiError::NotFound(_)) => return Err(ApiError::Unauthorized),
            Err(other) => return Err(other),
        }
    };
    let size = file.size as u64;
    let etag = format!("\"{}\"", file.sha256);
    let public = state.storage.bucket(&file.bucket).is_some_and(|b| b.public);
    let mut response_headers = HeaderMap::new();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            response_headers.insert(name, value);
        }
    };
    set(header::ETAG, &etag);
    set(header::ACCEPT_RANGES, "bytes");
    set(
        header::CACHE_CONTROL,
        if public {
            "public, max-age=31536000, immutable"
        } else {
            "private, no-cache"
        },
    );
    set(
        header::LAST_MODIFIED,
        &file
            .created_at
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string(),
    );
    if etag_matches(&headers, &file.sha256) {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }
    let range_applies = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.as_bytes() == etag.as_bytes());
    let wanted = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) if range_applies => range::wanted(value, size),
        _ => Wanted::Whole,
    };
    let part = match wanted {
        Wanted::Whole => None,
        Wanted::Part(part) => Some(part),
        Wanted::Unsatisfiable => {
            let mut response = ApiError::RangeNotSatisfiable(format!(
                "the range asks for bytes past the end of this {size}-byte file"
            ))
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
    };
    let inline = names::shows_inline(&file.content_type) && !query.download;
    set(header::CONTENT_TYPE, &file.content_type);
    set(
        header::CONTENT_DISPOSITION,
        &names::disposition(&file.name, inline),
    );
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    let (status, length) = match &part {
        Some(part) => {
            set(
                header::CONTENT_RANGE,
                &format!("bytes {}-{}/{size}", part.start, part.end - 1),
            );
            (StatusCode::PARTIAL_CONTENT, part.end - part.start)
        }
        None => (StatusCode::OK, size),
    };
    set(header::CONTENT_LENGTH, &length.to_string());
    if method == Method::HEAD {
        // The headers alone: no need to open the object.
        return Ok((status, response_headers).into_response());
    }
    let body = open_body(&state, &file, part).await?;
    metrics::counter!("switchyard_storage_download_bytes_total").increment(length);
    Ok((status, response_headers, body).into_response())
}

fn forbidden_url(refusal: signed::Refusal) -> ApiError {
    ApiError::Forbidden(refusal.to_string())
}

/// Whether `If-None-Match` names this file's ETag (weak or strong) or `*`.
fn etag_matches(headers: &HeaderMap, sha256: &str) -> bool {
    let Some(value) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == sha256)
}

/// The object's bytes as a response body. A file on local disk is read in large chunks
/// directly; any other store's stream is passed through.
async fn open_body(
    state: &AppState,
    file: &FileRecord,
    part: Option<std::ops::Range<u64>>,
) -> Result<Body, ApiError> {
    let key = object_store::path::Path::from(file.object_key.as_str());
    let options = GetOptions {
        range: part.clone().map(GetRange::Bounded),
        ..Default::default()
    };
    let result = match state.storage.store().get_opts(&key, options).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => {
            tracing::error!(file_id = %file.id, key = %key, "a file's record names an object that is missing");
            return Err(ApiError::NotFound(
                "the file's contents are missing from storage".into(),
            ));
        }
        Err(error) => return Err(storage_down(error)),
    };
    let range = result.range.clone();
    Ok(match result.payload {
        GetResultPayload::File(file, _) => Body::from_stream(local::read_ahead(file, range)),
        GetResultPayload::Stream(stream) => Body::from_stream(stream),
    })
}

/// The file `id` names, or 404.
async fn find(state: &AppState, id: &str) -> Result<FileRecord, ApiError> {
    let missing = || ApiError::NotFound(format!("no file {id:?}"));
    let id: uuid::Uuid = id.parse().map_err(|_| missing())?;
    files::get(&state.db, id).await?.ok_or_else(missing)
}
