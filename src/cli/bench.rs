//! `eventfold bench`: throughput measured side by side in one run, against the configured
//! broker, so the figures are ratios that a noisy machine does not distort.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientContext;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::ingest::{
    router, CollectorConfig, CollectorState, EventGenerator, EventProducer, Workload,
    WorkloadConfig,
};
use crate::kafka::{ensure_topic, TopicSpec};
use crate::registry::{InteractionEncoder, RegistryClient, RegistryConfig, SchemaLog};
use crate::settings::Settings;
use crate::store::SqliteStore;
use crate::telemetry::{Readiness, TraceParent, TRACEPARENT};
use crate::worker::{Worker, WorkerConfig};

/// What to measure.
#[derive(Debug, clap::Subcommand)]
pub enum BenchWhat {
    /// Events/s through the collector (JSON batches over loopback HTTP) next to the raw
    /// rdkafka produce rate of the same encoded events.
    Ingest {
        /// Events per measurement.
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        /// Events per HTTP request.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// HTTP requests in flight (100 requests of 100 events: as many events awaiting
        /// their ack as the raw produce's window of 10 000 messages).
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
    },
    /// Events/s through a worker (decode + every aggregate of the pipeline + store commit)
    /// next to a plain rdkafka consumer reading the same topic.
    Worker {
        /// Events in the topic.
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        /// The pipeline whose aggregates the worker folds (its topics are replaced by the
        /// bench's own).
        #[arg(long, default_value = "pipelines/interactions.yaml")]
        pipeline: PathBuf,
        /// Events per worker micro-batch (the worker's default).
        #[arg(long, default_value_t = crate::worker::WorkerConfig::default().batch_max_events)]
        batch_max_events: usize,
        /// Measurements of the same topic, each by a fresh worker (new group, new store)
        /// between two raw consumers; the ratios' median is the figure to quote on a noisy
        /// machine.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
        rounds: u32,
    },
    /// Query API read latency at a fixed request rate (open loop) over a filled store, and
    /// end-to-end freshness (collector ack → visible in the query API) under a steady load.
    Query(super::bench_query::QueryBenchArgs),
}

/// Runs a benchmark and prints its figures.
pub async fn run(settings: &Settings, what: &BenchWhat) -> anyhow::Result<()> {
    match what {
        BenchWhat::Ingest {
            events,
            batch,
            concurrency,
        } => ingest(settings, *events, *batch, *concurrency).await,
        BenchWhat::Worker {
            events,
            pipeline,
            batch_max_events,
            rounds,
        } => worker(settings, *events, pipeline, *batch_max_events, *rounds).await,
        BenchWhat::Query(args) => super::bench_query::run(settings, args).await,
    }
}

/// Starts an in-process registry on a fresh `_schemas-bench-<run_id>` topic; returns its URL.
pub(super) async fn start_registry(
    settings: &Settings,
    run_id: &str,
    stop: &CancellationToken,
) -> anyhow::Result<String> {
    let registry_config = RegistryConfig {
        topic: format!("_schemas-bench-{run_id}"),
        ..RegistryConfig::default()
    };
    let log = SchemaLog::open(&settings.kafka, &registry_config, stop.clone()).await?;
    let registry_listener =
        tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let registry_url = format!("http://{}", registry_listener.local_addr()?);
    tokio::spawn(crate::http::serve(
        registry_listener,
        crate::registry::router(log),
        None,
        stop.clone(),
    ));
    Ok(registry_url)
}

/// Creates a bench topic: 6 partitions, like the shipped `interactions` topic.
pub(super) async fn bench_topic(settings: &Settings, name: &str) -> anyhow::Result<()> {
    ensure_topic(
        &settings.kafka,
        &TopicSpec {
            name,
            partitions: 6,
            replication: 1,
            configs: &[],
        },
    )
    .await?;
    Ok(())
}

