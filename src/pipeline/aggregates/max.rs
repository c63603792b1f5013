//! [`Max`]: the largest value of a numeric field. Merging keeps the largest of the partials,
//! which equals one stream's answer exactly (invariant 4). Values are ordered with
//! `f64::total_cmp` (so `-0.0 < 0.0` and the answer does not depend on order); NaN is
//! skipped, as `f64::max` does.

use serde::{Deserialize, Serialize};

/// A mergeable largest value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Max {
    #[serde(with = "super::float::option")]
    value: Option<f64>,
}

impl Max {
    /// No value yet.
    pub fn new() -> Self {
        Max { value: None }
    }

    /// Takes `value` into account (NaN is ignored).
    pub fn add(&mut self, value: f64) {
        if value.is_nan() {
            return;
        }
        match self.value {
            Some(current) if !value.total_cmp(&current).is_gt() => {}
            _ => self.value = Some(value),
        }
    }

    /// Takes another partial into account.
    pub fn merge(&mut self, other: &Max) {
        if let Some(value) = other.value {
            self.add(value);
        }
    }

    /// The largest value, `None` when no (non-NaN) value was added.
    pub fn result(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn max_table() {
        let cases: Vec<(Vec<f64>, Option<f64>)> = vec![
            (vec![], None),
            (vec![f64::NAN], None),
            (vec![3.0, 1.0, 2.0], Some(3.0)),
            (vec![-3.0, f64::NAN, -1.0], Some(-1.0)),
            (vec![0.0, -0.0], Some(0.0)),
            (vec![-0.0, 0.0], Some(0.0)),
            (vec![1.0, f64::INFINITY], Some(f64::INFINITY)),
        ];
        for (values, expected) in cases {
            let mut max = Max::new();
            values.iter().for_each(|&v| max.add(v));
            assert_eq!(
                max.result().map(f64::to_bits),
                expected.map(f64::to_bits),
                "{values:?}"
            );
            let json = serde_json::to_string(&max).unwrap();
            assert_eq!(serde_json::from_str::<Max>(&json).unwrap(), max, "{json}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn exact_and_mergeable(values in prop::collection::vec((0u8..4, any::<f64>()), 0..100)) {
            let reference = values
                .iter()
                .map(|v| v.1)
                .filter(|v| !v.is_nan())
                .max_by(f64::total_cmp);
            let mut single = Max::new();
            let mut parts = [Max::new(); 4];
            for &(p, v) in &values {
                single.add(v);
                parts[usize::from(p)].add(v);
            }
            prop_assert_eq!(single.result().map(f64::to_bits), reference.map(f64::to_bits));
            let mut merged = Max::new();
            parts.iter().rev().for_each(|part| merged.merge(part));
            prop_assert_eq!(merged.result().map(f64::to_bits), reference.map(f64::to_bits));
            let json = serde_json::to_string(&merged).unwrap();
            let back: Max = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back.result().map(f64::to_bits), reference.map(f64::to_bits));
        }
    }
}
