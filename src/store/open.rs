//! Opens the store the settings name, as the worker's [`FoldStore`] or the query stage's
//! [`ReadStore`].

use std::sync::Arc;

use crate::worker::FoldStore;

use super::{
    FollowingStore, PostgresStore, ReadStore, SqliteStore, StoreConfig, StoreError, StoreLocation,
};

/// The configured store, for a worker to fold into.
pub async fn open_fold_store(config: &StoreConfig) -> Result<Arc<dyn FoldStore>, StoreError> {
    Ok(match config.location()? {
        StoreLocation::Sqlite(path) => Arc::new(SqliteStore::open(&path)?),
        StoreLocation::Postgres { url, schema } => {
            Arc::new(PostgresStore::open(&url, schema.as_deref()).await?)
        }
    })
}

/// The configured store, for reading. A SQLite store follows its path (blue/green replays
/// switch it); PostgreSQL has no switch.
pub async fn open_read_store(config: &StoreConfig) -> Result<Arc<dyn ReadStore>, StoreError> {
    Ok(match config.location()? {
        StoreLocation::Sqlite(path) => Arc::new(FollowingStore::open(&path)?),
        StoreLocation::Postgres { url, schema } => {
            Arc::new(PostgresStore::open(&url, schema.as_deref()).await?)
        }
    })
}
