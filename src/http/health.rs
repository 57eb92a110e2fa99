//! `GET /api/health` (dependencies, 200 or 503) and `GET /api/health/live` (the process
//! answers). Both are open, as platform health checks send no token; any `Host` header,
//! Railway's `healthcheck.railway.app` included, is accepted.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::health::HealthReport;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health_check))
        .routes(routes!(liveness))
}

/// Readiness: every dependency answers within its bound.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "operations",
    responses(
        (status = 200, description = "Every dependency is up", body = HealthReport),
        (status = 503, description = "A dependency is down", body = HealthReport),
    )
)]
async fn health_check(State(state): State<AppState>) -> Response {
    let report = state
        .health
        .check(&state.db, &state.redis, &state.storage)
        .await;
    let status = if report.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

#[derive(Serialize, ToSchema)]
struct Alive {
    #[schema(example = "alive")]
    status: &'static str,
}

/// Liveness: the process runs and serves HTTP. Touches no dependency.
#[utoipa::path(
    get,
    path = "/api/health/live",
    tag = "operations",
    responses((status = 200, description = "The process is running", body = Alive))
)]
async fn liveness() -> impl IntoResponse {
    // A constant body: probes are frequent and this one never varies.
    const ALIVE: &str = r#"{"status":"alive"}"#;
    ([(header::CONTENT_TYPE, "application/json")], ALIVE)
}
