//! [`DdSketch`]: quantiles with relative-error guarantees (`percentiles`), after Masson,
//! Rim and Lee, *DDSketch: A Fast and Fully-Mergeable Quantile Sketch with Relative-Error
//! Guarantees* (VLDB 2019).
//!
//! With relative accuracy `α` and `γ = (1 + α) / (1 − α)`, a positive value `x` is counted in
//! bucket `i = ceil(log_γ x)`, which holds `(γ^(i−1), γ^i]`; the bucket reads back as
//! `2γ^i / (γ + 1)`, within `α` of every value in it. Negative values go to a second store by
//! magnitude, zeros to a zero count. Buckets are a deterministic function of the value, so
//! merging sketches of equal `α` (adding bucket counts) gives exactly the sketch of the
//! combined stream (invariant 4). The exact minimum and maximum are kept too, and answers
//! are clamped to them. Non-finite values cannot be bucketed: they are counted as
//! rejected and take no part in quantiles. Buckets are sparse; with `α = 0.01` a store
//! holds at most about 73 000 of them (the whole `f64` range), typically a few hundred.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::AggregateError;

/// The default relative accuracy: 1 %.
pub const DEFAULT_RELATIVE_ACCURACY: f64 = 0.01;
/// The smallest relative accuracy accepted (finer means more buckets).
pub const MIN_RELATIVE_ACCURACY: f64 = 1e-4;

/// A mergeable quantile sketch with relative accuracy `α`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "DdSketchRepr")]
pub struct DdSketch {
    #[serde(with = "super::float")]
    relative_accuracy: f64,
    #[serde(skip)]
    ln_gamma: f64,
    positive: BTreeMap<i32, u64>,
    negative: BTreeMap<i32, u64>,
    zero_count: u64,
    count: u64,
    #[serde(with = "super::float::option")]
    min: Option<f64>,
    #[serde(with = "super::float::option")]
    max: Option<f64>,
    rejected: u64,
}

impl Default for DdSketch {
    fn default() -> Self {
        DdSketch::new()
    }
}

impl DdSketch {
    /// An empty sketch with the default relative accuracy (1 %).
    pub fn new() -> Self {
        DdSketch::empty(DEFAULT_RELATIVE_ACCURACY)
    }

    /// An empty sketch with relative accuracy `alpha`.
    ///
    /// # Errors
    /// [`AggregateError::InvalidAccuracy`] unless `MIN_RELATIVE_ACCURACY ≤ alpha < 1`.
    pub fn with_relative_accuracy(alpha: f64) -> Result<Self, AggregateError> {
        if !(MIN_RELATIVE_ACCURACY..1.0).contains(&alpha) {
            return Err(AggregateError::InvalidAccuracy {
                relative_accuracy: alpha,
            });
        }
        Ok(DdSketch::empty(alpha))
    }

    fn empty(alpha: f64) -> Self {
        DdSketch {
            relative_accuracy: alpha,
            ln_gamma: alpha.ln_1p() - (-alpha).ln_1p(),
            positive: BTreeMap::new(),
            negative: BTreeMap::new(),
            zero_count: 0,
            count: 0,
            min: None,
            max: None,
            rejected: 0,
        }
    }

    /// The relative accuracy `α`.
    pub fn relative_accuracy(&self) -> f64 {
        self.relative_accuracy
    }

    /// How many values are in the sketch.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// How many non-finite values were refused.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// The exact smallest value.
    pub fn min(&self) -> Option<f64> {
        self.min
    }

    /// The exact largest value.
    pub fn max(&self) -> Option<f64> {
        self.max
    }

    /// Adds a value; a NaN or an infinity is only counted as rejected.
    pub fn add(&mut self, value: f64) {
        if !value.is_finite() {
            self.rejected = self.rejected.saturating_add(1);
            return;
        }
        let bucket = if value > 0.0 {
            self.positive.entry(self.index(value)).or_insert(0)
        } else if value < 0.0 {
            self.negative.entry(self.index(-value)).or_insert(0)
        } else {
            &mut self.zero_count
        };
        *bucket = bucket.saturating_add(1);
        self.count = self.count.saturating_add(1);
        self.min = smaller(self.min, Some(value));
        self.max = larger(self.max, Some(value));
    }

