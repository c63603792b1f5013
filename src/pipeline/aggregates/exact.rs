//! An exact accumulator for sums of `f64` (a fixed-point "superaccumulator"), used by
//! [`Sum`](super::Sum) and [`Avg`](super::Avg).
//!
//! Floating-point addition is not associative, so summing per-partition partials and then
//! merging them would give a slightly different answer than one stream, and a different
//! one for each merge order. Every finite `f64` is an integer multiple of 2⁻¹⁰⁷⁴ below
//! 2¹⁰²⁴, so this keeps the sum *exactly* as a 2176-bit two's-complement integer in those
//! units (2098 bits of range, 64 bits of headroom for 2⁶⁴ additions, a sign bit) and
//! rounds once, to nearest-even, when read. The answer is the correctly rounded exact sum,
//! whatever the order, the partitioning or the merge tree (invariant 4), so a replay
//! matches the live result bit for bit (invariant 1). Infinities and NaNs are counted
//! apart and follow IEEE rules; an exact zero reads as `+0.0`.

use serde::{Deserialize, Serialize};

const LIMBS: usize = 34;
const MANTISSA_BITS: u32 = 52;

/// The exact sum of the finite values added, plus counts of the non-finite ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ExactSumRepr", into = "ExactSumRepr")]
pub(super) struct ExactSum {
    /// Two's complement, least significant limb first, in units of 2⁻¹⁰⁷⁴.
    limbs: [u64; LIMBS],
    nan: u64,
    pos_inf: u64,
    neg_inf: u64,
}

impl Default for ExactSum {
    fn default() -> Self {
        ExactSum {
            limbs: [0; LIMBS],
            nan: 0,
            pos_inf: 0,
            neg_inf: 0,
        }
    }
}

impl ExactSum {
    /// Adds `x` exactly.
    pub(super) fn add(&mut self, x: f64) {
        if x.is_nan() {
            self.nan = self.nan.saturating_add(1);
            return;
        }
        if x.is_infinite() {
            let count = if x > 0.0 {
                &mut self.pos_inf
            } else {
                &mut self.neg_inf
            };
            *count = count.saturating_add(1);
            return;
        }
        let bits = x.to_bits();
        let exponent = ((bits >> MANTISSA_BITS) & 0x7ff) as usize;
        let fraction = bits & ((1 << MANTISSA_BITS) - 1);
        // value = mantissa · 2^(offset − 1074); subnormals share the smallest exponent.
        let (mantissa, offset) = if exponent == 0 {
            (fraction, 0)
        } else {
            (fraction | (1 << MANTISSA_BITS), exponent - 1)
        };
        if mantissa == 0 {
            return;
        }
        // offset ≤ 2045, so the value fits limbs offset/64 and offset/64 + 1 ≤ 32.
        let wide = u128::from(mantissa) << (offset % 64);
        let (lo, hi) = (wide as u64, (wide >> 64) as u64);
        if bits >> 63 == 1 {
            self.sub_at(offset / 64, lo, hi);
        } else {
            self.add_at(offset / 64, lo, hi);
        }
    }

    /// Adds another accumulator exactly.
    pub(super) fn merge(&mut self, other: &ExactSum) {
        let mut carry = false;
        for (limb, &add) in self.limbs.iter_mut().zip(other.limbs.iter()) {
            let (sum, c1) = limb.overflowing_add(add);
            let (sum, c2) = sum.overflowing_add(u64::from(carry));
            *limb = sum;
            carry = c1 || c2;
        }
        self.nan = self.nan.saturating_add(other.nan);
        self.pos_inf = self.pos_inf.saturating_add(other.pos_inf);
        self.neg_inf = self.neg_inf.saturating_add(other.neg_inf);
    }

    /// The sum rounded to the nearest `f64` (ties to even); `±inf` when it overflows or an
    /// infinity was added, NaN after a NaN or after both infinities.
    pub(super) fn value(&self) -> f64 {
        match (self.nan > 0, self.pos_inf > 0, self.neg_inf > 0) {
            (true, _, _) | (_, true, true) => return f64::NAN,
            (_, true, false) => return f64::INFINITY,
            (_, false, true) => return f64::NEG_INFINITY,
            _ => {}
        }
        let negative = self.limbs[LIMBS - 1] >> 63 == 1;
        let magnitude = if negative {
            negate(&self.limbs)
        } else {
            self.limbs
        };
        let rounded = round_to_f64(&magnitude);
        if negative {
            -rounded
        } else {
            rounded
        }
    }

    fn add_at(&mut self, index: usize, lo: u64, hi: u64) {
        let mut carry = false;
        for (i, add) in [(index, lo), (index + 1, hi)] {
            let (sum, c1) = self.limbs[i].overflowing_add(add);
            let (sum, c2) = sum.overflowing_add(u64::from(carry));
            self.limbs[i] = sum;
            carry = c1 || c2;
        }
        for limb in self.limbs.iter_mut().skip(index + 2) {
            if !carry {
                break;
            }
            (*limb, carry) = limb.overflowing_add(1);
        }
    }

