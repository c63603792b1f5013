//! The fold loop: reads the assigned partitions, checks each record against its partition's
//! stored progress (skipping redelivered offsets, seeking over gaps), decodes it to the
//! reader schema, batches, and commits batches to the store; Kafka offsets are committed
//! after the store, for monitoring only.

use rustc_hash::FxHashMap as HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::context::WorkerContext;
use super::dead_letter::{self, DeadLetter};
use super::ramp::BatchRamp;
use super::{
    event_id_hash, BatchBuilder, CommitOutcome, DedupWindow, FoldBatch, FoldStore,
    ProjectionDeltas, WorkerConfig,
};
use crate::contracts::{interaction_schema, peek_event_id, InteractionVersion};
use crate::kafka::{ensure_topic, KafkaConfig, TopicSpec};
use crate::pipeline::{load_pipeline, FoldError, FoldInput, LiveAggregates, LivePart, Pipeline};
use crate::registry::{InteractionDecoder, RegistryClient};
use crate::telemetry::metrics as names;
use crate::telemetry::{Readiness, TraceParent, TRACEPARENT};
use rdkafka::message::Headers;
use tracing::Instrument;

/// The worker could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Bad settings (every problem listed).
    #[error("invalid worker settings:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    /// A Kafka client could not be created or subscribed.
    #[error("cannot start the worker's Kafka clients: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The dead-letter topic could not be created.
    #[error(transparent)]
    Topic(#[from] crate::kafka::TopicError),
    /// The registry client could not be built.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryClientError),
}

/// A built worker, ready to run.
pub struct Worker {
    config: WorkerConfig,
    consumer: StreamConsumer<WorkerContext>,
    context: WorkerContext,
    dead_letters: FutureProducer,
    decoder: InteractionDecoder,
    store: Arc<dyn FoldStore>,
    pipeline: Option<Arc<Pipeline>>,
}

/// One owned partition: the batch being built and the state its owner keeps in memory.
struct Cursor {
    batch: BatchBuilder,
    sought: bool,
    dedup: DedupWindow,
    /// The partition's live partials (`None` without a pipeline, and while a commit folds
    /// the partition's last batch into them).
    live: Option<LiveAggregates>,
}

/// A batch commit running while the next batch is read (at most one): it folds each
/// batch's on-time events into its partition's live partials, then writes them with the
/// batch to the store.
type InFlight = JoinHandle<Committed>;

/// What a commit did.
struct Committed {
    /// The batches.
    batches: Arc<Vec<FoldBatch>>,
    /// Their outcomes; `None` when the store did not take them (shut down first, or a
    /// batch could not be folded).
    outcomes: Option<Vec<CommitOutcome>>,
    /// Each batch's partition's live partials, given back.
    lives: Vec<Option<LiveAggregates>>,
}

const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// In a backlog, the records read ahead and handled as a group, between two looks at the
/// running commit, the batch's age and the shutdown token (the token takes a lock): 64
/// records take well under a millisecond. Their `event_id`s are claimed together first
/// ([`Worker::claim_group`]).
const GROUP_RECORDS: usize = 64;

/// A record's `event_id`, claimed for it before it is handled ([`DedupWindow::claim`]).
#[derive(Debug, Clone, Copy)]
struct Claim {
    hash: u128,
    /// The record's partition: whose duplicate set holds the claim.
    partition: i32,
    /// Whether the claim found the id new.
    first: bool,
    /// Where the peeked id lies in the record (address, length): the claim is the decoded
    /// event's only if its id is these very bytes.
    at: (usize, usize),
}

impl Claim {
    /// Whether `event_id`, decoded from the record, is the id this claim peeked.
    fn is_of(&self, event_id: &str) -> bool {
        (event_id.as_ptr() as usize, event_id.len()) == self.at
    }
}

/// What handling a record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handled {
    /// It joined its partition's batch: an event, a duplicate or a dead letter.
    Joined,
    /// It did not: redelivered, or not handled before shutdown.
    Skipped,
    /// It came after a gap: its partition seeks back to the offset it expects, and the
    /// records of the partition already taken out after this one are read again.
    Sought,
}

