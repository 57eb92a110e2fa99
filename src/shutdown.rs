//! Turns SIGTERM and SIGINT into one cancellation token that every mode watches, and
//! bounds the drain that follows. Installing the handlers ourselves matters as PID 1 in a
//! container, where the kernel ignores a signal that has no handler.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// A token cancelled by the first SIGTERM or SIGINT. A second signal exits at once, for
/// the operator who does not want to wait for the drain.
pub fn on_signal() -> std::io::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutdown requested; draining in-flight work");
        trigger.cancel();
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::warn!(
            signal = name,
            "second signal; exiting without finishing the drain"
        );
        std::process::exit(130);
    });
    Ok(token)
}

/// Awaits `work` for at most `limit`. Returns `None`, after a warning, when the deadline
/// passes first, so the caller can exit anyway.
pub async fn drain<F: Future>(what: &str, limit: Duration, work: F) -> Option<F::Output> {
    match tokio::time::timeout(limit, work).await {
        Ok(output) => Some(output),
        Err(_) => {
            tracing::warn!(
                component = what,
                drain_seconds = limit.as_secs(),
                "drain deadline passed; abandoning what is still in flight"
            );
            None
        }
    }
}
