//! The dead-letter topic: a record that cannot be decoded is copied there unchanged, with
//! headers saying why and where it came from; the worker then goes on (invariant 7).

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Where a dead-lettered record came from and why it was refused.
pub struct DeadLetter<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The record's key.
    pub key: Option<&'a [u8]>,
    /// The record's value, unchanged.
    pub payload: Option<&'a [u8]>,
    /// A short, bounded reason (`wrong_magic_byte`, `unknown_schema_id`, …).
    pub reason: &'static str,
    /// The full error message.
    pub error: String,
}

/// Produces `letter` to `dead_letter_topic` and waits for the broker's acknowledgement.
pub async fn send(
    producer: &FutureProducer,
    dead_letter_topic: &str,
    letter: &DeadLetter<'_>,
) -> Result<(), rdkafka::error::KafkaError> {
    let partition = letter.partition.to_string();
    let offset = letter.offset.to_string();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "eventfold.error.reason",
            value: Some(letter.reason),
        })
        .insert(Header {
            key: "eventfold.error.message",
            value: Some(&letter.error),
        })
        .insert(Header {
            key: "eventfold.source.topic",
            value: Some(letter.topic),
        })
        .insert(Header {
            key: "eventfold.source.partition",
            value: Some(&partition),
        })
        .insert(Header {
            key: "eventfold.source.offset",
            value: Some(&offset),
        });
    let mut record: FutureRecord<'_, [u8], [u8]> =
        FutureRecord::to(dead_letter_topic).headers(headers);
    if let Some(key) = letter.key {
        record = record.key(key);
    }
    if let Some(payload) = letter.payload {
        record = record.payload(payload);
    }
    producer
        .send(record, Duration::from_secs(5))
        .await
        .map(|_| ())
        .map_err(|(error, _)| error)
}