/// Takes `hash` over from a later record of the group whose claim of it in `partition` found
/// it new: `true` if one did. The record being handled comes first in the partition, so the
/// id is its own; the later record then is decided again when handled.
fn take_over(later: &mut [Option<Claim>], partition: i32, hash: u128) -> bool {
    later
        .iter_mut()
        .flatten()
        .find(|claim| claim.first && claim.hash == hash && claim.partition == partition)
        .map(|claim| claim.first = false)
        .is_some()
}

/// Releases a claim made for a record that does not join its partition's batch.
fn release(cursor: &mut Cursor, claim: Option<Claim>) {
    if let Some(Claim {
        hash, first: true, ..
    }) = claim
    {
        cursor.dedup.release(hash);
    }
}

/// In a backlog a batch is cut when full, when its [`BatchRamp`] says so (and the store is
/// free), or once it has waited this many lingers (and the store is free): records that are
/// slow to handle (a late event's copy or a dead letter waits for the producer's
/// acknowledgement) do not hold a batch open for long. A full batch of on-time events takes
/// a fraction of that.
const BACKLOG_LINGERS: u32 = 20;

impl Worker {
    /// Checks the settings, creates the clients and subscribes.
    pub async fn build(
        kafka: &KafkaConfig,
        config: WorkerConfig,
        registry: RegistryClient,
        store: Arc<dyn FoldStore>,
    ) -> Result<Worker, WorkerError> {
        Self::build_reporting(kafka, config, registry, store, Readiness::default()).await
    }

    /// Like [`Worker::build`], reporting the checks `broker`, `registry`, `store` and
    /// `partitions_assigned` to `readiness`.
    pub async fn build_reporting(
        kafka: &KafkaConfig,
        config: WorkerConfig,
        registry: RegistryClient,
        store: Arc<dyn FoldStore>,
        readiness: Readiness,
    ) -> Result<Worker, WorkerError> {
        let mut problems = kafka.problems();
        problems.extend(config.problems());
        if !problems.is_empty() {
            return Err(WorkerError::Config(problems));
        }
        let pipeline = match &config.pipeline {
            None => None,
            Some(path) => {
                let pipeline =
                    load_pipeline(path).map_err(|e| WorkerError::Config(vec![e.to_string()]))?;
                let mut problems = Vec::new();
                if pipeline.topic != config.topic {
                    problems.push(format!(
                        "worker.topic ('{}') must be the topic of pipeline {} ('{}')",
                        config.topic,
                        path.display(),
                        pipeline.topic
                    ));
                }
                if !problems.is_empty() {
                    return Err(WorkerError::Config(problems));
                }
                Some(Arc::new(pipeline))
            }
        };
        let reader = match &pipeline {
            Some(pipeline) => pipeline.reader.clone(),
            None => {
                let version = InteractionVersion::from_number(config.reader_version)
                    .ok_or_else(|| WorkerError::Config(vec!["worker.reader_version".into()]))?;
                interaction_schema(version).map_err(|e| WorkerError::Config(vec![e.to_string()]))?
            }
        };
        if let Some(pipeline) = &pipeline {
            ensure_topic(
                kafka,
                &TopicSpec {
                    name: &pipeline.late_topic,
                    partitions: 1,
                    replication: 1,
                    configs: &[],
                },
            )
            .await?;
        }
        ensure_topic(
            kafka,
            &TopicSpec {
                name: &config.dead_letter_topic,
                partitions: 1,
                replication: 1,
                configs: &[],
            },
        )
        .await?;
        readiness.set("broker", true);
        readiness.set("registry", registry.check().await.is_ok());
        readiness.set("store", store.progress(&config.topic, 0).await.is_ok());
        let context = WorkerContext::new(readiness);
        let consumer: StreamConsumer<WorkerContext> = kafka
            .consumer(&config.group_id)
            .set("statistics.interval.ms", "5000")
            .create_with_context(context.clone())?;
        consumer.subscribe(&[&config.topic])?;
        let dead_letters: FutureProducer = kafka.producer().create()?;
        Ok(Worker {
            decoder: InteractionDecoder::new(registry, reader),
            config,
            consumer,
            context,
            dead_letters,
            store,
            pipeline,
        })
    }

