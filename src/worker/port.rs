//! What the worker needs from a read store: the partition's progress to resume from, and one
//! transaction per micro-batch that applies the state and advances the offset together,
//! fenced on the offset the batch started from. Stores implement it (the store stage comes
//! after this one on the data path).

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

    /// Commits every batch in one transaction; each batch is applied only if its partition's
    /// stored offset still equals `batch.previous_offset`.
    async fn commit(&self, batches: Vec<FoldBatch>) -> Result<Vec<CommitOutcome>, FoldStoreError>;
}
