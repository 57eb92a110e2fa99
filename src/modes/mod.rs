//! One module per `app` subcommand. Each wires shared parts together and runs; none holds
//! business logic. Every long-running mode has the shape `run(state, listener, shutdown)`
//! so tests can call it in-process.

pub mod all;
pub mod config_check;
pub mod dev;
pub mod healthcheck;
pub mod jobs;
pub mod keys;
pub mod migrate;
pub mod realtime;
pub mod scheduler;
pub mod serve;
pub mod worker;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::http;
use crate::instances::Registration;
use crate::state::AppState;

/// The routes the worker and the scheduler serve on their port: health (open) and metrics
/// (`metrics:read`), for the platform's checks and a scraper. Files are the API's.
pub fn operations_router(state: AppState) -> impl http::HttpService {
    http::build(state, http::health_routes(), http::metrics::router())
}

/// Registers the instance, serves the operations routes when a listener is given, and
/// waits for shutdown. The worker, scheduler and realtime modes run their own loops beside
/// this.
pub async fn serve_operations(
    state: &AppState,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    let router = listener.as_ref().map(|_| operations_router(state.clone()));
    serve_registered(state, listener.zip(router), shutdown, details).await
}

/// Registers the instance, serves `router` on `listener` when given, and waits for
/// shutdown.
async fn serve_registered(
    state: &AppState,
    serving: Option<(TcpListener, impl http::HttpService)>,
    shutdown: CancellationToken,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    let registration = Registration::start(&state.db, &state.identity, details).await;
    tracing::info!(mode = state.identity.mode, "ready");
    crate::telemetry::process::release_free_memory();
    let result = match serving {
        Some((listener, router)) => {
            http::serve(
                listener,
                router,
                shutdown,
                http::ServeOptions::from_settings(&state.settings),
            )
            .await
        }
        None => {
            shutdown.cancelled().await;
            Ok(())
        }
    };
    if let Some(registration) = registration {
        registration.finish().await;
    }
    result
}

/// Runs a mode's `engine` beside the operations routes until `shutdown`. An engine that
/// fails stops the process rather than leaving its health green.
pub async fn with_operations(
    state: &AppState,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
    details: serde_json::Value,
    engine: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let operations = serve_operations(state, listener, shutdown.clone(), details);
    run_beside(operations, shutdown, engine).await
}

/// Runs a mode's `engine` beside its own `router` on `listener` until `shutdown`.
pub async fn with_router(
    state: &AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
    details: serde_json::Value,
    router: impl http::HttpService,
    engine: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let serving = serve_registered(state, Some((listener, router)), shutdown.clone(), details);
    run_beside(serving, shutdown, engine).await
}

/// Runs `engine` and `serving` together; an engine that fails cancels `shutdown`.
async fn run_beside(
    serving: impl std::future::Future<Output = anyhow::Result<()>>,
    shutdown: CancellationToken,
    engine: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let (engine, serving) = tokio::join!(
        async {
            let result = engine.await;
            if result.is_err() {
                shutdown.cancel();
            }
            result
        },
        serving
    );
    engine.and(serving)
}
