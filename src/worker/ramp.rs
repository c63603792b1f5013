//! The size at which a backlog's next batch is cut once the store is free: an eighth of a
//! full batch first, twice the one before after each cut, up to full. So a backlog's first
//! commit starts at once instead of after a whole batch is read, and a long backlog's
//! batches are still full (each commit rewrites every row it touches, so small batches cost
//! more per event).

/// A backlog's first batch holds this fraction of a full one.
pub const FIRST_FRACTION: usize = 8;

/// Where a backlog's batch sizes stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRamp {
    full: usize,
    next: usize,
}

impl BatchRamp {
    /// A ramp up to batches of `full` events (at least 1), at its start.
    pub fn new(full: usize) -> Self {
        let full = full.max(1);
        BatchRamp {
            full,
            next: (full / FIRST_FRACTION).max(1),
        }
    }

    /// Whether `pending` events make a batch to cut now that the store is free.
    pub fn due(&self, pending: usize) -> bool {
        pending >= self.next
    }

    /// A batch was cut in a backlog: the next one is twice as large, up to full.
    pub fn grow(&mut self) {
        self.next = self.next.saturating_mul(2).min(self.full);
    }

    /// The fold loop caught up (or its partitions changed): the next backlog starts small.
    pub fn restart(&mut self) {
        *self = BatchRamp::new(self.full);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pending counts at which successive backlog batches are due.
    fn steps(ramp: &mut BatchRamp, n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| {
                let at = (0..=ramp.full).find(|&p| ramp.due(p)).unwrap();
                ramp.grow();
                at
            })
            .collect()
    }

    #[test]
    fn batches_double_from_an_eighth_to_full_and_start_over_after_a_catch_up() {
        let mut ramp = BatchRamp::new(100_000);
        assert_eq!(
            steps(&mut ramp, 5),
            [12_500, 25_000, 50_000, 100_000, 100_000]
        );
        ramp.restart();
        assert_eq!(steps(&mut ramp, 2), [12_500, 25_000]);
    }

    #[test]
    fn small_batches_ramp_from_one_event() {
        assert_eq!(steps(&mut BatchRamp::new(7), 5), [1, 2, 4, 7, 7]);
        assert_eq!(steps(&mut BatchRamp::new(1), 2), [1, 1]);
        assert_eq!(steps(&mut BatchRamp::new(0), 2), [1, 1]);
    }
}
