//! [`AggregateKind`] names the aggregates a pipeline can declare; [`AggregateState`] is the
//! partial of any of them behind one type, so the worker folds and the store persists
//! partials without knowing which aggregate they belong to, and the query merges them,
//! refusing to merge partials of different kinds (invariant 4). [`AggregateParams`] holds
//! the sketches' parameters and what an answer reports.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ddsketch::DEFAULT_RELATIVE_ACCURACY;
use super::hll::DEFAULT_PRECISION;
use super::top_k::DEFAULT_CAPACITY;
use super::{AggregateError, Avg, Count, DdSketch, Hll, Max, Min, Sum, TopEntry, TopK};

/// The aggregates a pipeline can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateKind {
    /// Number of events.
    Count,
    /// Sum of a numeric field.
    Sum,
    /// Smallest value of a numeric field.
    Min,
    /// Largest value of a numeric field.
    Max,
    /// Mean of a numeric field.
    Avg,
    /// Estimated number of distinct values (HyperLogLog).
    CountDistinct,
    /// Most frequent values (Space-Saving).
    TopK,
    /// Quantiles of a numeric field (DDSketch).
    Percentiles,
}

impl AggregateKind {
    /// Every kind.
    pub const ALL: [AggregateKind; 8] = [
        AggregateKind::Count,
        AggregateKind::Sum,
        AggregateKind::Min,
        AggregateKind::Max,
        AggregateKind::Avg,
        AggregateKind::CountDistinct,
        AggregateKind::TopK,
        AggregateKind::Percentiles,
    ];

    /// The name used in pipeline definitions.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateKind::Count => "count",
            AggregateKind::Sum => "sum",
            AggregateKind::Min => "min",
            AggregateKind::Max => "max",
            AggregateKind::Avg => "avg",
            AggregateKind::CountDistinct => "count_distinct",
            AggregateKind::TopK => "top_k",
            AggregateKind::Percentiles => "percentiles",
        }
    }

    /// Whether the aggregate reads numbers (`count` reads nothing; `count_distinct` and
    /// `top_k` read values of any type as keys).
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            AggregateKind::Sum
                | AggregateKind::Min
                | AggregateKind::Max
                | AggregateKind::Avg
                | AggregateKind::Percentiles
        )
    }
}

impl fmt::Display for AggregateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AggregateKind {
    type Err = AggregateError;

    /// Parses the exact names of [`AggregateKind::as_str`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        AggregateKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| AggregateError::UnknownKind {
                name: name.to_owned(),
            })
    }
}

/// Parameters of the sketches and of their answers. Exact aggregates ignore them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateParams {
    /// `count_distinct`: HyperLogLog precision `p`, 4–18; `2^p` one-byte registers per
    /// partial and a standard error of about `1.04 / sqrt(2^p)` (0.81 % at 14).
    #[serde(default = "default_precision")]
    pub precision: u8,
    /// `top_k`: counters kept per partial; a reported count overestimates by at most
    /// `events / capacity`.
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    /// `top_k`: how many keys an answer lists, 1 to `capacity`.
    #[serde(default = "default_k")]
    pub k: usize,
    /// `percentiles`: relative accuracy `α` of every quantile, at least 0.0001 and below 1.
    #[serde(default = "default_relative_accuracy")]
    pub relative_accuracy: f64,
    /// `percentiles`: the quantiles an answer lists, each in `[0, 1]`.
    #[serde(default = "default_quantiles")]
    pub quantiles: Vec<f64>,
}

const fn default_precision() -> u8 {
    DEFAULT_PRECISION
}

const fn default_capacity() -> usize {
    DEFAULT_CAPACITY
}

const fn default_k() -> usize {
    10
}

const fn default_relative_accuracy() -> f64 {
    DEFAULT_RELATIVE_ACCURACY
}

fn default_quantiles() -> Vec<f64> {
    vec![0.5, 0.9, 0.95, 0.99]
}

impl Default for AggregateParams {
    fn default() -> Self {
        AggregateParams {
            precision: default_precision(),
            capacity: default_capacity(),
            k: default_k(),
            relative_accuracy: default_relative_accuracy(),
            quantiles: default_quantiles(),
        }
    }
}

impl AggregateParams {
    /// Every problem with the parameters, empty when they are valid.
    pub fn problems(&self) -> Vec<AggregateError> {
        let mut problems = Vec::new();
        if let Err(e) = Hll::with_precision(self.precision) {
            problems.push(e);
        }
        if let Err(e) = TopK::new(self.capacity) {
            problems.push(e);
        } else if self.k == 0 || self.k > self.capacity {
            problems.push(AggregateError::InvalidK {
                k: self.k,
                capacity: self.capacity,
            });
        }
        if let Err(e) = DdSketch::with_relative_accuracy(self.relative_accuracy) {
            problems.push(e);
        }
        for &q in &self.quantiles {
            if !(0.0..=1.0).contains(&q) {
                problems.push(AggregateError::InvalidQuantile { q });
            }
        }
        problems
    }

