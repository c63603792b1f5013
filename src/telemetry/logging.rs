//! Installs the tracing subscriber: `RUST_LOG`-style filtering, pretty or JSON lines.

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines (local use).
    #[default]
    Text,
    /// One JSON object per line (production, log shippers).
    Json,
}

/// Installs the global subscriber; `filter` is a `RUST_LOG`-style directive used when
/// `RUST_LOG` is unset. Calling it twice is harmless.
pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
