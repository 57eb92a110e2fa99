//! The HTTP API: route modules (each exposing `router()`), the edge middleware every
//! request passes, and the server loop with its graceful drain.

pub mod audit;
pub mod auth;
pub mod browser;
pub mod context;
pub mod databases;
pub mod delivery_log;
pub mod events;
pub mod extract;
pub mod files;
mod gauges;
mod graceful;
pub mod health;
pub mod jobs;
pub mod keys;
pub mod limit;
mod linger;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod pagination;
pub mod problem;
pub mod queues;
pub mod realtime;
pub mod schedules;
pub mod streaming;
pub mod views;
pub mod webhooks;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::{Service, ServiceBuilder};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;
use graceful::{Graceful, Stopping};

/// The platform's health checks, open to all: what every port serves.
pub fn health_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).merge(health::router())
}

/// The API's routes without the admin gate: health, and file downloads, which authorize
/// themselves (a caller with `files:read`, a signed URL or a public bucket).
pub fn public_routes() -> OpenApiRouter<AppState> {
    health_routes().merge(files::content_router())
}

/// Routes behind the scope gate ([`auth`]). Later resources merge in here.
pub fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(metrics::router())
        .merge(jobs::router())
        .merge(queues::router())
        .merge(schedules::router())
        .merge(files::router())
        .merge(realtime::router())
        .merge(audit::router())
        .merge(events::router())
        .merge(webhooks::router())
        .merge(databases::router())
        .merge(keys::router())
}

/// The OpenAPI document `serve` serves at `/api/openapi.json`, as JSON: what `app
/// openapi` prints for client generators.
pub fn document_json() -> String {
    let (_, mut doc) = public_routes().split_for_parts();
    doc.merge(admin_routes().split_for_parts().1);
    String::from_utf8_lossy(openapi::Document::new(doc).as_bytes()).into_owned()
}

/// The service `serve` runs: the routes wrapped in the edge middleware.
pub trait HttpService:
    Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> HttpService for S where
    S: Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Puts the scope gate on `admin`, adds the OpenAPI document of both (open to all: it is
/// the same for every deployment), and wraps everything in the edge middleware.
///
/// The edge wraps the router as a whole rather than each route: axum clones a route's
/// layered service for every request, so per-route layers cost an allocation each. Only
/// the small layer that reports the matched route runs per route.
pub fn build(
    state: AppState,
    public: OpenApiRouter<AppState>,
    admin: OpenApiRouter<AppState>,
) -> impl HttpService {
    let (admin, admin_doc) = admin.split_for_parts();
    // The gate reads each route's scope from the routes' own document.
    let gate = auth::Gate::new(state.clone(), auth::RouteScopes::from_doc(&admin_doc));
    let limit_public = axum::middleware::from_fn_with_state(gate.clone(), auth::limit_public);
    let gate = axum::middleware::from_fn_with_state(gate, auth::require_scope);
    let (public, mut doc) = public.split_for_parts();
    doc.merge(admin_doc);
    let router = public
        .route_layer(limit_public)
        .merge(admin.route_layer(gate));
    let document = openapi::Document::new(doc);
    let limits = middleware::Limits {
        request_timeout: state.settings.http.request_timeout(),
        body_limit: state.settings.http.body_limit_bytes,
    };
    let state_metrics = state.requests.clone();
    let cors = browser::Cors::new(&state.settings.http);
    let router = router
        .merge(if state.settings.http.openapi_public {
            openapi::router(document)
        } else {
            openapi::router(document).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::require_caller,
            ))
        })
        .layer(middleware::RecordRouteLayer)
        .fallback(middleware::not_found)
        .with_state(state);
    ServiceBuilder::new()
        .layer(middleware::Edge::new(limits, state_metrics, cors))
        .service(router)
}

/// How the server treats its connections, from `[http]` and `[shutdown]`.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// How long in-flight requests may run after shutdown begins.
    pub drain: Duration,
    /// How long a client may take to send a request's headers before its connection is
    /// closed, so stalled half-open connections (slowloris) cannot pile up.
    pub header_read_timeout: Duration,
}

impl ServeOptions {
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self {
            drain: settings.shutdown.drain(),
            header_read_timeout: Duration::from_secs(settings.http.header_read_timeout_seconds),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting (the
/// listener closes, so new connections are refused), closes idle keep-alive connections,
/// and lets in-flight requests finish for at most `options.drain`.
///
/// HTTP/1.1 only: Railway's proxy and every platform in front of Switchyard speak it to
/// their upstreams, and skipping protocol detection keeps each request cheaper.
pub async fn serve(
    listener: TcpListener,
    router: impl HttpService,
    shutdown: CancellationToken,
    options: ServeOptions,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(address = %address, "listening");
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true);
    let connections = TaskTracker::new();
    let stopping = Arc::new(Stopping::default());
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(MapRequestBody {
            inner: router.clone(),
            peer,
        });
        let connection = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let connection = Graceful::new(connection, |c| c.graceful_shutdown(), stopping.clone());
        connections.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection ended with an error");
            }
        });
    }
    // Close the listener first, so that new connections are refused from here on.
    drop(listener);
    stopping.stop();
    connections.close();
    crate::shutdown::drain("http", options.drain, connections.wait()).await;
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

/// Adapts hyper's request body to axum's, as `axum::serve` does. Each request also
/// carries the peer's address (`ConnectInfo`), for the per-address limits of the
/// WebSocket endpoint and of failed authentications (the router allocates each request's
/// extensions for its matched route anyway).
#[derive(Clone)]
struct MapRequestBody<S> {
    inner: S,
    peer: SocketAddr,
}

impl<S: HttpService> Service<hyper::Request<hyper::body::Incoming>> for MapRequestBody<S> {
    type Response = Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: hyper::Request<hyper::body::Incoming>) -> S::Future {
        let mut request = request.map(Body::new);
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        self.inner.call(request)
    }
}
