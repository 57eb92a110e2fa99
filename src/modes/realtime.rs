//! `app realtime`: the WebSocket hub on `PORT`, beside health, metrics, publishing and
//! token minting. On SIGTERM every socket is closed with 1001 within the drain time, so
//! clients reconnect to another replica and recover from history.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::http;
use crate::realtime::{Realtime, stats};
use crate::state::AppState;

/// How often `/api/health` gets fresh connection and subscriber figures.
const REPORT_EVERY: Duration = Duration::from_secs(1);

pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let realtime = Realtime::new(&state.settings, state.realtime.clone())?;
    let engine = engine(state.clone(), realtime.clone(), shutdown.clone());
    let router = routes(&state, &realtime);
    let address = listener.local_addr()?.to_string();
    super::with_router(
        &state,
        listener,
        shutdown,
        serde_json::json!({ "address": address }),
        router,
        engine,
    )
    .await
}

/// The realtime process's routes: health, the WebSocket endpoint, and metrics, publishing
/// and minting behind the scope gate. Files are the API's.
pub fn routes(state: &AppState, realtime: &Arc<Realtime>) -> impl http::HttpService {
    http::build(
        state.clone(),
        with_socket(http::health_routes(), realtime),
        http::metrics::router().merge(http::realtime::router()),
    )
}

/// `open` routes plus the WebSocket endpoint, for whichever process runs the hub.
pub fn with_socket(
    open: utoipa_axum::router::OpenApiRouter<AppState>,
    realtime: &Arc<Realtime>,
) -> utoipa_axum::router::OpenApiRouter<AppState> {
    open.merge(http::realtime::socket_router(realtime.clone()))
}

/// Runs the hub's Redis subscriber and reports on the hub until `shutdown`; then closes
/// every socket with 1001 (within the drain time) and stops the subscriber.
pub async fn engine(
    state: AppState,
    realtime: Arc<Realtime>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let source = crate::realtime::subscription::Source::new(&state.settings.redis)?;
    let stop_subscriber = CancellationToken::new();
    let mut subscriber = tokio::spawn(
        realtime
            .hub
            .clone()
            .run_subscriber(source, stop_subscriber.clone()),
    );
    let reporter = tokio::spawn(report_to_redis(
        state.clone(),
        realtime.clone(),
        stop_subscriber.clone(),
    ));
    let mut report = tokio::time::interval(REPORT_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            // It only ends early by failing; the process stops rather than serve sockets
            // that hear nothing.
            ended = &mut subscriber => {
                realtime.hub.close_all(state.settings.shutdown.drain()).await;
                stop_subscriber.cancel();
                return match ended {
                    Ok(Ok(())) => Err(anyhow::anyhow!("the realtime subscriber stopped")),
                    Ok(Err(error)) => Err(error.context("the realtime subscriber failed")),
                    Err(error) => Err(anyhow::anyhow!("the realtime subscriber panicked: {error}")),
                };
            }
            _ = report.tick() => {
                let hub = &realtime.hub;
                state.health.publish("connections", hub.connections().into());
                state.health.publish("channels", hub.channel_count().into());
                let subscriber = if hub.subscriber_connected() { "connected" } else { "reconnecting" };
                state.health.publish("subscriber", subscriber.into());
            }
        }
    }
    tracing::info!(
        sockets = realtime.hub.connections(),
        "closing realtime sockets with 1001"
    );
    realtime
        .hub
        .close_all(state.settings.shutdown.drain())
        .await;
    stop_subscriber.cancel();
    let _ = reporter.await;
    match subscriber.await {
        Ok(result) => result,
        Err(error) => Err(anyhow::anyhow!("the realtime subscriber panicked: {error}")),
    }
}

/// Reports the hub's sockets and busiest channels to Redis every [`REPORT_EVERY`], for
/// the API's realtime figures, until `stop`; then withdraws the report.
async fn report_to_redis(state: AppState, realtime: Arc<Realtime>, stop: CancellationToken) {
    let name = format!(
        "{}/{}/{}",
        state.identity.service,
        state.identity.replica,
        std::process::id()
    );
    let mut tick = tokio::time::interval(REPORT_EVERY);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let report = stats::HubReport::of(&name, &realtime.hub, crate::queue::now_ms());
        match stats::report(&state.realtime, &report).await {
            Ok(()) => failing = false,
            Err(error) if !failing => {
                failing = true;
                tracing::debug!(
                    error = format!("{error:#}"),
                    "could not report the hub's figures"
                );
            }
            Err(_) => {}
        }
    }
    // Bounded: a Redis that is down must not hold the exit; readers drop a silent hub's
    // report after `stats::STALE_AFTER` anyway.
    let withdrawn = tokio::time::timeout(
        Duration::from_secs(1),
        stats::withdraw(&state.realtime, &name),
    )
    .await;
    if let Ok(Err(error)) = withdrawn {
        tracing::debug!(
            error = format!("{error:#}"),
            "could not withdraw the hub's report"
        );
    }
}
