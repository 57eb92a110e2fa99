//! Uploads from browsers: `POST /api/v1/files/upload-tokens` makes an upload token
//! ([`crate::storage::grants`]) a backend hands to a browser, which then posts the file to
//! `POST /api/v1/files` with it. On S3 backends the answer also carries a presigned POST
//! form, so the browser can send the bytes straight to the bucket; it then calls
//! `POST /api/v1/files/complete`, which checks the object (size, and type from its first
//! bytes) and only then records the file. A refused object is removed.

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::shared::{
    FILES_PATH, file_event, link_base, no_bucket, unknown_bucket, upload_error, with_event,
};
use crate::auth::Caller;
use crate::config::valid_type_pattern;
use crate::http::extract::Json;
use crate::http::problem::{ApiError, Problem};
use crate::invalid::Invalid;
use crate::state::AppState;
use crate::storage::files::{self, FileRecord};
use crate::storage::grants::{self, Grant, MAX_LIFETIME_SECONDS};
use crate::storage::post_policy::PresignedPost;
use crate::storage::upload::{self, Expected, UploadError};

/// Types a token may name at most.
const MAX_TYPES: usize = 32;
/// The longest name prefix, in bytes.
const MAX_PREFIX_BYTES: usize = 100;

/// What an upload token allows.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadTokenRequest {
    /// A bucket declared in `storage.buckets`.
    pub bucket: String,
    /// Bytes, at most the bucket's `max_file_size` (also the default).
    pub max_size: Option<u64>,
    /// Media types (`image/png`), families (`image/*`) or extensions (`.pdf`) accepted,
    /// on top of the bucket's own rule; any the bucket accepts when absent.
    #[serde(default)]
    pub content_types: Vec<String>,
    /// 1 to 86,400.
    pub expires_in_seconds: u64,
    /// Every file made with the token is named under this (`user-42-`); the client's name
    /// gets it prepended when it lacks it.
    pub name_prefix: Option<String>,
    /// The token makes one file, then is refused.
    #[serde(default)]
    pub single_use: bool,
}

impl UploadTokenRequest {
    /// The grant this asks for, or the field that is wrong.
    fn grant(self, state: &AppState, issuer: String) -> Result<Grant, Invalid> {
        let bucket = state
            .storage
            .bucket(&self.bucket)
            .ok_or_else(|| Invalid::new("bucket", no_bucket(state, &self.bucket)))?;
        if !(1..=MAX_LIFETIME_SECONDS).contains(&self.expires_in_seconds) {
            return Err(Invalid::new(
                "expires_in_seconds",
                format!("must be 1 to {MAX_LIFETIME_SECONDS}"),
            ));
        }
        let bucket_max = bucket.max_file_size.0;
        let max_size = self.max_size.unwrap_or(bucket_max);
        if !(1..=bucket_max).contains(&max_size) {
            return Err(Invalid::new(
                "max_size",
                format!(
                    "must be 1 to {bucket_max}, the bucket {:?}'s max_file_size",
                    self.bucket
                ),
            ));
        }
        if self.content_types.len() > MAX_TYPES {
            return Err(Invalid::new(
                "content_types",
                format!("at most {MAX_TYPES} types"),
            ));
        }
        if let Some(bad) = self.content_types.iter().find(|t| !valid_type_pattern(t)) {
            return Err(Invalid::new(
                "content_types",
                format!(
                    "{bad:?} is not a media type (image/png), a family (image/*) or an extension (.pdf)"
                ),
            ));
        }
        if let Some(prefix) = &self.name_prefix
            && (prefix.is_empty()
                || prefix.len() > MAX_PREFIX_BYTES
                || crate::storage::names::clean_name(prefix) != *prefix)
        {
            return Err(Invalid::new(
                "name_prefix",
                format!(
                    "must be 1 to {MAX_PREFIX_BYTES} bytes of a file name: no slashes, control \
                     characters or leading dots"
                ),
            ));
        }
        let expires = chrono::Utc::now().timestamp() + self.expires_in_seconds as i64;
        Ok(Grant {
            id: uuid::Uuid::now_v7(),
            bucket: self.bucket,
            max_size,
            content_types: self.content_types,
            name_prefix: self.name_prefix,
            single_use: self.single_use,
            expires,
            issuer,
        })
    }
}

/// An upload token and where to use it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadToken {
    /// The token's id; also the id of the file a presigned POST makes.
    pub id: uuid::Uuid,
    /// `Authorization: Bearer <token>` or `?token=<token>` on `upload_url`.
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub bucket: String,
    pub max_size: u64,
    pub content_types: Vec<String>,
    pub name_prefix: Option<String>,
    pub single_use: bool,
    /// Where a browser posts the file (multipart field `file`, or the raw body with
    /// `&name=`).
    pub upload_url: String,
    /// S3 backends with static credentials: a form that posts the file straight to the
    /// bucket; then call `POST /api/v1/files/complete` with the token.
    pub presigned_post: Option<PresignedPost>,
}

