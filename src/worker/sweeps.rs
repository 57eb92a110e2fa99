//! When a worker sweeps a queue (due delayed and retrying jobs to ready, lapsed leases
//! back) as part of a fetch. Always, unless its last batch from the queue was full and it
//! swept less than [`SWEEP_EVERY_MS`] ago: while a backlog drains, the sweep's three
//! commands go once per interval instead of once per batch, and what came due waits at
//! most that much longer.

use std::collections::HashMap;

/// The longest a worker that keeps taking full batches of a queue goes between sweeps.
const SWEEP_EVERY_MS: i64 = 100;

/// Per queue: when this worker last swept it, and whether its last batch was full.
#[derive(Default)]
pub struct Sweeps(HashMap<String, (i64, bool)>);

impl Sweeps {
    /// Whether the fetch from `queue` at `now_ms` should sweep it.
    pub fn due(&self, queue: &str, now_ms: i64) -> bool {
        match self.0.get(queue) {
            Some(&(swept_at, true)) => now_ms - swept_at >= SWEEP_EVERY_MS,
            _ => true,
        }
    }

    /// Records a fetch from `queue` at `now_ms`: whether it swept and came back full.
    pub fn fetched(&mut self, queue: &str, now_ms: i64, swept: bool, full: bool) {
        let last = self.0.entry(queue.to_owned()).or_insert((now_ms, full));
        last.1 = full;
        if swept {
            last.0 = now_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Sweeps;

    #[test]
    fn a_queue_is_swept_unless_its_last_batch_was_full_and_the_sweep_recent() {
        let mut sweeps = Sweeps::default();
        assert!(sweeps.due("q", 0), "a queue never fetched is swept");
        sweeps.fetched("q", 0, true, true);
        assert!(!sweeps.due("q", 99), "full and swept 99 ms ago");
        assert!(sweeps.due("q", 100), "full, but the interval is up");
        sweeps.fetched("q", 50, false, false);
        assert!(sweeps.due("q", 51), "the last batch was not full");
        sweeps.fetched("q", 60, true, true);
        sweeps.fetched("q", 120, false, true);
        assert!(
            !sweeps.due("q", 159),
            "a fetch without a sweep keeps the last sweep's time"
        );
        assert!(sweeps.due("q", 160));
    }
}
