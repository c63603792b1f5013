//! What the worker needs from a read store: the partition's progress to resume from, and one
//! transaction per micro-batch that applies the state and advances the offset together,
//! fenced on the offset the batch started from. Stores implement it (the store stage comes
//! after this one on the data path).

use std::sync::Arc;

use crate::pipeline::{Partial, Pipeline};
use crate::worker::FoldBatch;

/// A store operation failed; the worker retries it (nothing was applied).
#[derive(Debug, thiserror::Error)]
#[error("read store failure: {0}")]
pub struct FoldStoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// How far a partition has been folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionProgress {
    /// The last applied offset (`None`: nothing yet, start at the beginning).
    pub last_offset: Option<i64>,
    /// The highest event time folded so far (the partition's watermark source).
    pub max_event_ms: Option<i64>,
}

/// What a partition's new owner reads back from the store, in one consistent read.
#[derive(Debug, Clone, Default)]
pub struct PartitionSnapshot {
    /// Where to resume.
    pub progress: PartitionProgress,
    /// Duplicate-detection ids of the batches within the horizon: (the batch's last
    /// offset, its `event_id` hashes), oldest first.
    pub seen: Vec<(i64, Vec<u128>)>,
    /// The pipeline's partials of the partition that an on-time event can still change
    /// (window end after [`Pipeline::earliest_on_time`]).
    pub partials: Vec<Partial>,
}

/// The result of committing one partition's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Applied: the partition's offset is now the batch's last offset.
    Applied {
        /// Events folded into the read models.
        folded: u64,
        /// Events recognised as duplicates (counted once, earlier).
        duplicates: u64,
        /// Distinct events too late for the pipeline's windows.
        late: u64,
    },
    /// Refused: the stored offset was not the one the batch started from (another worker
    /// advanced the partition). Nothing was applied; resume from `stored`.
    Fenced {
        /// The offset actually stored.
        stored: PartitionProgress,
    },
}

/// A read store the worker folds into.
#[async_trait::async_trait]
pub trait FoldStore: Send + Sync + 'static {
    /// The stored progress of a partition.
    async fn progress(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<PartitionProgress, FoldStoreError>;

    /// The partition's progress, its duplicate-detection ids within `horizon` offsets, and
    /// `pipeline`'s live partials.
    async fn snapshot(
        &self,
        topic: &str,
        partition: i32,
        horizon: i64,
        pipeline: Option<Arc<Pipeline>>,
    ) -> Result<PartitionSnapshot, FoldStoreError>;

    /// Commits every batch in one transaction; each batch is applied only if its partition's
    /// stored offset still equals `batch.previous_offset`.
    async fn commit(
        &self,
        batches: Arc<Vec<FoldBatch>>,
    ) -> Result<Vec<CommitOutcome>, FoldStoreError>;
}
