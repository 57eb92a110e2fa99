//! `app worker --queues=... --concurrency=N`: consumes job queues. Until the job engine
//! lands it connects, registers with its queues, serves health on `PORT` when set, and
//! drains on SIGTERM.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

pub async fn run(
    state: AppState,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let worker = &state.settings.worker;
    let details = serde_json::json!({
        "queues": worker.queues,
        "concurrency": worker.concurrency,
    });
    tracing::info!(
        queues = worker.queues.join(","),
        concurrency = worker.concurrency,
        "worker configured"
    );
    super::serve_operations(&state, listener, shutdown, details).await
}