    /// Folds until `shutdown` fires, then commits what it holds and leaves the group.
    /// A batch's store commit overlaps the reading of the next batch, and the store paces
    /// the batches (group commit): a batch is cut once `batch_linger_ms` passed, the
    /// previous commit is done and the loop has read every record fetched so far, or when
    /// it holds `batch_max_events` (then after that commit), or in a backlog once it holds
    /// as much as its [`BatchRamp`] asks and the store is free, or once it waited
    /// [`BACKLOG_LINGERS`] lingers (and the store is free). While the store is busy the next
    /// batch grows, so under load each commit writes a row per user, item, session and
    /// partial once for more events.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut cursors: HashMap<i32, Cursor> = HashMap::default();
        let mut in_flight: Option<InFlight> = None;
        let mut generation = self.context.generation();
        let mut pending = 0usize;
        let linger = Duration::from_millis(self.config.batch_linger_ms);
        let mut deadline: Option<Instant> = None;
        // One stream for the worker's life: `recv` would register and drop a waker slot
        // (two locks) for every record.
        let mut stream = self.consumer.stream();
        let mut ramp = BatchRamp::new(self.config.batch_max_events);
        let mut group: Vec<BorrowedMessage<'_>> = Vec::with_capacity(GROUP_RECORDS);
        let mut claims: Vec<Option<Claim>> = Vec::with_capacity(GROUP_RECORDS);
        let mut sought: Vec<i32> = Vec::new();
        loop {
            let flush_at = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = shutdown.cancelled() => break,
                done = async { in_flight.as_mut().expect("guarded by is_some").await }, if in_flight.is_some() => {
                    in_flight = None;
                    self.settle(done, &mut cursors);
                }
                // The loop has caught up and the store is free: a batch whose linger passed
                // meanwhile is cut at once.
                _ = tokio::time::sleep_until(flush_at), if deadline.is_some() && in_flight.is_none() => {
                    self.flush(&mut cursors, &mut in_flight, &shutdown).await;
                    pending = 0;
                    deadline = None;
                    ramp.restart();
                }
                message = stream.next() => {
                    let mut next = Some(message);
                    // Take every record already fetched before going back to the select, a
                    // group at a time.
                    while let Some(Some(first)) = next.take() {
                        let first = match first {
                            Ok(message) => message,
                            Err(error) => {
                                tracing::warn!(%error, "Kafka read failed; retrying.");
                                break;
                            }
                        };
                        if self.context.generation() != generation {
                            self.flush(&mut cursors, &mut in_flight, &shutdown).await;
                            self.settle_in_flight(&mut in_flight, &mut cursors).await;
                            cursors.clear();
                            pending = 0;
                            deadline = None;
                            ramp.restart();
                            generation = self.context.generation();
                        }
                        // The group: records already fetched under this assignment, no more
                        // than the batch has room for (so it is cut exactly when full).
                        let room = GROUP_RECORDS
                            .min(self.config.batch_max_events.saturating_sub(pending))
                            .max(1);
                        group.push(first);
                        while group.len() < room {
                            match stream.next().now_or_never().flatten() {
                                Some(Ok(message)) if self.context.generation() == generation => {
                                    group.push(message);
                                }
                                // A new assignment's record opens the next group; an error
                                // is reported there.
                                Some(other) => {
                                    next = Some(Some(other));
                                    break;
                                }
                                None => break,
                            }
                        }
                        Self::claim_group(&group, &mut cursors, &mut claims);
                        sought.clear();
                        // Each record's claim, and the claims of the group's records after it.
                        let mut later = claims.as_mut_slice();
                        for message in &group {
                            let Some((claim, rest)) = std::mem::take(&mut later).split_first_mut()
                            else {
                                break;
                            };
                            later = rest;
                            let claim = *claim;
                            let partition = message.partition();
                            if sought.contains(&partition) {
                                // Read before its partition's seek: it is read again after.
                                if let Some(cursor) = cursors.get_mut(&partition) {
                                    release(cursor, claim);
                                }
                                continue;
                            }
                            match self
                                .handle(message, claim, later, &mut cursors, &shutdown)
                                .await
                            {
                                Handled::Joined => {
                                    pending += 1;
                                    deadline.get_or_insert_with(|| Instant::now() + linger);
                                }
                                Handled::Sought => sought.push(partition),
                                Handled::Skipped => {}
                            }
                        }
                        group.clear();
                        if in_flight.as_ref().is_some_and(JoinHandle::is_finished) {
                            self.settle_in_flight(&mut in_flight, &mut cursors).await;
                        }
                        // While records keep coming (a backlog) the batch grows until the
                        // ramp's size with the store free, or until full (then it waits for
                        // the store if still busy), or until it waited a few lingers; once
                        // the fold loop has caught up, the linger's branch of the select
                        // cuts it.
                        let store_free = in_flight.is_none();
                        let overdue = store_free
                            && deadline
                                .is_some_and(|at| at + linger * BACKLOG_LINGERS <= Instant::now());
                        if pending >= self.config.batch_max_events
                            || overdue
                            || (store_free && ramp.due(pending))
                        {
                            self.flush(&mut cursors, &mut in_flight, &shutdown).await;
                            pending = 0;
                            deadline = None;
                            ramp.grow();
                        }
                        if shutdown.is_cancelled() {
                            break;
                        }
                        // A long backlog never leaves this loop: give other tasks their turn
                        // (a unit of the task's budget per group).
                        tokio::task::consume_budget().await;
                        if next.is_none() {
                            next = stream.next().now_or_never();
                        }
                    }
                }
            }
        }
        let unstoppable = CancellationToken::new();
        self.flush(&mut cursors, &mut in_flight, &unstoppable).await;
        self.settle_in_flight(&mut in_flight, &mut cursors).await;
        drop(stream);
        self.consumer.unsubscribe();
        tracing::info!("Worker stopped: batches committed, group left.");
    }

    /// Claims the `event_id`s of a group's records together, in offset order, for the
    /// records whose partition is held and whose id can be read off their first bytes: one
    /// probe of the partition's duplicate set each, made back to back so that their cache
    /// misses overlap instead of stalling the loop record by record. Hashing first keeps the
    /// claiming loop short. [`Worker::handle`] keeps or releases each claim.
    fn claim_group(
        group: &[BorrowedMessage<'_>],
        cursors: &mut HashMap<i32, Cursor>,
        claims: &mut Vec<Option<Claim>>,
    ) {
        claims.clear();
        claims.extend(group.iter().map(|message| {
            peek_event_id(message.payload()).map(|id| Claim {
                hash: event_id_hash(id),
                partition: message.partition(),
                first: false,
                at: (id.as_ptr() as usize, id.len()),
            })
        }));
        for slot in claims.iter_mut() {
            *slot = slot.and_then(|mut claim| {
                let cursor = cursors.get_mut(&claim.partition)?;
                claim.first = cursor.dedup.claim(claim.hash);
                Some(claim)
            });
        }
    }

    /// Handles one record, with the claim made for its `event_id` if any and the claims of the
    /// group's records after it.
    async fn handle(
        &self,
        message: &BorrowedMessage<'_>,
        claim: Option<Claim>,
        later: &mut [Option<Claim>],
        cursors: &mut HashMap<i32, Cursor>,
        shutdown: &CancellationToken,
    ) -> Handled {
        let partition = message.partition();
        let offset = message.offset();
        // Read first, though needed last: the record was written by librdkafka's thread on
        // another core, and its timestamp lies on a line of its own; reading it here lets
        // the cache miss overlap the decoding instead of stalling at the end.
        let ingested_at = message.timestamp().to_millis();
        let cursor = match cursors.entry(partition) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(slot) => {
                let Some(snapshot) = self
                    .with_retry(shutdown, || {
                        self.store.snapshot(
                            &self.config.topic,
                            partition,
                            self.config.dedup_horizon_events,
                            self.pipeline.clone(),
                        )
                    })
                    .await
                else {
                    return Handled::Skipped;
                };
                let batch = BatchBuilder::new(
                    &self.config.topic,
                    partition,
                    snapshot.progress.last_offset,
                    self.config.dedup_horizon_events,
                    snapshot.progress.max_event_ms,
                    self.pipeline.clone(),
                );
                let live = self.pipeline.clone().map(|pipeline| {
                    let mut live = LiveAggregates::new(pipeline);
                    live.restore(snapshot.partials);
                    live
                });
                self.context.remember(partition, batch.next_offset());
                slot.insert(Cursor {
                    batch,
                    sought: false,
                    dedup: DedupWindow::restore(snapshot.seen),
                    live,
                })
            }
        };
        let expected = cursor.batch.next_offset();
        if offset < expected {
            metrics::counter!(names::WORKER_EVENTS_TOTAL, "outcome" => "already_applied")
                .increment(1);
            release(cursor, claim);
            return Handled::Skipped;
        }
        if offset > expected && !cursor.sought {
            release(cursor, claim);
            cursor.sought = true;
            if let Err(error) = self.consumer.seek(
                &self.config.topic,
                partition,
                Offset::Offset(expected),
                Duration::from_secs(5),
            ) {
                tracing::warn!(partition, expected, %error, "Cannot seek to the stored offset.");
            }
            return Handled::Sought;
        }
        if offset > expected {
            tracing::warn!(
                partition,
                expected,
                offset,
                "Offsets missing from the log (retention?); continuing after the gap."
            );
        }
        cursor.sought = false;
        // The record's span, when it carries a sampled trace and the worker's debug spans
        // are recorded; no span at all otherwise (a disabled `Span` still costs a call to
        // drop per record). Debug, not info: finding the `traceparent` makes librdkafka
        // parse every record's headers into allocated copies, which at the default filter
        // cost the worker a quarter of its throughput (docs/worker.md, eighth round).
        let record_span = tracing::span_enabled!(tracing::Level::DEBUG)
            .then(|| message.headers())
            .flatten()
            .and_then(|headers| headers.iter().find(|h| h.key == TRACEPARENT))
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(TraceParent::parse_sampled)
            .map(|parent| {
                tracing::debug_span!("fold_record", trace_id = %parent.trace_id, parent_span_id = %parent.span_id, partition, offset)
            });
        let payload = message.payload();
        // A writer schema seen before decodes without waiting; a new one asks the registry.
        let known = match &record_span {
            Some(span) => span.in_scope(|| self.decoder.decode_known(payload)),
            None => self.decoder.decode_known(payload),
        };
        let decoded = match known {
            Some(decoded) => decoded,
            None => loop {
                match self
                    .decoder
                    .decode_view(payload)
                    .instrument(record_span.clone().unwrap_or_else(tracing::Span::none))
                    .await
                {
                    Err(error) if error.is_transient() => {
                        tracing::warn!(partition, offset, %error, "Cannot decode yet; retrying.");
                        tokio::select! {
                            _ = shutdown.cancelled() => {
                                release(cursor, claim);
                                return Handled::Skipped;
                            }
                            _ = tokio::time::sleep(RETRY_PAUSE) => continue,
                        }
                    }
                    other => break other,
                }
            },
        };
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(error) => {
                release(cursor, claim);
                return self
                    .dead_letter_into(cursor, message, error.reason(), error.to_string(), shutdown)
                    .await;
            }
        };
        let event = decoded.view();
        let (id, first) = match claim {
            // The group's claim is this event's: a duplicate then may have become new since,
            // if the record its id was claimed for first did not join the batch.
            Some(claim) if claim.is_of(event.event_id) => {
                (claim.hash, claim.first || cursor.dedup.claim(claim.hash))
            }
            // No claim was made for this id off the record's first bytes (a writer with another
            // layout, a copy resolved from another schema, or the partition's first group):
            // claimed now, ahead of any later record of the group that claimed it off its own.
            other => {
                release(cursor, other);
                let id = event_id_hash(event.event_id);
                (
                    id,
                    cursor.dedup.claim(id) || take_over(later, partition, id),
                )
            }
        };
        if !first {
            cursor.batch.push_duplicate(offset);
            return Handled::Joined;
        }
        let late = match &self.pipeline {
            None => false,
            Some(pipeline) => {
                match pipeline.lateness(cursor.batch.max_event_ms(), event.occurred_at) {
                    Ok(late) => late,
                    Err(error) => {
                        cursor.dedup.release(id);
                        return self
                            .dead_letter_into(
                                cursor,
                                message,
                                "event_time_out_of_range",
                                error.to_string(),
                                shutdown,
                            )
                            .await;
                    }
                }
            }
        };
        if late && !self.copy_late(message, shutdown).await {
            cursor.dedup.release(id);
            return Handled::Skipped;
        }
        cursor.dedup.keep(id);
        cursor.batch.push_event(offset, &event, ingested_at, late);
        Handled::Joined
    }

    /// Dead-letters a record and counts it in its partition's batch (skipped on shutdown).
    async fn dead_letter_into(
        &self,
        cursor: &mut Cursor,
        message: &BorrowedMessage<'_>,
        reason: &'static str,
        error: String,
        shutdown: &CancellationToken,
    ) -> Handled {
        if !self.dead_letter(message, reason, error, shutdown).await {
            return Handled::Skipped;
        }
        cursor.batch.push_dead_letter(message.offset());
        Handled::Joined
    }

    /// Copies a late record to the pipeline's late topic (at least once) before it is counted.
    async fn copy_late(&self, message: &BorrowedMessage<'_>, shutdown: &CancellationToken) -> bool {
        let Some(pipeline) = &self.pipeline else {
            return true;
        };
        let letter = DeadLetter {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key(),
            payload: message.payload(),
            reason: "late",
            error: format!(
                "later than the watermark of {} minus its grace",
                pipeline.name
            ),
        };
        self.with_retry(shutdown, || {
            dead_letter::send(&self.dead_letters, &pipeline.late_topic, &letter)
        })
        .await
        .is_some()
    }

    async fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        reason: &'static str,
        error: String,
        shutdown: &CancellationToken,
    ) -> bool {
        let letter = DeadLetter {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key(),
            payload: message.payload(),
            reason,
            error,
        };
        tracing::warn!(partition = letter.partition, offset = letter.offset, reason = letter.reason, error = %letter.error, "Record dead-lettered.");
        self.with_retry(shutdown, || {
            dead_letter::send(&self.dead_letters, &self.config.dead_letter_topic, &letter)
        })
        .await
        .is_some()
    }

    /// Retries `op` until it succeeds or shutdown fires (then `None`).
    async fn with_retry<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
        &self,
        shutdown: &CancellationToken,
        op: impl FnMut() -> F,
    ) -> Option<T> {
        retry(shutdown, op).await
    }

    /// Starts committing every non-empty batch in one store transaction, once the commit
    /// before it is settled (so at most one runs, and batches of a partition commit in order).
    /// The commit first folds each batch into its partition's live partials, on a blocking
    /// thread, so folding overlaps the reading of the next batch.
    async fn flush(
        &self,
        cursors: &mut HashMap<i32, Cursor>,
        in_flight: &mut Option<InFlight>,
        shutdown: &CancellationToken,
    ) {
        let waited = Instant::now();
        let busy = in_flight.is_some();
        self.settle_in_flight(in_flight, cursors).await;
        if busy {
            tracing::debug!(
                waited_ms = waited.elapsed().as_millis() as u64,
                "Waited for the previous commit before cutting a batch."
            );
        }
        let mut batches = Vec::new();
        let mut lives = Vec::new();
        for cursor in cursors.values_mut() {
            if cursor.batch.is_empty() {
                continue;
            }
            let seen = cursor.dedup.take_batch(
                cursor.batch.last_offset(),
                cursor.batch.dedup_horizon_events(),
            );
            batches.push(cursor.batch.take(seen, Vec::new()));
            lives.push(cursor.live.take());
        }
        if batches.is_empty() {
            return;
        }
        tracing::debug!(
            events = batches.iter().map(FoldBatch::records).sum::<u64>(),
            partitions = batches.len(),
            "Batch cut."
        );
        let store = self.store.clone();
        let shutdown = shutdown.clone();
        *in_flight = Some(tokio::spawn(async move {
            let cut = Instant::now();
            let folded = tokio::task::spawn_blocking(move || {
                let folded = fold_batches(&mut batches, &mut lives);
                (batches, lives, folded)
            })
            .await;
            let (batches, lives, folded) = match folded {
                Ok(done) => done,
                Err(error) => std::panic::resume_unwind(error.into_panic()),
            };
            let batches = Arc::new(batches);
            let outcomes = match folded {
                Ok(()) => {
                    let started = Instant::now();
                    let outcomes = retry(&shutdown, || store.commit(batches.clone())).await;
                    if let Some(outcomes) = &outcomes {
                        metrics::histogram!(names::STORE_COMMIT_SECONDS)
                            .record(started.elapsed().as_secs_f64());
                        tracing::debug!(
                            fold_ms = (started - cut).as_millis() as u64,
                            store_ms = started.elapsed().as_millis() as u64,
                            "Batch committed."
                        );
                        // Two lag samples per event: recorded here, on a blocking thread,
                        // not by the fold loop when it settles the commit.
                        let (applied, outcomes) = (batches.clone(), outcomes.clone());
                        let recorded = tokio::task::spawn_blocking(move || {
                            record_applied(&applied, &outcomes);
                        })
                        .await;
                        if let Err(error) = recorded {
                            std::panic::resume_unwind(error.into_panic());
                        }
                    }
                    outcomes
                }
                Err(error) => {
                    tracing::error!(%error, "A batch cannot be folded; its partitions are read again from the store.");
                    None
                }
            };
            Committed {
                batches,
                outcomes,
                lives,
            }
        }));
        // Let the commit start now: a task spawned from this worker thread waits in its
        // not-stealable LIFO slot until the fold loop yields.
        tokio::task::yield_now().await;
    }

    /// Waits for the running commit, if any, and settles it.
    async fn settle_in_flight(
        &self,
        in_flight: &mut Option<InFlight>,
        cursors: &mut HashMap<i32, Cursor>,
    ) {
        if let Some(task) = in_flight.take() {
            self.settle(task.await, cursors);
        }
    }

    /// Accounts for a finished commit: metrics and Kafka offsets (monitoring only) for the
    /// applied batches; a fenced partition is dropped (with what was read after the batch)
    /// and read again from the stored offset.
    fn settle(
        &self,
        done: Result<Committed, tokio::task::JoinError>,
        cursors: &mut HashMap<i32, Cursor>,
    ) {
        let Committed {
            batches,
            outcomes,
            lives,
        } = match done {
            Ok(committed) => committed,
            Err(error) => {
                tracing::error!(%error, "The store commit task failed; resuming every partition from the store.");
                cursors.clear();
                return;
            }
        };
        let Some(outcomes) = outcomes else {
            // Not stored: drop what followed, like a crash would, and read it again.
            for batch in batches.iter() {
                cursors.remove(&batch.partition);
            }
            return;
        };
        let mut kafka_offsets = TopicPartitionList::new();
        for ((batch, outcome), live) in batches.iter().zip(outcomes).zip(lives) {
            match outcome {
                CommitOutcome::Applied { .. } => {
                    if let Some(cursor) = cursors.get_mut(&batch.partition) {
                        cursor.live = live;
                    }
                    self.context
                        .remember(batch.partition, batch.last_offset + 1);
                    let _ = kafka_offsets.add_partition_offset(
                        &batch.topic,
                        batch.partition,
                        Offset::Offset(batch.last_offset + 1),
                    );
                }
                CommitOutcome::Fenced { stored } => {
                    metrics::counter!(names::WORKER_FENCED_TOTAL).increment(1);
                    tracing::info!(partition = batch.partition, ?stored, "Batch fenced: another worker advanced the partition; resuming from the store.");
                    cursors.remove(&batch.partition);
                    let next = stored.last_offset.map_or(0, |o| o + 1);
                    self.context.remember(batch.partition, next);
                    let _ = self.consumer.seek(
                        &batch.topic,
                        batch.partition,
                        Offset::Offset(next),
                        Duration::from_secs(5),
                    );
                }
            }
        }
        // The batches' event buffers serve their partitions' next batches.
        if let Ok(batches) = Arc::try_unwrap(batches) {
            for batch in batches {
                if let Some(cursor) = cursors.get_mut(&batch.partition) {
                    cursor.batch.recycle(batch.events);
                }
            }
        }
        if kafka_offsets.count() > 0 {
            if let Err(error) = self.consumer.commit(&kafka_offsets, CommitMode::Async) {
                tracing::debug!(%error, "Kafka offset commit failed (monitoring only).");
            }
        }
    }
}

