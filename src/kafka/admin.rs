//! Creating the topics eventfold needs, idempotently.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use super::KafkaConfig;

/// A topic to create if it does not exist.
#[derive(Debug, Clone)]
pub struct TopicSpec<'a> {
    /// Topic name.
    pub name: &'a str,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication: i32,
    /// Topic configs, e.g. `("cleanup.policy", "compact")`.
    pub configs: &'a [(&'a str, &'a str)],
}

/// A topic could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The admin client could not be built.
    #[error("cannot create a Kafka admin client: {0}")]
    Client(#[source] rdkafka::error::KafkaError),
    /// The broker refused or the request failed.
    #[error("cannot create topic '{topic}': {reason}")]
    Create {
        /// The topic.
        topic: String,
        /// What the broker or client said.
        reason: String,
    },
}

/// Creates the topic unless it already exists.
pub async fn ensure_topic(kafka: &KafkaConfig, spec: &TopicSpec<'_>) -> Result<(), TopicError> {
    let admin: AdminClient<DefaultClientContext> =
        kafka.client().create().map_err(TopicError::Client)?;
    let mut topic = NewTopic::new(
        spec.name,
        spec.partitions,
        TopicReplication::Fixed(spec.replication),
    );
    for (key, value) in spec.configs {
        topic = topic.set(key, value);
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results =
        admin
            .create_topics([&topic], &options)
            .await
            .map_err(|e| TopicError::Create {
                topic: spec.name.to_owned(),
                reason: e.to_string(),
            })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(TopicError::Create {
                    topic: name,
                    reason: code.to_string(),
                })
            }
        }
    }
    Ok(())
}
