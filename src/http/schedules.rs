//! `/api/v1/schedules`: every cron schedule with its next and last run, a manual
//! trigger, and a run-time pause (a schedule enabled in the configuration can be paused
//! and resumed without a deploy). Scopes `schedules:read` and `schedules:write`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Json;
use super::problem::{ApiError, Problem};
use crate::scheduler::{self, LastRun};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_schedules))
        .routes(routes!(change_schedule))
        .routes(routes!(run_schedule))
}

/// How many upcoming ticks a schedule's view lists.
const NEXT_RUNS: usize = 5;

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    /// Enabled in the configuration (`enabled = false` there keeps it off for good).
    pub enabled: bool,
    /// Paused at run time: its ticks pass without firing until it is resumed.
    pub paused: bool,
    /// `none` or `latest`.
    pub catch_up: String,
    pub queue: Option<String>,
    pub kind: String,
    /// The next tick, in the schedule's time zone; absent when disabled or paused.
    pub next_run: Option<String>,
    /// The next five ticks, in the schedule's time zone; empty when disabled or paused.
    pub next_runs: Vec<String>,
    pub last_run: Option<LastRun>,
    /// The state of the last run's job, while the job's record exists.
    pub last_job_state: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleView>,
}

/// Every schedule with its next and last run.
#[utoipa::path(
    get,
    path = "/api/v1/schedules",
    tag = "schedules",
    security(("api_key" = ["schedules:read"])),
    responses((status = 200, description = "The schedules", body = ScheduleList))
)]
async fn list_schedules(
    State(state): State<AppState>,
) -> Result<axum::Json<ScheduleList>, ApiError> {
    let mut schedules = Vec::new();
    for entry in scheduler::entries(&state.settings)? {
        schedules.push(view(&state, &entry).await?);
    }
    Ok(axum::Json(ScheduleList { schedules }))
}

/// A schedule as the API shows it, with its last run and whether it is paused.
async fn view(state: &AppState, entry: &scheduler::Entry) -> Result<ScheduleView, ApiError> {
    let s = &entry.settings;
    let last_run = state.scheduler.last_run(&s.name).await?;
    let last_job_state = match &last_run {
        Some(run) => state.queues.state(&run.job_id).await?,
        None => None,
    };
    let paused = state.scheduler.paused(&s.name).await?;
    let next_runs: Vec<String> = if s.enabled && !paused {
        std::iter::successors(entry.cron.next_after(Utc::now()), |t| {
            entry.cron.next_after(*t)
        })
        .take(NEXT_RUNS)
        .map(|t| t.with_timezone(&entry.cron.timezone()).to_rfc3339())
        .collect()
    } else {
        Vec::new()
    };
    Ok(ScheduleView {
        next_run: next_runs.first().cloned(),
        next_runs,
        name: s.name.clone(),
        cron: s.cron.clone(),
        timezone: s.timezone.clone(),
        enabled: s.enabled,
        paused,
        catch_up: format!("{:?}", s.catch_up).to_lowercase(),
        queue: s.queue.clone(),
        kind: s.kind.clone(),
        last_run,
        last_job_state,
    })
}

/// What may change of a schedule at run time.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleChange {
    /// Pause (its ticks pass without firing) or resume.
    pub paused: bool,
}

/// Pauses or resumes a schedule; every scheduler replica sees it at its next tick. A
/// schedule disabled in the configuration stays off: resume it there.
#[utoipa::path(
    patch,
    path = "/api/v1/schedules/{name}",
    tag = "schedules",
    security(("api_key" = ["schedules:write"])),
    params(("name" = String, Path)),
    request_body = ScheduleChange,
    responses(
        (status = 200, description = "The schedule as it now is", body = ScheduleView),
        (status = 404, description = "No such schedule", body = Problem),
        (status = 409, description = "Disabled in the configuration", body = Problem),
        (status = 422, description = "A body that is not a change", body = Problem),
    )
)]
async fn change_schedule(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(change): Json<ScheduleChange>,
) -> Result<axum::Json<ScheduleView>, ApiError> {
    let entries = scheduler::entries(&state.settings)?;
    let entry = entries
        .iter()
        .find(|e| e.settings.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no schedule {name:?}")))?;
    if !entry.settings.enabled && !change.paused {
        return Err(ApiError::Conflict(format!(
            "schedule {name:?} is disabled in the configuration (enabled = false); \
             enable it there"
        )));
    }
    state.scheduler.set_paused(&name, change.paused).await?;
    Ok(axum::Json(view(&state, entry).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Triggered {
    pub schedule: String,
    pub job_id: String,
}

/// Enqueue one run of a schedule now.
#[utoipa::path(
    post,
    path = "/api/v1/schedules/{name}/run",
    tag = "schedules",
    security(("api_key" = ["schedules:write"])),
    params(("name" = String, Path)),
    responses(
        (status = 202, description = "Enqueued", body = Triggered),
        (status = 404, description = "No such schedule", body = Problem),
    )
)]
async fn run_schedule(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, axum::Json<Triggered>), ApiError> {
    let entries = scheduler::entries(&state.settings)?;
    let entry = entries
        .iter()
        .find(|e| e.settings.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no schedule {name:?}")))?;
    let (job_id, _) = state.scheduler.fire(entry, Utc::now()).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Triggered {
            schedule: name,
            job_id,
        }),
    ))
}
