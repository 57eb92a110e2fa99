//! `app worker --queues=... --concurrency=N`: runs the job engine on the built-in handlers
//! and an events relay beside the health and metrics routes (on `PORT` when set), and
//! drains on SIGTERM.

use anyhow::bail;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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
    let settings = &state.settings;
    let consumes_http = settings
        .worker
        .weighted_queues()
        .iter()
        .any(|(q, _)| q == "http");
    if consumes_http && settings.outbound.signing_secret.is_none() {
        bail!(
            "outbound.signing_secret (OUTBOUND_SIGNING_SECRET) must be set for a worker on the \
             http queue: every http job is signed with it (format: whsec_ followed by base64)"
        );
    }
    let consumes_webhooks = settings
        .worker
        .weighted_queues()
        .iter()
        .any(|(q, _)| q == crate::webhooks::QUEUE);
    if consumes_webhooks && settings.encryption.key.is_none() {
        bail!(
            "encryption.key (ENCRYPTION_KEY) must be set for a worker on the webhooks queue: \
             each endpoint's signing secret is sealed with it (32 bytes, base64; generate one \
             with: openssl rand -base64 32)"
        );
    }
    // The kinds it runs, so the API can refuse a kind no live worker handles.
    let details = serde_json::json!({
        "queues": settings.worker.queues,
        "concurrency": settings.worker.concurrency,
        "kinds": registry.kinds(),
    });
    let engine = engine(state.clone(), registry, shutdown.clone());
    // `app dev` and `app all` run their relay beside the API.
    let relay = (!matches!(state.identity.mode, "dev" | "all"))
        .then(|| crate::relay::run(state.relay(), shutdown.clone()));
    let both = async {
        let (ran, relayed) = tokio::join!(engine, async {
            match relay {
                Some(relay) => relay.await,
                None => Ok(()),
            }
        });
        ran.and(relayed)
    };
    super::with_operations(&state, listener, shutdown, details, both).await
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
