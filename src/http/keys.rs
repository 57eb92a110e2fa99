//! `/api/v1/keys`: scoped API keys. Make one (its whole value is in this answer only),
//! list them, revoke one by id or prefix. Scopes `keys:read` and `keys:write`; a key may
//! only make keys with scopes it holds itself.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Json;
use super::problem::{ApiError, Problem};
use crate::auth::Caller;
use crate::auth::keys::{self, CreateError, KeyInput, KeyView, Minted};
use crate::invalid::Invalid;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
}

/// Make an API key. The answer holds the key itself; it is never shown again.
#[utoipa::path(
    post,
    path = "/api/v1/keys",
    tag = "keys",
    security(("api_key" = ["keys:write"])),
    request_body = KeyInput,
    responses(
        (status = 201, description = "The key, with its value", body = Minted),
        (status = 422, description = "A field is not acceptable, or asks for a scope the caller lacks; `field` names it", body = Problem),
        (status = 503, description = "encryption.key is not set", body = Problem),
    )
)]
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(input): Json<KeyInput>,
) -> Result<(StatusCode, axum::Json<Minted>), ApiError> {
    let new = input.check(chrono::Utc::now())?;
    if !caller.scopes().covers(&new.scopes) {
        return Err(Invalid::new(
            "scopes",
            format!(
                "a key may only make keys with scopes it holds; these credentials hold {}",
                caller.scopes().names().join(", ")
            ),
        )
        .into());
    }
    match keys::create(&state.db, state.keys.hasher(), &new, &caller.actor()).await {
        Ok(minted) => Ok((StatusCode::CREATED, axum::Json(minted))),
        Err(CreateError::NoKey) => Err(ApiError::Unavailable(
            "encryption.key (ENCRYPTION_KEY) is not set, so API keys cannot be made: set it to \
             32 random bytes in base64 (openssl rand -base64 32)"
                .into(),
        )),
        Err(CreateError::Store(error)) => Err(error.into()),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

/// Every API key, newest first, revoked and expired ones included; never their values.
#[utoipa::path(
    get,
    path = "/api/v1/keys",
    tag = "keys",
    security(("api_key" = ["keys:read"])),
    responses((status = 200, description = "The keys", body = KeyList))
)]
async fn list(State(state): State<AppState>) -> Result<axum::Json<KeyList>, ApiError> {
    Ok(axum::Json(KeyList {
        keys: keys::list(&state.db).await?,
    }))
}

/// Revoke a key, by id or prefix. It stops working on every replica within a second.
/// Revoking a revoked key changes nothing.
#[utoipa::path(
    delete,
    path = "/api/v1/keys/{id}",
    tag = "keys",
    security(("api_key" = ["keys:write"])),
    params(("id" = String, Path, description = "The key's id or prefix")),
    responses(
        (status = 200, description = "The revoked key", body = KeyView),
        (status = 404, description = "No such key", body = Problem),
    )
)]
async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<axum::Json<KeyView>, ApiError> {
    keys::revoke(&state.db, &id, &caller.actor())
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::NotFound(format!("no API key {id:?}")))
}
