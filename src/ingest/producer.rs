//! The in-process producer: encode with the registry, produce keyed by user, await the acks
//! (of one event, or of a whole batch with one waiter).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

use super::acks::{self, Ack, BatchAckContext};

use crate::contracts::Interaction;
use crate::kafka::KafkaConfig;
use crate::registry::{EncodeError, InteractionEncoder, RegistryEndpoint};
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

/// The librdkafka producer, its delivery reports routed to their batch.
type AckedProducer = ThreadedProducer<BatchAckContext>;

/// How long to wait before retrying a message the full local queue refused.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);

/// Produces interactions to one topic.
pub struct EventProducer {
    producer: RwLock<Arc<AckedProducer>>,
    client_config: ClientConfig,
    encoder: InteractionEncoder,
    topic: String,
    queue_timeout: Duration,
}

impl EventProducer {
    /// A producer for `topic`, encoding against `registry` (a URL or an endpoint with
    /// credentials), that waits up to 5 s for queue room and 30 s for the broker's
    /// acknowledgement.
    pub fn new(
        kafka: &KafkaConfig,
        registry: impl Into<RegistryEndpoint>,
        topic: &str,
    ) -> Result<Self, ProduceError> {
        Self::with_timeouts(
            kafka,
            registry,
            topic,
            Duration::from_secs(5),
            Duration::from_secs(30),
        )
    }

    /// A producer with explicit timeouts: `queue_timeout` for room in the local queue,
    /// `delivery_timeout` for the broker's acknowledgement (librdkafka `message.timeout.ms`).
    pub fn with_timeouts(
        kafka: &KafkaConfig,
        registry: impl Into<RegistryEndpoint>,
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
            .create_with_context(BatchAckContext)
            .map_err(|source| ProduceError::Kafka {
                topic: topic.to_owned(),
                source,
            })?;
        Ok(EventProducer {
            producer: RwLock::new(Arc::new(producer)),
            client_config,
            encoder: InteractionEncoder::new(registry, topic),
            topic: topic.to_owned(),
            queue_timeout,
        })
    }

    fn current(&self) -> Arc<AckedProducer> {
        self.producer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After a fatal error, or once its idempotent producer id was fenced (the broker saw the
    /// epoch bumped after delivery timeouts), a librdkafka producer never recovers: replace it
    /// with a new one (a new producer id), once per failed instance. Events it had not
    /// delivered were already reported as failed.
    fn replace_if_broken(&self, failed: &Arc<AckedProducer>, error: &KafkaError) {
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
        match self
            .client_config
            .create_with_context::<_, AckedProducer>(BatchAckContext)
        {
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
        let payload = self.encoder.encode(event).await?;
        self.send_encoded(&event.user_id, &payload).await
    }

    /// Produces an already-framed value keyed by `user_id`.
    pub async fn send_encoded(
        &self,
        user_id: &str,
        payload: &[u8],
    ) -> Result<Delivery, ProduceError> {
        let mut outcomes = self.produce(&[(user_id, payload)], None).await;
        outcomes.pop().unwrap_or_else(|| {
            Err(ProduceError::Kafka {
                topic: self.topic.clone(),
                source: KafkaError::Canceled,
            })
        })
    }

    /// Encodes every event, produces them all keyed by user (each with the W3C `traceparent`
    /// header, if given) and waits until the broker answered for every one: one outcome per
    /// event, in order. An encoding failure fails the batch before anything is produced.
    pub async fn send_batch(
        &self,
        events: &[Interaction],
        traceparent: Option<&str>,
    ) -> Result<Vec<Result<Delivery, ProduceError>>, ProduceError> {
        let mut payloads = Vec::with_capacity(events.len());
        for event in events {
            payloads.push(self.encoder.encode(event).await?);
        }
        let records: Vec<(&str, &[u8])> = events
            .iter()
            .zip(&payloads)
            .map(|(event, payload)| (event.user_id.as_str(), payload.as_slice()))
            .collect();
        Ok(self.produce(&records, traceparent).await)
    }

    /// Queues every `(key, payload)` (waiting up to the queue timeout for room) and waits for
    /// the delivery report of each.
    async fn produce(
        &self,
        records: &[(&str, &[u8])],
        traceparent: Option<&str>,
    ) -> Vec<Result<Delivery, ProduceError>> {
        if records.is_empty() {
            return Vec::new();
        }
        let producer = self.current();
        let (claims, waiter) = acks::batch(records.len());
        let started = Instant::now();
        for (&(key, payload), claim) in records.iter().zip(claims) {
            let mut record = BaseRecord::with_opaque_to(&self.topic, Box::new(claim))
                .key(key)
                .payload(payload);
            if let Some(value) = traceparent {
                record = record.headers(OwnedHeaders::new().insert(Header {
                    key: TRACEPARENT,
                    value: Some(value),
                }));
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if started.elapsed() < self.queue_timeout =>
                    {
                        record = back;
                        tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                    }
                    Err((error, back)) => {
                        (*back.delivery_opaque).fail(error);
                        break;
                    }
                }
            }
        }
        let acks: Vec<Ack> = waiter
            .await
            .unwrap_or_else(|_| records.iter().map(|_| Err(KafkaError::Canceled)).collect());
        let mut produced = 0;
        let outcomes: Vec<_> = acks
            .into_iter()
            .map(|ack| match ack {
                Ok(delivery) => {
                    produced += 1;
                    Ok(delivery)
                }
                Err(source) => {
                    self.report_failure(&producer, &source);
                    Err(ProduceError::Kafka {
                        topic: self.topic.clone(),
                        source,
                    })
                }
            })
            .collect();
        metrics::counter!(crate::telemetry::metrics::INGEST_EVENTS_PRODUCED_TOTAL)
            .increment(produced);
        outcomes
    }

    /// Counts a failed message by kind and replaces the producer if it is broken.
    fn report_failure(&self, producer: &Arc<AckedProducer>, error: &KafkaError) {
        let kind = match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::MessageTimedOut) => "timeout",
            Some(RDKafkaErrorCode::QueueFull) => "queue_full",
            Some(RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch) => {
                "fenced"
            }
            _ => "other",
        };
        metrics::counter!(crate::telemetry::metrics::PRODUCE_ERRORS_TOTAL, "kind" => kind)
            .increment(1);
        self.replace_if_broken(producer, error);
    }
}