    fn sub_at(&mut self, index: usize, lo: u64, hi: u64) {
        let mut borrow = false;
        for (i, sub) in [(index, lo), (index + 1, hi)] {
            let (diff, b1) = self.limbs[i].overflowing_sub(sub);
            let (diff, b2) = diff.overflowing_sub(u64::from(borrow));
            self.limbs[i] = diff;
            borrow = b1 || b2;
        }
        for limb in self.limbs.iter_mut().skip(index + 2) {
            if !borrow {
                break;
            }
            (*limb, borrow) = limb.overflowing_sub(1);
        }
    }
}

fn negate(limbs: &[u64; LIMBS]) -> [u64; LIMBS] {
    let mut out = [0; LIMBS];
    let mut carry = true;
    for (o, &limb) in out.iter_mut().zip(limbs.iter()) {
        (*o, carry) = (!limb).overflowing_add(u64::from(carry));
    }
    out
}

/// Rounds a non-negative integer (in units of 2⁻¹⁰⁷⁴) to the nearest `f64`, ties to even.
fn round_to_f64(magnitude: &[u64; LIMBS]) -> f64 {
    let Some(top_limb) = magnitude.iter().rposition(|&limb| limb != 0) else {
        return 0.0;
    };
    let top_bit = top_limb * 64 + 63 - magnitude[top_limb].leading_zeros() as usize;
    if top_bit <= MANTISSA_BITS as usize {
        // Below 2⁵³ units the integer is the f64's bit pattern (subnormal or smallest
        // normal exponent): exact.
        return f64::from_bits(magnitude[0]);
    }
    let mut shift = top_bit - MANTISSA_BITS as usize;
    let mut mantissa = bits_at(magnitude, shift) & ((1 << (MANTISSA_BITS + 1)) - 1);
    let round_bit = bits_at(magnitude, shift - 1) & 1 == 1;
    if round_bit && (mantissa & 1 == 1 || any_below(magnitude, shift - 1)) {
        mantissa += 1;
        if mantissa == 1 << (MANTISSA_BITS + 1) {
            mantissa >>= 1;
            shift += 1;
        }
    }
    let biased_exponent = shift as u64 + 1;
    if biased_exponent >= 0x7ff {
        return f64::INFINITY;
    }
    f64::from_bits((biased_exponent << MANTISSA_BITS) | (mantissa & ((1 << MANTISSA_BITS) - 1)))
}

/// The 64 bits of `limbs` starting at bit `start` (zeros past the top).
fn bits_at(limbs: &[u64; LIMBS], start: usize) -> u64 {
    let (index, offset) = (start / 64, start % 64);
    let lo = limbs.get(index).copied().unwrap_or(0);
    let hi = limbs.get(index + 1).copied().unwrap_or(0);
    (((u128::from(hi) << 64) | u128::from(lo)) >> offset) as u64
}

/// Whether any bit below bit `end` is set.
fn any_below(limbs: &[u64; LIMBS], end: usize) -> bool {
    let (index, offset) = (end / 64, end % 64);
    limbs.iter().take(index).any(|&limb| limb != 0)
        || limbs
            .get(index)
            .is_some_and(|&limb| limb & ((1u64 << offset) - 1) != 0)
}

/// The stored form: limbs as signed words without the sign-extension words at the top
/// (`[]` is zero), and non-zero non-finite counts.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExactSumRepr {
    limbs: Vec<i64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    nan: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pos_inf: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    neg_inf: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<ExactSum> for ExactSumRepr {
    fn from(sum: ExactSum) -> Self {
        let negative = sum.limbs[LIMBS - 1] >> 63 == 1;
        let extension = if negative { u64::MAX } else { 0 };
        let mut len = LIMBS;
        while len > 0 && sum.limbs[len - 1] == extension {
            let below_negative = match len {
                1 => false,
                _ => sum.limbs[len - 2] >> 63 == 1,
            };
            if below_negative != negative {
                break;
            }
            len -= 1;
        }
        ExactSumRepr {
            limbs: sum.limbs[..len].iter().map(|&limb| limb as i64).collect(),
            nan: sum.nan,
            pos_inf: sum.pos_inf,
            neg_inf: sum.neg_inf,
        }
    }
}

impl TryFrom<ExactSumRepr> for ExactSum {
    type Error = String;

