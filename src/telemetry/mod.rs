//! Logs, metrics and health: the tracing subscriber (readable locally, JSON in production),
//! the names of every metric eventfold records, and the Prometheus/health listener.

mod exporter;
mod logging;
pub mod metrics;

pub use exporter::{install_recorder, router, MetricsConfig, Readiness};
pub use logging::{init_logging, LogFormat};
