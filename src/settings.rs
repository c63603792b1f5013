//! The effective configuration: built-in defaults < `eventfold.toml` (or `--config FILE`) <
//! environment variables `EVENTFOLD__SECTION__KEY` (e.g. `EVENTFOLD__KAFKA__BOOTSTRAP_SERVERS`).
//! Every invalid value is reported with its key.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::http::TlsConfig;
use crate::ingest::CollectorConfig;
use crate::kafka::KafkaConfig;
use crate::query::QueryConfig;
use crate::registry::RegistryConfig;
use crate::store::StoreConfig;
use crate::telemetry::{LogFormat, MetricsConfig};
use crate::worker::WorkerConfig;

/// Logging settings (section `[log]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (local) or `json` (production).
    #[serde(default)]
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter, used when `RUST_LOG` is unset.
    #[serde(default = "default_filter")]
    pub filter: String,
}

fn default_filter() -> String {
    "info,rdkafka=warn".to_owned()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::default(),
            filter: default_filter(),
        }
    }
}

/// Every section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `[kafka]`.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// `[registry]`.
    #[serde(default)]
    pub registry: RegistryConfig,
    /// `[collector]`.
    #[serde(default)]
    pub collector: CollectorConfig,
    /// `[worker]`.
    #[serde(default)]
    pub worker: WorkerConfig,
    /// `[store]`.
    #[serde(default)]
    pub store: StoreConfig,
    /// `[query]`.
    #[serde(default)]
    pub query: QueryConfig,
    /// `[log]`.
    #[serde(default)]
    pub log: LogConfig,
    /// `[metrics]`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[tls]`: HTTPS on every HTTP server of the process.
    #[serde(default)]
    pub tls: TlsConfig,
}

/// The configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A file could not be read or a value has the wrong type.
    #[error("invalid configuration")]
    Load(#[from] config::ConfigError),
    /// Values that parse but make no sense.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

impl Settings {
    /// Loads defaults < `file` (required if given, else `eventfold.toml` if present) < env.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        let builder = config::Config::builder();
        let builder = match file {
            Some(path) => builder.add_source(config::File::from(path).required(true)),
            None => builder.add_source(config::File::with_name("eventfold.toml").required(false)),
        };
        let settings: Settings = builder
            .add_source(
                config::Environment::with_prefix("EVENTFOLD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        let problems = settings.problems();
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(SettingsError::Invalid(problems))
        }
    }

    /// The settings as TOML with secrets masked: every `kafka.properties` entry whose key
    /// names a password, secret or key material, and the credentials of URLs. File paths
    /// (`tls.*_path`, `registry.ca_path`) are shown: they are not secrets.
    pub fn to_masked_toml(&self) -> Result<String, toml::ser::Error> {
        let mut masked = self.clone();
        for (key, value) in masked.kafka.properties.iter_mut() {
            let key = key.to_ascii_lowercase();
            if [
                "password",
                "secret",
                "sasl.jaas.config",
                "ssl.key.pem",
                "oauthbearer",
            ]
            .iter()
            .any(|s| key.contains(s))
            {
                *value = "****".to_owned();
            }
        }
        masked.registry.url = mask_url_credentials(&masked.registry.url);
        masked.store.url = masked.store.url.as_deref().map(mask_url_credentials);
        toml::to_string_pretty(&masked)
    }

    /// Every problem of every section.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.kafka.problems();
        problems.extend(self.registry.problems());
        problems.extend(self.collector.problems());
        problems.extend(self.worker.problems());
        problems.extend(self.tls.problems());
        problems
    }
}

/// `scheme://user:password@host/…` → `scheme://****@host/…`.
fn mask_url_credentials(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}****{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
