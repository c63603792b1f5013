//! The ingest stage: how events get into Kafka. The collector (`eventfold collect`) takes
//! batches from apps over HTTP, validates them and answers only once the broker acknowledged
//! every event; [`EventProducer`] is the same path as a Rust API for services that emit
//! events in-process. Events are keyed by `user_id` (one user's events stay in order in one
//! partition) and written with an idempotent `acks=all` producer. Also the seeded event
//! generator behind `eventfold produce`.

mod acks;
mod batch;
mod collect;
mod config;
mod generate;
mod producer;
mod token;
mod truth;
mod validate;
mod workload;
mod write_keys;

pub use batch::{body_format, parse_batch, BodyFormat};
pub use collect::{router, AcceptedEvent, CollectError, CollectorState};
pub use config::CollectorConfig;
pub use generate::EventGenerator;
pub use producer::{Delivery, EventProducer, ProduceError};
pub use token::{ConsistencyToken, TokenError};
pub use truth::{GroundTruth, TypeCounts, WindowTruth};
pub use validate::{validate_event, EventLimits, FieldError};
pub use workload::{Planned, Workload, WorkloadConfig};
pub use write_keys::{KeyRefusal, WriteKey, WriteKeys, WriteKeysError, WRITE_KEY_HEADER};
