//! Aggregates as mergeable partial states (invariant 4): each is kept per (pipeline,
//! aggregate, window, group, partition), folded one value at a time with `add`, stored
//! with serde, and combined at query time with `merge`; `result` reads the answer. Exact
//! aggregates ([`Count`], [`Sum`], [`Min`], [`Max`], [`Avg`]) merge to exactly the
//! single-stream answer; sketches ([`Hll`], [`DdSketch`]) merge to exactly the sketch of
//! the union, and [`TopK`] keeps its error guarantees through merges. [`AggregateState`]
//! wraps them behind one [`AggregateKind`]-tagged type. Pure code: no IO, no clock.

mod avg;
mod count;
mod ddsketch;
mod error;
mod exact;
mod extreme;
mod float;
mod hash;
mod hll;
mod state;
mod sum;
mod top_k;

pub use avg::Avg;
pub use count::Count;
pub use ddsketch::{DdSketch, DEFAULT_RELATIVE_ACCURACY, MIN_RELATIVE_ACCURACY};
pub use error::AggregateError;
pub use extreme::{Extreme, Max, Min};
pub use hash::{hash64, xxh64};
pub use hll::{Hll, DEFAULT_PRECISION, MAX_PRECISION, MIN_PRECISION};
pub use state::{
    AggregateKind, AggregateParams, AggregateResult, AggregateState, QuantileValue, Value,
};
pub use sum::Sum;
pub use top_k::{TopEntry, TopK, DEFAULT_CAPACITY, MAX_CAPACITY};
