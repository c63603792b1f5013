//! [`Avg`]: the mean of a numeric field, kept as an exact sum and a count (both merge
//! exactly, invariant 4); the mean is computed only when read, so merged partitions give
//! one stream's answer bit for bit.

use serde::{Deserialize, Serialize};

use super::exact::ExactSum;

/// A mergeable mean: exact sum and number of values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Avg {
    sum: ExactSum,
    count: u64,
}

impl Avg {
    /// No values yet.
    pub fn new() -> Self {
        Avg::default()
    }

    /// Adds a value (infinities and NaN propagate as in [`Sum`](super::Sum)).
    pub fn add(&mut self, value: f64) {
        self.sum.add(value);
        self.count = self.count.saturating_add(1);
    }

    /// Adds another partial.
    pub fn merge(&mut self, other: &Avg) {
        self.sum.merge(&other.sum);
        self.count = self.count.saturating_add(other.count);
    }

    /// How many values were added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The rounded exact sum divided by the count; `None` when no value was added.
    pub fn result(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum.value() / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn avg_table() {
        let cases: Vec<(Vec<f64>, Option<f64>)> = vec![
            (vec![], None),
            (vec![4.0], Some(4.0)),
            (vec![1.0, 2.0], Some(1.5)),
            (vec![1e300, 1e300, -1e300], Some(1e300 / 3.0)),
            (vec![-2.0, 2.0, 3.0], Some(1.0)),
        ];
        for (values, expected) in cases {
            let mut avg = Avg::new();
            values.iter().for_each(|&v| avg.add(v));
            assert_eq!(avg.result(), expected, "{values:?}");
            assert_eq!(avg.count(), values.len() as u64);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn exact_and_mergeable(values in prop::collection::vec((0u8..4, -1_000_000i64..1_000_000), 0..150)) {
            let mut single = Avg::new();
            let mut parts = vec![Avg::new(); 4];
            for &(p, n) in &values {
                single.add(n as f64 / 8.0);
                parts[usize::from(p)].add(n as f64 / 8.0);
            }
            let reference = (!values.is_empty()).then(|| {
                values.iter().map(|v| v.1).sum::<i64>() as f64 / 8.0 / values.len() as f64
            });
            prop_assert_eq!(single.result(), reference);
            let mut merged = Avg::new();
            parts.iter().for_each(|part| merged.merge(part));
            prop_assert_eq!(&merged, &single);
            let back: Avg = serde_json::from_str(&serde_json::to_string(&merged).unwrap()).unwrap();
            prop_assert_eq!(back, merged);
        }
    }
}
