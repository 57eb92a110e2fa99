//! The gate on every endpoint but health and the API document: who the caller is (the
//! admin token, an API key, an upload token or a console session, from [`crate::auth`]), whether they hold the scope the
//! matched route needs, and whether they have budget left ([`super::limit`]). 401 is no
//! or bad credentials, 403 a missing scope, named, 429 an exhausted budget.
//!
//! Each route declares its scope once, in its OpenAPI operation
//! (`security(("api_key" = ["jobs:write"]))`), next to its handler; [`RouteScopes`]
//! reads them from the document the routes make, so the document and the gate cannot
//! disagree. A route without one is refused to every key (only the root token, which
//! holds every scope, may call it), and a test fails on it.
//!
//! A route that also names the `upload_token` scheme takes upload tokens
//! ([`crate::storage::grants`]), in the `Authorization` header or, for a browser form,
//! as `?token=`. Every other route refuses them with 403.
//!
//! A request without a token may carry a console session cookie
//! ([`crate::auth::sessions`]): it acts as the session's holder, and a request that
//! changes something must also carry the session's CSRF token (403 without it).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;

use super::limit::{self, Limits};
use super::problem::ApiError;
use crate::auth::keys::Refusal;
use crate::auth::scopes::Scope;
use crate::auth::{Caller, bearer_token, keys, sessions};
use crate::state::AppState;
use crate::storage::grants;

/// The security scheme routes name their scope under.
pub const SCHEME: &str = "api_key";
/// The security scheme of routes that take upload tokens.
pub const UPLOAD_SCHEME: &str = "upload_token";

/// What a route lets in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// The scope a key needs; `None`: only the root token.
    pub scope: Option<Scope>,
    /// Whether an upload token opens it.
    pub upload: bool,
}

/// Each route's access, by method and path template, read from the OpenAPI document.
#[derive(Clone, Debug, Default)]
pub struct RouteScopes(Arc<HashMap<(Method, String), Access>>);

