//! The edge every request passes through: request id, body-size precheck, timeout, one
//! access-log line with metrics, and the rewrite of bare error responses from routing and
//! layers into problem documents.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::{ApiError, PROBLEM_JSON, Problem, REQUEST_ID};

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The limits the edge enforces, from `[http]`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub request_timeout: Duration,
    pub body_limit: usize,
}

/// The configured body limit, for extractors that report it.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// The matched route template (`/api/v1/jobs/{id}`), carried from routing back to the edge
/// on the response so that logs and metrics never use raw paths as labels.
#[derive(Clone, Debug)]
struct Route(String);

/// Copies the matched route onto the response; installed as a route layer.
pub async fn record_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Route(route));
    }
    response
}

/// The outermost middleware.
pub async fn edge(State(limits): State<Limits>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        request.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    request
        .extensions_mut()
        .insert(BodyLimit(limits.body_limit));
    let method = request.method().clone();
    // Upgraded connections (WebSockets) live as long as the client stays.
    let bounded = !request.headers().contains_key(header::UPGRADE);
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());

    let mut response = REQUEST_ID
        .scope(request_id.clone(), async move {
            if declared_length.is_some_and(|n| n > limits.body_limit as u64) {
                return ApiError::PayloadTooLarge {
                    limit: limits.body_limit,
                }
                .into_response();
            }
            let response = if bounded {
                match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) => ApiError::Timeout {
                        seconds: limits.request_timeout.as_secs(),
                    }
                    .into_response(),
                }
            } else {
                next.run(request).await
            };
            as_problem(response).await
        })
        .await;

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    let route = response
        .extensions()
        .get::<Route>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let duration_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    // Probes arrive every few seconds from the platform; keep them out of the info stream.
    if route.starts_with("/api/health") {
        tracing::debug!(method = %method, route, status, duration_ms, request_id, "request");
    } else {
        tracing::info!(method = %method, route, status, duration_ms, request_id, "request");
    }
    let method = method.to_string();
    metrics::counter!(
        "http_requests_total",
        "method" => method.clone(), "route" => route.clone(), "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
    response
}

/// Client-chosen ids are kept when they are short and printable, so a trace can cross
/// services; anything else is replaced.
fn acceptable_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic())
}

/// Rewrites an error response that has no JSON body (axum's empty 405, a layer's
/// plain-text rejection) into a problem document, keeping its headers (`Allow`,
/// `Retry-After`). Problem documents and JSON reports such as a 503 health body pass.
async fn as_problem(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            let v = v.as_bytes();
            v.starts_with(PROBLEM_JSON.as_bytes()) || v.starts_with(b"application/json")
        });
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let is_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    let (mut parts, body) = response.into_parts();
    let detail = if is_text && status.is_client_error() {
        axum::body::to_bytes(body, 1024)
            .await
            .ok()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .filter(|s| !s.trim().is_empty())
    } else {
        None
    };
    let problem = Problem::for_status(status, detail).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    let (problem_parts, problem_body) = problem.into_parts();
    for (name, value) in problem_parts.headers.iter() {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, Body::new(problem_body))
}

/// The answer for a path no route matches.
pub async fn not_found() -> Response {
    Problem::for_status(StatusCode::NOT_FOUND, None).into_response()
}

/// A handler panicked: the task survives, the client gets an opaque 500, the log gets
/// the panic message once.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    tracing::error!(panic = message, "handler panicked");
    Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR, None).into_response()
}
