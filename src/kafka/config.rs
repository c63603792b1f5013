//! Connection settings for Kafka clients, turned into librdkafka `ClientConfig`s.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// How eventfold connects to Kafka (section `[kafka]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list of brokers to bootstrap from.
    #[serde(default = "default_bootstrap_servers")]
    pub bootstrap_servers: String,
    /// Consumer group session timeout. Kafka's default (45 s) suits production; tests and the
    /// local demo use a few seconds so rebalances are quick.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u32,
    /// Consumer group heartbeat interval; must be below a third of the session timeout.
    #[serde(default = "default_heartbeat_interval_ms")]
    pub heartbeat_interval_ms: u32,
    /// Extra librdkafka properties passed through as they are (e.g. `security.protocol`,
    /// `sasl.mechanism`, `sasl.username`, `ssl.ca.location`).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_bootstrap_servers() -> String {
    "127.0.0.1:9092".to_owned()
}

const fn default_session_timeout_ms() -> u32 {
    45_000
}

const fn default_heartbeat_interval_ms() -> u32 {
    3_000
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: default_bootstrap_servers(),
            session_timeout_ms: default_session_timeout_ms(),
            heartbeat_interval_ms: default_heartbeat_interval_ms(),
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// A config for the given brokers with short group timeouts (tests, the local demo).
    pub fn local(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            session_timeout_ms: 6_000,
            heartbeat_interval_ms: 1_000,
            properties: BTreeMap::new(),
        }
    }

    /// Problems with the values, all of them (empty = valid).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.bootstrap_servers.trim().is_empty() {
            problems.push("kafka.bootstrap_servers: must name at least one broker".to_owned());
        }
        if self.heartbeat_interval_ms.saturating_mul(3) > self.session_timeout_ms {
            problems.push(format!(
                "kafka.heartbeat_interval_ms ({}) must be at most a third of kafka.session_timeout_ms ({})",
                self.heartbeat_interval_ms, self.session_timeout_ms
            ));
        }
        problems
    }

    /// The base client config: brokers plus the pass-through properties.
    pub fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("socket.nagle.disable", "true");
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// A durable producer: idempotent, `acks=all`.
    pub fn producer(&self) -> ClientConfig {
        let mut config = self.client();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5");
        config
    }

    /// A consumer: no auto-commit, earliest reset; the caller sets `group.id`.
    pub fn consumer(&self, group_id: &str) -> ClientConfig {
        let mut config = self.client();
        config
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", self.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                self.heartbeat_interval_ms.to_string(),
            )
            // A fetch waits at most this long for data (librdkafka's default is 500 ms):
            // bounds how long a newly appended record can wait for the next fetch on
            // brokers that do not answer a waiting fetch as soon as data arrives.
            .set("fetch.wait.max.ms", "100")
            // When a partition's local queue is full, librdkafka postpones its next fetch by
            // this long (default 1 s): a consumer that keeps up only just would run dry and
            // idle for up to a second each time its queue empties.
            .set("fetch.queue.backoff.ms", "20");
        config
    }
}
