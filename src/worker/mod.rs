//! The worker stage (`eventfold work`): a Kafka consumer group whose members fold each
//! assigned partition in offset order, in micro-batches, into a [`FoldStore`]. Each batch's
//! state and the partition's last applied offset are committed in one store transaction,
//! fenced on the offset the batch started from; on assignment a partition resumes from the
//! store, not from Kafka's committed offsets (invariants 2, 3 and 7). Records that cannot be
//! decoded go to the dead-letter topic with the reason and their origin.

mod batch;
mod config;
mod consumer;
mod context;
mod dead_letter;
mod dedup;
mod port;
mod projection;
mod ramp;

pub use batch::{BatchBuilder, BatchEvents, FoldBatch, KeptView, Outcome};
pub use config::WorkerConfig;
pub use consumer::{Worker, WorkerError};
pub use dedup::{decode_hashes, encode_hashes, event_id_hash, DedupWindow};
pub use port::{CommitOutcome, FoldStore, FoldStoreError, PartitionProgress, PartitionSnapshot};
pub use projection::{ProjectionDeltas, SessionDelta, UserDelta};
