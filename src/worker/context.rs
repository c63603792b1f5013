//! The consumer context: on assignment it positions each partition at the offset after the
//! one its store last applied (when this worker knows it), and it tells the fold loop that
//! the assignment changed. Callbacks stay quick: no IO, only a map lookup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::telemetry::metrics as names;
use crate::telemetry::Readiness;

/// Shared between the polling thread's callbacks and the fold loop.
#[derive(Debug, Default, Clone)]
pub struct WorkerContext {
    /// The next offset to read per partition, as far as this worker knows the store.
    next_offsets: Arc<Mutex<HashMap<i32, i64>>>,
    /// Bumped on every assignment change.
    generation: Arc<AtomicU64>,
    /// The process's readiness; `partitions_assigned` is set here.
    readiness: Readiness,
}

impl WorkerContext {
    /// A context reporting to `readiness`.
    pub fn new(readiness: Readiness) -> Self {
        readiness.set("partitions_assigned", false);
        WorkerContext {
            readiness,
            ..Default::default()
        }
    }

    /// Records that a partition's store progress is `next` (the next offset to read).
    pub fn remember(&self, partition: i32, next: i64) {
        self.next_offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(partition, next);
    }

    /// The current assignment generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn position(&self, tpl: &mut TopicPartitionList) {
        let known = self.next_offsets.lock().unwrap_or_else(|e| e.into_inner());
        let partitions: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        for (topic, partition) in partitions {
            if let Some(next) = known.get(&partition) {
                let _ = tpl.set_partition_offset(&topic, partition, Offset::Offset(*next));
            }
        }
    }
}

impl ClientContext for WorkerContext {
    /// librdkafka's statistics (every `statistics.interval.ms`): the consumer lag per
    /// partition, as librdkafka computes it from the log end and this consumer's position.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, stats) in statistics.topics {
            for (partition, p) in stats.partitions {
                if partition >= 0 && p.consumer_lag >= 0 {
                    metrics::gauge!(names::WORKER_CONSUMER_LAG, "topic" => topic.clone(), "partition" => partition.to_string())
                        .set(p.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for WorkerContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.position(tpl);
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                if let Err(error) = consumer.assign(tpl) {
                    tracing::error!(%error, "Cannot take the assigned partitions.");
                }
                metrics::counter!(names::WORKER_REBALANCES_TOTAL, "kind" => "assign").increment(1);
                self.readiness
                    .set("partitions_assigned", !partitions.is_empty());
                tracing::info!(?partitions, "Partitions assigned.");
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if let Err(error) = consumer.unassign() {
                    tracing::error!(%error, "Cannot give up the revoked partitions.");
                }
                metrics::counter!(names::WORKER_REBALANCES_TOTAL, "kind" => "revoke").increment(1);
                self.readiness.set("partitions_assigned", false);
                tracing::info!("Partitions revoked.");
            }
            other => tracing::error!(error = ?other, "Rebalance failed."),
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}
