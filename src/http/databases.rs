//! `/api/v1/databases`: the platform database registry. Register, list, read, change and
//! delete databases, and check that one answers. Passwords go in and never come out.
//! Scopes `databases:read` and `databases:write`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Json;
use super::pagination::{PageQuery, page_limit};
use super::problem::{ApiError, Problem};
use crate::databases::check::{self, CheckReport};
use crate::databases::{self, Database, DatabaseInput};
use crate::invalid::Invalid;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_database, update, delete_database))
        .routes(routes!(check_database))
}

fn database_id(id: &str) -> Result<uuid::Uuid, ApiError> {
    id.parse().map_err(|_| not_found(id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no database {id:?}"))
}

/// Refuses before anything is stored when a password could not be sealed.
fn can_seal(state: &AppState, input: &DatabaseInput) -> Result<(), ApiError> {
    if !input.sets_password() || state.sealer.can_seal() {
        return Ok(());
    }
    Err(ApiError::Unavailable(
        "encryption.key (ENCRYPTION_KEY) is not set, so passwords cannot be stored: set it to \
         32 random bytes in base64 (openssl rand -base64 32)"
            .into(),
    ))
}

/// Register a database.
#[utoipa::path(
    post,
    path = "/api/v1/databases",
    tag = "databases",
    security(("api_key" = ["databases:write"])),
    request_body = DatabaseInput,
    responses(
        (status = 201, description = "Registered", body = Database),
        (status = 422, description = "A field is not acceptable; `field` names it", body = Problem),
        (status = 503, description = "A password was given and encryption.key is not set", body = Problem),
    )
)]
async fn create(
    State(state): State<AppState>,
    Json(input): Json<DatabaseInput>,
) -> Result<(StatusCode, axum::Json<Database>), ApiError> {
    input.check(true)?;
    can_seal(&state, &input)?;
    let database = databases::create(&state.db, &state.sealer, input).await?;
    Ok((StatusCode::CREATED, axum::Json(database)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatabasePage {
    pub databases: Vec<Database>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Registered databases, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/databases",
    tag = "databases",
    security(("api_key" = ["databases:read"])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of databases", body = DatabasePage),
        (status = 422, description = "A bad limit or cursor", body = Problem),
    )
)]
async fn list(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> Result<axum::Json<DatabasePage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let page = databases::list(&state.db, limit, query.cursor.as_deref())
        .await?
        .map_err(|bad| Invalid::new("cursor", bad.to_string()))?;
    Ok(axum::Json(DatabasePage {
        databases: page.databases,
        next_cursor: page.next_cursor,
    }))
}

/// Read a registered database.
#[utoipa::path(
    get,
    path = "/api/v1/databases/{id}",
    tag = "databases",
    security(("api_key" = ["databases:read"])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The database", body = Database),
        (status = 404, description = "No such database", body = Problem),
    )
)]
async fn get_database(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Database>, ApiError> {
    let database = databases::get(&state.db, database_id(&id)?)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(database))
}

/// Change a registered database: only the fields given; `null` removes the username or
/// password.
#[utoipa::path(
    patch,
    path = "/api/v1/databases/{id}",
    tag = "databases",
    security(("api_key" = ["databases:write"])),
    params(("id" = String, Path)),
    request_body = DatabaseInput,
    responses(
        (status = 200, description = "The changed database", body = Database),
        (status = 404, description = "No such database", body = Problem),
        (status = 422, description = "A field is not acceptable; `field` names it", body = Problem),
    )
)]
async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(input): Json<DatabaseInput>,
) -> Result<axum::Json<Database>, ApiError> {
    let uuid = database_id(&id)?;
    input.check(false)?;
    can_seal(&state, &input)?;
    let database = databases::update(&state.db, &state.sealer, uuid, input)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(database))
}

/// Remove a registration.
#[utoipa::path(
    delete,
    path = "/api/v1/databases/{id}",
    tag = "databases",
    security(("api_key" = ["databases:write"])),
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such database", body = Problem),
    )
)]
async fn delete_database(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if databases::delete(&state.db, database_id(&id)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

/// Try a connection, within 5 seconds: the latency and server version, or why it failed.
/// A database that does not answer is a 200 with `ok: false`; the check itself worked.
#[utoipa::path(
    post,
    path = "/api/v1/databases/{id}/check",
    tag = "databases",
    security(("api_key" = ["databases:write"])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "What the check found", body = CheckReport),
        (status = 404, description = "No such database", body = Problem),
    )
)]
async fn check_database(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<CheckReport>, ApiError> {
    let credentials = databases::credentials(&state.db, &state.sealer, database_id(&id)?)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(
        check::check(&state.outbound, &credentials, check::TIMEOUT).await,
    ))
}
