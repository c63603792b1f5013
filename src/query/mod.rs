//! The query stage: reads the folded read models over HTTP (`eventfold serve`) and serves the
//! live dashboard at `/`. Every answer
//! carries how far the store has folded each partition, so freshness is data (invariant 6).

mod api;
mod config;
mod dashboard;

pub use api::{router, QueryError, QueryState};
pub use config::QueryConfig;
