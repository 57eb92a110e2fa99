//! Extractors whose rejections are problem documents with the right status: malformed
//! JSON is 400, a missing JSON content type 415, a well-formed body of the wrong shape 422
//! naming the JSON path at fault in `field` (`delay_seconds`, `jobs[500].run_at`), and a
//! body over `http.body_limit_bytes` 413, whether it declared its length or streamed.
//!
//! Request bodies are read through these extractors, which apply the configured limit
//! themselves: a declared `Content-Length` over it is refused before a byte is read, and
//! a body without one as soon as it passes the limit. The `Idempotency-Key` header, which
//! the jobs and events routes both take, is read here too.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use super::context::current_body_limit;
use super::problem::ApiError;
use crate::invalid::Invalid;

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
        decode(&body).map(Self)
    }
}

/// Decodes a whole body, tracking the path of whatever does not fit.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        rejection(error.into_inner(), &path)
    })?;
    // Trailing characters after the value, as serde_json::from_slice refuses them.
    deserializer.end().map_err(|error| rejection(error, "."))?;
    Ok(value)
}

/// The problem for a body that did not decode: 400 when it is not JSON at all, else 422
/// naming the field.
fn rejection(error: serde_json::Error, path: &str) -> ApiError {
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::MalformedJson(error.to_string())
        }
        Category::Data => {
            let message = without_position(&error);
            match field(path, &message) {
                Some(field) => Invalid::new(field, message).into(),
                None => ApiError::Unprocessable(message),
            }
        }
    }
}

/// serde_json's message without its ` at line 1 column 40`, which says nothing once the
/// field is named.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&position).unwrap_or(&text).to_owned()
}

/// The dotted path of the field at fault: where decoding stopped, plus the name of a
/// missing or unknown field, which serde reports on the object around it. `None` for the
/// body as a whole (an array where an object belongs).
fn field(path: &str, message: &str) -> Option<String> {
    let base = if path == "." { "" } else { path };
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let field = match named {
        Some(name) if base.is_empty() => name.to_owned(),
        Some(name) if !base.ends_with(name) => format!("{base}.{name}"),
        _ => base.to_owned(),
    };
    (!field.is_empty()).then_some(field)
}

/// The `Idempotency-Key` header, for clients that send the key there.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|v| Some(v.to_owned()))
            .map_err(|_| Invalid::new("Idempotency-Key", "must be visible ASCII").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn the_field_is_the_path_or_the_missing_or_unknown_name_under_it() {
        assert_eq!(
            field(
                "delay_seconds",
                "invalid type: string \"soon\", expected i64"
            ),
            Some("delay_seconds".into())
        );
        assert_eq!(
            field("jobs[500].run_at", "input contains invalid characters"),
            Some("jobs[500].run_at".into())
        );
        assert_eq!(field(".", "missing field `kind`"), Some("kind".into()));
        assert_eq!(
            field("jobs[2]", "missing field `kind`"),
            Some("jobs[2].kind".into())
        );
        assert_eq!(
            field(
                "colour",
                "unknown field `colour`, expected one of `kind`, `queue`"
            ),
            Some("colour".into())
        );
        assert_eq!(field(".", "invalid type: sequence, expected struct"), None);
    }
}
