//! Extractors whose rejections are problem documents with the right status: malformed
//! JSON is 400, a missing JSON content type 415, a well-formed body of the wrong shape 422
//! and a body over `http.body_limit_bytes` 413, whether it declared its length or streamed.
//!
//! Request bodies are read through these extractors, which apply the configured limit
//! themselves: a declared `Content-Length` over it is refused before a byte is read, and
//! a body without one as soon as it passes the limit.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use super::context::current_body_limit;
use super::problem::ApiError;

/// The limit outside a request (tests calling an extractor directly): the default.
const FALLBACK_LIMIT: usize = 1024 * 1024;

/// A JSON request body.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || v.ends_with("+json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as JSON with Content-Type: application/json".into(),
            ));
        }
        let limit = current_body_limit().unwrap_or(FALLBACK_LIMIT);
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        let body = Limited::new(request.into_body(), limit)
            .collect()
            .await
            .map_err(|error| {
                if error.downcast_ref::<LengthLimitError>().is_some() {
                    ApiError::PayloadTooLarge { limit }
                } else {
                    ApiError::BadRequest(format!("the request body could not be read: {error}"))
                }
            })?
            .to_bytes();
        serde_json::from_slice(&body)
            .map(Self)
            .map_err(|error| match error.classify() {
                Category::Data => ApiError::Unprocessable(error.to_string()),
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::MalformedJson(error.to_string())
                }
            })
    }
}
