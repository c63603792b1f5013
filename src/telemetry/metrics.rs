//! Every metric eventfold records, named once (`eventfold_` prefix, counters end in
//! `_total`, units in names), with its description. Labels are bounded: stage, route
//! template, method, status, outcome, reason, topic, partition; never ids or error text.

/// HTTP requests by service, route template, method and status.
pub const HTTP_REQUESTS_TOTAL: &str = "eventfold_http_requests_total";
/// HTTP request latency by service and route template.
pub const HTTP_REQUEST_SECONDS: &str = "eventfold_http_request_duration_seconds";
/// Events in collector requests, by outcome (`accepted`, `rejected`, `unavailable`).
pub const COLLECTOR_EVENTS_TOTAL: &str = "eventfold_collector_events_total";
/// Time from a batch's arrival to the broker's last acknowledgement.
pub const COLLECTOR_PRODUCE_SECONDS: &str = "eventfold_collector_produce_duration_seconds";
/// Produce failures by kind (`timeout`, `queue_full`, `fenced`, `other`).
pub const PRODUCE_ERRORS_TOTAL: &str = "eventfold_produce_errors_total";
/// Events acknowledged by Kafka.
pub const INGEST_EVENTS_PRODUCED_TOTAL: &str = "eventfold_ingest_events_produced_total";
/// Records read by workers, by outcome: folded + duplicate + dead_lettered = read
/// (`already_applied` counts redelivered records skipped before folding).
pub const WORKER_EVENTS_TOTAL: &str = "eventfold_worker_events_total";
/// Records per committed micro-batch.
pub const WORKER_BATCH_EVENTS: &str = "eventfold_worker_batch_events";
/// Micro-batches committed to the store.
pub const WORKER_BATCHES_TOTAL: &str = "eventfold_worker_batches_total";
/// Batches refused by the store's offset fence (another worker owned the partition).
pub const WORKER_FENCED_TOTAL: &str = "eventfold_worker_fenced_batches_total";
/// Consumer-group rebalances seen, by kind (`assign`, `revoke`).
pub const WORKER_REBALANCES_TOTAL: &str = "eventfold_worker_rebalances_total";
/// Records behind the log end, per partition (librdkafka's consumer lag).
pub const WORKER_CONSUMER_LAG: &str = "eventfold_worker_consumer_lag_records";
/// From an event's own time to its batch's store commit.
pub const WORKER_EVENT_TIME_LAG_SECONDS: &str = "eventfold_worker_event_time_to_folded_seconds";
/// From an event's Kafka timestamp (ingest) to its batch's store commit.
pub const WORKER_INGEST_LAG_SECONDS: &str = "eventfold_worker_ingest_to_folded_seconds";
/// From a micro-batch's first record read to its store commit (fold latency).
pub const WORKER_FOLD_SECONDS: &str = "eventfold_worker_fold_duration_seconds";
/// Store commit latency (state + offsets, one transaction).
pub const STORE_COMMIT_SECONDS: &str = "eventfold_store_commit_duration_seconds";

/// Registers descriptions with the installed recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests by service, route, method and status."
    );
    describe_histogram!(HTTP_REQUEST_SECONDS, Unit::Seconds, "HTTP request latency.");
    describe_counter!(
        COLLECTOR_EVENTS_TOTAL,
        "Events in collector requests by outcome."
    );
    describe_histogram!(
        COLLECTOR_PRODUCE_SECONDS,
        Unit::Seconds,
        "Batch arrival to last broker acknowledgement."
    );
    describe_counter!(PRODUCE_ERRORS_TOTAL, "Produce failures by kind.");
    describe_counter!(
        INGEST_EVENTS_PRODUCED_TOTAL,
        "Events acknowledged by Kafka."
    );
    describe_counter!(WORKER_EVENTS_TOTAL, "Records read by workers by outcome.");
    describe_histogram!(
        WORKER_BATCH_EVENTS,
        Unit::Count,
        "Records per committed micro-batch."
    );
    describe_counter!(
        WORKER_BATCHES_TOTAL,
        "Micro-batches committed to the store."
    );
    describe_counter!(
        WORKER_FENCED_TOTAL,
        "Batches refused because another worker advanced the partition first."
    );
    describe_counter!(
        WORKER_REBALANCES_TOTAL,
        "Consumer-group rebalances by kind."
    );
    describe_gauge!(
        WORKER_CONSUMER_LAG,
        Unit::Count,
        "Records behind the log end per partition."
    );
    describe_histogram!(
        WORKER_EVENT_TIME_LAG_SECONDS,
        Unit::Seconds,
        "Event time to folded."
    );
    describe_histogram!(
        WORKER_INGEST_LAG_SECONDS,
        Unit::Seconds,
        "Kafka timestamp to folded."
    );
    describe_histogram!(
        STORE_COMMIT_SECONDS,
        Unit::Seconds,
        "One store transaction (state + offsets)."
    );
}
