//! Settings of the collector (section `[collector]`).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::WriteKey;

/// How `eventfold collect` accepts events from apps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// Address apps send events to.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The topic events are produced to.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Largest request body, after gzip decompression.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Most events in one request.
    #[serde(default = "default_max_events")]
    pub max_events_per_batch: usize,
    /// Requests handled at once; one more is answered 503 with `Retry-After` before its
    /// body is read, so the collector's memory stays bounded however many clients send
    /// (at most about this many bodies of `max_body_bytes`, plus the producer queue).
    #[serde(default = "default_max_in_flight_requests")]
    pub max_in_flight_requests: usize,
    /// How long a request may wait for room in the producer queue before it gets 503.
    #[serde(default = "default_queue_timeout_ms")]
    pub queue_timeout_ms: u64,
    /// How long the broker has to acknowledge an event before the request gets 503.
    #[serde(default = "default_delivery_timeout_ms")]
    pub delivery_timeout_ms: u64,
    /// How far ahead of the server clock an event's time may be.
    #[serde(default = "default_max_future_ms")]
    pub max_future_ms: i64,
    /// How old an event may be.
    #[serde(default = "default_max_age_ms")]
    pub max_age_ms: i64,
    /// Apps' write keys (digests only); none here and no file = open, for local use.
    #[serde(default)]
    pub write_keys: Vec<WriteKey>,
    /// A file of more keys, one `app:sha256hex` per line.
    #[serde(default)]
    pub write_keys_file: Option<PathBuf>,
    /// Requests per second per app, unless its key entry says otherwise.
    #[serde(default = "default_rate_per_second")]
    pub rate_per_second: f64,
    /// Requests at once per app, unless its key entry says otherwise.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Browser origins allowed to post events (CORS); empty = no CORS headers.
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_topic() -> String {
    "interactions".to_owned()
}

const fn default_max_body_bytes() -> usize {
    1024 * 1024
}

const fn default_max_events() -> usize {
    1000
}

const fn default_max_in_flight_requests() -> usize {
    256
}

const fn default_queue_timeout_ms() -> u64 {
    100
}

const fn default_delivery_timeout_ms() -> u64 {
    10_000
}

const fn default_max_future_ms() -> i64 {
    5 * 60 * 1000
}

const fn default_max_age_ms() -> i64 {
    7 * 24 * 3600 * 1000
}

const fn default_rate_per_second() -> f64 {
    100.0
}

const fn default_burst() -> u32 {
    200
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            listen: default_listen(),
            topic: default_topic(),
            max_body_bytes: default_max_body_bytes(),
            max_events_per_batch: default_max_events(),
            max_in_flight_requests: default_max_in_flight_requests(),
            queue_timeout_ms: default_queue_timeout_ms(),
            delivery_timeout_ms: default_delivery_timeout_ms(),
            max_future_ms: default_max_future_ms(),
            max_age_ms: default_max_age_ms(),
            write_keys: Vec::new(),
            write_keys_file: None,
            rate_per_second: default_rate_per_second(),
            burst: default_burst(),
            cors_allowed_origins: Vec::new(),
        }
    }
}

impl CollectorConfig {
    /// Problems with the values, all of them (empty = valid).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.topic.trim().is_empty() {
            problems.push("collector.topic: must not be empty".to_owned());
        }
        if self.max_body_bytes < 1024 {
            problems.push(format!(
                "collector.max_body_bytes: must be at least 1024, got {}",
                self.max_body_bytes
            ));
        }
        if self.max_events_per_batch == 0 {
            problems.push("collector.max_events_per_batch: must be at least 1".to_owned());
        }
        if self.max_in_flight_requests == 0 {
            problems.push("collector.max_in_flight_requests: must be at least 1".to_owned());
        }
        if self.delivery_timeout_ms < 1000 {
            problems.push(format!(
                "collector.delivery_timeout_ms: must be at least 1000, got {}",
                self.delivery_timeout_ms
            ));
        }
        if self.max_future_ms < 0 || self.max_age_ms <= 0 {
            problems.push(
                "collector.max_future_ms and collector.max_age_ms: must be positive".to_owned(),
            );
        }
        let rates = self
            .write_keys
            .iter()
            .filter_map(|key| key.rate_per_second)
            .chain([self.rate_per_second]);
        if rates
            .into_iter()
            .any(|rate| !(rate > 0.0 && rate.is_finite()))
        {
            problems.push("collector.rate_per_second: every rate must be positive".to_owned());
        }
        for origin in &self.cors_allowed_origins {
            if axum::http::HeaderValue::from_str(origin).is_err() || origin.ends_with('/') {
                problems.push(format!(
                    "collector.cors_allowed_origins: '{origin}' is not an origin like https://shop.example"
                ));
            }
        }
        problems
    }

    /// The per-event limits these settings imply.
    pub fn limits(&self) -> super::EventLimits {
        super::EventLimits {
            max_future_ms: self.max_future_ms,
            max_age_ms: self.max_age_ms,
            ..Default::default()
        }
    }
}
