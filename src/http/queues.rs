//! `/api/v1/queues`: each declared queue's counts, its throughput minute by minute over
//! the last hour, the jobs in one state, and its dead jobs: a cursor-paginated list, retry
//! of all, delete of one or all. Scopes `queues:read` and `queues:write`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::{PageQuery, page_limit};
use super::problem::{ApiError, Problem};
use super::views::JobView;
use crate::invalid::Invalid;
use crate::jobs::dead;
use crate::jobs::summary::{self, QueueView};
use crate::queue::{JobState, now_ms};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_queues))
        .routes(routes!(throughput))
        .routes(routes!(list_jobs))
        .routes(routes!(list_dead, delete_all_dead))
        .routes(routes!(retry_dead))
        .routes(routes!(delete_dead))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueList {
    pub queues: Vec<QueueView>,
}

/// Every declared queue's counts.
#[utoipa::path(
    get,
    path = "/api/v1/queues",
    tag = "jobs",
    security(("api_key" = ["queues:read"])),
    responses((status = 200, description = "Counts per queue", body = QueueList))
)]
async fn list_queues(State(state): State<AppState>) -> Result<axum::Json<QueueList>, ApiError> {
    let queues = summary::summaries(&state.queues, &state.db, &state.settings.jobs.queues).await?;
    Ok(axum::Json(QueueList { queues }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThroughputQuery {
    /// 1 to 60; 60 when absent.
    pub minutes: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ThroughputView {
    /// The width of each point: 60.
    pub interval_seconds: u32,
    /// When the last point ends (now); point `i` of `n` ends `n - 1 - i` minutes earlier.
    pub until: DateTime<Utc>,
    /// Every declared queue's points.
    pub queues: Vec<QueueThroughput>,
    /// Attempts that succeeded per minute, all queues together, oldest first.
    pub succeeded: Vec<u64>,
    /// Attempts that failed per minute, all queues together, oldest first.
    pub failed: Vec<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueThroughput {
    pub name: String,
    pub succeeded: Vec<u64>,
    pub failed: Vec<u64>,
}

/// Finished attempts per minute over the last hour (or `minutes`), per queue and in all.
#[utoipa::path(
    get,
    path = "/api/v1/queues/throughput",
    tag = "jobs",
    security(("api_key" = ["queues:read"])),
    params(ThroughputQuery),
    responses(
        (status = 200, description = "Attempts per minute, oldest first", body = ThroughputView),
        (status = 422, description = "`minutes` out of range", body = Problem),
    )
)]
async fn throughput(
    State(state): State<AppState>,
    Query(query): Query<ThroughputQuery>,
) -> Result<axum::Json<ThroughputView>, ApiError> {
    let minutes = query.minutes.unwrap_or(60);
    if !(1..=60).contains(&minutes) {
        return Err(Invalid::new("minutes", "must be between 1 and 60").into());
    }
    let now = now_ms();
    let names = &state.settings.jobs.queues;
    let counts = state.queues.throughput(names, now, minutes).await?;
    let mut succeeded = vec![0; minutes as usize];
    let mut failed = vec![0; minutes as usize];
    for series in &counts {
        for (total, n) in succeeded.iter_mut().zip(&series.succeeded) {
            *total += n;
        }
        for (total, n) in failed.iter_mut().zip(&series.failed) {
            *total += n;
        }
    }
    Ok(axum::Json(ThroughputView {
        interval_seconds: 60,
        until: DateTime::from_timestamp_millis(now).unwrap_or_default(),
        queues: names
            .iter()
            .zip(counts)
            .map(|(name, c)| QueueThroughput {
                name: name.clone(),
                succeeded: c.succeeded,
                failed: c.failed,
            })
            .collect(),
        succeeded,
        failed,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// `ready`, `scheduled`, `running` or `retrying` (dead jobs have their own listing).
    pub state: String,
    /// 1 to 200; 50 when absent.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobsPage {
    pub state: String,
    /// Jobs in this state now.
    pub total: u64,
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last. A position in a list that
    /// moves as jobs start and finish, so pages may overlap or skip.
    pub next_cursor: Option<String>,
}

/// A queue's jobs in one state, in the order they will leave it.
#[utoipa::path(
    get,
    path = "/api/v1/queues/{queue}/jobs",
    tag = "jobs",
    security(("api_key" = ["queues:read"])),
    params(("queue" = String, Path), JobsQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobsPage),
        (status = 404, description = "No such queue", body = Problem),
        (status = 422, description = "Bad state, limit or cursor; `field` names it", body = Problem),
    )
)]
async fn list_jobs(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    Query(query): Query<JobsQuery>,
) -> Result<axum::Json<JobsPage>, ApiError> {
    known_queue(&state, &queue)?;
    let which = match query.state.as_str() {
        "ready" => JobState::Ready,
        "scheduled" => JobState::Scheduled,
        "running" => JobState::Running,
        "retrying" => JobState::Retrying,
        _ => {
            return Err(Invalid::new(
                "state",
                "must be ready, scheduled, running or retrying (dead jobs: /api/v1/queues/{queue}/dead)",
            )
            .into());
        }
    };
    let limit = page_limit(query.limit)?;
    let offset = match query.cursor.as_deref() {
        None => 0,
        Some(cursor) => URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|raw| {
                String::from_utf8(raw)
                    .ok()?
                    .strip_prefix("at:")?
                    .parse()
                    .ok()
            })
            .ok_or_else(|| Invalid::new("cursor", "the cursor is not one this API returned"))?,
    };
    let (jobs, total) = state.queues.jobs_in(&queue, which, offset, limit).await?;
    let end = offset + limit;
    Ok(axum::Json(JobsPage {
        state: query.state,
        total,
        jobs: jobs.into_iter().map(JobView::from).collect(),
        next_cursor: ((end as u64) < total).then(|| URL_SAFE_NO_PAD.encode(format!("at:{end}"))),
    }))
}

fn known_queue(state: &AppState, queue: &str) -> Result<(), ApiError> {
    if state.settings.jobs.queues.iter().any(|q| q == queue) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "no queue {queue:?}; the declared queues (jobs.queues) are {}",
            state.settings.jobs.queues.join(", ")
        )))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadPage {
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// A queue's dead jobs, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/queues/{queue}/dead",
    tag = "jobs",
    security(("api_key" = ["queues:read"])),
    params(("queue" = String, Path), PageQuery),
    responses(
        (status = 200, description = "A page of dead jobs", body = DeadPage),
        (status = 404, description = "No such queue", body = Problem),
        (status = 422, description = "Bad limit or cursor", body = Problem),
    )
)]
async fn list_dead(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<DeadPage>, ApiError> {
    known_queue(&state, &queue)?;
    let limit = page_limit(page.limit)?;
    dead::move_outbox(&state.db, &state.queues).await?;
    let page = dead::list(&state.db, Some(&queue), limit, page.cursor.as_deref())
        .await?
        .map_err(|bad| Invalid::new("cursor", bad.to_string()))?;
    Ok(axum::Json(DeadPage {
        jobs: page.jobs.into_iter().map(JobView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Retried {
    pub retried: usize,
}

/// Retry every job of a queue that is dead when the call begins, each once. One that dies
/// again meanwhile stays dead.
#[utoipa::path(
    post,
    path = "/api/v1/queues/{queue}/dead/retry",
    tag = "jobs",
    security(("api_key" = ["queues:write"])),
    params(("queue" = String, Path)),
    responses(
        (status = 202, description = "Queued again", body = Retried),
        (status = 404, description = "No such queue", body = Problem),
    )
)]
async fn retry_dead(
    State(state): State<AppState>,
    Path(queue): Path<String>,
) -> Result<(StatusCode, axum::Json<Retried>), ApiError> {
    known_queue(&state, &queue)?;
    let retried = dead::retry_all(&state.db, &state.queues, Some(&queue), now_ms()).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(Retried { retried })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteDeadQuery {
    /// Only jobs that died before this time (RFC 3339): what a listing read then showed.
    /// Every dead job of the queue when absent.
    pub died_before: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub deleted: u64,
}

/// Delete a queue's dead jobs for good: all of them, or those that died before a time.
#[utoipa::path(
    delete,
    path = "/api/v1/queues/{queue}/dead",
    tag = "jobs",
    security(("api_key" = ["queues:write"])),
    params(("queue" = String, Path), DeleteDeadQuery),
    responses(
        (status = 200, description = "Deleted", body = Deleted),
        (status = 404, description = "No such queue", body = Problem),
    )
)]
async fn delete_all_dead(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    Query(query): Query<DeleteDeadQuery>,
) -> Result<axum::Json<Deleted>, ApiError> {
    known_queue(&state, &queue)?;
    let deleted = dead::delete_all(&state.db, &state.queues, &queue, query.died_before).await?;
    Ok(axum::Json(Deleted { deleted }))
}

/// Delete a dead job for good.
#[utoipa::path(
    delete,
    path = "/api/v1/queues/{queue}/dead/{id}",
    tag = "jobs",
    security(("api_key" = ["queues:write"])),
    params(("queue" = String, Path), ("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such dead job", body = Problem),
    )
)]
async fn delete_dead(
    State(state): State<AppState>,
    Path((queue, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    known_queue(&state, &queue)?;
    let missing = || ApiError::NotFound(format!("no dead job {id} in queue {queue}"));
    let uuid: uuid::Uuid = id.parse().map_err(|_| missing())?;
    match dead::get(&state.db, uuid).await? {
        Some(job) if job.queue == queue => {}
        _ => {
            dead::move_outbox(&state.db, &state.queues).await?;
            if dead::get(&state.db, uuid)
                .await?
                .is_none_or(|j| j.queue != queue)
            {
                return Err(missing());
            }
        }
    }
    dead::delete(&state.db, &state.queues, uuid).await?;
    Ok(StatusCode::NO_CONTENT)
}
