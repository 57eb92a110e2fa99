//! `/console/session`: signing in (the admin token or an API key, traded for a session
//! cookie), reading the session (who, their scopes, and the CSRF token the page sends
//! back), and signing out. The key is read once, here, and never reaches the browser's
//! storage: the cookie is HttpOnly, `SameSite=Strict`, and `Secure` behind HTTPS.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::auth::sessions::{self, Holder, Session};
use crate::http::auth::{console_session, csrf_sent, holder_caller, token_caller};
use crate::http::browser::forwarded_https;
use crate::http::extract::Json;
use crate::http::limit::{self, Limits};
use crate::http::problem::ApiError;
use crate::state::AppState;

/// The path the session lives at.
pub const PATH: &str = "/console/session";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The admin token or an API key.
    pub token: String,
}

/// What the page knows of its session.
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub holder: Holder,
    pub scopes: Vec<String>,
    /// Send it back in `X-CSRF-Token` on every request that changes something.
    pub csrf_token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl SessionView {
    fn new(session: Session, caller: &Caller) -> Self {
        Self {
            holder: session.holder,
            scopes: caller.scopes().names(),
            csrf_token: session.csrf,
            expires_at: session.expires_at,
        }
    }
}

/// `POST /console/session`: trades a token for a session cookie. A token that opens
/// nothing is a 401 and counts against the client address's failed sign-ins.
pub async fn sign_in(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Json(body): Json<SignIn>,
) -> Result<Response, ApiError> {
    let token = body.token.trim();
    let caller = match token_caller(&state, token).await? {
        Some(caller @ (Caller::Root | Caller::Key(_))) => caller,
        _ => {
            let limits = Limits::new(&state.settings.rate_limit);
            let address =
                limit::client_address(connection.map(|c| c.0.0), &headers, &limits.trusted);
            if let Err(refused) = limit::count_failure(&state, &limits, address).await {
                return Ok(refused);
            }
            return Err(ApiError::Unauthorized);
        }
    };
    let holder = match &caller {
        Caller::Key(key) => Holder::Key {
            prefix: key.prefix.clone(),
        },
        _ => Holder::Root,
    };
    let (id, session) = state.sessions.start(holder).await?;
    let cookie = cookie(&id, state.sessions.lifetime().as_secs(), &headers);
    let view = SessionView::new(session, &caller);
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, cookie)],
        axum::Json(view),
    )
        .into_response())
}

/// `GET /console/session`: the session the cookie names, or 204 when there is none (the
/// page asks at every load; not being signed in is not an error).
pub async fn current(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Ok(match signed_in(&state, &headers).await? {
        Some((_, session, caller)) => {
            axum::Json(SessionView::new(session, &caller)).into_response()
        }
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `DELETE /console/session`: signs out (with the CSRF token, as every change); the
/// cookie is cleared whether or not the session still existed.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some((id, session)) = console_session(&state, &headers).await? {
        if !csrf_sent(&session, &headers) {
            return Err(ApiError::Csrf);
        }
        state.sessions.end(id).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, cookie("", 0, &headers))],
    )
        .into_response())
}

/// The session the request's cookie names, with its id and who it is now.
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(String, Session, Caller)>, ApiError> {
    let Some((id, session)) = console_session(state, headers).await? else {
        return Ok(None);
    };
    let Some(caller) = holder_caller(state, &session.holder).await? else {
        return Ok(None);
    };
    Ok(Some((id.to_owned(), session, caller)))
}

/// The session cookie: HttpOnly, `SameSite=Strict`, for the whole origin (the API's
/// routes read it too), `Secure` when the request came over HTTPS; `max_age` 0 clears it.
fn cookie(id: &str, max_age: u64, headers: &HeaderMap) -> HeaderValue {
    let secure = if forwarded_https(headers) {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{}={id}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
        sessions::COOKIE
    );
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("sy_console=; Max-Age=0"))
}
