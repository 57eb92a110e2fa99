//! `/api/v1/files`: streaming upload ([`upload`]), listing, metadata, delete, signed
//! download URLs, upload tokens and presigned uploads for browsers ([`tokens`]), and the
//! download itself with ranges and conditional requests ([`content`]).
//!
//! [`router`] holds the admin-token routes. [`content_router`] holds the download, which
//! authorizes itself: credentials with `files:read`, a signed URL, or a public bucket.
//!
//! Uploads stream: their route is declared with
//! [`StreamsBody`](super::streaming::StreamsBody), so the request deadline does not cut them
//! off; the bucket's `max_file_size` bounds them instead, and
//! `http.request_timeout_seconds` bounds each silence of the client.

mod content;
mod shared;
mod tokens;
mod upload;

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Extension, FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Json;
use super::pagination::page_limit;
use super::problem::{ApiError, Problem};
use super::streaming::StreamsBody;
use crate::auth::Caller;
use crate::invalid::Invalid;
use crate::state::AppState;
use crate::storage::files::{self, FileRecord, Filter};
use shared::{FILES_PATH, file_event, find, link_base, storage_down, unknown_bucket, with_event};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload::upload))
        .route_layer(StreamsBody)
        .routes(routes!(list))
        .routes(routes!(buckets))
        .routes(routes!(get_file, delete_file))
        .routes(routes!(sign_url))
        .routes(routes!(tokens::create))
        .routes(routes!(tokens::complete))
}

/// The download, open to signed URLs and public buckets.
pub fn content_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(content::content))
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
    security(("api_key" = ["files:read"])),
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
    let limit = page_limit(query.limit)?;
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

/// One declared bucket and its rules.
#[derive(Debug, Serialize, ToSchema)]
pub struct BucketView {
    pub name: String,
    /// Bytes.
    pub max_file_size: u64,
    /// Accepted types and extensions; empty accepts any.
    pub allowed_types: Vec<String>,
    /// Downloads need no credentials.
    pub public: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BucketList {
    pub buckets: Vec<BucketView>,
}

/// The buckets declared in `storage.buckets`, with their limits.
#[utoipa::path(
    get,
    path = "/api/v1/files/buckets",
    tag = "files",
    security(("api_key" = ["files:read"])),
    responses((status = 200, description = "The buckets", body = BucketList))
)]
async fn buckets(State(state): State<AppState>) -> axum::Json<BucketList> {
    let buckets = state
        .storage
        .settings()
        .buckets
        .iter()
        .map(|(name, bucket)| BucketView {
            name: name.clone(),
            max_file_size: bucket.max_file_size.0,
            allowed_types: bucket.allowed_types.clone(),
            public: bucket.public,
        })
        .collect();
    axum::Json(BucketList { buckets })
}

/// A file's metadata.
#[utoipa::path(
    get,
    path = "/api/v1/files/{id}",
    tag = "files",
    security(("api_key" = ["files:read"])),
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
    security(("api_key" = ["files:write"])),
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such file", body = Problem),
        (status = 503, description = "Storage or a database is down", body = Problem),
    )
)]
async fn delete_file(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let file = find(&state, &id).await?;
    let key = object_store::path::Path::from(file.object_key.as_str());
    match state.storage.store().delete(&key).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(error) => return Err(storage_down(error)),
    }
    // A delete that found no row (a repeat) records no event.
    let event = file_event("files.deleted", &file, &caller.actor());
    with_event(&state, event, async |tx| files::delete(tx, file.id).await).await?;
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
    /// Works without credentials until `expires_at`.
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
    security(("api_key" = ["files:read"])),
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
        "{base}{FILES_PATH}/{}/content?expires={expires}&signature={signature}",
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
