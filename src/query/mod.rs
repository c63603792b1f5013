//! The query stage: reads the folded read models over HTTP (`eventfold serve`), pushes the
//! store's progress over Server-Sent Events and serves the live dashboard at `/`. Every answer
//! carries how far the store has folded each partition, so freshness is data (invariant 6),
//! and an aggregate's windows say whether they are final (invariant 5).

mod answers;
mod api;
mod config;
mod dashboard;
mod finality;
mod read_token;
mod stream;

pub use api::{router, QueryError, QueryState};
pub use config::QueryConfig;
pub use finality::Finality;
pub use read_token::require_read_token;
