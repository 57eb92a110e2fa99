//! The admin-token gate on every endpoint but health, until scoped API keys arrive. Who
//! the caller is comes from [`crate::auth`]; this module only turns the answer into a
//! 401. With no token configured the gate refuses everything: it never falls open.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;

use super::problem::ApiError;
use crate::state::AppState;

/// Route layer: lets the request through only with `Authorization: Bearer <ADMIN_TOKEN>`.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if is_admin(&state, request.headers()) {
        Ok(next.run(request).await)
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Whether the request carries the admin token; never when none is configured.
pub fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    crate::auth::is_admin(state.settings.app.admin_token.as_ref(), authorization)
}
