//! [`Count`]: how many events fell into a window/group. Its partial is the count itself and
//! merging adds counts, so the merged partitions equal one stream exactly (invariant 4).

use serde::{Deserialize, Serialize};

/// A mergeable event count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Count {
    n: u64,
}

impl Count {
    /// A count of zero.
    pub fn new() -> Self {
        Count { n: 0 }
    }

    /// Counts one event (saturating at `u64::MAX`).
    pub fn add(&mut self) {
        self.n = self.n.saturating_add(1);
    }

    /// Adds another partial's count.
    pub fn merge(&mut self, other: &Count) {
        self.n = self.n.saturating_add(other.n);
    }

    /// The number of events counted.
    pub fn result(&self) -> u64 {
        self.n
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn counts_and_merges() {
        let cases: &[(u64, u64)] = &[(0, 0), (1, 0), (0, 3), (5, 7)];
        for &(a, b) in cases {
            let (mut left, mut right) = (Count::new(), Count::new());
            (0..a).for_each(|_| left.add());
            (0..b).for_each(|_| right.add());
            left.merge(&right);
            assert_eq!(left.result(), a + b);
        }
        let full = Count { n: u64::MAX };
        let mut c = full;
        c.add();
        c.merge(&full);
        assert_eq!(c.result(), u64::MAX);
        assert_eq!(serde_json::to_string(&Count { n: 42 }).unwrap(), "42");
        assert_eq!(serde_json::from_str::<Count>("42").unwrap().result(), 42);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn merged_partitions_equal_one_stream(partitions in prop::collection::vec(0u8..4, 0..200)) {
            let mut single = Count::new();
            let mut parts = [Count::new(); 4];
            for &p in &partitions {
                single.add();
                parts[usize::from(p)].add();
            }
            let mut merged = Count::new();
            parts.iter().for_each(|part| merged.merge(part));
            prop_assert_eq!(single.result(), partitions.len() as u64);
            prop_assert_eq!(merged, single);
        }
    }
}