impl RouteScopes {
    /// Every operation of `doc`, with the scope its `api_key` requirement names (`None`
    /// when it names none, or one that is not a scope), and whether it names
    /// `upload_token`.
    pub fn from_doc(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut routes = HashMap::new();
        for (path, item) in &doc.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                let requirements: Vec<serde_json::Value> = operation
                    .security
                    .iter()
                    .flatten()
                    .filter_map(|r| serde_json::to_value(r).ok())
                    .collect();
                let scope = requirements.iter().find_map(|r| {
                    r.get(SCHEME)?
                        .as_array()?
                        .first()?
                        .as_str()
                        .and_then(Scope::parse)
                });
                let upload = requirements.iter().any(|r| r.get(UPLOAD_SCHEME).is_some());
                routes.insert((method, path.clone()), Access { scope, upload });
            }
        }
        Self(Arc::new(routes))
    }

    /// What `method` on the route template `path` lets in; only the root token when it
    /// declares nothing (or is not in the document).
    pub fn access(&self, method: &Method, path: &str) -> Access {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.0
            .get(&(method.clone(), path.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// Every route with its access, sorted: what the authorization matrix test walks.
    pub fn routes(&self) -> Vec<(Method, String, Access)> {
        let mut all: Vec<_> = self
            .0
            .iter()
            .map(|((m, p), a)| (m.clone(), p.clone(), *a))
            .collect();
        all.sort_by(|a, b| (&a.1, a.0.as_str()).cmp(&(&b.1, b.0.as_str())));
        all
    }
}

/// What the gate needs.
#[derive(Clone)]
pub struct Gate {
    pub state: AppState,
    pub routes: RouteScopes,
    /// `[rate_limit]`, read once.
    pub limits: Arc<Limits>,
}

impl Gate {
    pub fn new(state: AppState, routes: RouteScopes) -> Self {
        let limits = Arc::new(Limits::new(&state.settings.rate_limit));
        Self {
            state,
            routes,
            limits,
        }
    }
}

/// Route layer: lets a request through when its caller holds the matched route's scope
/// and has budget left, and hands the handler the [`Caller`] as an extension. A failed
/// authentication counts against its client address's budget of failures.
pub async fn require_scope(
    State(gate): State<Gate>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let access = gate.routes.access(request.method(), &path);
    let token = presented_token(&request, access.upload);
    let found = match token.as_deref() {
        None => session_caller(&gate.state, request.method(), request.headers()).await?,
        Some(token) if grants::is_upload_token(token) => {
            upload_grant(&gate.state, token).await?.map(Caller::Upload)
        }
        Some(token) => token_caller(&gate.state, token)
            .await?
            .ok_or(ApiError::Unauthorized),
    };
    drop(token);
    let caller = match found {
        Ok(caller) => caller,
        Err(refused) => {
            let address = client_of(&gate, &request);
            if let Err(refused) = limit::count_failure(&gate.state, &gate.limits, address).await {
                return Ok(refused);
            }
            return Err(refused);
        }
    };
    match (&caller, access.scope) {
        (Caller::Upload(_), _) if !access.upload => {
            return Err(ApiError::Forbidden(
                "an upload token only uploads files (POST /api/v1/files and \
                 POST /api/v1/files/complete)"
                    .into(),
            ));
        }
        (Caller::Upload(_), _) | (Caller::Root, _) => {}
        (caller, Some(scope)) if !caller.allows(scope) => {
            return Err(ApiError::MissingScope(scope));
        }
        (Caller::Key(_), Some(_)) => {}
        (Caller::Key(_), None) => {
            tracing::error!(path, method = %request.method(), "a route declares no scope; only the root token may call it");
            return Err(ApiError::Forbidden(
                "this route declares no scope, so only the admin token may call it".into(),
            ));
        }
    }
    let who = caller.budget();
    request.extensions_mut().insert(caller);
    Ok(counted(&gate, &who, &path, request, next).await)
}

/// Runs the request when `who` has budget left on `path`, and stamps the answer with
/// what is left; the 429 (or, failing closed, the 503) when not.
async fn counted(gate: &Gate, who: &str, path: &str, request: Request, next: Next) -> Response {
    let counted = match limit::count(&gate.state, &gate.limits, who, request.method(), path).await {
        Ok(counted) => counted,
        Err(refused) => return refused,
    };
    let mut response = next.run(request).await;
    if let Some(counted) = counted {
        counted.stamp(&mut response);
    }
    response
}

/// The request's client address, believing forwarded ones only from trusted proxies.
fn client_of(gate: &Gate, request: &Request) -> Option<std::net::IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    limit::client_address(peer, request.headers(), &gate.limits.trusted)
}

/// Route layer of the routes open without credentials (the download, which authorizes
/// itself): counts each request against its caller's budget, as the gate does, or, when
/// it carries no working credentials (a signed URL, a public bucket), against its client
/// address's. Health and the API document are never counted.
pub async fn limit_public(
    State(gate): State<Gate>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(path) = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .filter(|p| !p.starts_with("/api/health") && !p.starts_with("/api/openapi"))
        .map(str::to_owned)
    else {
        return Ok(next.run(request).await);
    };
    let who = match caller(&gate.state, request.headers()).await? {
        Some(caller) => caller.budget(),
        None => {
            let address = client_of(&gate, &request);
            format!("ip:{}", address.map_or("unknown".into(), |a| a.to_string()))
        }
    };
    Ok(counted(&gate, &who, &path, request, next).await)
}

/// Route layer of a read open to any caller with credentials, whatever their scopes
/// (the API document, when `http.openapi_public` is false): a key, the admin token or a
/// console session, as [`reader`] finds them; else 401.
pub async fn require_caller(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if reader(&state, request.headers()).await?.is_none() {
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(request).await)
}

/// The bearer token of the request; on a route that takes upload tokens, else an upload
/// token in the `token` query parameter (a browser form cannot set a header). Keys are
/// never taken from a URL, which proxies and browsers keep in their logs and histories.
fn presented_token(request: &Request, upload: bool) -> Option<Cow<'_, str>> {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    if let Some(bearer) = bearer {
        return Some(Cow::Borrowed(bearer));
    }
    if !upload {
        return None;
    }
    url::form_urlencoded::parse(request.uri().query()?.as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value)
        .filter(|value| grants::is_upload_token(value))
}

