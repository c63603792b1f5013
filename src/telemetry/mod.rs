//! Logs, metrics and health: the tracing subscriber (readable locally, JSON in production),
//! the names of every metric eventfold records, the Prometheus/health listener, and the W3C
//! trace context carried from the collector to the workers.

mod exporter;
mod logging;
pub mod metrics;
mod trace_context;

pub use exporter::{health_router, install_recorder, router, MetricsConfig, Readiness};
pub use logging::{init_logging, LogFormat};
pub use trace_context::{TraceParent, TRACEPARENT};
