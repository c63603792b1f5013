//! Settings of the read store (section `[store]`): which store, where.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::StoreError;

/// Where folded state lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite database file (created with its folder if missing), used when `url` is
    /// not set.
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// The store to use: `sqlite://<file>` or `postgres://user@host:port/database`.
    #[serde(default)]
    pub url: Option<String>,
    /// PostgreSQL only: the schema the tables live in (created if missing); default: the
    /// server's `search_path`.
    #[serde(default)]
    pub schema: Option<String>,
}

/// The store the settings name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded store in this file.
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres {
        /// The connection URL.
        url: String,
        /// The schema, if not the server's default.
        schema: Option<String>,
    },
}

impl StoreConfig {
    /// Which store to open: `url` if set, else the SQLite file `path`.
    pub fn location(&self) -> Result<StoreLocation, StoreError> {
        let Some(url) = &self.url else {
            return Ok(StoreLocation::Sqlite(self.path.clone()));
        };
        if let Some(file) = url.strip_prefix("sqlite://") {
            return Ok(StoreLocation::Sqlite(PathBuf::from(file)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreLocation::Postgres {
                url: url.clone(),
                schema: self.schema.clone(),
            });
        }
        Err(StoreError::Settings(format!(
            "store.url '{url}' must start with sqlite:// or postgres://"
        )))
    }
}

fn default_path() -> PathBuf {
    PathBuf::from(".data/eventfold.db")
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: default_path(),
            url: None,
            schema: None,
        }
    }
}