    fn try_from(repr: ExactSumRepr) -> Result<Self, Self::Error> {
        if repr.limbs.len() > LIMBS {
            return Err(format!(
                "a sum has at most {LIMBS} limbs, found {}",
                repr.limbs.len()
            ));
        }
        let extension = match repr.limbs.last() {
            Some(&top) if top < 0 => u64::MAX,
            _ => 0,
        };
        let mut limbs = [extension; LIMBS];
        for (limb, &word) in limbs.iter_mut().zip(repr.limbs.iter()) {
            *limb = word as u64;
        }
        Ok(ExactSum {
            limbs,
            nan: repr.nan,
            pos_inf: repr.pos_inf,
            neg_inf: repr.neg_inf,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sum_of(values: &[f64]) -> f64 {
        let mut acc = ExactSum::default();
        for &v in values {
            acc.add(v);
        }
        acc.value()
    }

    #[test]
    fn exact_sums_table() {
        let tiny = f64::from_bits(1);
        let cases: Vec<(Vec<f64>, f64)> = vec![
            (vec![], 0.0),
            (vec![1.5], 1.5),
            (vec![-2.25], -2.25),
            (vec![0.1; 10], 1.0),
            (vec![1e100, 1.0, -1e100], 1.0),
            (vec![1e308, 1e308, -1e308], 1e308),
            (vec![f64::MAX, f64::MAX], f64::INFINITY),
            (vec![-f64::MAX, -f64::MAX], f64::NEG_INFINITY),
            (vec![tiny, tiny, tiny], f64::from_bits(3)),
            (vec![tiny, -tiny], 0.0),
            (
                vec![f64::MIN_POSITIVE, -tiny],
                f64::from_bits((1 << 52) - 1),
            ),
            // 2⁵³ + 1 is a tie between 2⁵³ and 2⁵³ + 2: even wins.
            (vec![9_007_199_254_740_992.0, 1.0], 9_007_199_254_740_992.0),
            (
                vec![9_007_199_254_740_992.0, 1.0, tiny],
                9_007_199_254_740_994.0,
            ),
            (vec![9_007_199_254_740_994.0, 1.0], 9_007_199_254_740_996.0),
            (vec![1.0, f64::INFINITY], f64::INFINITY),
            (vec![1.0, f64::NEG_INFINITY], f64::NEG_INFINITY),
        ];
        for (values, expected) in cases {
            let got = sum_of(&values);
            assert_eq!(got.to_bits(), expected.to_bits(), "{values:?}: {got}");
        }
        assert!(sum_of(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert!(sum_of(&[1.0, f64::NAN]).is_nan());
    }

    #[test]
    fn serde_round_trip_is_compact() {
        for values in [
            vec![],
            vec![1.0],
            vec![-1.0],
            vec![-f64::MAX, 3.5e-300, f64::NAN],
        ] {
            let mut acc = ExactSum::default();
            values.iter().for_each(|&v| acc.add(v));
            let json = serde_json::to_string(&acc).unwrap();
            let back: ExactSum = serde_json::from_str(&json).unwrap();
            assert_eq!(back, acc, "{json}");
        }
        let mut minus_one = ExactSum::default();
        minus_one.add(-1.0);
        let json = serde_json::to_string(&minus_one).unwrap();
        assert!(json.len() < 120, "{json}");
        assert!(serde_json::from_str::<ExactSum>(&format!(
            r#"{{"limbs":[{}]}}"#,
            vec!["0"; 35].join(",")
        ))
        .is_err());
    }

    fn finite() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
            (-1_000_000i64..1_000_000).prop_map(|n| n as f64 / 64.0),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Dyadic values with bounded magnitude add exactly in f64 too: results agree.
        #[test]
        fn matches_naive_sum_when_exact(values in prop::collection::vec(-1_000_000i64..1_000_000, 0..100)) {
            let floats: Vec<f64> = values.iter().map(|&n| n as f64 / 1024.0).collect();
            let naive: f64 = floats.iter().sum();
            prop_assert_eq!(sum_of(&floats), naive);
        }

        /// Any order and any split into merged parts give the same bits.
        #[test]
        fn order_and_merge_invariant(
            values in prop::collection::vec(finite(), 0..60),
            split in 0usize..60,
            rotate in 0usize..60,
        ) {
            let whole = sum_of(&values);
            let split = split.min(values.len());
            let (mut left, mut right) = (ExactSum::default(), ExactSum::default());
            values[..split].iter().for_each(|&v| left.add(v));
            values[split..].iter().for_each(|&v| right.add(v));
            right.merge(&left);
            prop_assert_eq!(right.value().to_bits(), whole.to_bits());
            let mut rotated = values.clone();
            if !rotated.is_empty() {
                let by = rotate % rotated.len();
                rotated.rotate_left(by);
            }
            rotated.reverse();
            prop_assert_eq!(sum_of(&rotated).to_bits(), whole.to_bits());
            let back: ExactSum =
                serde_json::from_str(&serde_json::to_string(&right).unwrap()).unwrap();
            prop_assert_eq!(back, right);
        }

        /// Two values: the exact sum is what f64 addition rounds to (IEEE addition is
        /// correctly rounded), unless it overflows.
        #[test]
        fn two_values_match_ieee(a in finite(), b in finite()) {
            let ieee = a + b;
            let exact = sum_of(&[a, b]);
            if ieee == 0.0 {
                prop_assert_eq!(exact, 0.0);
            } else {
                prop_assert_eq!(exact.to_bits(), ieee.to_bits());
            }
        }
    }
}
