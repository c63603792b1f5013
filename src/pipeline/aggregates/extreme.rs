//! [`Min`] and [`Max`]: the smallest or largest value of a numeric field, one type with the
//! direction as a parameter. Merging keeps the extreme of the partials, which equals one
//! stream's answer exactly (invariant 4). Values are ordered with `f64::total_cmp` (so
//! `-0.0 < 0.0` and the answer does not depend on order); NaN is skipped, as
//! `f64::min`/`f64::max` do.

use serde::{Deserialize, Serialize};

/// A mergeable extreme value: the largest when `LARGEST`, else the smallest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Extreme<const LARGEST: bool> {
    #[serde(with = "super::float::option")]
    value: Option<f64>,
}

/// A mergeable smallest value.
pub type Min = Extreme<false>;
/// A mergeable largest value.
pub type Max = Extreme<true>;

impl<const LARGEST: bool> Extreme<LARGEST> {
    /// No value yet.
    pub fn new() -> Self {
        Extreme { value: None }
    }

    /// Takes `value` into account (NaN is ignored).
    pub fn add(&mut self, value: f64) {
        if value.is_nan() {
            return;
        }
        let order = value.total_cmp(&self.value.unwrap_or(value));
        let better = if LARGEST {
            order.is_gt()
        } else {
            order.is_lt()
        };
        if self.value.is_none() || better {
            self.value = Some(value);
        }
    }

    /// Takes another partial into account.
    pub fn merge(&mut self, other: &Self) {
        if let Some(value) = other.value {
            self.add(value);
        }
    }

    /// The extreme value, `None` when no (non-NaN) value was added.
    pub fn result(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn check<const LARGEST: bool>(cases: Vec<(Vec<f64>, Option<f64>)>) {
        for (values, expected) in cases {
            let mut extreme = Extreme::<LARGEST>::new();
            values.iter().for_each(|&v| extreme.add(v));
            assert_eq!(
                extreme.result().map(f64::to_bits),
                expected.map(f64::to_bits),
                "{values:?}"
            );
            let json = serde_json::to_string(&extreme).unwrap();
            assert_eq!(
                serde_json::from_str::<Extreme<LARGEST>>(&json).unwrap(),
                extreme,
                "{json}"
            );
        }
    }

    #[test]
    fn min_table() {
        check::<false>(vec![
            (vec![], None),
            (vec![f64::NAN], None),
            (vec![3.0, 1.0, 2.0], Some(1.0)),
            (vec![3.0, f64::NAN, -1.0], Some(-1.0)),
            (vec![0.0, -0.0], Some(-0.0)),
            (vec![-0.0, 0.0], Some(-0.0)),
            (vec![1.0, f64::NEG_INFINITY], Some(f64::NEG_INFINITY)),
        ]);
    }

    #[test]
    fn max_table() {
        check::<true>(vec![
            (vec![], None),
            (vec![f64::NAN], None),
            (vec![3.0, 1.0, 2.0], Some(3.0)),
            (vec![-3.0, f64::NAN, -1.0], Some(-1.0)),
            (vec![0.0, -0.0], Some(0.0)),
            (vec![-0.0, 0.0], Some(0.0)),
            (vec![1.0, f64::INFINITY], Some(f64::INFINITY)),
        ]);
    }

    fn exact_and_mergeable<const LARGEST: bool>(values: &[(u8, f64)]) -> Result<(), TestCaseError> {
        let finite = values.iter().map(|v| v.1).filter(|v| !v.is_nan());
        let reference = if LARGEST {
            finite.max_by(f64::total_cmp)
        } else {
            finite.min_by(f64::total_cmp)
        };
        let mut single = Extreme::<LARGEST>::new();
        let mut parts = [Extreme::<LARGEST>::new(); 4];
        for &(p, v) in values {
            single.add(v);
            parts[usize::from(p)].add(v);
        }
        prop_assert_eq!(
            single.result().map(f64::to_bits),
            reference.map(f64::to_bits)
        );
        let mut merged = Extreme::<LARGEST>::new();
        parts.iter().rev().for_each(|part| merged.merge(part));
        prop_assert_eq!(
            merged.result().map(f64::to_bits),
            reference.map(f64::to_bits)
        );
        let json = serde_json::to_string(&merged).unwrap();
        let back: Extreme<LARGEST> = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back.result().map(f64::to_bits), reference.map(f64::to_bits));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn min_is_exact_and_mergeable(values in prop::collection::vec((0u8..4, any::<f64>()), 0..100)) {
            exact_and_mergeable::<false>(&values)?;
        }

        #[test]
        fn max_is_exact_and_mergeable(values in prop::collection::vec((0u8..4, any::<f64>()), 0..100)) {
            exact_and_mergeable::<true>(&values)?;
        }
    }
}
