//! `app worker --queues=... --concurrency=N`: runs the job engine on the built-in handlers
//! and an events relay beside the health and metrics routes (on `PORT` when set), and
//! drains on SIGTERM.

use anyhow::bail;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::jobs::Registry;
use crate::state::AppState;
use crate::worker::{Options, Worker};

/// Runs the worker with the built-in handlers.
pub async fn run(
    state: AppState,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let registry = builtin_registry(&state);
    run_with(state, registry, listener, shutdown).await
}

/// Runs the worker with `registry`: how a Rust application adds its own handlers.
pub async fn run_with(
    state: AppState,
    registry: Registry,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    refuse_missing_secrets(&state.settings)?;
    let details = details(&state.settings, &registry);
    let engine = engine(state.clone(), registry, shutdown.clone());
    let relay = crate::relay::run(state.relay(), shutdown.clone());
    let both = async {
        let (ran, relayed) = tokio::join!(engine, relay);
        ran.and(relayed)
    };
    super::with_operations(&state, listener, shutdown, details, both).await
}

/// Refuses to start a worker on a queue whose jobs need a secret that is not set.
pub fn refuse_missing_secrets(settings: &Settings) -> anyhow::Result<()> {
    let consumes = |queue: &str| {
        settings
            .worker
            .weighted_queues()
            .iter()
            .any(|(q, _)| q == queue)
    };
    if consumes("http") && settings.outbound.signing_secret.is_none() {
        bail!(
            "outbound.signing_secret (OUTBOUND_SIGNING_SECRET) must be set for a worker on the \
             http queue: every http job is signed with it (format: whsec_ followed by base64)"
        );
    }
    if consumes(crate::webhooks::QUEUE) && settings.encryption.key.is_none() {
        bail!(
            "encryption.key (ENCRYPTION_KEY) must be set for a worker on the webhooks queue: \
             each endpoint's signing secret is sealed with it (32 bytes, base64; generate one \
             with: openssl rand -base64 32)"
        );
    }
    Ok(())
}

/// What the worker's registry row says: its queues and the kinds it runs, so the API can
/// refuse a kind no live worker handles.
pub fn details(settings: &Settings, registry: &Registry) -> serde_json::Value {
    serde_json::json!({
        "queues": settings.worker.queues,
        "concurrency": settings.worker.concurrency,
        "kinds": registry.kinds(),
    })
}

/// The built-in handlers, built from this process's clients and settings.
pub fn builtin_registry(state: &AppState) -> Registry {
    Registry::builtin(&state.job_services(), &state.settings)
}

/// The job engine alone, wired to `state`, until `shutdown` and its drain.
pub async fn engine(
    state: AppState,
    registry: Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let settings = &state.settings;
    let worker = Worker {
        queues: state.queues.clone(),
        services: state.job_services(),
        announcer: settings.realtime.job_events.then(|| state.realtime.clone()),
        id: state.identity.lease_holder(),
        options: Options::from_settings(settings),
    };
    crate::worker::run(worker, registry, shutdown).await
}
