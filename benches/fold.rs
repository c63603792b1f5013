//! Per-event CPU cost of the worker's stages without Kafka, side by side in one run: reading
//! the Avro datum, batching (duplicate check, lateness, keeping the event) on the fold loop,
//! folding every aggregate of `pipelines/interactions.yaml` with the batch's projection
//! deltas, and the SQLite store commit (both on the commit's blocking threads). The events are those
//! of `eventfold bench worker` (6 partitions keyed by user, the worker's default batch size). Run with
//! `cargo bench --bench fold [-- --events N]`; `cargo test --all-targets` runs it small, as a
//! smoke test.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use eventfold::contracts::{read_view, InteractionVersion, InteractionView};
use eventfold::ingest::{Workload, WorkloadConfig};
use eventfold::pipeline::{load_pipeline, LiveAggregates};
use eventfold::store::SqliteStore;
use eventfold::worker::{
    event_id_hash, BatchBuilder, CommitOutcome, DedupWindow, FoldStore, WorkerConfig,
};

/// The binary's allocator, so allocation costs are the worker's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTITIONS: usize = 6;

/// One partition's batch and duplicate ids, as the worker's fold loop keeps them.
struct Cursor {
    batch: BatchBuilder,
    dedup: DedupWindow,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count = match args.iter().position(|a| a == "--events") {
        Some(at) => args
            .get(at + 1)
            .and_then(|n| n.parse().ok())
            .expect("--events takes a number"),
        None if args.iter().any(|a| a == "--bench") => 200_000,
        None => 2_000,
    };
    let pipeline = Arc::new(
        load_pipeline(Path::new("pipelines/interactions.yaml")).expect("the shipped pipeline"),
    );
    let start_ms = 1_764_000_000_000;
    let workload = Workload::new(WorkloadConfig {
        seed: 42,
        start_ms,
        ..WorkloadConfig::default()
    });
    let records: Vec<(usize, Vec<u8>)> = workload
        .take(count)
        .map(|(_, event)| {
            let mut datum = Vec::with_capacity(128);
            event.write_avro(&mut datum);
            let partition = (event_id_hash(&event.user_id) % PARTITIONS as u128) as usize;
            (partition, datum)
        })
        .collect();

    let started = Instant::now();
    let events: Vec<(usize, InteractionView)> = records
        .iter()
        .map(|(partition, datum)| {
            let event = read_view(InteractionVersion::V2, InteractionVersion::V2, datum)
                .expect("a datum written by the contract");
            (*partition, event)
        })
        .collect();
    let decode = started.elapsed().as_secs_f64();

    // The worker's cycle, commit by commit: the fold loop batches the records, the commit
    // folds each batch into its partition's live partials, then writes it to the store;
    // the batches' buffers serve the next ones.
    let WorkerConfig {
        dedup_horizon_events: horizon,
        batch_max_events,
        ..
    } = WorkerConfig::default();
    let folder = tempfile::tempdir().expect("a temp folder");
    let store = SqliteStore::open(&folder.path().join("store.db")).expect("a new store");
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let mut cursors: HashMap<usize, Cursor> = HashMap::new();
    let mut lives: HashMap<i32, LiveAggregates> = HashMap::new();
    let mut offsets = [0i64; PARTITIONS];
    let (mut batch_secs, mut fold_secs, mut commit) = (0.0, 0.0, 0.0);
    let mut folded = 0;
    for records in events.chunks(batch_max_events) {
        let started = Instant::now();
        for (partition, event) in records {
            let cursor = cursors.entry(*partition).or_insert_with(|| Cursor {
                batch: BatchBuilder::new(
                    "bench",
                    *partition as i32,
                    None,
                    horizon,
                    None,
                    Some(pipeline.clone()),
                ),
                dedup: DedupWindow::default(),
            });
            let offset = offsets[*partition];
            offsets[*partition] += 1;
            let id = event_id_hash(event.event_id);
            if !cursor.dedup.claim(id) {
                cursor.batch.push_duplicate(offset);
                continue;
            }
            cursor.dedup.keep(id);
            let late = pipeline
                .lateness(cursor.batch.max_event_ms(), event.occurred_at)
                .expect("in range");
            cursor.batch.push_event(offset, event, None, late);
        }
        let mut batches = Vec::new();
        for cursor in cursors.values_mut().filter(|c| !c.batch.is_empty()) {
            let seen = cursor.dedup.take_batch(cursor.batch.last_offset(), horizon);
            batches.push(cursor.batch.take(seen, Vec::new()));
        }
        batch_secs += started.elapsed().as_secs_f64();

        let started = Instant::now();
        for batch in &mut batches {
            let live = lives
                .entry(batch.partition)
                .or_insert_with(|| LiveAggregates::new(pipeline.clone()));
            batch.fold_into(live).expect("foldable");
        }
        fold_secs += started.elapsed().as_secs_f64();

        let started = Instant::now();
        let batches = Arc::new(batches);
        let outcomes = runtime
            .block_on(store.commit(batches.clone()))
            .expect("the commit");
        commit += started.elapsed().as_secs_f64();
        for outcome in outcomes {
            match outcome {
                CommitOutcome::Applied { folded: n, .. } => folded += n,
                CommitOutcome::Fenced { stored } => panic!("fenced at {stored:?}"),
            }
        }
        for batch in Arc::try_unwrap(batches).expect("the store let go of the batches") {
            if let Some(cursor) = cursors.get_mut(&(batch.partition as usize)) {
                cursor.batch.recycle(batch.events);
            }
        }
    }
    assert_eq!(folded, count as u64, "every event folded once");

    let per = |secs: f64| secs * 1e9 / count as f64;
    println!(
        "fold: {count} events, {} aggregates, {PARTITIONS} partitions, batches of {}",
        pipeline.aggregates.len(),
        WorkerConfig::default().batch_max_events
    );
    println!(
        "  Avro datum read:                    {:>7.0} ns/event",
        per(decode)
    );
    println!(
        "  batching (dedup, lateness, keep):   {:>7.0} ns/event",
        per(batch_secs)
    );
    println!(
        "  aggregates + projection deltas:     {:>7.0} ns/event",
        per(fold_secs)
    );
    println!(
        "  SQLite commit:                      {:>7.0} ns/event",
        per(commit)
    );
}
