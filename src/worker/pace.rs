//! How many jobs to lease ahead of the free slots: enough for about
//! [`LEASE_AHEAD`] of work at the pace jobs are starting.

use std::time::{Duration, Instant};

/// How much work a worker leases ahead of its free slots, at its current pace.
const LEASE_AHEAD: Duration = Duration::from_millis(50);
/// The most jobs leased ahead of free slots, whatever the pace.
pub const MAX_AHEAD: usize = 256;

/// Jobs started per second, smoothed, and what that means for leasing ahead.
pub struct Pace {
    per_second: f64,
    since: Instant,
    count: u64,
}

impl Pace {
    pub fn new() -> Self {
        Self {
            per_second: 0.0,
            since: Instant::now(),
            count: 0,
        }
    }

    /// How many jobs to hold beyond the free slots, given the running count of starts.
    pub fn jobs_ahead(&mut self, started: u64) -> usize {
        let elapsed = self.since.elapsed();
        if elapsed >= Duration::from_millis(100) {
            let recent = (started - self.count) as f64 / elapsed.as_secs_f64();
            self.per_second = 0.7 * self.per_second + 0.3 * recent;
            self.since = Instant::now();
            self.count = started;
        }
        ((self.per_second * LEASE_AHEAD.as_secs_f64()).ceil() as usize).clamp(1, MAX_AHEAD)
    }
}