    /// Checks the parameters, returning the first problem.
    pub fn validate(&self) -> Result<(), AggregateError> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }
}

/// One value fed to an aggregate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A number (numeric aggregates; a key for `count_distinct`/`top_k`).
    Number(f64),
    /// Text (a key for `count_distinct`/`top_k`; refused by numeric aggregates).
    Text(&'a str),
}

/// The partial state of one aggregate. Serialized as `{"kind": …, "partial": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "partial", rename_all = "snake_case")]
pub enum AggregateState {
    /// See [`Count`].
    Count(Count),
    /// See [`Sum`].
    Sum(Sum),
    /// See [`Min`].
    Min(Min),
    /// See [`Max`].
    Max(Max),
    /// See [`Avg`].
    Avg(Avg),
    /// See [`Hll`].
    CountDistinct(Hll),
    /// See [`TopK`].
    TopK(TopK),
    /// See [`DdSketch`].
    Percentiles(DdSketch),
}

/// One quantile of a `percentiles` answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantileValue {
    /// The quantile asked for.
    pub q: f64,
    /// Its value; `None` when there were no values.
    pub value: Option<f64>,
}

/// The answer an aggregate gives.
#[derive(Debug, Clone, PartialEq)]
pub enum AggregateResult {
    /// Number of events.
    Count(u64),
    /// The sum (0 when there were no values).
    Sum(f64),
    /// The smallest value, if any.
    Min(Option<f64>),
    /// The largest value, if any.
    Max(Option<f64>),
    /// The mean, if any value.
    Avg(Option<f64>),
    /// Estimated distinct values.
    CountDistinct(u64),
    /// The top keys with their counts and error bounds.
    TopK(Vec<TopEntry>),
    /// The requested quantiles.
    Percentiles(Vec<QuantileValue>),
}

impl AggregateState {
    /// An empty partial of `kind`, with the parameters that kind uses.
    ///
    /// # Errors
    /// The parameter errors of [`Hll::with_precision`], [`TopK::new`] and
    /// [`DdSketch::with_relative_accuracy`], for the kind that uses them.
    pub fn new(kind: AggregateKind, params: &AggregateParams) -> Result<Self, AggregateError> {
        Ok(match kind {
            AggregateKind::Count => AggregateState::Count(Count::new()),
            AggregateKind::Sum => AggregateState::Sum(Sum::new()),
            AggregateKind::Min => AggregateState::Min(Min::new()),
            AggregateKind::Max => AggregateState::Max(Max::new()),
            AggregateKind::Avg => AggregateState::Avg(Avg::new()),
            AggregateKind::CountDistinct => {
                AggregateState::CountDistinct(Hll::with_precision(params.precision)?)
            }
            AggregateKind::TopK => AggregateState::TopK(TopK::new(params.capacity)?),
            AggregateKind::Percentiles => AggregateState::Percentiles(
                DdSketch::with_relative_accuracy(params.relative_accuracy)?,
            ),
        })
    }

    /// Which aggregate this is a partial of.
    pub fn kind(&self) -> AggregateKind {
        match self {
            AggregateState::Count(_) => AggregateKind::Count,
            AggregateState::Sum(_) => AggregateKind::Sum,
            AggregateState::Min(_) => AggregateKind::Min,
            AggregateState::Max(_) => AggregateKind::Max,
            AggregateState::Avg(_) => AggregateKind::Avg,
            AggregateState::CountDistinct(_) => AggregateKind::CountDistinct,
            AggregateState::TopK(_) => AggregateKind::TopK,
            AggregateState::Percentiles(_) => AggregateKind::Percentiles,
        }
    }

    /// Folds one event's value in. `count` counts every call, whatever the value; the
    /// others skip a missing value (`None`), like SQL aggregates skip NULL. Numbers used as
    /// keys (`count_distinct`, `top_k`) are keyed by their shortest decimal text, so `5.0`
    /// and `"5"` are the same key.
    ///
    /// # Errors
    /// [`AggregateError::NotANumber`] when a numeric aggregate gets text (state unchanged).
    pub fn add(&mut self, value: Option<Value<'_>>) -> Result<(), AggregateError> {
        let kind = self.kind();
        let number = || match value {
            Some(Value::Number(x)) => Ok(Some(x)),
            Some(Value::Text(_)) => Err(AggregateError::NotANumber { kind }),
            None => Ok(None),
        };
        let key = || match value {
            Some(Value::Number(x)) => Some(std::borrow::Cow::Owned(x.to_string())),
            Some(Value::Text(text)) => Some(std::borrow::Cow::Borrowed(text)),
            None => None,
        };
        match self {
            AggregateState::Count(count) => count.add(),
            AggregateState::Sum(sum) => number()?.into_iter().for_each(|x| sum.add(x)),
            AggregateState::Min(min) => number()?.into_iter().for_each(|x| min.add(x)),
            AggregateState::Max(max) => number()?.into_iter().for_each(|x| max.add(x)),
            AggregateState::Avg(avg) => number()?.into_iter().for_each(|x| avg.add(x)),
            AggregateState::Percentiles(sketch) => {
                number()?.into_iter().for_each(|x| sketch.add(x))
            }
            AggregateState::CountDistinct(hll) => {
                key().into_iter().for_each(|k| hll.add(k.as_bytes()))
            }
            AggregateState::TopK(top) => key().into_iter().for_each(|k| top.add(&k)),
        }
        Ok(())
    }

