//! The registry's log on Kafka: writes are appended to the single-partition compacted topic
//! (`_schemas` by default) and take effect when this replica folds them back, in log order,
//! into its [`RegistryState`]. A write's caller waits for its own record to be folded, so the
//! answer is the one every replica derives. On start the replica appends a `Sync` marker and
//! is ready once it has folded it: "caught up" never relies on the high watermark. Tests and
//! the fuzz targets use a log kept in memory instead ([`SchemaLog::in_memory`]), folded the
//! same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::state::{Command, RegistryState, Reply};
use super::{RegistryConfig, RegistryError};
use crate::kafka::{ensure_topic, KafkaConfig, TopicSpec};

/// A write waits for its own record to come back: keep the long poll short so a write takes
/// milliseconds, not the consumer's default half second.
const FETCH_WAIT_MS: &str = "5";

type Waiters = Arc<Mutex<HashMap<Uuid, oneshot::Sender<Result<Reply, RegistryError>>>>>;

/// One record of the registry's log.
#[derive(Debug, Serialize, Deserialize)]
struct LogRecord {
    request_id: Uuid,
    command: Command,
}

/// The registry could not reach or set up its log.
#[derive(Debug, thiserror::Error)]
pub enum SchemaLogError {
    /// Creating the topic failed.
    #[error(transparent)]
    Topic(#[from] crate::kafka::TopicError),
    /// A Kafka client could not be created or assigned.
    #[error("cannot open the registry log '{topic}': {source}")]
    Client {
        /// The topic.
        topic: String,
        /// The client error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The startup marker did not come back.
    #[error("the registry could not read back its log '{topic}': {source}")]
    CatchUp {
        /// The topic.
        topic: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
}

/// A replica's handle on the registry log and its folded state.
#[derive(Clone)]
pub struct SchemaLog {
    state: Arc<RwLock<RegistryState>>,
    /// `None`: a log of one replica kept in memory ([`SchemaLog::in_memory`]).
    kafka: Option<KafkaLog>,
}

/// The Kafka side of a [`SchemaLog`]: where writes are appended and who waits for them.
#[derive(Clone)]
struct KafkaLog {
    producer: FutureProducer,
    topic: String,
    waiters: Waiters,
    write_timeout: Duration,
}

impl SchemaLog {
    /// Creates the topic if needed, starts folding it from the beginning, and returns once
    /// this replica has caught up with everything appended before it started.
    pub async fn open(
        kafka: &KafkaConfig,
        config: &RegistryConfig,
        shutdown: CancellationToken,
    ) -> Result<SchemaLog, SchemaLogError> {
        let topic = config.topic.clone();
        let client_error = |source| SchemaLogError::Client {
            topic: topic.clone(),
            source,
        };
        ensure_topic(
            kafka,
            &TopicSpec {
                name: &topic,
                partitions: 1,
                replication: config.replication_factor,
                configs: &[("cleanup.policy", "compact")],
            },
        )
        .await?;
        let producer: FutureProducer = kafka
            .producer()
            .set("linger.ms", "0")
            .create()
            .map_err(client_error)?;
        let consumer: StreamConsumer = kafka
            .consumer(&format!("eventfold-registry-{}", Uuid::new_v4()))
            .set("fetch.wait.max.ms", FETCH_WAIT_MS)
            .create()
            .map_err(client_error)?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&topic, 0, Offset::Beginning)
            .map_err(client_error)?;
        consumer.assign(&assignment).map_err(client_error)?;

        let waiters = Waiters::default();
        let log = SchemaLog {
            state: Arc::new(RwLock::new(RegistryState::default())),
            kafka: Some(KafkaLog {
                producer,
                topic: topic.clone(),
                waiters: waiters.clone(),
                write_timeout: Duration::from_millis(config.write_timeout_ms),
            }),
        };
        tokio::spawn(fold_log(consumer, log.state.clone(), waiters, shutdown));
        log.submit(Command::Sync)
            .await
            .map_err(|source| SchemaLogError::CatchUp { topic, source })?;
        Ok(log)
    }

    /// A registry of one replica whose log is this process's memory: a write is folded as
    /// soon as it is submitted, and nothing outlives the process. The HTTP API over it
    /// answers exactly as over Kafka; for tests and fuzzing, never for serving.
    pub fn in_memory() -> SchemaLog {
        SchemaLog {
            state: Arc::default(),
            kafka: None,
        }
    }

    /// Reads the folded state.
    pub fn read<T>(&self, f: impl FnOnce(&RegistryState) -> T) -> T {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&state)
    }

    /// Appends a command and waits until this replica folded it; returns its outcome.
    pub async fn submit(&self, command: Command) -> Result<Reply, RegistryError> {
        match &self.kafka {
            Some(kafka) => kafka.submit(command).await,
            None => self
                .state
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .apply(&command),
        }
    }
}

impl KafkaLog {
    async fn submit(&self, command: Command) -> Result<Reply, RegistryError> {
        let request_id = Uuid::new_v4();
        let payload = serde_json::to_vec(&LogRecord {
            request_id,
            command,
        })
        .map_err(|e| RegistryError::Backend(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        self.lock_waiters().insert(request_id, tx);
        let key = request_id.to_string();
        let record = FutureRecord::to(&self.topic)
            .partition(0)
            .key(&key)
            .payload(&payload);
        if let Err((error, _)) = self.producer.send(record, self.write_timeout).await {
            self.lock_waiters().remove(&request_id);
            return Err(RegistryError::Backend(error.to_string()));
        }
        match tokio::time::timeout(self.write_timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(RegistryError::Backend(
                "the registry log reader stopped".to_owned(),
            )),
            Err(_) => {
                self.lock_waiters().remove(&request_id);
                Err(RegistryError::Timeout)
            }
        }
    }

    fn lock_waiters(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Uuid, oneshot::Sender<Result<Reply, RegistryError>>>>
    {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn fold_log(
    consumer: StreamConsumer,
    state: Arc<RwLock<RegistryState>>,
    waiters: Waiters,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return,
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "Registry log read failed; retrying.");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Some(payload) = message.payload() else {
            continue;
        };
        let record: LogRecord = match serde_json::from_slice(payload) {
            Ok(record) => record,
            Err(error) => {
                tracing::warn!(
                    offset = message.offset(),
                    %error,
                    "Skipping a registry log record that is not an eventfold command."
                );
                continue;
            }
        };
        let outcome = state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .apply(&record.command);
        let waiter = waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&record.request_id);
        if let Some(waiter) = waiter {
            let _ = waiter.send(outcome);
        }
    }
}
