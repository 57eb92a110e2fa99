//! `app all`: the API, the worker, the scheduler and the realtime hub in one process on one
//! port, with production settings: one Railway service for a small deployment, before its
//! load calls for a service per mode. Unlike `app dev` it generates no secrets, keeps the
//! outbound guard on, and migrates only when asked (`--migrate`, or a pre-deploy
//! `app migrate`). The worker consumes every declared queue (`jobs.queues`) unless
//! `--queues` narrows it. One part that fails stops the others, so the platform restarts
//! the whole service rather than leaving it half alive; SIGTERM drains every part within
//! the same drain time.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::http;
use crate::realtime::Realtime;
use crate::state::AppState;

/// Gives the worker every declared queue unless the command line named some.
pub fn prepare(settings: &mut Settings, queues_given: bool) {
    if !queues_given {
        settings.worker.queues = settings.jobs.queues.clone();
    }
}

/// Runs the API (which also serves health, metrics and the realtime socket) with one
/// events relay, the worker, the scheduler and the realtime hub side by side until
/// `shutdown` and their drains. The process registers once, as mode `all`, with what the
/// worker and the scheduler would register on their own.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    super::worker::refuse_missing_secrets(&state.settings)?;
    let registry = super::worker::builtin_registry(&state);
    let mut details = super::worker::details(&state.settings, &registry);
    if let (Some(fields), serde_json::Value::Object(more)) = (
        details.as_object_mut(),
        super::scheduler::details(&state.settings),
    ) {
        fields.extend(more);
    }
    let stop_all_on_error = |result: anyhow::Result<()>| {
        if result.is_err() {
            shutdown.cancel();
        }
        result
    };
    let realtime = Realtime::new(&state.settings, state.realtime.clone())?;
    let router = http::build(
        state.clone(),
        super::realtime::with_socket(
            http::public_routes().merge(crate::console::router()),
            &realtime,
        ),
        http::admin_routes(),
    );
    let (api, worker, scheduler, realtime) = tokio::join!(
        async {
            let relay = crate::relay::run(state.relay(), shutdown.clone());
            let serving = super::serve::run_router(
                state.clone(),
                listener,
                shutdown.clone(),
                router,
                details,
            );
            let (served, relayed) = tokio::join!(serving, relay);
            stop_all_on_error(served.and(relayed))
        },
        async {
            let engine = super::worker::engine(state.clone(), registry, shutdown.clone());
            stop_all_on_error(engine.await)
        },
        async {
            stop_all_on_error(super::scheduler::engine(state.clone(), shutdown.clone()).await)
        },
        async {
            stop_all_on_error(
                super::realtime::engine(state.clone(), realtime, shutdown.clone()).await,
            )
        },
    );
    api.and(worker).and(scheduler).and(realtime)
}
