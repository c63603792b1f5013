//! [`Sum`]: the sum of a numeric field. The partial is an exact accumulator (see
//! `exact.rs`), so the sum of merged partitions is bit-for-bit the sum of one stream,
//! whatever the order (invariant 4) — the correctly rounded exact sum of the values.

use serde::{Deserialize, Serialize};

use super::exact::ExactSum;

/// A mergeable, exact sum of `f64` values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sum {
    sum: ExactSum,
}

impl Sum {
    /// An empty sum (0).
    pub fn new() -> Self {
        Sum::default()
    }

    /// Adds a value. Infinities and NaN follow IEEE rules (`inf + -inf` is NaN).
    pub fn add(&mut self, value: f64) {
        self.sum.add(value);
    }

    /// Adds another partial.
    pub fn merge(&mut self, other: &Sum) {
        self.sum.merge(&other.sum);
    }

    /// The exact sum rounded to the nearest `f64` (`0.0` when empty, `±inf` on overflow).
    pub fn result(&self) -> f64 {
        self.sum.value()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn sums_table() {
        let cases: Vec<(Vec<f64>, f64)> = vec![
            (vec![], 0.0),
            (vec![2.0, 3.5], 5.5),
            (vec![0.1, 0.2], 0.30000000000000004),
            // Exact: 0.1 + 0.2 − 0.3 in binary is 2⁻⁵⁵ (naive left-to-right gives 2⁻⁵⁴).
            (vec![0.1, 0.2, -0.3], 2.7755575615628914e-17),
            (vec![1e16, 1.0, -1e16], 1.0),
            (vec![-1.0, f64::INFINITY], f64::INFINITY),
        ];
        for (values, expected) in cases {
            let mut sum = Sum::new();
            values.iter().for_each(|&v| sum.add(v));
            assert_eq!(sum.result(), expected, "{values:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Against an exact integer reference (values are multiples of 1/256), and merged
        /// partitions against one stream, bit for bit.
        #[test]
        fn exact_and_mergeable(values in prop::collection::vec((0u8..4, -1_000_000_000i64..1_000_000_000), 0..150)) {
            let reference: i64 = values.iter().map(|v| v.1).sum();
            let mut single = Sum::new();
            let mut parts = vec![Sum::new(); 4];
            for &(p, n) in &values {
                let v = n as f64 / 256.0;
                single.add(v);
                parts[usize::from(p)].add(v);
            }
            prop_assert_eq!(single.result(), reference as f64 / 256.0);
            let mut merged = Sum::new();
            for part in parts.iter().rev() {
                merged.merge(part);
            }
            prop_assert_eq!(&merged, &single);
            prop_assert_eq!(merged.result().to_bits(), single.result().to_bits());
            let back: Sum = serde_json::from_str(&serde_json::to_string(&merged).unwrap()).unwrap();
            prop_assert_eq!(back, merged);
        }
    }
}
