//! `app serve`: the HTTP API and the console, and an events relay beside it.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::http;
use crate::instances::Registration;
use crate::state::AppState;

/// Serves the API on `listener` until `shutdown`, then drains.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let router = http::build(
        state.clone(),
        http::public_routes().merge(crate::console::router()),
        http::admin_routes(),
    );
    let relay = crate::relay::run(state.relay(), shutdown.clone());
    let details = serde_json::json!({});
    let (served, relayed) = tokio::join!(
        run_router(state, listener, shutdown, router, details),
        relay
    );
    served.and(relayed)
}

/// Serves `router` (the API, perhaps with more routes) on `listener` until `shutdown`,
/// registered with `details` (an object) and the address it listens on.
pub async fn run_router(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
    router: impl http::HttpService,
    mut details: serde_json::Value,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?.to_string();
    if let Some(fields) = details.as_object_mut() {
        fields.insert("address".into(), address.into());
    }
    let stopping = state.stopping.clone();
    let watch = shutdown.clone();
    tokio::spawn(async move {
        watch.cancelled().await;
        stopping.cancel();
    });
    let registration = Registration::start(&state.db, &state.identity, details).await;
    tracing::info!(mode = state.identity.mode, "ready");
    crate::telemetry::process::release_free_memory();
    let result = http::serve(
        listener,
        router,
        shutdown,
        http::ServeOptions::from_settings(&state.settings),
    )
    .await;
    if let Some(registration) = registration {
        registration.finish().await;
    }
    result
}
