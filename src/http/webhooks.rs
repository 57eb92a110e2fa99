//! `/api/v1/webhooks`: register, read, change and delete webhook endpoints, rotate their
//! secrets, send a test event, read the delivery log, replay one delivery and recover
//! every failed one since a time. Scopes `webhooks:read`
//! and `webhooks:write`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::delivery_log::DeliveryPage;
use super::extract::Json;
use super::pagination::page_limit;
use super::problem::{ApiError, Problem};
use crate::invalid::Invalid;
use crate::state::AppState;
use crate::webhooks::deliveries::{self, Attempt, Delivery, Filter, Resend};
use crate::webhooks::endpoints::{self, Endpoint, EndpointInput};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_endpoint, update, delete_endpoint))
        .routes(routes!(rotate_secret))
        .routes(routes!(send_test))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(replay))
        .routes(routes!(recover))
}

/// An endpoint id from a path; anything else names no endpoint.
fn endpoint_id(id: &str) -> Result<uuid::Uuid, ApiError> {
    id.parse().map_err(|_| not_found(id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no webhook endpoint {id:?}"))
}

/// Refuses before anything is stored when secrets cannot be sealed.
fn can_seal(state: &AppState) -> Result<(), ApiError> {
    if state.sealer.can_seal() {
        return Ok(());
    }
    Err(ApiError::Unavailable(
        "encryption.key (ENCRYPTION_KEY) is not set, so webhook secrets cannot be stored: set it \
         to 32 random bytes in base64 (openssl rand -base64 32)"
            .into(),
    ))
}

/// Checks where a URL resolves with the SSRF guard's rules, so an endpoint that could
/// never be delivered to is refused when it is registered.
async fn check_destination(state: &AppState, input: &EndpointInput) -> Result<(), ApiError> {
    let Some(text) = &input.url else {
        return Ok(());
    };
    let url = endpoints::check_url(text)?;
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(443);
    state.outbound.check_host(host, port).await.map_err(|refused| {
        Invalid::new(
            "url",
            format!(
                "{refused}; private addresses are refused unless outbound.allow_hosts names the host"
            ),
        )
    })?;
    Ok(())
}

/// An endpoint with the secret it was made with: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// The Standard Webhooks signing secret (`whsec_…`). Keep it: it is not shown again.
    pub secret: String,
}

/// Register an endpoint.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    security(("api_key" = ["webhooks:write"])),
    request_body = EndpointInput,
    responses(
        (status = 201, description = "Registered; the secret is shown this once", body = CreatedEndpoint),
        (status = 422, description = "A field is not acceptable; `field` names it", body = Problem),
        (status = 503, description = "encryption.key is not set", body = Problem),
    )
)]
async fn create(
    State(state): State<AppState>,
    Json(input): Json<EndpointInput>,
) -> Result<(StatusCode, axum::Json<CreatedEndpoint>), ApiError> {
    input.check(true)?;
    check_destination(&state, &input).await?;
    can_seal(&state)?;
    let (endpoint, secret) = endpoints::create(&state.db, &state.sealer, input).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedEndpoint { endpoint, secret }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub endpoints: Vec<Endpoint>,
}

/// Every endpoint, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    security(("api_key" = ["webhooks:read"])),
    responses((status = 200, description = "The endpoints", body = EndpointList))
)]
async fn list(State(state): State<AppState>) -> Result<axum::Json<EndpointList>, ApiError> {
    let endpoints = endpoints::list(&state.db).await?;
    Ok(axum::Json(EndpointList { endpoints }))
}

/// Read an endpoint.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    security(("api_key" = ["webhooks:read"])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The endpoint", body = Endpoint),
        (status = 404, description = "No such endpoint", body = Problem),
    )
)]
async fn get_endpoint(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Endpoint>, ApiError> {
    let endpoint = endpoints::get(&state.db, endpoint_id(&id)?)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(endpoint))
}

/// Change an endpoint: only the fields given. `enabled: true` also clears its failure
/// record.
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    security(("api_key" = ["webhooks:write"])),
    params(("id" = String, Path)),
    request_body = EndpointInput,
    responses(
        (status = 200, description = "The changed endpoint", body = Endpoint),
        (status = 404, description = "No such endpoint", body = Problem),
        (status = 422, description = "A field is not acceptable; `field` names it", body = Problem),
    )
)]
async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(input): Json<EndpointInput>,
) -> Result<axum::Json<Endpoint>, ApiError> {
    let uuid = endpoint_id(&id)?;
    input.check(false)?;
    check_destination(&state, &input).await?;
    let endpoint = endpoints::update(&state.db, uuid, input)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(endpoint))
}

/// Delete an endpoint and its delivery log.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    security(("api_key" = ["webhooks:write"])),
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint", body = Problem),
    )
)]
async fn delete_endpoint(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if endpoints::delete(&state.db, endpoint_id(&id)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    /// The new secret, shown this once.
    pub secret: String,
    /// Until then, deliveries also carry a signature by the previous secret.
    pub previous_secret_valid_until: DateTime<Utc>,
}

/// Make a new signing secret. During `webhooks.secret_overlap_hours` deliveries carry
/// signatures by both, so receivers can switch without losing one. Workers read an
/// endpoint again within a second, so deliveries sent in that second carry the previous
/// secret's signature alone.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    security(("api_key" = ["webhooks:write"])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The new secret", body = RotatedSecret),
        (status = 404, description = "No such endpoint", body = Problem),
        (status = 503, description = "encryption.key is not set", body = Problem),
    )
)]
async fn rotate_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<RotatedSecret>, ApiError> {
    let uuid = endpoint_id(&id)?;
    can_seal(&state)?;
    let overlap = state.settings.webhooks.secret_overlap();
    let secret = endpoints::rotate_secret(&state.db, &state.sealer, uuid, overlap)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(RotatedSecret {
        secret,
        previous_secret_valid_until: Utc::now()
            + chrono::Duration::from_std(overlap).unwrap_or_default(),
    }))
}

