//! Every metric name eventfold records, in one place (`eventfold_` prefix, counters end in
//! `_total`, units in names), and their descriptions.

/// Events read from Kafka by workers, by outcome: folded + duplicate + dead_lettered = read.
pub const WORKER_EVENTS_TOTAL: &str = "eventfold_worker_events_total";
/// Micro-batches committed to the store.
pub const WORKER_BATCHES_TOTAL: &str = "eventfold_worker_batches_total";
/// Batches refused by the store's offset fence (another worker owned the partition).
pub const WORKER_FENCED_TOTAL: &str = "eventfold_worker_fenced_batches_total";
/// Store commit latency.
pub const STORE_COMMIT_SECONDS: &str = "eventfold_store_commit_seconds";
/// Events produced by `eventfold produce`/the ingest path.
pub const INGEST_EVENTS_PRODUCED_TOTAL: &str = "eventfold_ingest_events_produced_total";
/// Registry HTTP requests.
pub const REGISTRY_REQUESTS_TOTAL: &str = "eventfold_registry_requests_total";

/// Registers descriptions with the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        WORKER_EVENTS_TOTAL,
        "Events read by workers, by outcome (folded, duplicate, dead_lettered)."
    );
    metrics::describe_counter!(
        WORKER_BATCHES_TOTAL,
        "Micro-batches committed to the store."
    );
    metrics::describe_counter!(
        WORKER_FENCED_TOTAL,
        "Batches refused because another worker advanced the partition first."
    );
    metrics::describe_histogram!(
        STORE_COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "Latency of one store transaction (state + offsets)."
    );
    metrics::describe_counter!(
        INGEST_EVENTS_PRODUCED_TOTAL,
        "Events acknowledged by Kafka."
    );
    metrics::describe_counter!(
        REGISTRY_REQUESTS_TOTAL,
        "Schema registry HTTP requests by route template and status."
    );
}
