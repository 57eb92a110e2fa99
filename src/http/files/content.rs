//! `GET /api/v1/files/{id}/content`: the download. Authorized by credentials with
//! `files:read`, a signed URL or a public bucket; one `Range`, `If-None-Match` and
//! `If-Range`; local files read ahead in large chunks, other stores streamed through.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use object_store::{GetOptions, GetRange, GetResultPayload};
use serde::Deserialize;
use utoipa::IntoParams;

use super::shared::{find, storage_down};
use crate::auth::scopes::FILES_READ;
use crate::http::auth;
use crate::http::problem::{ApiError, Problem};
use crate::state::AppState;
use crate::storage::files::FileRecord;
use crate::storage::range::{self, Wanted};
use crate::storage::{local, names, signed};

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

/// Downloads a file. Needs credentials with `files:read` (a key, or the console's session
/// cookie), a signed URL's `expires` and `signature`, or a public bucket. Supports one `Range` (206, or 416 when no byte of it exists),
/// `If-None-Match` (304) and `If-Range`.
#[utoipa::path(
    get,
    path = "/api/v1/files/{id}/content",
    tag = "files",
    security(("api_key" = ["files:read"]), ()),
    params(("id" = String, Path), ContentQuery),
    responses(
        (status = 200, description = "The contents", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range", content_type = "application/octet-stream"),
        (status = 304, description = "Unchanged (If-None-Match)"),
        (status = 401, description = "No credentials", body = Problem),
        (status = 403, description = "An expired or tampered signed URL, or credentials without files:read", body = Problem),
        (status = 404, description = "No such file", body = Problem),
        (status = 416, description = "No byte of the range exists", body = Problem),
        (status = 503, description = "Storage is down", body = Problem),
    )
)]
pub(super) async fn content(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ContentQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = auth::reader(&state, &headers).await?;
    let admin = caller.as_ref().is_some_and(|c| c.allows(FILES_READ));
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
            Ok(_) | Err(ApiError::NotFound(_)) if caller.is_some() => {
                return Err(ApiError::MissingScope(FILES_READ));
            }
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