/// Send a `webhook.test` event to this endpoint alone.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/test",
    tag = "webhooks",
    security(("api_key" = ["webhooks:write"])),
    params(("id" = String, Path)),
    responses(
        (status = 202, description = "The test delivery; follow it in the delivery log", body = Delivery),
        (status = 404, description = "No such endpoint", body = Problem),
    )
)]
async fn send_test(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<Delivery>), ApiError> {
    let uuid = endpoint_id(&id)?;
    let delivery = deliveries::send_test(&state.db, &state.queues, &state.settings, uuid)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok((StatusCode::ACCEPTED, axum::Json(delivery)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// `pending`, `succeeded` or `failed`.
    pub status: Option<String>,
    /// Only deliveries of this event type.
    pub event_type: Option<String>,
    /// 1 to 200; 50 when absent.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// An endpoint's deliveries, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    security(("api_key" = ["webhooks:read"])),
    params(("id" = String, Path), DeliveriesQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 404, description = "No such endpoint", body = Problem),
        (status = 422, description = "A bad filter, limit or cursor; `field` names it", body = Problem),
    )
)]
async fn list_deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DeliveriesQuery>,
) -> Result<axum::Json<DeliveryPage>, ApiError> {
    let uuid = endpoint_id(&id)?;
    let limit = page_limit(query.limit)?;
    if let Some(status) = &query.status
        && !["pending", "succeeded", "failed"].contains(&status.as_str())
    {
        return Err(Invalid::new("status", "must be pending, succeeded or failed").into());
    }
    if query
        .event_type
        .as_ref()
        .is_some_and(|t| !crate::events::valid_type(t))
    {
        return Err(Invalid::new("event_type", "is not an event type").into());
    }
    endpoints::get(&state.db, uuid)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let filter = Filter {
        endpoint: Some(uuid),
        event: None,
        status: query.status,
        event_type: query.event_type,
    };
    DeliveryPage::read(&state.db, &filter, limit, query.cursor.as_deref()).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
}

fn delivery_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no delivery {id:?} of this endpoint"))
}

/// One delivery with every attempt.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}",
    tag = "webhooks",
    security(("api_key" = ["webhooks:read"])),
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses(
        (status = 200, description = "The delivery and its attempts", body = DeliveryDetail),
        (status = 404, description = "No such delivery", body = Problem),
    )
)]
async fn get_delivery(
    State(state): State<AppState>,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<axum::Json<DeliveryDetail>, ApiError> {
    let uuid = endpoint_id(&id)?;
    let delivery: uuid::Uuid = delivery_id
        .parse()
        .map_err(|_| delivery_not_found(&delivery_id))?;
    let (delivery, attempts) = deliveries::get(&state.db, uuid, delivery)
        .await?
        .ok_or_else(|| delivery_not_found(&delivery_id))?;
    Ok(axum::Json(DeliveryDetail { delivery, attempts }))
}

/// Send one delivery again, with fresh attempts.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/replay",
    tag = "webhooks",
    security(("api_key" = ["webhooks:write"])),
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses(
        (status = 202, description = "Sent again", body = Delivery),
        (status = 404, description = "No such delivery", body = Problem),
        (status = 409, description = "Still pending, or its event is no longer kept", body = Problem),
    )
)]
async fn replay(
    State(state): State<AppState>,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<(StatusCode, axum::Json<Delivery>), ApiError> {
    let uuid = endpoint_id(&id)?;
    let delivery: uuid::Uuid = delivery_id
        .parse()
        .map_err(|_| delivery_not_found(&delivery_id))?;
    match deliveries::resend(
        &state.db,
        &state.queues,
        &state.settings,
        delivery,
        Some(uuid),
    )
    .await?
    {
        Ok(delivery) => Ok((StatusCode::ACCEPTED, axum::Json(delivery))),
        Err(Resend::NotFound) => Err(delivery_not_found(&delivery_id)),
        Err(conflict) => Err(ApiError::Conflict(conflict.to_string())),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecoverQuery {
    /// Failed deliveries made from this time on (RFC 3339) are sent again.
    pub since: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recovered {
    /// How many failed deliveries are sent again.
    pub recovered: usize,
}

/// Send again every failed delivery of this endpoint since a time, e.g. after it was
/// down and has been enabled again.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/recover",
    tag = "webhooks",
    security(("api_key" = ["webhooks:write"])),
    params(("id" = String, Path), RecoverQuery),
    responses(
        (status = 202, description = "Sent again", body = Recovered),
        (status = 404, description = "No such endpoint", body = Problem),
        (status = 422, description = "`since` is not an RFC 3339 time", body = Problem),
    )
)]
async fn recover(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<RecoverQuery>,
) -> Result<(StatusCode, axum::Json<Recovered>), ApiError> {
    let uuid = endpoint_id(&id)?;
    let since = DateTime::parse_from_rfc3339(&query.since)
        .map_err(|e| Invalid::new("since", format!("not an RFC 3339 time ({e})")))?
        .with_timezone(&Utc);
    endpoints::get(&state.db, uuid)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let recovered =
        deliveries::recover(&state.db, &state.queues, &state.settings, uuid, since).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(Recovered { recovered })))
}