    /// Adds another sketch's values.
    ///
    /// # Errors
    /// [`AggregateError::AccuracyMismatch`] when the relative accuracies differ (self
    /// unchanged).
    pub fn merge(&mut self, other: &DdSketch) -> Result<(), AggregateError> {
        if self.relative_accuracy.to_bits() != other.relative_accuracy.to_bits() {
            return Err(AggregateError::AccuracyMismatch {
                left: self.relative_accuracy,
                right: other.relative_accuracy,
            });
        }
        for (mine, theirs) in [
            (&mut self.positive, &other.positive),
            (&mut self.negative, &other.negative),
        ] {
            for (&index, &n) in theirs {
                let bucket = mine.entry(index).or_insert(0);
                *bucket = bucket.saturating_add(n);
            }
        }
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
        self.count = self.count.saturating_add(other.count);
        self.rejected = self.rejected.saturating_add(other.rejected);
        self.min = smaller(self.min, other.min);
        self.max = larger(self.max, other.max);
        Ok(())
    }

    /// The `q`-quantile: within `α` (relatively) of the value of rank `floor(q · (n − 1))`
    /// (0-based) of the sorted values, and exact for the first and last ranks (the minimum
    /// and maximum). `None` when the sketch is empty or `q` is not in `[0, 1]`.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if !(0.0..=1.0).contains(&q) || self.count == 0 {
            return None;
        }
        let (min, max) = (self.min?, self.max?);
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        // The extremes are known exactly.
        if rank == 0 {
            return Some(min);
        }
        if rank >= self.count - 1 {
            return Some(max);
        }
        let mut seen = 0u64;
        let negative = self
            .negative
            .iter()
            .rev()
            .map(|(&i, &n)| (n, -self.value(i)));
        let zero = std::iter::once((self.zero_count, 0.0));
        let positive = self.positive.iter().map(|(&i, &n)| (n, self.value(i)));
        for (n, value) in negative.chain(zero).chain(positive) {
            seen = seen.saturating_add(n);
            if seen > rank {
                return Some(value.max(min).min(max));
            }
        }
        Some(max)
    }

    /// The quantiles `qs`, in order (see [`DdSketch::quantile`]).
    pub fn result(&self, qs: &[f64]) -> Vec<Option<f64>> {
        qs.iter().map(|&q| self.quantile(q)).collect()
    }

    fn index(&self, magnitude: f64) -> i32 {
        // |ln x| ≤ 745 for finite x > 0 and ln γ ≥ 2·10⁻⁴: the result fits an i32.
        (magnitude.ln() / self.ln_gamma).ceil() as i32
    }

    fn value(&self, index: i32) -> f64 {
        let gamma = self.ln_gamma.exp();
        (f64::from(index) * self.ln_gamma).exp() * 2.0 / (gamma + 1.0)
    }
}

/// The smaller by `total_cmp` (so `-0.0 < 0.0`: the answer does not depend on order).
fn smaller(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    [a, b].into_iter().flatten().min_by(f64::total_cmp)
}

