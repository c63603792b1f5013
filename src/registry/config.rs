//! Settings of the registry server (section `[registry]`).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::endpoint::trusted_certificates;
use super::{RegistryEndpoint, RegistryUser};
use crate::access::Secret;
use crate::http::PemFileError;

/// How `eventfold registry` runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Address the HTTP API listens on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The compacted, single-partition topic that is the registry's log.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Replication factor used when the registry creates its topic.
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
    /// How long a write waits for its own record to come back from the log.
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: u64,
    /// URL other stages use to reach a registry (ours or any Confluent-compatible one).
    #[serde(default = "default_url")]
    pub url: String,
    /// Users allowed to write (and to read unless `open_reads`); none = open, for local use.
    #[serde(default)]
    pub basic_auth: Vec<RegistryUser>,
    /// Whether reads need no credentials when `basic_auth` is set.
    #[serde(default = "default_open_reads")]
    pub open_reads: bool,
    /// User name other stages send to the registry at `url`.
    #[serde(default)]
    pub username: Option<String>,
    /// Password other stages send to the registry at `url` (never printed).
    #[serde(default)]
    pub password: Option<Secret>,
    /// PEM bundle of CA certificates other stages trust, besides the system's, when `url`
    /// is `https://`: for a registry whose certificate is self-signed or from a private CA.
    #[serde(default)]
    pub ca_path: Option<PathBuf>,
}

const fn default_open_reads() -> bool {
    true
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8081))
}

fn default_topic() -> String {
    "_schemas".to_owned()
}

const fn default_replication() -> i32 {
    1
}

const fn default_write_timeout_ms() -> u64 {
    10_000
}

fn default_url() -> String {
    "http://127.0.0.1:8081".to_owned()
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            listen: default_listen(),
            topic: default_topic(),
            replication_factor: default_replication(),
            write_timeout_ms: default_write_timeout_ms(),
            url: default_url(),
            basic_auth: Vec::new(),
            open_reads: default_open_reads(),
            username: None,
            password: None,
            ca_path: None,
        }
    }
}

impl RegistryConfig {
    /// Where other stages reach the registry, with `username` and `password` when set and
    /// the certificates of `ca_path` to trust; fails if that file cannot be used.
    pub fn endpoint(&self) -> Result<RegistryEndpoint, PemFileError> {
        Ok(RegistryEndpoint {
            url: self.url.clone(),
            credentials: self.username.clone().map(|user| {
                (
                    user,
                    self.password.clone().unwrap_or_else(|| Secret::new("")),
                )
            }),
            trusted: match &self.ca_path {
                Some(path) => trusted_certificates(path)?,
                None => Vec::new(),
            },
        })
    }

    /// Problems with the values, all of them (empty = valid).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.topic.trim().is_empty() {
            problems.push("registry.topic: must not be empty".to_owned());
        }
        if self.replication_factor < 1 {
            problems.push(format!(
                "registry.replication_factor: must be at least 1, got {}",
                self.replication_factor
            ));
        }
        if self.write_timeout_ms == 0 {
            problems.push("registry.write_timeout_ms: must be positive".to_owned());
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            problems.push(format!(
                "registry.url: must start with http:// or https://, got '{}'",
                self.url
            ));
        }
        if let Some(path) = &self.ca_path {
            if let Err(error) = trusted_certificates(path) {
                problems.push(error.to_string());
            }
        }
        problems
    }
}
