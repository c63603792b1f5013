//! Logs and metrics: the tracing subscriber (readable locally, JSON in production) and the
//! names of every metric eventfold records, defined once.

mod logging;
pub mod metrics;

pub use logging::{init_logging, LogFormat};
