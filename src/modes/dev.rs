//! `app dev`: every mode in one process on shared pools, for a laptop. Migrates first,
//! and when no admin token is configured generates one and prints it once.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Secret;
use crate::state::AppState;

/// A fresh random admin token for this run.
pub fn generate_token() -> anyhow::Result<Secret> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Secret::new(format!("dev_{hex}")))
}

/// Runs the API (which also serves health), the worker, the scheduler and the realtime
/// hub side by side until `shutdown`.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let applied = crate::db::migrate(&state.db).await?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "applied migrations");
    }
    // One part failing stops the others, as a crashed container would on Railway.
    let stop_all_on_error = |result: anyhow::Result<()>| {
        if result.is_err() {
            shutdown.cancel();
        }
        result
    };
    let (api, worker, scheduler, realtime) = tokio::join!(
        async {
            stop_all_on_error(super::serve::run(state.clone(), listener, shutdown.clone()).await)
        },
        async {
            stop_all_on_error(super::worker::run(state.clone(), None, shutdown.clone()).await)
        },
        async {
            stop_all_on_error(super::scheduler::run(state.clone(), None, shutdown.clone()).await)
        },
        async {
            stop_all_on_error(super::realtime::run(state.clone(), None, shutdown.clone()).await)
        },
    );
    api.and(worker).and(scheduler).and(realtime)
}