/// Folds each batch into its partition's live partials and computes its projection deltas,
/// as [`FoldBatch::fold_into`] does, on as many threads as the machine has cores: every
/// aggregate of every partition, and every batch's projection deltas, is a piece of work of
/// its own (they share nothing), so one partition's batch folds on several cores too. A
/// partition's events reach each of its aggregates in offset order.
fn fold_batches(
    batches: &mut [FoldBatch],
    lives: &mut [Option<LiveAggregates>],
) -> Result<(), FoldError> {
    /// A piece of the work.
    enum Piece<'a> {
        Aggregate(&'a FoldBatch, LivePart<'a>),
        Projections(&'a FoldBatch, &'a mut ProjectionDeltas),
    }
    let mut deltas = vec![ProjectionDeltas::default(); batches.len()];
    {
        let mut work: Vec<Piece<'_>> = batches
            .iter()
            .zip(lives.iter_mut())
            .filter_map(|(batch, live)| Some((batch, live.as_mut()?)))
            .flat_map(|(batch, live)| {
                live.parts_mut()
                    .map(move |part| Piece::Aggregate(batch, part))
            })
            .chain(
                batches
                    .iter()
                    .zip(deltas.iter_mut())
                    .map(|(batch, deltas)| Piece::Projections(batch, deltas)),
            )
            .collect();
        // The largest batches are taken first (the queue pops from its end), projections
        // (a pass as costly as the dearest aggregates) before the aggregates of a batch.
        work.sort_by_key(|piece| match piece {
            Piece::Aggregate(batch, _) => (batch.events.len(), false),
            Piece::Projections(batch, _) => (batch.events.len(), true),
        });
        let fold = |piece: Piece<'_>| match piece {
            Piece::Aggregate(batch, mut part) => batch.fold_part(&mut part),
            Piece::Projections(batch, deltas) => {
                *deltas = batch.projection_deltas();
                Ok(())
            }
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(work.len());
        if threads <= 1 {
            work.into_iter().try_for_each(fold)?;
        } else {
            let queue = std::sync::Mutex::new(work);
            let next = || queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
            // This (blocking-pool) thread folds too: a thread spawned per commit starts
            // with a fresh allocator heap whose pages fault in again.
            std::thread::scope(|scope| {
                let helpers: Vec<_> = (1..threads)
                    .map(|_| scope.spawn(|| std::iter::from_fn(next).try_for_each(fold)))
                    .collect();
                let here = std::iter::from_fn(next).try_for_each(fold);
                helpers.into_iter().fold(here, |folded, thread| {
                    let helped = thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    folded.and(helped)
                })
            })?;
        }
    }
    for ((batch, live), deltas) in batches.iter_mut().zip(lives.iter_mut()).zip(deltas) {
        if let Some(live) = live {
            batch.keep_changes(live);
        }
        batch.projections = Some(deltas);
    }
    Ok(())
}

