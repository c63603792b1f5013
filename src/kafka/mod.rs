//! Kafka plumbing shared by every stage: the connection settings (passed through to
//! librdkafka, security included) and topic creation. Plain Apache Kafka: nothing here is
//! specific to the broker used in tests.

mod admin;
mod config;

pub use admin::{ensure_topic, TopicError, TopicSpec};
pub use config::KafkaConfig;
