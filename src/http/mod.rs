//! The HTTP API: route modules (each exposing `router()`), the edge middleware every
//! request passes, and the server loop with its graceful drain.

pub mod auth;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod problem;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Routes anyone may call: the platform's health checks.
pub fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).merge(health::router())
}

/// Routes behind the admin token. Later resources merge in here.
pub fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().merge(metrics::router())
}

/// The whole API of `app serve`.
pub fn router(state: AppState) -> Router {
    build(state, public_routes(), admin_routes())
}

/// Puts the admin gate on `admin`, adds the OpenAPI document of both, and wraps everything
/// in the edge middleware.
pub fn build(
    state: AppState,
    public: OpenApiRouter<AppState>,
    admin: OpenApiRouter<AppState>,
) -> Router {
    let gate = axum::middleware::from_fn_with_state(state.clone(), auth::require_admin);
    let (router, doc) = public
        .merge(admin.route_layer(gate.clone()))
        .split_for_parts();
    let document = openapi::Document::new(doc);
    let limits = middleware::Limits {
        request_timeout: state.settings.request_timeout(),
        body_limit: state.settings.http.body_limit_bytes,
    };
    router
        .merge(openapi::router(document).route_layer(gate))
        .route_layer(axum::middleware::from_fn(middleware::record_route))
        .fallback(middleware::not_found)
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .layer(axum::middleware::from_fn_with_state(
            limits,
            middleware::edge,
        ))
        .with_state(state)
}

/// The OpenAPI document of the full API, as `GET /api/openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    public_routes().merge(admin_routes()).into_openapi()
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting (new
/// connections are refused) and lets in-flight requests finish for at most `drain`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    drain: Duration,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(address = %address, "listening");
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        result = &mut server => return result.map_err(Into::into),
        _ = shutdown.cancelled() => {}
    }
    if let Some(result) = crate::shutdown::drain("http", drain, server).await {
        result?;
    }
    tracing::info!("http server stopped");
    Ok(())
}

/// Binds `host:port`, naming the setting when it fails.
pub async fn bind(host: std::net::IpAddr, port: u16) -> anyhow::Result<TcpListener> {
    let address = SocketAddr::new(host, port);
    TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {address} (HOST, PORT): {e}"))
}
