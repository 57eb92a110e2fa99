//! When a failed job runs again: exponential backoff with jitter, so that jobs failing
//! together (a downstream outage) do not all retry in the same instant.

use std::time::Duration;

/// The retry policy: `base` doubles with each attempt up to `cap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (1 for the first run). `jitter` is a
    /// random fraction in `[0, 1)`: the wait lands between half and all of the exponential
    /// step ("equal jitter"), so retries spread out but never come sooner than half a step.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        let step = self
            .base
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.cap);
        let half = step / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Backoff = Backoff {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(60),
    };

    #[test]
    fn each_attempt_doubles_the_step_until_the_cap() {
        let full = |attempt| POLICY.delay(attempt, 1.0);
        assert_eq!(full(1), Duration::from_secs(2));
        assert_eq!(full(2), Duration::from_secs(4));
        assert_eq!(full(3), Duration::from_secs(8));
        assert_eq!(full(6), Duration::from_secs(60));
        assert_eq!(
            full(1_000),
            Duration::from_secs(60),
            "no overflow on many attempts"
        );
    }

    #[test]
    fn jitter_keeps_the_wait_between_half_and_all_of_the_step() {
        assert_eq!(POLICY.delay(3, 0.0), Duration::from_secs(4));
        assert_eq!(POLICY.delay(3, 0.5), Duration::from_secs(6));
        assert_eq!(
            POLICY.delay(3, 7.0),
            Duration::from_secs(8),
            "jitter is clamped"
        );
    }
}
