//! The gate on every endpoint but health and the API document: who the caller is (the
//! admin token or an API key, from [`crate::auth`]), whether they hold the scope the
//! matched route needs, and whether they have budget left ([`super::limit`]). 401 is no
//! or bad credentials, 403 a missing scope, named, 429 an exhausted budget.
//!
//! Each route declares its scope once, in its OpenAPI operation
//! (`security(("api_key" = ["jobs:write"]))`), next to its handler; [`RouteScopes`]
//! reads them from the document the routes make, so the document and the gate cannot
//! disagree. A route without one is refused to every key (only the root token, which
//! holds every scope, may call it), and a test fails on it.

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
use crate::auth::{Caller, bearer_token, keys};
use crate::state::AppState;

/// The security scheme routes name their scope under.
pub const SCHEME: &str = "api_key";

/// Each route's scope, by method and path template, read from the OpenAPI document.
#[derive(Clone, Debug, Default)]
pub struct RouteScopes(Arc<HashMap<(Method, String), Option<Scope>>>);

impl RouteScopes {
    /// Every operation of `doc`, with the scope its `api_key` requirement names (`None`
    /// when it names none, or one that is not a scope).
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
                let scope = operation
                    .security
                    .iter()
                    .flatten()
                    .filter_map(|r| serde_json::to_value(r).ok())
                    .find_map(|r| {
                        r.get(SCHEME)?
                            .as_array()?
                            .first()?
                            .as_str()
                            .and_then(Scope::parse)
                    });
                routes.insert((method, path.clone()), scope);
            }
        }
        Self(Arc::new(routes))
    }

    /// The scope `method` on the route template `path` needs; `None` when it declares
    /// none (or is not in the document).
    pub fn needed(&self, method: &Method, path: &str) -> Option<Scope> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.0
            .get(&(method.clone(), path.to_owned()))
            .copied()
            .flatten()
    }

    /// Every route with its scope, sorted: what the authorization matrix test walks.
    pub fn routes(&self) -> Vec<(Method, String, Option<Scope>)> {
        let mut all: Vec<_> = self
            .0
            .iter()
            .map(|((m, p), s)| (m.clone(), p.clone(), *s))
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
    let Some(caller) = caller(&gate.state, request.headers()).await? else {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let address = limit::client_address(peer, request.headers(), &gate.limits.trusted);
        if let Err(refused) = limit::count_failure(&gate.state, &gate.limits, address).await {
            return Ok(refused);
        }
        return Err(ApiError::Unauthorized);
    };
    match (gate.routes.needed(request.method(), &path), &caller) {
        (Some(scope), caller) if !caller.allows(scope) => {
            return Err(ApiError::MissingScope(scope));
        }
        (Some(_), _) | (None, Caller::Root) => {}
        (None, Caller::Key(_)) => {
            tracing::error!(path, method = %request.method(), "a route declares no scope; only the root token may call it");
            return Err(ApiError::Forbidden(
                "this route declares no scope, so only the admin token may call it".into(),
            ));
        }
    }
    let who = match &caller {
        Caller::Root => "root".to_owned(),
        Caller::Key(key) => format!("key:{}", key.id),
    };
    let counted = match limit::count(&gate.state, &gate.limits, &who, request.method(), &path).await
    {
        Ok(counted) => counted,
        Err(refused) => return Ok(refused),
    };
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    if let Some(counted) = counted {
        counted.stamp(&mut response);
    }
    Ok(response)
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
