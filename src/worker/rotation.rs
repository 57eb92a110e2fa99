//! The policy between queues: weighted round robin. Each fetch goes to the next queue in a
//! fixed rotation in which a queue with weight `w` has `w` turns, spread out (smooth
//! weighted round robin, as nginx balances upstreams), and takes at most its share of the
//! worker's slots. A queue with a million jobs waiting therefore cannot starve one with a
//! single job: the quiet queue's turn comes within one rotation, and the busy queue never
//! holds more than its share of slots while others have work.

/// The fetch order over a worker's queues.
#[derive(Debug)]
pub struct Rotation {
    queues: Vec<String>,
    /// Indexes into `queues`, one per turn.
    turns: Vec<usize>,
    /// The most slots each queue fills per turn.
    shares: Vec<usize>,
    cursor: usize,
}

impl Rotation {
    /// `queues` with their weights (at least 1), for a worker running `concurrency` jobs.
    pub fn new(queues: &[(String, u32)], concurrency: usize) -> Self {
        let weights: Vec<i64> = queues.iter().map(|(_, w)| i64::from((*w).max(1))).collect();
        let total: i64 = weights.iter().sum();
        let mut current = vec![0i64; weights.len()];
        let mut turns = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, w) in current.iter_mut().zip(&weights) {
                *c += w;
            }
            let best = (0..current.len())
                .max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
                .unwrap_or(0);
            current[best] -= total;
            turns.push(best);
        }
        let shares = weights
            .iter()
            .map(|&w| ((concurrency as i64 * w + total - 1) / total).max(1) as usize)
            .collect();
        Self {
            queues: queues.iter().map(|(q, _)| q.clone()).collect(),
            turns,
            shares,
            cursor: 0,
        }
    }

    /// How many queues there are.
    pub fn len(&self) -> usize {
        self.queues.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// The queue whose turn it is and the most slots it may fill; advances the rotation.
    pub fn turn(&mut self) -> (&str, usize) {
        let index = self.turns[self.cursor % self.turns.len()];
        self.cursor = (self.cursor + 1) % self.turns.len();
        (&self.queues[index], self.shares[index])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(spec: &[(&str, u32)]) -> Vec<(String, u32)> {
        spec.iter().map(|(q, w)| (q.to_string(), *w)).collect()
    }

    #[test]
    fn equal_queues_take_turns() {
        let mut rotation = Rotation::new(&queues(&[("a", 1), ("b", 1)]), 8);
        let order: Vec<_> = (0..4).map(|_| rotation.turn().0.to_owned()).collect();
        assert_eq!(order, ["a", "b", "a", "b"]);
        assert_eq!(rotation.turn().1, 4, "each may fill half the slots");
    }

    #[test]
    fn weights_give_turns_in_proportion_and_spread_out() {
        let mut rotation = Rotation::new(&queues(&[("webhooks", 3), ("audits", 1)]), 32);
        let order: Vec<_> = (0..8).map(|_| rotation.turn().0.to_owned()).collect();
        assert_eq!(order.iter().filter(|q| *q == "webhooks").count(), 6);
        assert_eq!(order.iter().filter(|q| *q == "audits").count(), 2);
        assert!(
            order.windows(4).all(|w| w.contains(&"audits".to_owned())),
            "audits waits at most three turns: {order:?}"
        );
    }

    #[test]
    fn a_small_worker_still_gives_every_queue_a_slot() {
        let mut rotation = Rotation::new(&queues(&[("a", 1), ("b", 1), ("c", 1)]), 1);
        for _ in 0..3 {
            assert_eq!(rotation.turn().1, 1);
        }
    }
}
