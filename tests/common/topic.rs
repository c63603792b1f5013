//! Reading a whole topic the way that also works on brokers whose high watermark is wrong:
//! append a marker record to every partition, then read every partition from its start up
//! to its marker. Workers that fold the topic dead-letter the markers (they are not events).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use eventfold::kafka::KafkaConfig;
use eventfold::registry::{InteractionDecoder, RegistryClient};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

/// The marker's payload.
pub const MARKER: &[u8] = b"end of the test's records";

/// Appends a marker to each of the `partitions` partitions of `topic`.
pub async fn append_markers(kafka: &KafkaConfig, topic: &str, partitions: i32) {
    let producer: FutureProducer = kafka.producer().create().unwrap();
    for partition in 0..partitions {
        producer
            .send(
                FutureRecord::<(), [u8]>::to(topic)
                    .partition(partition)
                    .payload(MARKER),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
}

/// Every record of `topic` before the markers, by (partition, offset): the event's id,
/// decoded with the registry at `registry_url` by a consumer of its own (no group).
pub async fn read_to_markers(
    kafka: &KafkaConfig,
    topic: &str,
    partitions: i32,
    registry_url: &str,
) -> BTreeMap<(i32, i64), String> {
    let consumer: StreamConsumer = kafka.consumer(&super::unique("verify")).create().unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let decoder = InteractionDecoder::new(
        RegistryClient::new(registry_url).unwrap(),
        eventfold::contracts::interaction_schema(eventfold::contracts::InteractionVersion::LATEST)
            .unwrap(),
    );
    let mut records = BTreeMap::new();
    let mut ended = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while ended.len() < partitions as usize {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("no marker after 120 s in some of the partitions but {ended:?}")
            })
            .unwrap();
        if message.payload() == Some(MARKER) {
            ended.insert(message.partition());
            continue;
        }
        let event = decoder.decode(message.payload()).await.unwrap();
        records.insert((message.partition(), message.offset()), event.event_id);
    }
    records
}
