//! The in-process producer: encode with the registry, produce keyed by user, await the ack.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;

use crate::contracts::Interaction;
use crate::kafka::KafkaConfig;
use crate::registry::{EncodeError, InteractionEncoder};
use crate::telemetry::TRACEPARENT;

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

impl ProduceError {
    /// Worth retrying later: the broker or registry is unreachable or overloaded.
    pub fn is_transient(&self) -> bool {
        match self {
            ProduceError::Encode(e) => e.is_transient(),
            ProduceError::Kafka { source, .. } => !matches!(
                source.rdkafka_error_code(),
                Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidRecord)
            ),
        }
    }
}

/// Produces interactions to one topic.
pub struct EventProducer {
    producer: RwLock<Arc<FutureProducer>>,
    client_config: ClientConfig,
    encoder: InteractionEncoder,
    topic: String,
    queue_timeout: Duration,
}

impl EventProducer {
    /// A producer for `topic`, encoding against the registry at `registry_url`, that waits
    /// up to 5 s for queue room and 30 s for the broker's acknowledgement.
    pub fn new(kafka: &KafkaConfig, registry_url: &str, topic: &str) -> Result<Self, ProduceError> {
        Self::with_timeouts(
            kafka,
            registry_url,
            topic,
            Duration::from_secs(5),
            Duration::from_secs(30),
        )
    }

    /// A producer with explicit timeouts: `queue_timeout` for room in the local queue,
    /// `delivery_timeout` for the broker's acknowledgement (librdkafka `message.timeout.ms`).
    pub fn with_timeouts(
        kafka: &KafkaConfig,
        registry_url: &str,
        topic: &str,
        queue_timeout: Duration,
        delivery_timeout: Duration,
    ) -> Result<Self, ProduceError> {
        let mut client_config = kafka.producer();
        client_config.set(
            "message.timeout.ms",
            delivery_timeout.as_millis().to_string(),
        );
        let producer = client_config
            .create()
            .map_err(|source| ProduceError::Kafka {
                topic: topic.to_owned(),
                source,
            })?;
        Ok(EventProducer {
            producer: RwLock::new(Arc::new(producer)),
            client_config,
            encoder: InteractionEncoder::new(registry_url, topic),
            topic: topic.to_owned(),
            queue_timeout,
        })
    }

    fn current(&self) -> Arc<FutureProducer> {
        self.producer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After a fatal error, or once its idempotent producer id was fenced (the broker saw the
    /// epoch bumped after delivery timeouts), a librdkafka producer never recovers: replace it with a new one (a new producer id), once
    /// per failed instance. Events it had not delivered were already reported as failed.
    fn replace_if_broken(&self, failed: &Arc<FutureProducer>, error: &rdkafka::error::KafkaError) {
        let fenced = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch)
        );
        let fatal = failed.client().fatal_error();
        if !fenced && fatal.is_none() {
            return;
        }
        let mut slot = self.producer.write().unwrap_or_else(|e| e.into_inner());
        if !Arc::ptr_eq(&slot, failed) {
            return;
        }
        match self.client_config.create::<FutureProducer>() {
            Ok(fresh) => {
                tracing::warn!(topic = %self.topic, %error, fatal = ?fatal, "Producer hit a fatal error; replaced it with a new one.");
                *slot = Arc::new(fresh);
            }
            Err(error) => tracing::error!(%error, "Cannot replace the failed producer."),
        }
    }

    /// The topic produced to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Encodes `event`, produces it keyed by its user and waits for the broker's ack.
    pub async fn send(&self, event: &Interaction) -> Result<Delivery, ProduceError> {
        self.send_traced(event, None).await
    }

    /// Like [`EventProducer::send`], with a W3C `traceparent` Kafka header.
    pub async fn send_traced(
        &self,
        event: &Interaction,
        traceparent: Option<&str>,
    ) -> Result<Delivery, ProduceError> {
        let payload = self.encoder.encode(event).await?;
        self.send_encoded_traced(&event.user_id, &payload, traceparent)
            .await
    }

    /// Produces an already-framed value keyed by `user_id`.
    pub async fn send_encoded(
        &self,
        user_id: &str,
        payload: &[u8],
    ) -> Result<Delivery, ProduceError> {
        self.send_encoded_traced(user_id, payload, None).await
    }

    async fn send_encoded_traced(
        &self,
        user_id: &str,
        payload: &[u8],
        traceparent: Option<&str>,
    ) -> Result<Delivery, ProduceError> {
        let mut record = FutureRecord::to(&self.topic).key(user_id).payload(payload);
        if let Some(value) = traceparent {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: TRACEPARENT,
                value: Some(value),
            }));
        }
        let producer = self.current();
        let (partition, offset) = match producer.send(record, self.queue_timeout).await {
            Ok(delivery) => (delivery.partition, delivery.offset),
            Err((source, _)) => {
                let kind = match source.rdkafka_error_code() {
                    Some(RDKafkaErrorCode::MessageTimedOut) => "timeout",
                    Some(RDKafkaErrorCode::QueueFull) => "queue_full",
                    Some(
                        RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch,
                    ) => "fenced",
                    _ => "other",
                };
                metrics::counter!(crate::telemetry::metrics::PRODUCE_ERRORS_TOTAL, "kind" => kind)
                    .increment(1);
                self.replace_if_broken(&producer, &source);
                return Err(ProduceError::Kafka {
                    topic: self.topic.clone(),
                    source,
                });
            }
        };
        metrics::counter!(crate::telemetry::metrics::INGEST_EVENTS_PRODUCED_TOTAL).increment(1);
        Ok(Delivery { partition, offset })
    }
}
