//! Settings of the read store (section `[store]`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where folded state lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite database file (created with its folder if missing).
    #[serde(default = "default_path")]
    pub path: PathBuf,
}

fn default_path() -> PathBuf {
    PathBuf::from(".data/eventfold.db")
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: default_path(),
        }
    }
}
