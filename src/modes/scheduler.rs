//! `app scheduler`: fires cron schedules into queues. Until the scheduler lands it
//! connects, registers, serves health on `PORT` when set, and drains on SIGTERM.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

pub async fn run(
    state: AppState,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    super::serve_operations(&state, listener, shutdown, serde_json::json!({})).await
}