/// The larger by `total_cmp`.
fn larger(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    [a, b].into_iter().flatten().max_by(f64::total_cmp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DdSketchRepr {
    #[serde(with = "super::float")]
    relative_accuracy: f64,
    positive: BTreeMap<i32, u64>,
    negative: BTreeMap<i32, u64>,
    zero_count: u64,
    count: u64,
    #[serde(with = "super::float::option")]
    min: Option<f64>,
    #[serde(with = "super::float::option")]
    max: Option<f64>,
    rejected: u64,
}

impl TryFrom<DdSketchRepr> for DdSketch {
    type Error = AggregateError;

    fn try_from(repr: DdSketchRepr) -> Result<Self, Self::Error> {
        let mut sketch = DdSketch::with_relative_accuracy(repr.relative_accuracy)?;
        let buckets = repr
            .positive
            .values()
            .chain(repr.negative.values())
            .try_fold(repr.zero_count, |acc, &n| acc.checked_add(n));
        let bounds_ok = match (repr.min, repr.max) {
            (None, None) => repr.count == 0,
            (Some(min), Some(max)) => {
                repr.count > 0 && min.is_finite() && max.is_finite() && min <= max
            }
            _ => false,
        };
        if buckets != Some(repr.count) || !bounds_ok {
            return Err(AggregateError::InvalidPartial {
                reason: format!(
                    "a percentiles sketch's count ({}) must equal its buckets' total and \
                     its min/max must bound a non-empty sketch",
                    repr.count
                ),
            });
        }
        sketch.positive = repr.positive;
        sketch.negative = repr.negative;
        sketch.zero_count = repr.zero_count;
        sketch.count = repr.count;
        sketch.min = repr.min;
        sketch.max = repr.max;
        sketch.rejected = repr.rejected;
        Ok(sketch)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const QUANTILES: [f64; 11] = [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0];

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    /// The largest relative error over `QUANTILES`, checking each against `α`.
    fn max_relative_error(sketch: &DdSketch, values: &[f64]) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let alpha = sketch.relative_accuracy();
        let mut worst: f64 = 0.0;
        for q in QUANTILES {
            let exact = exact_quantile(&sorted, q);
            let got = sketch.quantile(q).unwrap();
            let error = if exact == 0.0 {
                assert_eq!(got, 0.0, "q={q}");
                0.0
            } else {
                ((got - exact) / exact).abs()
            };
            assert!(
                error <= alpha * (1.0 + 1e-9),
                "q={q}: {got} vs {exact}, error {error}"
            );
            worst = worst.max(error);
        }
        worst
    }

    fn sketch_of(values: &[f64]) -> DdSketch {
        let mut sketch = DdSketch::new();
        values.iter().for_each(|&v| sketch.add(v));
        sketch
    }

    #[test]
    fn quantile_table() {
        let sketch = sketch_of(&[1.0, 2.0, 3.0, 4.0, 100.0]);
        let cases: &[(f64, f64)] = &[
            (0.0, 1.0),
            (0.25, 2.0),
            (0.5, 3.0),
            (0.75, 4.0),
            (1.0, 100.0),
        ];
        for &(q, exact) in cases {
            let got = sketch.quantile(q).unwrap();
            assert!((got - exact).abs() <= 0.01 * exact, "q={q}: {got}");
        }
        let mixed = sketch_of(&[-5.0, -1.0, 0.0, 0.0, 2.0]);
        assert_eq!(mixed.quantile(0.0), Some(-5.0));
        assert_eq!(mixed.quantile(0.5), Some(0.0));
        assert!((mixed.quantile(0.25).unwrap() + 1.0).abs() <= 0.01);
        assert_eq!(mixed.quantile(1.0), Some(2.0));
        assert_eq!(DdSketch::new().quantile(0.5), None);
        assert_eq!(mixed.quantile(1.5), None);
        assert_eq!(mixed.quantile(f64::NAN), None);
        let mut odd = sketch_of(&[f64::MAX, f64::MIN_POSITIVE, -f64::MAX]);
        odd.add(f64::NAN);
        odd.add(f64::INFINITY);
        assert_eq!(odd.count(), 3);
        assert_eq!(odd.rejected(), 2);
        assert_eq!(odd.quantile(1.0), Some(f64::MAX));
        assert_eq!(odd.quantile(0.0), Some(-f64::MAX));
        let mid = odd.quantile(0.5).unwrap();
        assert!((mid - f64::MIN_POSITIVE).abs() <= 0.01 * f64::MIN_POSITIVE);
        assert_eq!(odd.result(&[0.0, 2.0]), vec![Some(-f64::MAX), None]);
    }

    #[test]
    fn accuracy_and_partials() {
        assert!(DdSketch::with_relative_accuracy(0.0).is_err());
        assert!(DdSketch::with_relative_accuracy(1.0).is_err());
        assert!(DdSketch::with_relative_accuracy(f64::NAN).is_err());
        let mut a = DdSketch::with_relative_accuracy(0.02).unwrap();
        assert!(matches!(
            a.merge(&DdSketch::new()),
            Err(AggregateError::AccuracyMismatch { .. })
        ));
        a.add(3.0);
        a.add(-0.5);
        a.add(0.0);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<DdSketch>(&json).unwrap(), a);
        for bad in [
            r#"{"relative_accuracy":0.01,"positive":{"1":2},"negative":{},"zero_count":0,"count":1,"min":1.0,"max":1.0,"rejected":0}"#,
            r#"{"relative_accuracy":0.01,"positive":{},"negative":{},"zero_count":0,"count":0,"min":1.0,"max":1.0,"rejected":0}"#,
            r#"{"relative_accuracy":2.0,"positive":{},"negative":{},"zero_count":0,"count":0,"min":null,"max":null,"rejected":0}"#,
        ] {
            assert!(serde_json::from_str::<DdSketch>(bad).is_err(), "{bad}");
        }
    }

    /// Large random inputs of several shapes: every quantile within 1 %; prints the errors.
    #[test]
    fn measured_errors() {
        let mut rng = StdRng::seed_from_u64(42);
        let n = 100_000;
        let shapes: Vec<(&str, Vec<f64>)> = vec![
            (
                "uniform(0,1000)",
                (0..n).map(|_| rng.random::<f64>() * 1000.0).collect(),
            ),
            (
                "lognormal-ish exp(U(-10,10))",
                (0..n)
                    .map(|_| (rng.random::<f64>() * 20.0 - 10.0).exp())
                    .collect(),
            ),
            (
                "latency-like 1+exp(U(0,8))",
                (0..n)
                    .map(|_| 1.0 + (rng.random::<f64>() * 8.0).exp())
                    .collect(),
            ),
            (
                "mixed sign with zeros",
                (0..n)
                    .map(|i| match i % 5 {
                        0 => 0.0,
                        1 | 2 => -(rng.random::<f64>() * 1e6),
                        _ => rng.random::<f64>() * 1e-3,
                    })
                    .collect(),
            ),
        ];
        for (name, values) in shapes {
            let sketch = sketch_of(&values);
            let worst = max_relative_error(&sketch, &values);
            let buckets = sketch.positive.len() + sketch.negative.len();
            println!(
                "DDSketch α=0.01 {name}, n={n}: max relative error {:.4} % over {} quantiles, {buckets} buckets",
                worst * 100.0,
                QUANTILES.len()
            );
        }
    }

    fn value_strategy() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => 1e-3f64..1e6,
            2 => -1e4f64..1e4,
            1 => Just(0.0),
            1 => (-300.0f64..300.0).prop_map(|e| 10f64.powf(e)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every quantile is within α of the exact one, and merged partitions give exactly
        /// the single-stream sketch.
        #[test]
        fn within_alpha_and_merge_exact(values in prop::collection::vec((0u8..4, value_strategy()), 1..400)) {
            let all: Vec<f64> = values.iter().map(|v| v.1).collect();
            let single = sketch_of(&all);
            max_relative_error(&single, &all);
            let mut parts = vec![DdSketch::new(); 4];
            for &(p, v) in &values {
                parts[usize::from(p)].add(v);
            }
            let mut merged = DdSketch::new();
            for part in parts.iter().rev() {
                merged.merge(part).unwrap();
            }
            prop_assert_eq!(&merged, &single);
            let back: DdSketch = serde_json::from_str(&serde_json::to_string(&merged).unwrap()).unwrap();
            prop_assert_eq!(back, merged);
        }
    }
}