/// Retries `op` until it succeeds or shutdown fires (then `None`).
async fn retry<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    shutdown: &CancellationToken,
    mut op: impl FnMut() -> F,
) -> Option<T> {
    loop {
        match op().await {
            Ok(value) => return Some(value),
            Err(error) => {
                tracing::warn!(%error, "Operation failed; retrying.");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(RETRY_PAUSE) => {}
                }
            }
        }
    }
}

/// Records the metrics of every applied batch of a commit.
fn record_applied(batches: &[super::FoldBatch], outcomes: &[CommitOutcome]) {
    for (batch, outcome) in batches.iter().zip(outcomes) {
        if let CommitOutcome::Applied {
            folded,
            duplicates,
            late,
        } = *outcome
        {
            record_batch(batch, folded, duplicates, late);
        }
    }
}

/// Metrics of an applied batch: outcomes, size, and how long its events took to be folded.
fn record_batch(batch: &super::FoldBatch, folded: u64, duplicates: u64, late: u64) {
    metrics::counter!(names::WORKER_BATCHES_TOTAL).increment(1);
    if let Some(opened) = batch.opened_at {
        metrics::histogram!(names::WORKER_FOLD_SECONDS).record(opened.elapsed().as_secs_f64());
    }
    metrics::histogram!(names::WORKER_BATCH_EVENTS).record(batch.records() as f64);
    metrics::counter!(names::WORKER_EVENTS_TOTAL, "outcome" => "folded").increment(folded);
    metrics::counter!(names::WORKER_EVENTS_TOTAL, "outcome" => "duplicate").increment(duplicates);
    metrics::counter!(names::WORKER_EVENTS_TOTAL, "outcome" => "dead_lettered")
        .increment(batch.dead_lettered);
    metrics::counter!(names::WORKER_EVENTS_TOTAL, "outcome" => "late").increment(late);
    let now = crate::clock::now_ms();
    let event_lag = metrics::histogram!(names::WORKER_EVENT_TIME_LAG_SECONDS);
    let ingest_lag = metrics::histogram!(names::WORKER_INGEST_LAG_SECONDS);
    for event in batch.events.iter() {
        event_lag.record((now - event.occurred_at()).max(0) as f64 / 1000.0);
        if let Some(ingested) = event.ingested_at() {
            ingest_lag.record((now - ingested).max(0) as f64 / 1000.0);
        }
    }
}
