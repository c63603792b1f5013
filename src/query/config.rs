//! Settings of the query API (section `[query]`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// How `eventfold serve` listens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// Address of the query API.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8090))
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            listen: default_listen(),
        }
    }
}
