//! `/api/v1/events`: an application sends its own events (one, or a batch of up to 1000),
//! which reach every webhook endpoint subscribed to their type, the audit log and, when
//! they name one, a realtime channel; and anyone reads an event back with its deliveries.
//! Scopes `events:write`, `audit:read` (an event) and `webhooks:read` (its deliveries).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::delivery_log::DeliveryPage;
use super::extract::{Json, idempotency_key};
use super::pagination::page_limit;
use super::problem::{ApiError, Problem};
use crate::events::incoming::{NewEvent, Refused};
use crate::events::{self, Event};
use crate::invalid::Invalid;
use crate::state::AppState;
use crate::webhooks::deliveries::Filter;

/// The most events one batch may carry.
const MAX_BATCH: usize = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send))
        .routes(routes!(send_batch))
        .routes(routes!(get_event))
        .routes(routes!(event_deliveries))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// 1 to 1000 events; all are checked before any is stored.
    pub events: Vec<NewEvent>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// Each event's id, in the order sent.
    pub ids: Vec<String>,
    /// How many of them were already stored (a repeat), and so not sent again.
    pub duplicates: usize,
}

fn refused(refusal: Refused) -> ApiError {
    match refusal {
        Refused::Invalid(invalid) => ApiError::Invalid(invalid),
        Refused::TooLarge(invalid) => ApiError::FieldTooLarge(invalid),
    }
}

/// A body over `http.body_limit_bytes` can only be that large for its data: say so.
fn body_refused(error: ApiError, field: &str) -> ApiError {
    match error {
        ApiError::PayloadTooLarge { limit } => ApiError::FieldTooLarge(Invalid::new(
            field,
            format!(
                "the request body is larger than the limit of {limit} bytes (http.body_limit_bytes)"
            ),
        )),
        other => other,
    }
}

/// Stores checked events in the outbox; the relay sends them on.
async fn store(state: &AppState, events: Vec<Event>) -> Result<Accepted, ApiError> {
    let mut conn = state.db.acquire().await.map_err(anyhow::Error::from)?;
    let stored = events::record(&mut conn, &events).await?;
    let ids: Vec<String> = events.into_iter().map(|e| e.id).collect();
    Ok(Accepted {
        duplicates: ids.len() - stored.len(),
        ids,
    })
}

/// Send an event.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "events",
    security(("api_key" = ["events:write"])),
    request_body = NewEvent,
    params(("Idempotency-Key" = Option<String>, Header, description = "A repeat of the request with the same key is a no-op (when the event names no id)")),
    responses(
        (status = 202, description = "Stored; it is delivered shortly", body = Accepted),
        (status = 413, description = "The event's data is too large; `field` is `data`", body = Problem),
        (status = 422, description = "A field is not acceptable; `field` names it", body = Problem),
    )
)]
async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<NewEvent>, ApiError>,
) -> Result<(StatusCode, axum::Json<Accepted>), ApiError> {
    let Json(event) = body.map_err(|e| body_refused(e, "data"))?;
    let key = idempotency_key(&headers)?;
    let event = event
        .into_event(state.settings.events.max_data_bytes, key.as_deref(), 0)
        .map_err(refused)?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(store(&state, vec![event]).await?),
    ))
}

/// Send up to 1000 events at once. Nothing is stored unless every event is acceptable.
#[utoipa::path(
    post,
    path = "/api/v1/events/batch",
    tag = "events",
    security(("api_key" = ["events:write"])),
    request_body = EventBatch,
    params(("Idempotency-Key" = Option<String>, Header, description = "A repeat of the request with the same key is a no-op (for events that name no id)")),
    responses(
        (status = 202, description = "Stored; they are delivered shortly", body = Accepted),
        (status = 413, description = "Too large; `field` names what", body = Problem),
        (status = 422, description = "An event is not acceptable; `field` names it, e.g. events[3].type", body = Problem),
    )
)]
async fn send_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<EventBatch>, ApiError>,
) -> Result<(StatusCode, axum::Json<Accepted>), ApiError> {
    let Json(request) = body.map_err(|e| body_refused(e, "events"))?;
    if request.events.is_empty() || request.events.len() > MAX_BATCH {
        return Err(Invalid::new("events", format!("give 1 to {MAX_BATCH} events")).into());
    }
    let key = idempotency_key(&headers)?;
    let limit = state.settings.events.max_data_bytes;
    let mut seen = std::collections::HashMap::new();
    let mut events = Vec::with_capacity(request.events.len());
    for (i, event) in request.events.into_iter().enumerate() {
        let event = event
            .into_event(limit, key.as_deref(), i)
            .map_err(|r| refused(r.under(&format!("events[{i}]."))))?;
        if let Some(first) = seen.insert(event.id.clone(), i) {
            return Err(Invalid::new(
                format!("events[{i}].id"),
                format!("repeats the id of events[{first}]; each event needs its own"),
            )
            .into());
        }
        events.push(event);
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(store(&state, events).await?),
    ))
}

/// A stored event, and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    #[serde(flatten)]
    pub event: Event,
    /// When the relay sent it on; absent while it waits in the outbox.
    pub relayed_at: Option<DateTime<Utc>>,
}

/// Read an event, while it is kept (`events.retention_days` after it was relayed).
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    tag = "events",
    security(("api_key" = ["audit:read"])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 404, description = "No such event, or no longer kept", body = Problem),
    )
)]
async fn get_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<EventView>, ApiError> {
    let found = events::get(&state.db, &id).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "no event {id:?} (events are kept events.retention_days)"
        ))
    })?;
    Ok(axum::Json(EventView {
        event: found.0,
        relayed_at: found.1,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventDeliveriesQuery {
    /// 1 to 200; 50 when absent.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// An event's deliveries to every endpoint, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}/deliveries",
    tag = "events",
    security(("api_key" = ["webhooks:read"])),
    params(("id" = String, Path), EventDeliveriesQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 422, description = "A bad limit or cursor", body = Problem),
    )
)]
async fn event_deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<EventDeliveriesQuery>,
) -> Result<axum::Json<DeliveryPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let filter = Filter {
        endpoint: None,
        event: Some(id),
        status: None,
        event_type: None,
    };
    DeliveryPage::read(&state.db, &filter, limit, query.cursor.as_deref()).await
}