async fn ingest(
    settings: &Settings,
    count: usize,
    batch: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let run_id = Uuid::new_v4().simple().to_string();
    let registry_url = start_registry(settings, &run_id, &stop).await?;

    let raw_topic = format!("bench-raw-{run_id}");
    let collector_topic = format!("bench-collector-{run_id}");
    for topic in [&raw_topic, &collector_topic] {
        bench_topic(settings, topic).await?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let events: Vec<_> = EventGenerator::new(42, 10_000, 1_000, now - count as i64 * 10)
        .take(count)
        .collect();

    // Raw: the same events, encoded beforehand, produced with plain rdkafka.
    let encoder = InteractionEncoder::new(&registry_url, &raw_topic);
    let mut encoded = Vec::with_capacity(count);
    for event in &events {
        encoded.push((event.user_id.clone(), encoder.encode(event).await?));
    }
    let producer: FutureProducer = settings.kafka.producer().create()?;
    raw_produce(&producer, &raw_topic, &encoded[..count.min(2_000)], None).await?;
    let raw_first = raw_produce(&producer, &raw_topic, &encoded, None).await?;

    // Collector: JSON batches over loopback HTTP, each answered after every ack.
    let collector_config = CollectorConfig {
        topic: collector_topic.clone(),
        ..CollectorConfig::default()
    };
    let event_producer = EventProducer::new(&settings.kafka, &registry_url, &collector_topic)?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}/v1/events", listener.local_addr()?);
    tokio::spawn(crate::http::serve(
        listener,
        router(CollectorState::new(event_producer, collector_config)?),
        None,
        stop.clone(),
    ));
    let bodies: Vec<Batch> = events
        .chunks(batch.max(1))
        .map(|chunk| {
            Ok(Batch {
                events: chunk.len(),
                body: serde_json::to_vec(chunk)?.into(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let client = reqwest::Client::new();
    post_all(&client, &url, &bodies[..bodies.len().min(20)], concurrency).await?;
    let collector_first = post_all(&client, &url, &bodies, concurrency).await?;
    let raw_second = raw_produce(&producer, &raw_topic, &encoded, None).await?;
    let collector_second = post_all(&client, &url, &bodies, concurrency).await?;
    stop.cancel();

    // Runs alternate (raw, collector, raw, collector) and each side keeps its faster run, so
    // a passing disturbance on this shared machine hits both sides alike.
    let raw_secs = raw_first.min(raw_second);
    let raw_rate = count as f64 / raw_secs;
    let collector_rate = count as f64 / collector_first.min(collector_second);
    println!(
        "bench ingest: {count} events, batches of {batch}, {concurrency} requests in flight ({} events; raw: {RAW_IN_FLIGHT} messages in flight)",
        batch * concurrency
    );
    println!(
        "  raw rdkafka produce (pre-encoded): {raw_rate:>10.0} events/s (best of {:.0} and {:.0})",
        count as f64 / raw_first,
        count as f64 / raw_second
    );
    println!(
        "  collector (HTTP JSON → Avro → Kafka acks): {collector_rate:>10.0} events/s (best of {:.0} and {:.0})",
        count as f64 / collector_first,
        count as f64 / collector_second
    );
    println!("  collector / raw: {:.2}", collector_rate / raw_rate);
    Ok(())
}

async fn worker(
    settings: &Settings,
    count: usize,
    pipeline_path: &Path,
    batch_max_events: usize,
    rounds: u32,
) -> anyhow::Result<()> {
    anyhow::ensure!(count > 0, "--events must be at least 1");
    let stop = CancellationToken::new();
    let run_id = Uuid::new_v4().simple().to_string();
    let registry_url = start_registry(settings, &run_id, &stop).await?;
    let topic = format!("bench-worker-{run_id}");
    bench_topic(settings, &topic).await?;

    // The pipeline, pointed at the bench's topics, and a fresh store, in a temp folder.
    let folder = std::env::temp_dir().join(format!("eventfold-bench-{run_id}"));
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let result = worker_in(
        settings,
        WorkerBench {
            count,
            pipeline_path,
            batch_max_events,
            rounds,
        },
        &registry_url,
        &topic,
        &folder,
    )
    .await;
    stop.cancel();
    let _ = std::fs::remove_dir_all(&folder);
    result
}

/// The file, in a bench's temp folder, of the pipeline pointed at the bench's topics.
pub(super) const PIPELINE_FILE: &str = "pipeline.yaml";

/// What `bench worker` measures.
struct WorkerBench<'a> {
    count: usize,
    pipeline_path: &'a Path,
    batch_max_events: usize,
    rounds: u32,
}

/// A round's ratios of worker to raw rates: from the first assignment (A), from the first
/// record (F).
struct RoundRatios {
    assigned: f64,
    first: f64,
}

async fn worker_in(
    settings: &Settings,
    bench: WorkerBench<'_>,
    registry_url: &str,
    topic: &str,
    folder: &Path,
) -> anyhow::Result<()> {
    let WorkerBench {
        count,
        pipeline_path,
        batch_max_events,
        rounds,
    } = bench;
    let pipeline_file = folder.join(PIPELINE_FILE);
    let late_topic = format!("{topic}-late");
    let text = std::fs::read_to_string(pipeline_path)
        .with_context(|| format!("cannot read {}", pipeline_path.display()))?;
    std::fs::write(
        &pipeline_file,
        retarget_pipeline(&text, topic, &late_topic)?,
    )?;
    let pipeline = crate::pipeline::load_pipeline(&pipeline_file)?;

    // The events: in event-time order, ending now, no late events and no duplicates.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let workload = Workload::new(WorkloadConfig {
        seed: 42,
        start_ms: now - count as i64 * 10,
        out_of_order_fraction: 0.0,
        late_fraction: 0.0,
        duplicate_fraction: 0.0,
        ..WorkloadConfig::default()
    });
    let encoder = InteractionEncoder::new(registry_url, topic);
    let mut encoded = Vec::with_capacity(count);
    for (_, event) in workload.take(count) {
        encoded.push((event.user_id.clone(), encoder.encode(&event).await?));
    }
    let producer: FutureProducer = settings.kafka.producer().create()?;
    // Throwaway consumer groups: short group timeouts (as `KafkaConfig::local`) unless the
    // settings ask for shorter ones, so joins take seconds, not half of Kafka's 45 s default.
    let mut kafka = settings.kafka.clone();
    kafka.session_timeout_ms = kafka.session_timeout_ms.min(6_000);
    kafka.heartbeat_interval_ms = kafka.heartbeat_interval_ms.min(1_000);
    // Each record carries a `traceparent`, as the collector writes it for a request that
    // sent none (a trace it does not sample): the worker reads it from every record.
    let traceparent = TraceParent::random().child().header();
    let produce_secs = raw_produce(&producer, topic, &encoded, Some(&traceparent)).await?;
    let bytes: usize = encoded.iter().map(|(_, payload)| payload.len()).sum();
    drop(encoded);
    println!(
        "bench worker: {count} events ({:.0} B/event Avro, each with the collector's unsampled traceparent header) on 6 partitions; pipeline {} ({} aggregates); worker batches of {batch_max_events}",
        bytes as f64 / count as f64,
        pipeline_path.display(),
        pipeline.aggregates.len()
    );
    println!(
        "  produce (pre-encoded, raw rdkafka): {:.0} events/s",
        count as f64 / produce_secs
    );
    println!(
        "  consumer groups: session.timeout.ms {}, heartbeat.interval.ms {}",
        kafka.session_timeout_ms, kafka.heartbeat_interval_ms
    );
    println!("  group joins excluded: rates run from the first partition assignment (A) or from the first record seen (F) to the last record");
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        if rounds > 1 {
            println!("  round {round} of {rounds}:");
        }
        ratios.push(
            worker_round(
                &kafka,
                &pipeline,
                &bench,
                round,
                registry_url,
                topic,
                folder,
            )
            .await?,
        );
    }
    if rounds > 1 {
        let list = |values: &[f64]| {
            values
                .iter()
                .map(|v| format!("{v:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let assigned: Vec<f64> = ratios.iter().map(|r| r.assigned).collect();
        let first: Vec<f64> = ratios.iter().map(|r| r.first).collect();
        println!(
            "  worker / raw, median of {rounds} rounds: A {:.3}   F {:.3}   (goal ≥ 0.5; rounds: A {}, F {})",
            median(&assigned),
            median(&first),
            list(&assigned),
            list(&first)
        );
    }
    Ok(())
}

/// The middle value (the mean of the two middle ones for an even count); `NaN` for none.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 0 => (sorted[middle - 1] + sorted[middle]) / 2.0,
        _ => sorted[middle],
    }
}

/// Measures round `round` of `bench`: a fresh worker (a new group, a new store in `folder`,
/// removed afterwards) between two raw consumers of `topic`, and prints the figures.
async fn worker_round(
    kafka: &crate::kafka::KafkaConfig,
    pipeline: &crate::pipeline::Pipeline,
    bench: &WorkerBench<'_>,
    round: u32,
    registry_url: &str,
    topic: &str,
    folder: &Path,
) -> anyhow::Result<RoundRatios> {
    let WorkerBench {
        count,
        batch_max_events,
        ..
    } = *bench;
    let pipeline_file = folder.join(PIPELINE_FILE);
    let store_file = folder.join(format!("store-{round}.db"));
    let store = SqliteStore::open(&store_file)?;
    // Raw: a plain consumer group member counting records, before and after the worker.
    let raw_first = raw_consume(kafka, topic, count).await?;

    // Worker: decode + every aggregate + store commit, until the store accounts for all.
    let readiness = Readiness::default();
    let cpu_before = process_cpu_secs();
    let built_at = Instant::now();
    let worker = Worker::build_reporting(
        kafka,
        WorkerConfig {
            topic: topic.to_owned(),
            group_id: format!("{topic}-group-{round}"),
            dead_letter_topic: format!("{topic}-dead-letter"),
            pipeline: Some(pipeline_file),
            batch_max_events,
            ..WorkerConfig::default()
        },
        RegistryClient::new(registry_url)?,
        Arc::new(store.clone()),
        readiness.clone(),
    )
    .await?;
    let build_secs = built_at.elapsed().as_secs_f64();
    let token = CancellationToken::new();
    let running = tokio::spawn(worker.run(token.clone()));
    let mut assigned: Option<f64> = None;
    let mut first: Option<(f64, u64)> = None;
    let deadline = Duration::from_secs(120 + count as u64 / 1_000);
    let done = loop {
        let elapsed = built_at.elapsed();
        if assigned.is_none() && readiness.report().1.get("partitions_assigned") == Some(&true) {
            assigned = Some(elapsed.as_secs_f64());
        }
        let read: u64 = store
            .partitions()
            .await?
            .iter()
            .filter(|p| p.topic == topic)
            .map(|p| p.read)
            .sum();
        if read > 0 && first.is_none() {
            first = Some((elapsed.as_secs_f64(), read));
        }
        if read >= count as u64 {
            break elapsed.as_secs_f64();
        }
        if elapsed > deadline || running.is_finished() {
            token.cancel();
            anyhow::bail!(
                "the worker accounted for {read} of {count} records in {:.1} s",
                elapsed.as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    token.cancel();
    running.await?;
    let worker_cpu = cpu_since(cpu_before);
    let raw_second = raw_consume(kafka, topic, count).await?;

    // Accounting and the aggregate partials written.
    let statuses: Vec<_> = store
        .partitions()
        .await?
        .into_iter()
        .filter(|p| p.topic == topic)
        .collect();
    let sum = |f: fn(&crate::store::PartitionStatus) -> u64| statuses.iter().map(f).sum::<u64>();
    let (read, folded, duplicates, dead_lettered, late) = (
        sum(|p| p.read),
        sum(|p| p.folded),
        sum(|p| p.duplicates),
        sum(|p| p.dead_lettered),
        sum(|p| p.late),
    );
    let partials = count_partials(&store_file, &pipeline.name)?;
    // The round's database and its log: each round writes a store of its own.
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = store_file.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }

    let (first_secs, first_read) = first.unwrap_or((done, 0));
    let worker_rate = (count as u64 - first_read) as f64 / (done - first_secs).max(1e-9);
    let assigned_secs = assigned.unwrap_or(first_secs);
    let worker_rate_assigned = count as f64 / (done - assigned_secs).max(1e-9);
    let best = |f: fn(&RawConsume) -> f64| f(&raw_first).max(f(&raw_second));
    let (raw_rate, raw_rate_assigned) = (
        best(RawConsume::rate),
        best(RawConsume::rate_from_assignment),
    );
    println!(
        "  raw rdkafka consume (count only), best of 2 runs: A {raw_rate_assigned:>9.0} events/s   F {raw_rate:>9.0} events/s   (runs: A {:.0} / {:.0}, F {:.0} / {:.0}; joins {:.1} s / {:.1} s)",
        raw_first.rate_from_assignment(),
        raw_second.rate_from_assignment(),
        raw_first.rate(),
        raw_second.rate(),
        raw_first.join_secs,
        raw_second.join_secs
    );
    println!(
        "  worker (decode + aggregates + store commit):    A {worker_rate_assigned:>9.0} events/s   F {worker_rate:>9.0} events/s   (F = from the first commit seen, {first_read} records in; store polled every 20 ms)"
    );
    println!(
        "  worker timeline from build: built {build_secs:.2} s, first assignment {}, first commit {first_secs:.2} s, all {count} accounted {done:.2} s",
        assigned.map_or("not seen".to_owned(), |a| format!("{a:.2} s"))
    );
    println!(
        "  worker / raw: A {:.3}   F {:.3}   (goal ≥ 0.5)",
        worker_rate_assigned / raw_rate_assigned,
        worker_rate / raw_rate
    );
    let per_event = |secs: Option<f64>| secs.map(|s| s * 1e9 / count as f64);
    let raw_cpu = [raw_first, raw_second]
        .iter()
        .filter_map(|run| per_event(run.cpu_secs))
        .reduce(f64::min);
    match (raw_cpu, per_event(worker_cpu)) {
        (Some(raw), Some(worker)) => println!(
            "  CPU of this process per event (user + system; the broker's not included): raw {raw:.0} ns (the lesser run), worker {worker:.0} ns (build to stop); raw / worker {:.3}",
            raw / worker
        ),
        _ => println!("  CPU per event: not measured (no /proc/self/stat)"),
    }
    let rows: u64 = partials.iter().map(|(_, rows, _)| rows).sum();
    let state_bytes: u64 = partials.iter().map(|(_, _, bytes)| bytes).sum();
    println!(
        "  store: read {read}, folded {folded}, duplicates {duplicates}, dead-lettered {dead_lettered}, late {late}; {rows} aggregate partial rows, {:.1} MB of state",
        state_bytes as f64 / 1e6
    );
    for (aggregate, rows, bytes) in &partials {
        println!(
            "    {aggregate:<28} {rows:>6} rows {:>9.0} B/row",
            *bytes as f64 / (*rows).max(1) as f64
        );
    }
    Ok(RoundRatios {
        assigned: worker_rate_assigned / raw_rate_assigned,
        first: worker_rate / raw_rate,
    })
}

/// Points a pipeline's `source.topic` and `late_topic` at the bench's own topics.
pub(super) fn retarget_pipeline(
    text: &str,
    topic: &str,
    late_topic: &str,
) -> anyhow::Result<String> {
    let mut value: yaml_serde::Value = yaml_serde::from_str(text)?;
    let root = value
        .as_mapping_mut()
        .context("the pipeline file is not a mapping")?;
    root.insert("late_topic".into(), late_topic.into());
    root.get_mut("source")
        .and_then(|source| source.as_mapping_mut())
        .context("the pipeline file has no `source` mapping")?
        .insert("topic".into(), topic.into());
    Ok(yaml_serde::to_string(&value)?)
}

/// Per aggregate: rows of `aggregate_partials` (one per window, group and partition) and
/// the bytes of their stored state.
fn count_partials(store: &Path, pipeline: &str) -> anyhow::Result<Vec<(String, u64, u64)>> {
    let connection = rusqlite::Connection::open(store)?;
    let mut statement = connection.prepare(
        "SELECT aggregate, COUNT(*), SUM(LENGTH(state)) FROM aggregate_partials
         WHERE pipeline = ?1 GROUP BY aggregate ORDER BY aggregate",
    )?;
    let rows = statement.query_map([pipeline], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)? as u64,
            row.get::<_, i64>(2)? as u64,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One raw consume: the group join, then the records from assignment and from the first record.
#[derive(Debug, Clone, Copy)]
struct RawConsume {
    records: usize,
    /// Subscribe to first assignment.
    join_secs: f64,
    /// First assignment to the last record.
    assigned_secs: f64,
    /// First record to the last record.
    read_secs: f64,
    /// CPU time this process spent on it (user + system), when the platform tells.
    cpu_secs: Option<f64>,
}

impl RawConsume {
    /// Records after the first, per second from the first to the last.
    fn rate(&self) -> f64 {
        (self.records.saturating_sub(1)) as f64 / self.read_secs.max(1e-9)
    }

    /// Records per second from the first assignment to the last record.
    fn rate_from_assignment(&self) -> f64 {
        self.records as f64 / self.assigned_secs.max(1e-9)
    }
}

/// Notes when the raw consumer first got partitions.
#[derive(Default)]
struct AssignedAt(std::sync::Mutex<Option<Instant>>);

impl ClientContext for AssignedAt {}

impl ConsumerContext for AssignedAt {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            if partitions.count() > 0 {
                self.0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert_with(Instant::now);
            }
        }
    }
}

/// Reads `topic` with a fresh consumer group until `count` records were seen.
async fn raw_consume(
    kafka: &crate::kafka::KafkaConfig,
    topic: &str,
    count: usize,
) -> anyhow::Result<RawConsume> {
    let group = format!("bench-raw-{}", Uuid::new_v4().simple());
    let cpu_before = process_cpu_secs();
    let consumer: StreamConsumer<AssignedAt> = kafka
        .consumer(&group)
        .create_with_context(AssignedAt::default())?;
    consumer.subscribe(&[topic])?;
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let mut records = 0usize;
    let mut bytes = 0usize;
    while records < count {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .with_context(|| format!("no record for 60 s after {records} of {count}"))??;
        first.get_or_insert_with(Instant::now);
        bytes += message.payload().map_or(0, <[u8]>::len);
        records += 1;
    }
    let last = Instant::now();
    std::hint::black_box(bytes);
    let first = first.unwrap_or(last);
    let assigned = consumer
        .context()
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(first)
        .min(first);
    consumer.unsubscribe();
    drop(consumer);
    Ok(RawConsume {
        records,
        join_secs: (assigned - started).as_secs_f64(),
        assigned_secs: (last - assigned).as_secs_f64(),
        read_secs: (last - first).as_secs_f64(),
        cpu_secs: cpu_since(cpu_before),
    })
}

/// This process's CPU time so far (user + system, every thread, living or ended), in
/// seconds: fields 14 and 15 of `/proc/self/stat`, in Linux's fixed 100 ticks per second.
/// `None` where there is no such file.
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// CPU seconds since `before` (from [`process_cpu_secs`]).
fn cpu_since(before: Option<f64>) -> Option<f64> {
    Some(process_cpu_secs()? - before?)
}

/// Messages the raw produce keeps awaiting at once.
const RAW_IN_FLIGHT: usize = 10_000;

/// Produces pre-encoded records and waits for every ack; returns the seconds taken.
pub(super) async fn raw_produce(
    producer: &FutureProducer,
    topic: &str,
    records: &[(String, Vec<u8>)],
    traceparent: Option<&str>,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut acks = futures::stream::iter(records.iter().map(|(key, payload)| {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        let record = match traceparent {
            Some(value) => record.headers(OwnedHeaders::new().insert(Header {
                key: TRACEPARENT,
                value: Some(value),
            })),
            None => record,
        };
        producer.send(record, Duration::from_secs(30))
    }))
    .buffer_unordered(RAW_IN_FLIGHT);
    while let Some(result) = acks.next().await {
        result.map_err(|(e, _)| e)?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// One request body of the ingest bench and the events it holds.
struct Batch {
    events: usize,
    body: axum::body::Bytes,
}

/// The part of the collector's answer the bench checks.
#[derive(serde::Deserialize)]
struct CollectorAnswer {
    accepted: usize,
}

/// Posts every batch to the collector, `concurrency` at a time, and checks that each answer
/// accepted all of its events; returns the seconds taken.
async fn post_all(
    client: &reqwest::Client,
    url: &str,
    batches: &[Batch],
    concurrency: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut answers = futures::stream::iter(batches.iter().map(|batch| async move {
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .body(batch.body.clone())
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        anyhow::ensure!(status.is_success(), "the collector answered {status}");
        let answer: CollectorAnswer = serde_json::from_slice(&body)?;
        anyhow::ensure!(
            answer.accepted == batch.events,
            "the collector accepted {} of {} events",
            answer.accepted,
            batch.events
        );
        Ok(())
    }))
    .buffer_unordered(concurrency.max(1));
    while let Some(answer) = answers.next().await {
        answer?;
    }
    Ok(started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn the_median_of_rounds_is_the_middle_one_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&[0.537, 0.444, 0.481]), 0.481);
        assert_eq!(median(&[0.5, 0.3, 0.4, 0.2]), 0.35);
        assert_eq!(median(&[0.42]), 0.42);
        assert!(median(&[]).is_nan());
    }

    fn rounds(args: &[&str]) -> Result<u32, clap::error::ErrorKind> {
        let cli =
            crate::cli::Cli::try_parse_from(["eventfold", "bench", "worker"].iter().chain(args))
                .map_err(|e| e.kind())?;
        match cli.command {
            crate::cli::Command::Bench {
                what: BenchWhat::Worker { rounds, .. },
            } => Ok(rounds),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn bench_worker_measures_one_round_unless_asked_for_one_to_twenty() {
        assert_eq!(rounds(&[]), Ok(1));
        assert_eq!(rounds(&["--rounds", "5"]), Ok(5));
        assert_eq!(rounds(&["--rounds", "20"]), Ok(20));
        assert_eq!(
            rounds(&["--rounds", "0"]),
            Err(clap::error::ErrorKind::ValueValidation)
        );
        assert_eq!(
            rounds(&["--rounds", "21"]),
            Err(clap::error::ErrorKind::ValueValidation)
        );
    }
}
