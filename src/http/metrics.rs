//! `GET /api/metrics` (JSON: system, database, redis, queues, instances) and `GET /metrics`
//! (Prometheus text: the process's counters and histograms, and the figures
//! [`super::gauges`] reads at scrape time). Both need `metrics:read`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::ApiError;
use crate::instances::{self, Instance};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(metrics_json))
        .routes(routes!(prometheus))
}

#[derive(Serialize, ToSchema)]
struct Metrics {
    system: System,
    database: DatabasePool,
    redis: Redis,
    /// Per-queue counts and last-minute throughput, as `GET /api/v1/queues` gives them.
    queues: BTreeMap<String, crate::queue::QueueCounts>,
    /// Processes that heartbeated within the last minute.
    instances: Vec<Instance>,
}

#[derive(Serialize, ToSchema)]
struct System {
    version: &'static str,
    mode: &'static str,
    service: String,
    replica: String,
    pid: u32,
    uptime_s: u64,
    cpu_count: usize,
    /// Resident memory of this process.
    rss_bytes: Option<u64>,
    /// 1, 5 and 15 minute load averages of the machine.
    load_average: Option<[f64; 3]>,
}

#[derive(Serialize, ToSchema)]
struct DatabasePool {
    pool_size: u32,
    pool_idle: usize,
    pool_max: u32,
    migrations_applied: usize,
    migrations_pending: usize,
}

#[derive(Serialize, ToSchema)]
struct Redis {
    pool_size: usize,
    pool_available: usize,
    pool_max: usize,
    pool_waiting: usize,
    used_memory_bytes: Option<u64>,
    connected_clients: Option<u64>,
}

/// Figures for a dashboard or a person.
#[utoipa::path(
    get,
    path = "/api/metrics",
    tag = "operations",
    security(("api_key" = ["metrics:read"])),
    responses(
        (status = 200, description = "Current figures", body = Metrics),
        (status = 401, description = "No or bad credentials", body = super::problem::Problem),
        (status = 403, description = "The credentials lack metrics:read", body = super::problem::Problem),
    )
)]
async fn metrics_json(State(state): State<AppState>) -> Result<axum::Json<Metrics>, ApiError> {
    let migrations = crate::db::status(&state.db).await?;
    let pool = state.redis.status();
    let info = redis_info(&state).await;
    Ok(axum::Json(Metrics {
        system: System {
            version: crate::VERSION,
            mode: state.identity.mode,
            service: state.identity.service.clone(),
            replica: state.identity.replica.clone(),
            pid: std::process::id(),
            uptime_s: state.health.uptime().as_secs(),
            cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get()),
            rss_bytes: crate::telemetry::process::read().map(|f| f.resident_bytes),
            load_average: load_average(),
        },
        database: DatabasePool {
            pool_size: state.db.size(),
            pool_idle: state.db.num_idle(),
            pool_max: state.settings.database.max_connections,
            migrations_applied: migrations.iter().filter(|m| m.state == "applied").count(),
            migrations_pending: migrations.iter().filter(|m| m.state == "pending").count(),
        },
        redis: Redis {
            pool_size: pool.size,
            pool_available: pool.available,
            pool_max: pool.max_size,
            pool_waiting: pool.waiting,
            used_memory_bytes: info.get("used_memory").copied(),
            connected_clients: info.get("connected_clients").copied(),
        },
        queues: {
            let names = &state.settings.jobs.queues;
            let counts = state.queues.counts(names, crate::queue::now_ms()).await?;
            names.iter().cloned().zip(counts).collect()
        },
        instances: instances::live(&state.db).await?,
    }))
}

/// Prometheus exposition text for a scraper.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(("api_key" = ["metrics:read"])),
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "No or bad credentials", body = super::problem::Problem),
        (status = 403, description = "The credentials lack metrics:read", body = super::problem::Problem),
    )
)]
async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        format!(
            "{}{}{}",
            state.requests.render(),
            state.metrics.render(),
            super::gauges::render(&state).await
        ),
    )
}

/// Numeric `INFO` fields of interest, summed over the servers (a cluster's primaries);
/// empty when Redis does not answer within the health bound.
async fn redis_info(state: &AppState) -> BTreeMap<String, u64> {
    let texts = tokio::time::timeout(
        state.settings.health.check_timeout(),
        state.redis.info(&["memory", "clients"]),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or_default();
    let mut sums = BTreeMap::new();
    for (key, value) in texts
        .iter()
        .flat_map(|text| text.lines())
        .filter_map(|line| line.split_once(':'))
    {
        if let Ok(value) = value.trim().parse::<u64>() {
            *sums.entry(key.to_owned()).or_insert(0) += value;
        }
    }
    sums
}

fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}
