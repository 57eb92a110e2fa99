//! `/api/v1/jobs`: enqueue (single and batch), read a job's state, cancel a job that has
//! not started, and retry a dead one. Scopes `jobs:read` and
//! `jobs:write`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Json, idempotency_key};
use super::problem::{ApiError, Problem};
use super::views::JobView;
use crate::invalid::Invalid;
use crate::jobs::dead;
use crate::jobs::enqueue::EnqueueRequest;
use crate::queue::{Cancel, NewJob, now_ms};
use crate::state::AppState;

/// The most jobs one batch may enqueue.
const MAX_BATCH: usize = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enqueue))
        .routes(routes!(enqueue_batch))
        .routes(routes!(get_job, cancel_job))
        .routes(routes!(retry_job))
}

/// Refuses a kind that no live worker on the job's queue handles, unless
/// `jobs.accept_unknown_kinds` is on.
async fn handled(state: &AppState, job: &NewJob) -> Result<(), Invalid> {
    if state.settings.jobs.accept_unknown_kinds {
        return Ok(());
    }
    state.live_kinds.check(&job.queue, &job.kind).await
}

/// Reads a job wherever it is: Redis while it lives, Postgres once dead.
async fn find(state: &AppState, id: &str) -> Result<Option<JobView>, ApiError> {
    let Ok(uuid) = job_id(id) else {
        return Ok(None);
    };
    if let Some(job) = state.queues.get(&uuid.to_string()).await? {
        return Ok(Some(job.into()));
    }
    Ok(dead::get(&state.db, uuid).await?.map(JobView::from))
}

/// A job id from a path; one that is not a UUID names no job.
fn job_id(id: &str) -> Result<uuid::Uuid, ApiError> {
    id.parse().map_err(|_| not_found(id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no job {id}: it never existed, or it finished longer ago than jobs.retention_seconds"
    ))
}

/// Enqueue a job.
#[utoipa::path(
    post,
    path = "/api/v1/jobs",
    tag = "jobs",
    security(("api_key" = ["jobs:write"])),
    request_body = EnqueueRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same as the body's idempotency_key")),
    responses(
        (status = 202, description = "Queued; `created` is false for a repeated idempotency key", body = JobView),
        (status = 400, description = "Malformed JSON", body = Problem),
        (status = 422, description = "A field is not acceptable; `field` names it", body = Problem),
    )
)]
async fn enqueue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(mut request): Json<EnqueueRequest>,
) -> Result<(StatusCode, axum::Json<JobView>), ApiError> {
    if request.idempotency_key.is_none() {
        request.idempotency_key = idempotency_key(&headers)?;
    }
    let now = now_ms();
    let job = request.into_job(&state.settings.jobs, now)?;
    handled(&state, &job).await?;
    let enqueued = state.queues.enqueue(&job, now).await?;
    if enqueued.created {
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(JobView::created(enqueued.id, job, now)),
        ));
    }
    // A repeated idempotency key: the earlier job, as it is now.
    let mut view = match state.queues.get_in(&job.queue, &enqueued.id).await? {
        Some(record) => JobView::from(record),
        None => match find(&state, &enqueued.id).await? {
            Some(view) => view,
            // Its job finished longer ago than the retention: the id stands, the record
            // is gone.
            None => JobView::expired(enqueued.id.clone(), job),
        },
    };
    view.created = Some(enqueued.created);
    Ok((StatusCode::ACCEPTED, axum::Json(view)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobBatch {
    /// Up to 1000 jobs; all are checked before any is queued.
    pub jobs: Vec<EnqueueRequest>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One entry per requested job, in order.
    pub jobs: Vec<BatchEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchEntry {
    pub id: String,
    /// False when an idempotency key returned an earlier job.
    pub created: bool,
}

/// Enqueue many jobs at once. Nothing is queued unless every job is valid.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/batch",
    tag = "jobs",
    security(("api_key" = ["jobs:write"])),
    request_body = JobBatch,
    responses(
        (status = 202, description = "All queued", body = BatchResponse),
        (status = 422, description = "A job is not acceptable; `field` names it, e.g. jobs[3].queue", body = Problem),
    )
)]
async fn enqueue_batch(
    State(state): State<AppState>,
    Json(request): Json<JobBatch>,
) -> Result<(StatusCode, axum::Json<BatchResponse>), ApiError> {
    if request.jobs.is_empty() || request.jobs.len() > MAX_BATCH {
        return Err(Invalid::new("jobs", format!("give 1 to {MAX_BATCH} jobs")).into());
    }
    let now = now_ms();
    let jobs = request
        .jobs
        .into_iter()
        .enumerate()
        .map(|(i, job)| {
            job.into_job(&state.settings.jobs, now)
                .map_err(|e| Invalid {
                    field: format!("jobs[{i}].{}", e.field),
                    message: e.message,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (i, job) in jobs.iter().enumerate() {
        handled(&state, job).await.map_err(|e| Invalid {
            field: format!("jobs[{i}].{}", e.field),
            message: e.message,
        })?;
    }
    let enqueued = state.queues.enqueue_batch(&jobs, now).await?;
    let jobs = enqueued
        .into_iter()
        .map(|e| BatchEntry {
            id: e.id,
            created: e.created,
        })
        .collect();
    Ok((StatusCode::ACCEPTED, axum::Json(BatchResponse { jobs })))
}

/// A job's state, attempts, errors and times.
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    security(("api_key" = ["jobs:read"])),
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 404, description = "No such job", body = Problem),
    )
)]
async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<JobView>, ApiError> {
    let view = find(&state, &id).await?.ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(view))
}

/// Cancel a job that has not started (`scheduled`, `queued` or `retrying`).
#[utoipa::path(
    delete,
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    security(("api_key" = ["jobs:write"])),
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "Cancelled", body = JobView),
        (status = 404, description = "No such job", body = Problem),
        (status = 409, description = "The job is running or finished", body = Problem),
    )
)]
async fn cancel_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<JobView>, ApiError> {
    let uuid = job_id(&id)?;
    match state.queues.cancel(&uuid.to_string(), now_ms()).await? {
        Cancel::Cancelled => {}
        Cancel::TooLate(job_state) => {
            return Err(ApiError::Conflict(format!(
                "job {id} is {job_state}; only scheduled, queued or retrying jobs can be cancelled"
            )));
        }
        Cancel::NotFound => {
            return Err(match dead::get(&state.db, uuid).await? {
                Some(_) => ApiError::Conflict(format!(
                    "job {id} is dead; retry it, or delete it with DELETE /api/v1/queues/{{queue}}/dead/{id}"
                )),
                None => not_found(&id),
            });
        }
    }
    let view = find(&state, &id).await?.ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(view))
}

/// Retry a dead job: it is queued again under its id with fresh attempts; its error
/// history stays.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/retry",
    tag = "jobs",
    security(("api_key" = ["jobs:write"])),
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 202, description = "Queued again", body = JobView),
        (status = 404, description = "No such job", body = Problem),
        (status = 409, description = "The job is not dead", body = Problem),
    )
)]
async fn retry_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<JobView>), ApiError> {
    let uuid = job_id(&id)?;
    if dead::retry(&state.db, &state.queues, uuid, now_ms())
        .await?
        .is_none()
    {
        return Err(match state.queues.state(&uuid.to_string()).await? {
            Some(job_state) => ApiError::Conflict(format!(
                "job {id} is {job_state}; only dead jobs can be retried"
            )),
            None => not_found(&id),
        });
    }
    let view = find(&state, &id).await?.ok_or_else(|| not_found(&id))?;
    Ok((StatusCode::ACCEPTED, axum::Json(view)))
}
