//! Start-up retries. Railway's private network can lag behind a container's boot, so a
//! dependency that is not reachable yet is tried again with backoff until a deadline,
//! while an answer that will not change (wrong password, missing database) fails at once.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// What one attempt learned.
pub enum Attempt<T> {
    Ready(T),
    /// Worth another try: refused, timed out, server still starting.
    Retry(anyhow::Error),
    /// Retrying cannot help.
    Fatal(anyhow::Error),
}

/// Calls `attempt` until it succeeds, fails fatally or `wait` has passed, sleeping
/// 100 ms, 200 ms, ... up to 2 s between tries.
pub async fn until_ready<T, F, Fut>(what: &str, wait: Duration, mut attempt: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let deadline = Instant::now() + wait;
    let mut delay = Duration::from_millis(100);
    for number in 1u32.. {
        match attempt().await {
            Attempt::Ready(value) => {
                if number > 1 {
                    tracing::info!(
                        dependency = what,
                        attempts = number,
                        "dependency is reachable"
                    );
                }
                return Ok(value);
            }
            Attempt::Fatal(error) => return Err(error),
            Attempt::Retry(error) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(error.context(format!(
                        "{what} was not reachable within {}s (startup.dependency_wait_seconds); \
                         gave up after {number} attempts",
                        wait.as_secs()
                    )));
                }
                tracing::warn!(
                    dependency = what,
                    attempt = number,
                    error = format!("{error:#}"),
                    retry_in_ms = delay.as_millis() as u64,
                    "dependency not reachable yet; retrying"
                );
                tokio::time::sleep(delay.min(deadline - now)).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
    unreachable!("the attempt counter does not overflow before the deadline")
}