    /// Merges another partial of the same aggregate into this one.
    ///
    /// # Errors
    /// [`AggregateError::KindMismatch`] for partials of different kinds, and the sketches'
    /// parameter mismatches; this partial is unchanged on error.
    pub fn merge(&mut self, other: &AggregateState) -> Result<(), AggregateError> {
        match (self, other) {
            (AggregateState::Count(a), AggregateState::Count(b)) => a.merge(b),
            (AggregateState::Sum(a), AggregateState::Sum(b)) => a.merge(b),
            (AggregateState::Min(a), AggregateState::Min(b)) => a.merge(b),
            (AggregateState::Max(a), AggregateState::Max(b)) => a.merge(b),
            (AggregateState::Avg(a), AggregateState::Avg(b)) => a.merge(b),
            (AggregateState::CountDistinct(a), AggregateState::CountDistinct(b)) => a.merge(b)?,
            (AggregateState::TopK(a), AggregateState::TopK(b)) => a.merge(b),
            (AggregateState::Percentiles(a), AggregateState::Percentiles(b)) => a.merge(b)?,
            (mine, theirs) => {
                return Err(AggregateError::KindMismatch {
                    left: mine.kind(),
                    right: theirs.kind(),
                })
            }
        }
        Ok(())
    }

    /// The answer, reporting `params.k` keys for `top_k` and `params.quantiles` for
    /// `percentiles`.
    pub fn result(&self, params: &AggregateParams) -> AggregateResult {
        match self {
            AggregateState::Count(count) => AggregateResult::Count(count.result()),
            AggregateState::Sum(sum) => AggregateResult::Sum(sum.result()),
            AggregateState::Min(min) => AggregateResult::Min(min.result()),
            AggregateState::Max(max) => AggregateResult::Max(max.result()),
            AggregateState::Avg(avg) => AggregateResult::Avg(avg.result()),
            AggregateState::CountDistinct(hll) => AggregateResult::CountDistinct(hll.result()),
            AggregateState::TopK(top) => AggregateResult::TopK(top.top(params.k)),
            AggregateState::Percentiles(sketch) => AggregateResult::Percentiles(
                params
                    .quantiles
                    .iter()
                    .map(|&q| QuantileValue {
                        q,
                        value: sketch.quantile(q),
                    })
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn kinds_parse_and_print() {
        let names = [
            "count",
            "sum",
            "min",
            "max",
            "avg",
            "count_distinct",
            "top_k",
            "percentiles",
        ];
        for (kind, name) in AggregateKind::ALL.into_iter().zip(names) {
            assert_eq!(name.parse::<AggregateKind>(), Ok(kind));
            assert_eq!(kind.to_string(), name);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
        }
        for bad in ["", "Count", "topk", "p99", "count "] {
            assert_eq!(
                bad.parse::<AggregateKind>(),
                Err(AggregateError::UnknownKind { name: bad.into() })
            );
        }
    }

    #[test]
    fn params_validation() {
        assert_eq!(AggregateParams::default().validate(), Ok(()));
        let parsed: AggregateParams = serde_json::from_str(r#"{"k":5}"#).unwrap();
        assert_eq!(parsed.k, 5);
        assert_eq!(parsed.precision, 14);
        assert!(serde_json::from_str::<AggregateParams>(r#"{"kk":5}"#).is_err());
        let bad = AggregateParams {
            precision: 30,
            capacity: 5,
            k: 6,
            relative_accuracy: 0.0,
            quantiles: vec![0.5, 1.5, -0.1],
        };
        assert_eq!(
            bad.problems(),
            vec![
                AggregateError::InvalidPrecision { precision: 30 },
                AggregateError::InvalidK { k: 6, capacity: 5 },
                AggregateError::InvalidAccuracy {
                    relative_accuracy: 0.0
                },
                AggregateError::InvalidQuantile { q: 1.5 },
                AggregateError::InvalidQuantile { q: -0.1 },
            ]
        );
        for kind in [AggregateKind::CountDistinct, AggregateKind::Percentiles] {
            assert!(AggregateState::new(kind, &bad).is_err(), "{kind}");
        }
        assert!(AggregateState::new(AggregateKind::Count, &bad).is_ok());
    }

    #[test]
    fn add_merge_result_table() {
        let params = AggregateParams {
            k: 2,
            quantiles: vec![0.0, 1.0],
            ..AggregateParams::default()
        };
        let inputs = [
            Some(Value::Number(3.0)),
            None,
            Some(Value::Number(-1.0)),
            Some(Value::Number(3.0)),
        ];
        let expected = [
            AggregateResult::Count(4),
            AggregateResult::Sum(5.0),
            AggregateResult::Min(Some(-1.0)),
            AggregateResult::Max(Some(3.0)),
            AggregateResult::Avg(Some(5.0 / 3.0)),
            AggregateResult::CountDistinct(2),
            AggregateResult::TopK(vec![
                TopEntry {
                    key: "3".into(),
                    count: 2,
                    error: 0,
                },
                TopEntry {
                    key: "-1".into(),
                    count: 1,
                    error: 0,
                },
            ]),
            AggregateResult::Percentiles(vec![
                QuantileValue {
                    q: 0.0,
                    value: Some(-1.0),
                },
                QuantileValue {
                    q: 1.0,
                    value: Some(3.0),
                },
            ]),
        ];
        for (kind, expected) in AggregateKind::ALL.into_iter().zip(expected) {
            let mut first = AggregateState::new(kind, &params).unwrap();
            let mut second = AggregateState::new(kind, &params).unwrap();
            first.add(inputs[0]).unwrap();
            first.add(inputs[1]).unwrap();
            second.add(inputs[2]).unwrap();
            second.add(inputs[3]).unwrap();
            first.merge(&second).unwrap();
            assert_eq!(first.kind(), kind);
            assert_eq!(first.result(&params), expected, "{kind}");

            let json = serde_json::to_string(&first).unwrap();
            assert!(
                json.starts_with(&format!(r#"{{"kind":"{kind}","partial":"#)),
                "{json}"
            );
            assert_eq!(
                serde_json::from_str::<AggregateState>(&json).unwrap(),
                first
            );

            let text = first.add(Some(Value::Text("x")));
            if kind.is_numeric() {
                assert_eq!(text, Err(AggregateError::NotANumber { kind }));
            } else {
                assert_eq!(text, Ok(()));
            }
        }
    }

    #[test]
    fn merge_refuses_mismatches() {
        let params = AggregateParams::default();
        for a in AggregateKind::ALL {
            for b in AggregateKind::ALL {
                let mut left = AggregateState::new(a, &params).unwrap();
                let right = AggregateState::new(b, &params).unwrap();
                let result = left.merge(&right);
                if a == b {
                    assert_eq!(result, Ok(()));
                } else {
                    assert_eq!(
                        result,
                        Err(AggregateError::KindMismatch { left: a, right: b })
                    );
                }
            }
        }
        let mut hll = AggregateState::new(AggregateKind::CountDistinct, &params).unwrap();
        let coarse = AggregateParams {
            precision: 10,
            ..params.clone()
        };
        let other = AggregateState::new(AggregateKind::CountDistinct, &coarse).unwrap();
        assert_eq!(
            hll.merge(&other),
            Err(AggregateError::PrecisionMismatch {
                left: 14,
                right: 10
            })
        );
        assert!(
            serde_json::from_str::<AggregateState>(r#"{"kind":"median","partial":1}"#).is_err()
        );
    }

    fn input() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            1 => Just(None),
            6 => (-1000i32..1000).prop_map(|n| Some(f64::from(n) / 4.0)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// For every kind, the partitions' partials merged in any order equal the
        /// single-stream partial (state for state; top_k while its keys fit its capacity).
        #[test]
        fn merged_partials_equal_one_stream(
            values in prop::collection::vec((0u8..3, input()), 0..120),
            reverse in any::<bool>(),
        ) {
            let params = AggregateParams { capacity: 10_000, ..AggregateParams::default() };
            for kind in AggregateKind::ALL {
                let new = || AggregateState::new(kind, &params).unwrap();
                let mut single = new();
                let mut parts = vec![new(), new(), new()];
                for &(p, v) in &values {
                    let v = v.map(Value::Number);
                    single.add(v).unwrap();
                    parts[usize::from(p)].add(v).unwrap();
                }
                if reverse {
                    parts.reverse();
                }
                let mut merged = new();
                for part in &parts {
                    merged.merge(part).unwrap();
                }
                prop_assert_eq!(merged.result(&params), single.result(&params), "{}", kind);
                prop_assert_eq!(&merged, &single, "{}", kind);
            }
        }
    }
}
