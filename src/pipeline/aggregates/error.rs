//! [`AggregateError`]: why an aggregate could not be built, fed, merged or loaded. Merge
//! errors mean two partials are not parts of the same aggregate (a pipeline changed its
//! definition), which invariant 4 forbids mixing; they are surfaced, never papered over.

use thiserror::Error;

use super::ddsketch::MIN_RELATIVE_ACCURACY;
use super::hll::{MAX_PRECISION, MIN_PRECISION};
use super::state::AggregateKind;
use super::top_k::MAX_CAPACITY;

/// A problem with an aggregate's parameters, input or partials.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AggregateError {
    /// A name that is not an [`AggregateKind`].
    #[error(
        "unknown aggregate {name:?}: expected one of count, sum, min, max, avg, \
         count_distinct, top_k, percentiles"
    )]
    UnknownKind {
        /// The name given.
        name: String,
    },
    /// Partials of different aggregates.
    #[error("cannot merge a {right} partial into a {left} partial")]
    KindMismatch {
        /// The kind merged into.
        left: AggregateKind,
        /// The kind merged.
        right: AggregateKind,
    },
    /// HLL sketches of different precisions.
    #[error("cannot merge HLL sketches of precision {left} and {right}")]
    PrecisionMismatch {
        /// The precision merged into.
        left: u8,
        /// The precision merged.
        right: u8,
    },
    /// Percentile sketches of different accuracies.
    #[error("cannot merge percentile sketches of relative accuracy {left} and {right}")]
    AccuracyMismatch {
        /// The accuracy merged into.
        left: f64,
        /// The accuracy merged.
        right: f64,
    },
    /// An HLL precision out of range.
    #[error("precision must be between {min} and {max}, got {precision}", min = MIN_PRECISION, max = MAX_PRECISION)]
    InvalidPrecision {
        /// The precision given.
        precision: u8,
    },
    /// A top-k capacity out of range.
    #[error("capacity must be between 1 and {max}, got {capacity}", max = MAX_CAPACITY)]
    InvalidCapacity {
        /// The capacity given.
        capacity: usize,
    },
    /// A number of reported keys out of range.
    #[error("k must be between 1 and the capacity ({capacity}), got {k}")]
    InvalidK {
        /// The k given.
        k: usize,
        /// The capacity it must not exceed.
        capacity: usize,
    },
    /// A percentile accuracy out of range.
    #[error(
        "relative_accuracy must be at least {min} and below 1, got {relative_accuracy}",
        min = MIN_RELATIVE_ACCURACY
    )]
    InvalidAccuracy {
        /// The accuracy given.
        relative_accuracy: f64,
    },
    /// A quantile outside `[0, 1]`.
    #[error("quantiles must be between 0 and 1, got {q}")]
    InvalidQuantile {
        /// The quantile given.
        q: f64,
    },
    /// Text fed to an aggregate over numbers.
    #[error("{kind} needs a number, got text")]
    NotANumber {
        /// The aggregate.
        kind: AggregateKind,
    },
    /// A stored partial that is inconsistent (corrupt or hand-edited).
    #[error("invalid stored partial: {reason}")]
    InvalidPartial {
        /// What is wrong with it.
        reason: String,
    },
}
