//! `/api/v1/queues`: each declared queue's counts and last-minute throughput, and its dead
//! jobs: a cursor-paginated list, retry of all, and delete of one. Scopes `queues:read` and
//! `queues:write`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::{PageQuery, page_limit};
use super::problem::{ApiError, Problem};
use super::views::JobView;
use crate::invalid::Invalid;
use crate::jobs::dead;
use crate::jobs::summary::{self, QueueView};
use crate::queue::now_ms;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_queues))
        .routes(routes!(list_dead))
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

/// Retry every dead job of a queue.
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
