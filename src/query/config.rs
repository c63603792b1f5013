//! Settings of the query API (section `[query]`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::access::SecretDigest;

/// How `eventfold serve` listens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// Address of the query API.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Pipeline files whose aggregates and projections the API serves.
    #[serde(default = "default_pipelines")]
    pub pipelines: Vec<std::path::PathBuf>,
    /// How long a read with a consistency token waits for the writes to be folded.
    #[serde(default = "default_wait_timeout_ms")]
    pub wait_timeout_ms: u64,
    /// SHA-256 of the token readers must present; none = open (loopback only, see
    /// `allow_anonymous`).
    #[serde(default)]
    pub read_token_sha256: Option<SecretDigest>,
    /// Serve without a read token on a non-loopback address.
    #[serde(default)]
    pub allow_anonymous: bool,
}

fn default_pipelines() -> Vec<std::path::PathBuf> {
    vec![std::path::PathBuf::from("pipelines/interactions.yaml")]
}

const fn default_wait_timeout_ms() -> u64 {
    5_000
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8090))
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            listen: default_listen(),
            pipelines: default_pipelines(),
            wait_timeout_ms: default_wait_timeout_ms(),
            read_token_sha256: None,
            allow_anonymous: false,
        }
    }
}

impl QueryConfig {
    /// Why serving as configured would expose the API to the network without a token.
    pub fn exposure_problem(&self) -> Option<String> {
        (self.read_token_sha256.is_none()
            && !self.allow_anonymous
            && !self.listen.ip().is_loopback())
        .then(|| {
            format!(
                "query.listen is {} (not loopback) and no query.read_token_sha256 is set: \
                 set a read token (eventfold hash-secret) or query.allow_anonymous = true",
                self.listen
            )
        })
    }
}
