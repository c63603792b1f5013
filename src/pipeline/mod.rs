//! The pure core of eventfold's pipelines: pipeline files ([`spec`]), event-time [`windows`] (assignment, sessions,
//! watermarks, lateness) and mergeable [`aggregates`]. Everything here is plain data and
//! functions — no tokio, Kafka, SQL or clock — so the worker can fold a partition with it
//! and the query side can merge the stored partials, and both can be tested exhaustively.
//! Upholds invariants 4 (partials merge) and 5 (event time); the worker and store build
//! the effectful shell around it.

pub mod aggregates;
pub mod fold;
pub mod live;
pub mod spec;
pub mod windows;

pub use aggregates::{
    AggregateError, AggregateKind, AggregateParams, AggregateResult, AggregateState,
};
pub use fold::{field_value, EventField, FoldError, FoldInput, Partial};
pub use live::{LiveAggregates, LivePart, PartialChange};
pub use spec::{
    load_pipeline, load_pipelines, parse_pipeline, Pipeline, PipelineError, ProjectionKind,
};
pub use windows::{
    assign, assign_into, combined, last_window, window_is_final, GridAssignment, SessionChange,
    SessionTracker, Watermark, Window, WindowError, WindowGrid, WindowSpec, WindowSpecError,
};
