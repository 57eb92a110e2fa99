//! The one error shape of the API: RFC 9457 `application/problem+json`. Handlers return
//! [`ApiError`]; its variants fix the status and a stable snake_case `code`. A 5xx body
//! says nothing internal; its cause is logged once, here, with the request id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::context::current_request_id;

/// Every failure a handler can report.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error(
        "this endpoint needs credentials: send Authorization: Bearer <an API key or the admin token>"
    )]
    Unauthorized,
    /// An upload token that does not open anything, with the reason (it is meant for
    /// browsers, whose developers need to know which).
    #[error("{0}")]
    TokenRefused(String),
    /// The caller is known but lacks the scope the route needs; the body names it.
    #[error("this endpoint needs the scope {0}, which these credentials do not have")]
    MissingScope(crate::auth::scopes::Scope),
    #[error("{0}")]
    Forbidden(String),
    /// A console request that changes something came without its session's CSRF token.
    #[error(
        "this request changes something and needs the console session's CSRF token in X-CSRF-Token"
    )]
    Csrf,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A field too large to accept; the body names it in `field`.
    #[error("{0}")]
    FieldTooLarge(crate::invalid::Invalid),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    /// A field that is not acceptable; the body names it in `field`.
    #[error("{0}")]
    Invalid(#[from] crate::invalid::Invalid),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    Unavailable(String),
    /// A capacity of this process is in use (every upload slot): retry in a few seconds.
    #[error("{0}")]
    Busy(String),
    #[error("the request took longer than {seconds}s and was cancelled")]
    Timeout { seconds: u64 },
    /// The client stopped sending its body.
    #[error("no part of the request body arrived for {seconds}s")]
    BodyTimeout { seconds: u64 },
    #[error("{0}")]
    RangeNotSatisfiable(String),
    #[error("the request target is longer than {limit} bytes")]
    UriTooLong { limit: usize },
    #[error("the request's headers are larger than {limit} bytes in all")]
    HeadersTooLarge { limit: usize },
    /// Postgres or Redis did not answer: worth retrying. The cause is logged, not sent.
    #[error("{what} is unavailable right now; retry shortly")]
    DependencyDown {
        what: &'static str,
        cause: anyhow::Error,
    },
    /// The database lacks tables or columns this release uses: its migrations have not
    /// run. The cause is logged, not sent.
    #[error(
        "the database schema is behind this release: run `app migrate` (the pre-deploy command) and retry"
    )]
    SchemaNotMigrated(anyhow::Error),
    /// Anything unexpected. Its message never reaches the client.
    #[error("internal error")]
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::TokenRefused(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::MissingScope(_) | Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } | Self::FieldTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) | Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Unavailable(_)
            | Self::Busy(_)
            | Self::Timeout { .. }
            | Self::DependencyDown { .. }
            | Self::SchemaNotMigrated(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::MalformedJson(_) => "malformed_json",
            Self::Unauthorized | Self::TokenRefused(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Csrf => "csrf_token_invalid",
            Self::MissingScope(_) => "insufficient_scope",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge { .. } | Self::FieldTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Unprocessable(_) | Self::Invalid(_) => "validation_failed",
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Busy(_) => "busy",
            Self::Timeout { .. } => "request_timeout",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::RangeNotSatisfiable(_) => "range_not_satisfiable",
            Self::UriTooLong { .. } => "uri_too_long",
            Self::HeadersTooLarge { .. } => "headers_too_large",
            Self::DependencyDown { .. } => "dependency_unavailable",
            Self::SchemaNotMigrated(_) => "schema_not_migrated",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl From<anyhow::Error> for ApiError {
    /// A connection or timeout failure of Postgres or Redis anywhere in the chain is a
    /// 503 the client may retry; anything else is a 500.
    fn from(cause: anyhow::Error) -> Self {
        let unmigrated = cause
            .chain()
            .any(|e| e.downcast_ref::<sqlx::Error>().is_some_and(schema_missing));
        if unmigrated {
            return Self::SchemaNotMigrated(cause);
        }
        let down = cause.chain().find_map(|e| {
            if let Some(redis) = e.downcast_ref::<deadpool_redis::redis::RedisError>() {
                let transient = redis.is_io_error()
                    || redis.is_timeout()
                    || redis.is_connection_dropped()
                    || redis.is_connection_refusal();
                return transient.then_some("Redis");
            }
            if let Some(sql) = e.downcast_ref::<sqlx::Error>() {
                return postgres_unavailable(sql).then_some("PostgreSQL");
            }
            None
        });
        match down {
            Some(what) => Self::DependencyDown { what, cause },
            None => Self::Internal(cause),
        }
    }
}

/// Whether a query failed for want of a table or column (SQLSTATE 42P01, 42703): the
/// schema is older than this release.
fn schema_missing(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.code().is_some_and(|code| ["42P01", "42703"].contains(&code.as_ref())))
}

/// Whether Postgres failed as a dependency rather than on this request: unreachable, out
/// of pooled connections, or refusing the connection itself. A refused login (a rotated
/// password, a dropped role: SQLSTATE class 28), a database that is gone (3D000), a
/// server starting or shutting down (57P03) or full (53300) is the operator's to fix, and
/// the client may retry once it is; none is this request's fault.
fn postgres_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("28") || ["3D000", "57P03", "53300"].contains(&code.as_ref())
        }),
        _ => false,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = current_request_id().unwrap_or_default();
        match &self {
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), request_id, "request failed");
            }
            Self::SchemaNotMigrated(cause) => {
                tracing::warn!(
                    error = format!("{cause:#}"),
                    request_id,
                    "request failed: the database schema is behind; run `app migrate`"
                );
            }
            Self::DependencyDown { what, cause } => {
                tracing::warn!(
                    dependency = what,
                    error = format!("{cause:#}"),
                    request_id,
                    "request failed: a dependency is down"
                );
            }
            _ => {}
        }
        let mut problem = Problem::new(self.status(), self.code(), self.to_string());
        if let Self::Invalid(invalid) | Self::FieldTooLarge(invalid) = &self {
            problem.field = Some(invalid.field.clone());
        }
        if let Self::MissingScope(scope) = &self {
            problem.required_scope = Some(scope.to_string());
        }
        let mut response = problem.into_response();
        if matches!(
            self,
            Self::DependencyDown { .. } | Self::SchemaNotMigrated(_)
        ) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, Self::Busy(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if matches!(self, Self::Unauthorized | Self::TokenRefused(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:switchyard:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status phrase.
    pub title: String,
    pub status: u16,
    /// What went wrong, for a person.
    pub detail: String,
    /// A stable snake_case code, for a program.
    pub code: String,
    /// The request's `X-Request-Id`, to find it in the logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The request field at fault, as a dotted path (`payload.url`), for a 422 (and a 413
    /// that can tell which field is too large).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For a 403 `insufficient_scope`: the scope the route needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_scope: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:switchyard:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            request_id: current_request_id(),
            field: None,
            required_scope: None,
        }
    }

    /// A problem for a bare status produced below the handlers (routing, layers).
    pub fn for_status(status: StatusCode, detail: Option<String>) -> Self {
        let (code, default_detail) = match status {
            StatusCode::NOT_FOUND => ("not_found", "no route matches this path"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "this route does not accept this method; see the Allow header",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "this content type is not accepted here",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => ("validation_failed", "the request is not valid"),
            StatusCode::BAD_REQUEST => ("bad_request", "the request is not valid"),
            StatusCode::UNAUTHORIZED => ("unauthorized", "authentication is required"),
            StatusCode::FORBIDDEN => ("forbidden", "this request is not allowed"),
            StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests"),
            s if s.is_server_error() => ("internal_error", "internal error"),
            _ => ("error", "the request failed"),
        };
        // Server errors never carry a lower layer's text: it may be internal.
        let detail = match detail {
            Some(text) if !status.is_server_error() => text,
            _ => default_detail.to_string(),
        };
        Self::new(status, code, detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response()
    }
}

/// The problem document media type.
pub const PROBLEM_JSON: &str = "application/problem+json";
