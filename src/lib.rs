//! eventfold: real-time interaction analytics on Kafka.
//!
//! The modules follow the data path, and a stage only uses the stages before it:
//! [`contracts`] (the Avro event contract and the Confluent wire format) →
//! [`registry`] (a Confluent-compatible schema registry, its client and the codec) →
//! [`ingest`] (producing events to Kafka) → [`worker`] (consumer-group workers folding
//! partitions in order) → [`store`] (the read store that keeps state and offsets in one
//! transaction) → [`query`] (reading the folded state). [`kafka`], [`telemetry`],
//! [`settings`] and [`clock`] are shared plumbing; [`cli`] wires the stages into the
//! `eventfold` binary.

pub mod access;
pub mod cli;
pub mod clock;
pub mod contracts;
pub mod http;
pub mod ingest;
pub mod kafka;
pub mod pipeline;
pub mod query;
pub mod registry;
pub mod settings;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod worker;
