//! The in-process producer: encode with the registry, produce keyed by user, await the ack.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::contracts::Interaction;
use crate::kafka::KafkaConfig;
use crate::registry::{EncodeError, InteractionEncoder};

/// Where the broker stored an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// An event was not written.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// Encoding (or registering the contract) failed.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The broker did not acknowledge it.
    #[error("Kafka did not acknowledge the event for topic '{topic}': {source}")]
    Kafka {
        /// Topic.
        topic: String,
        /// Client error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

/// Produces interactions to one topic.
pub struct EventProducer {
    producer: FutureProducer,
    encoder: InteractionEncoder,
    topic: String,
    queue_timeout: Duration,
}

impl EventProducer {
    /// A producer for `topic`, encoding against the registry at `registry_url`.
    pub fn new(kafka: &KafkaConfig, registry_url: &str, topic: &str) -> Result<Self, ProduceError> {
        let producer = kafka
            .producer()
            .create()
            .map_err(|source| ProduceError::Kafka {
                topic: topic.to_owned(),
                source,
            })?;
        Ok(EventProducer {
            producer,
            encoder: InteractionEncoder::new(registry_url, topic),
            topic: topic.to_owned(),
            queue_timeout: Duration::from_secs(5),
        })
    }

    /// Encodes `event`, produces it keyed by its user and waits for the broker's ack.
    pub async fn send(&self, event: &Interaction) -> Result<Delivery, ProduceError> {
        let payload = self.encoder.encode(event).await?;
        self.send_encoded(&event.user_id, &payload).await
    }

    /// Produces an already-framed value keyed by `user_id`.
    pub async fn send_encoded(
        &self,
        user_id: &str,
        payload: &[u8],
    ) -> Result<Delivery, ProduceError> {
        let record = FutureRecord::to(&self.topic).key(user_id).payload(payload);
        let (partition, offset) = self
            .producer
            .send(record, self.queue_timeout)
            .await
            .map(|d| (d.partition, d.offset))
            .map_err(|(source, _)| ProduceError::Kafka {
                topic: self.topic.clone(),
                source,
            })?;
        metrics::counter!(crate::telemetry::metrics::INGEST_EVENTS_PRODUCED_TOTAL).increment(1);
        Ok(Delivery { partition, offset })
    }
}
