//! The read store: projections, per-partition progress (last applied offset and the
//! outcome counters) and the duplicate-detection window, written by workers one transaction
//! per micro-batch (invariant 2) and read by the query stage through [`ReadStore`]. Two
//! implementations: the embedded default, SQLite in WAL mode (no server needed), and
//! PostgreSQL for several workers and query replicas.

mod checkpoint;
mod config;
mod error;
mod link;
mod open;
mod postgres;
mod read;
mod sqlite;

pub use config::{StoreConfig, StoreLocation};
pub use error::StoreError;
pub use link::{switch_link, FollowingStore};
pub use open::{open_fold_store, open_read_store};
pub use postgres::PostgresStore;
pub use read::{
    AggregateRow, ItemProfile, PartitionStatus, ReadStore, SessionProfile, UserProfile,
};
pub use sqlite::SqliteStore;
