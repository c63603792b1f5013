//! The read store: projections, per-partition progress (last applied offset and the
//! outcome counters) and the duplicate-detection window, written by workers one transaction
//! per micro-batch (invariant 2) and read by the query stage. The embedded implementation is
//! SQLite in WAL mode: no server needed.

mod config;
mod link;
mod sqlite;

pub use config::StoreConfig;
pub use link::{switch_link, FollowingStore};
pub use sqlite::{
    AggregateRow, ItemProfile, PartitionStatus, SessionProfile, SqliteStore, StoreError,
    UserProfile,
};
