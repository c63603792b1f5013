//! The ingest stage: producing interaction events to Kafka, keyed by `user_id` so each
//! user's events stay in order in one partition, with an idempotent `acks=all` producer.
//! An event counts as written only once the broker acknowledged it (its partition and offset
//! are returned). Also the seeded event generator behind `eventfold produce`.

mod generate;
mod producer;

pub use generate::EventGenerator;
pub use producer::{Delivery, EventProducer, ProduceError};