/// Who the request's console session cookie names, for a request without a token. A
/// request that changes something must also carry the session's CSRF token; reads need
/// not. No cookie, an unknown or expired session, or a holder that no longer opens
/// anything (a revoked key, the root token turned off) is a 401.
async fn session_caller(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Result<Caller, ApiError>, ApiError> {
    let Some((_, session)) = console_session(state, headers).await? else {
        return Ok(Err(ApiError::Unauthorized));
    };
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !csrf_sent(&session, headers) {
        return Ok(Err(ApiError::Csrf));
    }
    Ok(holder_caller(state, &session.holder)
        .await?
        .ok_or(ApiError::Unauthorized))
}

/// The console session the request's cookie names, with its id, while it lasts.
pub async fn console_session<'h>(
    state: &AppState,
    headers: &'h HeaderMap,
) -> Result<Option<(&'h str, sessions::Session)>, ApiError> {
    let Some(id) = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(sessions::from_cookies)
    else {
        return Ok(None);
    };
    Ok(state.sessions.find(id).await?.map(|session| (id, session)))
}

/// Whether the request carries the session's CSRF token.
pub fn csrf_sent(session: &sessions::Session, headers: &HeaderMap) -> bool {
    let csrf = headers
        .get(sessions::CSRF_HEADER)
        .and_then(|v| v.to_str().ok());
    sessions::csrf_matches(session, csrf)
}

/// The caller a session's holder is now, if it still opens anything.
pub async fn holder_caller(
    state: &AppState,
    holder: &sessions::Holder,
) -> Result<Option<Caller>, ApiError> {
    Ok(match holder {
        sessions::Holder::Root => state
            .settings
            .app
            .admin_token_enabled
            .then_some(Caller::Root),
        sessions::Holder::Key { prefix } => {
            state.keys.check_prefix(prefix).await?.ok().map(Caller::Key)
        }
    })
}

/// What an upload token grants, or why it is refused (a 401 naming the reason: an
/// upload token is meant for browsers, whose developers need to know which).
pub async fn upload_grant(
    state: &AppState,
    token: &str,
) -> Result<Result<grants::Grant, ApiError>, ApiError> {
    let Some(key) = state.storage.grant_key() else {
        return Ok(Err(ApiError::TokenRefused(
            "upload tokens need a signing key, and app.secret (APP_SECRET) is not set".into(),
        )));
    };
    let grant = match key.verify(token, chrono::Utc::now().timestamp()) {
        Ok(grant) => grant,
        Err(refusal) => return Ok(Err(ApiError::TokenRefused(refusal.to_string()))),
    };
    if grant.single_use && grants::used(&state.db, grant.id).await? {
        return Ok(Err(ApiError::TokenRefused(
            grants::Refusal::Used.to_string(),
        )));
    }
    Ok(Ok(grant))
}

/// Who the request's credentials name, if they name anyone. A presented key that does
/// not work is `None` (a 401 for the caller); Postgres failing is an error (a 503).
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>, ApiError> {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
    else {
        return Ok(None);
    };
    token_caller(state, token).await
}

/// The caller a read outside the gate (a download) comes from: a bearer token, or else
/// the console session its cookie names (a read needs no CSRF token), or `None`.
pub async fn reader(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>, ApiError> {
    if let Some(caller) = caller(state, headers).await? {
        return Ok(Some(caller));
    }
    match console_session(state, headers).await? {
        Some((_, session)) => holder_caller(state, &session.holder).await,
        None => Ok(None),
    }
}

/// Who a bearer token (the admin token or an API key) names, as [`caller`].
pub async fn token_caller(state: &AppState, token: &str) -> Result<Option<Caller>, ApiError> {
    let app = &state.settings.app;
    if app.admin_token_enabled && crate::auth::is_root(app.admin_token.as_ref(), token) {
        return Ok(Some(Caller::Root));
    }
    if keys::split(token).is_none() {
        return Ok(None);
    }
    match state.keys.check(token).await? {
        Ok(key) => Ok(Some(Caller::Key(key))),
        Err(refusal) => {
            if matches!(refusal, Refusal::Revoked | Refusal::Expired) {
                tracing::debug!(reason = %refusal, "an API key was refused");
            }
            Ok(None)
        }
    }
}