/// Makes an upload token a browser can upload one kind of file with, and nothing else.
#[utoipa::path(
    post,
    path = "/api/v1/files/upload-tokens",
    tag = "files",
    security(("api_key" = ["files:write"])),
    request_body = UploadTokenRequest,
    responses(
        (status = 201, description = "The token", body = UploadToken),
        (status = 422, description = "A bad bucket, size, type, prefix or lifetime", body = Problem),
        (status = 503, description = "No app.secret to sign tokens with", body = Problem),
    )
)]
pub(super) async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Json(request): Json<UploadTokenRequest>,
) -> Result<Response, ApiError> {
    let key = state.storage.grant_key().ok_or_else(|| {
        ApiError::Unavailable(
            "upload tokens need a signing key: set app.secret (APP_SECRET)".into(),
        )
    })?;
    let grant = request.grant(&state, caller.actor())?;
    let token = key.sign(&grant);
    let now = chrono::Utc::now();
    let expires_at = chrono::DateTime::from_timestamp(grant.expires, 0).unwrap_or(now);
    let presigned_post = state.storage.post_signer().map(|signer| {
        let object = state.storage.object_key(&grant.bucket, grant.id);
        signer.form(
            object.as_ref(),
            grant.max_size,
            single_type(&grant.content_types),
            expires_at,
            now,
        )
    });
    let upload_url = format!(
        "{}{FILES_PATH}?bucket={}",
        link_base(&state, &headers),
        url::form_urlencoded::byte_serialize(grant.bucket.as_bytes()).collect::<String>()
    );
    let answer = UploadToken {
        id: grant.id,
        token,
        expires_at,
        bucket: grant.bucket,
        max_size: grant.max_size,
        content_types: grant.content_types,
        name_prefix: grant.name_prefix,
        single_use: grant.single_use,
        upload_url,
        presigned_post,
    };
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}

/// The one exact media type a token names, which the form then pins; with a family,
/// several or none, the object's type is judged from its bytes on completion alone.
fn single_type(types: &[String]) -> Option<&str> {
    match types {
        [only] if only.contains('/') && !only.ends_with("/*") => Some(only),
        _ => None,
    }
}

/// Which presigned upload to record.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// The upload token, when the request is not made with it.
    pub token: Option<String>,
    /// The file's name (under the token's prefix); `file` when absent.
    pub name: Option<String>,
}

/// Records the file a browser posted straight to the bucket with the token's presigned
/// form, once the object is checked: its size within the token's and bucket's limits,
/// its type (from its first bytes) within theirs. A refused object is removed. Calling
/// it again for a recorded file answers that file.
#[utoipa::path(
    post,
    path = "/api/v1/files/complete",
    tag = "files",
    security(("api_key" = ["files:write"]), ("upload_token" = [])),
    request_body = CompleteRequest,
    responses(
        (status = 201, description = "Recorded", body = FileRecord),
        (status = 200, description = "Already recorded", body = FileRecord),
        (status = 401, description = "The upload token expired, was tampered with or was already used", body = Problem),
        (status = 404, description = "Nothing was posted with this token yet", body = Problem),
        (status = 409, description = "Not an S3 backend: upload to POST /api/v1/files", body = Problem),
        (status = 413, description = "The object is larger than the token allows; it was removed", body = Problem),
        (status = 415, description = "The object's type is refused; it was removed", body = Problem),
        (status = 422, description = "No token given", body = Problem),
    )
)]
pub(super) async fn complete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(request): Json<CompleteRequest>,
) -> Result<Response, ApiError> {
    let grant = match (caller, request.token.as_deref()) {
        (Caller::Upload(grant), _) => grant,
        (_, Some(token)) => crate::http::auth::upload_grant(&state, token).await??,
        (_, None) => {
            return Err(Invalid::new(
                "token",
                "call with the upload token, or name it in the body as token",
            )
            .into());
        }
    };
    if state.storage.post_signer().is_none() {
        return Err(ApiError::Conflict(
            "this deployment offers no presigned uploads (an S3 backend with an access key \
             does); upload to POST /api/v1/files"
                .into(),
        ));
    }
    let bucket = state
        .storage
        .bucket(&grant.bucket)
        .ok_or_else(|| unknown_bucket(&state, &grant.bucket))?
        .clone();
    let key = state.storage.object_key(&grant.bucket, grant.id);
    let name = grant.name(request.name.as_deref().unwrap_or("file"));
    if let Some(recorded) = files::get(&state.db, grant.id).await? {
        return Ok((StatusCode::OK, axum::Json(recorded)).into_response());
    }
    let expected = Expected {
        bucket: &bucket,
        name: &name,
        declared: None,
        grant: Some(&grant),
    };
    let limit = grant.max_size.min(bucket.max_file_size.0);
    let stored = match upload::inspect(state.storage.store().as_ref(), &key, limit, &expected).await
    {
        Ok(stored) => stored,
        Err(UploadError::Store(object_store::Error::NotFound { .. })) => {
            return Err(ApiError::NotFound(
                "nothing has been posted with this token's form yet".into(),
            ));
        }
        Err(refused @ (UploadError::TooLarge { .. } | UploadError::TypeRefused { .. })) => {
            let _ = state.storage.store().delete(&key).await;
            return Err(upload_error(refused));
        }
        Err(failed) => return Err(upload_error(failed)),
    };
    let record = FileRecord {
        id: grant.id,
        bucket: grant.bucket.clone(),
        name,
        size: stored.size as i64,
        content_type: stored.content_type,
        sha256: stored.sha256,
        created_at: chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6),
        object_key: key.as_ref().to_owned(),
    };
    let event = file_event("files.created", &record, &grant.actor());
    // The token's use row is the lock: two completions racing record one file.
    let insert = async |tx: &mut sqlx::PgConnection| {
        if !grants::claim(tx, &grant, record.id).await? {
            return Ok(false);
        }
        files::insert(tx, &record).await.map(|()| true)
    };
    if !with_event(&state, event, insert).await? {
        return match files::get(&state.db, grant.id).await? {
            Some(recorded) => Ok((StatusCode::OK, axum::Json(recorded)).into_response()),
            None => {
                // The token made another file first; this object has no row to come.
                let _ = state.storage.store().delete(&key).await;
                Err(ApiError::TokenRefused(grants::Refusal::Used.to_string()))
            }
        };
    }
    metrics::counter!("switchyard_storage_upload_bytes_total").increment(stored.size);
    let location = format!("{FILES_PATH}/{}", record.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(record),
    )
        .into_response())
}
