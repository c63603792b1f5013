//! What a store operation can fail with, for every store kind.

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("SQLite store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database folder could not be created.
    #[error("cannot create the store folder for {path}: {source}")]
    Folder {
        /// The database file.
        path: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The blocking task died.
    #[error("store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// PostgreSQL refused (or could not be reached).
    #[error("PostgreSQL store {url} ({doing}): {source}")]
    Postgres {
        /// The server address and schema (no password).
        url: String,
        /// What the store was doing.
        doing: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No PostgreSQL connection could be taken from the pool.
    #[error("PostgreSQL store {url}: no connection: {source}")]
    Pool {
        /// The server address and schema (no password).
        url: String,
        /// The pool's error.
        #[source]
        source: deadpool_postgres::PoolError,
    },
    /// The store settings do not name a usable store.
    #[error("store settings: {0}")]
    Settings(String),
    /// A stored value could not be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}
