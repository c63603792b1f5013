//! The plain event generator behind `eventfold produce` and the demo: the realistic
//! [`Workload`](super::Workload) with no out-of-order, late or duplicate events.

use crate::contracts::Interaction;

use super::{Workload, WorkloadConfig};

/// Generates in-order, distinct interactions, deterministic for a seed.
pub struct EventGenerator {
    workload: Workload,
}

impl EventGenerator {
    /// A generator over `users` users and `items` items, starting at `start_ms`.
    pub fn new(seed: u64, users: u32, items: u32, start_ms: i64) -> Self {
        EventGenerator {
            workload: Workload::new(WorkloadConfig {
                seed,
                users,
                items,
                start_ms,
                ..WorkloadConfig::default()
            }),
        }
    }
}

impl Iterator for EventGenerator {
    type Item = Interaction;

    fn next(&mut self) -> Option<Interaction> {
        Some(self.workload.next_planned().1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let a: Vec<_> = EventGenerator::new(7, 10, 5, 0).take(50).collect();
        let b: Vec<_> = EventGenerator::new(7, 10, 5, 0).take(50).collect();
        assert_eq!(a, b);
        let c: Vec<_> = EventGenerator::new(8, 10, 5, 0).take(50).collect();
        assert_ne!(a, c);
        assert!(a.windows(2).all(|w| w[0].occurred_at <= w[1].occurred_at));
    }
}
