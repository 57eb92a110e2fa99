//! Webhooks: the endpoints applications register (a URL, the event types they want, a
//! signing secret of their own), one delivery per event and matching endpoint, the
//! delivery log with every attempt, replay and recovery, and disabling an endpoint that
//! keeps failing. Deliveries are Standard Webhooks requests sent by the `webhooks` job
//! (`jobs/handlers/webhooks.rs`) through the guarded client.
//!
//! - [`endpoints`]: the endpoints, their input checks and their sealed secrets.
//! - [`deliveries`]: delivery rows, the jobs that carry them, replay, recover and test.
//! - [`outcomes`]: the batched writer of attempts and endpoint health.
//!
//! It imports `config`, the stores, `outbound`, `sealed` and `events`; never `jobs`, the
//! relay, HTTP, a mode or the process state. Its routes are `http/webhooks.rs`.

pub mod deliveries;
pub mod endpoints;
pub mod outcomes;

/// The job kind that delivers a webhook.
pub const JOB_KIND: &str = "webhooks";

/// The queue delivery jobs go to.
pub const QUEUE: &str = "webhooks";

/// The waits of a retry schedule with jitter: wait `n` (after failed attempt `n + 1`)
/// moved by up to `jitter` of itself either way, `unit` a random number in `[0, 1)`.
pub fn retry_wait(
    waits: &[std::time::Duration],
    failed_attempt: u32,
    jitter: f64,
    unit: f64,
) -> Option<std::time::Duration> {
    let wait = *waits.get(failed_attempt.checked_sub(1)? as usize)?;
    let factor = 1.0 + jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    Some(wait.mul_f64(factor.max(0.0)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_retry_schedule_is_followed_with_bounded_jitter() {
        let waits = [Duration::from_secs(5), Duration::from_secs(300)];
        assert_eq!(
            retry_wait(&waits, 1, 0.1, 0.5),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_wait(&waits, 2, 0.1, 0.0),
            Some(Duration::from_secs(270))
        );
        assert_eq!(
            retry_wait(&waits, 2, 0.1, 1.0),
            Some(Duration::from_secs(330))
        );
        assert_eq!(
            retry_wait(&waits, 3, 0.1, 0.5),
            None,
            "no wait after the last attempt"
        );
        assert_eq!(retry_wait(&waits, 0, 0.1, 0.5), None);
    }
}
