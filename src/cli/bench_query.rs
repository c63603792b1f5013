//! `eventfold bench query`: the query API's read latency at a fixed request rate over a
//! store a worker filled with a realistic workload — open loop, each latency measured from
//! the request's scheduled send time, next to a static route as the HTTP floor — and
//! end-to-end freshness: under a steady event rate through the collector, the time from
//! each batch's ack to the query API showing the offsets of the batch's consistency token
//! folded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::producer::FutureProducer;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::bench::{bench_topic, raw_produce, retarget_pipeline, start_registry, PIPELINE_FILE};
use crate::ingest::{
    router as collector, CollectorConfig, CollectorState, ConsistencyToken, EventGenerator,
    EventProducer, Workload, WorkloadConfig,
};
use crate::kafka::KafkaConfig;
use crate::pipeline::{load_pipeline, Pipeline};
use crate::query::{router as query, QueryState};
use crate::registry::{InteractionEncoder, RegistryClient};
use crate::settings::Settings;
use crate::store::{FollowingStore, SqliteStore};
use crate::worker::{Worker, WorkerConfig};

/// Options of `eventfold bench query`.
#[derive(Debug, clap::Args)]
pub struct QueryBenchArgs {
    /// Events folded into the store before the reads.
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Aggregate reads per second (open loop).
    #[arg(long, default_value_t = 1_000)]
    pub rate: u32,
    /// Seconds of reads, and seconds of the steady event stream.
    #[arg(long, default_value_t = 10)]
    pub seconds: u32,
    /// Events per second through the collector while freshness is measured.
    #[arg(long, default_value_t = 10_000)]
    pub events_per_second: u32,
    /// Events per collector request.
    #[arg(long, default_value_t = 100)]
    pub batch: u32,
    /// The pipeline whose aggregates are folded and read (its topics are replaced by the
    /// bench's own).
    #[arg(long, default_value = "pipelines/interactions.yaml")]
    pub pipeline: PathBuf,
}

/// Runs both measurements and prints their figures.
pub async fn run(settings: &Settings, args: &QueryBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    anyhow::ensure!(
        args.rate > 0 && args.seconds > 0,
        "--rate and --seconds must be at least 1"
    );
    anyhow::ensure!(
        args.batch > 0 && args.events_per_second >= args.batch,
        "--batch must be at least 1 and at most --events-per-second"
    );
    let stop = CancellationToken::new();
    let run_id = Uuid::new_v4().simple().to_string();
    let folder = std::env::temp_dir().join(format!("eventfold-bench-query-{run_id}"));
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let result = run_in(settings, args, &run_id, &folder, &stop).await;
    stop.cancel();
    let _ = std::fs::remove_dir_all(&folder);
    result
}

async fn run_in(
    settings: &Settings,
    args: &QueryBenchArgs,
    run_id: &str,
    folder: &Path,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let registry_url = start_registry(settings, run_id, stop).await?;
    let topic = format!("bench-query-{run_id}");
    bench_topic(settings, &topic).await?;
    let pipeline_file = folder.join(PIPELINE_FILE);
    let text = std::fs::read_to_string(&args.pipeline)
        .with_context(|| format!("cannot read {}", args.pipeline.display()))?;
    std::fs::write(
        &pipeline_file,
        retarget_pipeline(&text, &topic, &format!("{topic}-late"))?,
    )?;
    let pipeline = load_pipeline(&pipeline_file)?;
    let store_file = folder.join("store.db");
    let store = SqliteStore::open(&store_file)?;

    // A worker folds the topic for the whole run (a throwaway group: short timeouts).
    let mut kafka = settings.kafka.clone();
    kafka.session_timeout_ms = kafka.session_timeout_ms.min(6_000);
    kafka.heartbeat_interval_ms = kafka.heartbeat_interval_ms.min(1_000);
    let worker_config = WorkerConfig {
        topic: topic.clone(),
        group_id: format!("{topic}-group"),
        dead_letter_topic: format!("{topic}-dead-letter"),
        pipeline: Some(pipeline_file),
        ..WorkerConfig::default()
    };
    let linger_ms = worker_config.batch_linger_ms;
    let worker = Worker::build(
        &kafka,
        worker_config,
        RegistryClient::new(&registry_url)?,
        Arc::new(store.clone()),
    )
    .await?;
    tokio::spawn(worker.run(stop.clone()));

    let fill_secs = fill(&kafka, &registry_url, &topic, &store, args.events).await?;
    let query_url = serve(
        query(
            QueryState::new(
                Arc::new(FollowingStore::open(&store_file)?),
                vec![pipeline.clone()],
                Duration::from_secs(5),
            )
            .with_shutdown(stop.clone()),
        ),
        stop,
    )
    .await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1_024)
        .tcp_nodelay(true)
        .build()?;

    // Reads: the static stylesheet (the HTTP floor), then every aggregate of the pipeline
    // in turn over the last 65 minutes (what the dashboard asks for).
    let floor = vec![format!("{query_url}/dashboard.css")];
    let from = crate::clock::now_ms() - 65 * 60_000;
    let aggregate_urls: Vec<String> = pipeline
        .aggregates
        .iter()
        .map(|a| {
            format!(
                "{query_url}/v1/pipelines/{}/aggregates/{}?from={from}",
                pipeline.name, a.name
            )
        })
        .collect();
    let mut service = Vec::with_capacity(aggregate_urls.len());
    for (aggregate, url) in pipeline.aggregates.iter().zip(&aggregate_urls) {
        service.push((aggregate.name.clone(), service_time(&client, url).await?));
    }
    let floor_latency = open_loop_reads(&client, &floor, args.rate, args.seconds).await?;
    let read_latency = open_loop_reads(&client, &aggregate_urls, args.rate, args.seconds).await?;

    let events_url = serve(
        collector(CollectorState::new(
            EventProducer::new(&settings.kafka, &registry_url, &topic)?,
            CollectorConfig {
                topic: topic.clone(),
                ..CollectorConfig::default()
            },
        )?),
        stop,
    )
    .await?
        + "/v1/events";
    let fresh = freshness(&client, &events_url, &query_url, args).await?;

    print_report(
        args,
        &pipeline,
        fill_secs,
        linger_ms,
        &Reads {
            floor: floor_latency,
            aggregates: read_latency,
            service,
        },
        &fresh,
    );
    Ok(())
}

/// Produces `count` workload events (sessions, Zipf items, funnels; in order, no late or
/// duplicate events) ending now, and waits until the worker accounted for all; the seconds
/// from the first produce to the last record folded.
async fn fill(
    kafka: &KafkaConfig,
    registry_url: &str,
    topic: &str,
    store: &SqliteStore,
    count: usize,
) -> anyhow::Result<f64> {
    let workload = Workload::new(WorkloadConfig {
        seed: 42,
        start_ms: crate::clock::now_ms() - count as i64 * 10,
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
    let producer: FutureProducer = kafka.producer().create()?;
    let started = Instant::now();
    raw_produce(&producer, topic, &encoded, None).await?;
    let deadline = Duration::from_secs(120 + count as u64 / 1_000);
    loop {
        let read: u64 = store.partitions().await?.iter().map(|p| p.read).sum();
        if read >= count as u64 {
            return Ok(started.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            started.elapsed() < deadline,
            "the worker accounted for {read} of {count} records in {:.0} s",
            deadline.as_secs_f64()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Serves `router` on a loopback port until `stop`; its base URL.
async fn serve(router: axum::Router, stop: &CancellationToken) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(crate::http::serve(listener, router, None, stop.clone()));
    Ok(url)
}

/// `GET`s the URLs in turn at `rate` per second for `seconds`, each at its scheduled time
/// whatever the previous answers did (open loop); each latency runs from the scheduled
/// send time to the last byte of the answer, so a stall counts for every request it delays.
async fn open_loop_reads(
    client: &reqwest::Client,
    urls: &[String],
    rate: u32,
    seconds: u32,
) -> anyhow::Result<Vec<Duration>> {
    let total = rate * seconds;
    let period = Duration::from_secs(1) / rate;
    let start = Instant::now() + Duration::from_millis(20);
    let mut requests = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + period * i;
        tokio::time::sleep_until(scheduled).await;
        let client = client.clone();
        let url = urls[i as usize % urls.len()].clone();
        requests.push(tokio::spawn(async move {
            let response = client.get(&url).send().await?;
            let status = response.status();
            response.bytes().await?;
            anyhow::ensure!(status.is_success(), "{url} answered {status}");
            Ok(scheduled.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(requests.len());
    for request in requests {
        latencies.push(request.await??);
    }
    latencies.sort_unstable();
    Ok(latencies)
}

/// One request at a time, 20 times (after 2 unrecorded): the sorted latencies.
async fn service_time(client: &reqwest::Client, url: &str) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(20);
    for i in 0..22 {
        let started = Instant::now();
        let response = client.get(url).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        anyhow::ensure!(status.is_success(), "{url} answered {status}");
        std::hint::black_box(body);
        if i >= 2 {
            latencies.push(started.elapsed());
        }
    }
    latencies.sort_unstable();
    Ok(latencies)
}

/// What the reads measured (sorted latencies).
struct Reads {
    /// The static stylesheet, open loop.
    floor: Vec<Duration>,
    /// Every aggregate in turn, open loop.
    aggregates: Vec<Duration>,
    /// Per aggregate, one request at a time.
    service: Vec<(String, Vec<Duration>)>,
}

/// What the steady stream measured.
struct Freshness {
    /// Scheduled send → the collector's answer (all events acked), per request.
    acks: Vec<Duration>,
    /// The collector's answer → the first read with its token that saw the events.
    visible: Vec<Duration>,
    /// Requests whose events were not visible 10 s after the last ack.
    not_visible: usize,
    /// Events acked per second over the run.
    acked_rate: f64,
}

/// Posts `--batch` events at a time through the collector, `--events-per-second` in all,
/// for `--seconds`. One watcher reads `/v1/freshness` every 5 ms and notes, for each
/// answer's consistency token, when the query API first shows its offsets folded (one
/// light reader, so the measurement does not slow the worker it measures).
async fn freshness(
    client: &reqwest::Client,
    events_url: &str,
    query_url: &str,
    args: &QueryBenchArgs,
) -> anyhow::Result<Freshness> {
    let per_second = args.events_per_second / args.batch;
    let total = per_second * args.seconds;
    let period = Duration::from_secs(1) / per_second;
    let (acked_tx, acked_rx) = tokio::sync::mpsc::channel(total as usize);
    let watcher = tokio::spawn(watch_visible(
        client.clone(),
        format!("{query_url}/v1/freshness"),
        acked_rx,
    ));
    let mut generator = EventGenerator::new(7, 10_000, 1_000, crate::clock::now_ms());
    // One batch before the clock starts: the producer's first send waits about a second
    // for its connection and producer id, a start-up cost, not freshness.
    let warm_up: Vec<_> = generator.by_ref().take(args.batch as usize).collect();
    let answer = client
        .post(events_url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&warm_up)?)
        .send()
        .await?;
    anyhow::ensure!(
        answer.status().is_success(),
        "the collector answered the warm-up batch with {}",
        answer.status()
    );
    let start = Instant::now() + Duration::from_millis(20);
    let mut requests = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + period * i;
        tokio::time::sleep_until(scheduled).await;
        let now = crate::clock::now_ms();
        let mut events: Vec<_> = generator.by_ref().take(args.batch as usize).collect();
        for event in &mut events {
            event.occurred_at = now;
        }
        let body = serde_json::to_vec(&events)?;
        let (client, events_url, acked_tx) =
            (client.clone(), events_url.to_owned(), acked_tx.clone());
        requests.push(tokio::spawn(async move {
            let response = client
                .post(&events_url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            let acked = Instant::now();
            anyhow::ensure!(
                response.status().is_success(),
                "the collector answered {}",
                response.status()
            );
            let answer: serde_json::Value = response.json().await?;
            let token = answer["consistency_token"]
                .as_str()
                .context("the collector's answer has no consistency_token")?;
            let token = ConsistencyToken::decode(token)?;
            acked_tx.send((acked, token)).await?;
            Ok((scheduled, acked))
        }));
    }
    drop(acked_tx);
    let mut acks = Vec::with_capacity(requests.len());
    let mut last_ack = start;
    for request in requests {
        let (scheduled, acked) = request.await??;
        last_ack = last_ack.max(acked);
        acks.push(acked - scheduled);
    }
    let (mut visible, not_visible) = watcher.await??;
    let elapsed = (last_ack - start).as_secs_f64().max(1e-9);
    let acked_rate = acks.len() as f64 * args.batch as f64 / elapsed;
    acks.sort_unstable();
    visible.sort_unstable();
    Ok(Freshness {
        acks,
        visible,
        not_visible,
        acked_rate,
    })
}

/// Reads `freshness_url` every 5 ms until every acked token's offsets show as folded (or
/// 10 s after the last ack); the ack → visible times, and how many never showed.
async fn watch_visible(
    client: reqwest::Client,
    freshness_url: String,
    mut acked: tokio::sync::mpsc::Receiver<(Instant, ConsistencyToken)>,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut pending: Vec<(Instant, ConsistencyToken)> = Vec::new();
    let mut visible = Vec::new();
    let mut closed_at: Option<Instant> = None;
    loop {
        loop {
            match acked.try_recv() {
                Ok(entry) => pending.push(entry),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    closed_at.get_or_insert_with(Instant::now);
                    break;
                }
            }
        }
        if closed_at.is_some_and(|at| pending.is_empty() || at.elapsed() > Duration::from_secs(10))
        {
            return Ok((visible, pending.len()));
        }
        let answer: serde_json::Value = client.get(&freshness_url).send().await?.json().await?;
        let seen = Instant::now();
        let folded: Vec<(&str, i64, i64)> = answer["partitions"]
            .as_array()
            .context("/v1/freshness has no partitions")?
            .iter()
            .filter_map(|p| {
                Some((
                    p["topic"].as_str()?,
                    p["partition"].as_i64()?,
                    p["last_offset"].as_i64()?,
                ))
            })
            .collect();
        pending.retain(|(acked_at, token)| {
            let covered = token.offsets.iter().all(|(partition, offset)| {
                folded.iter().any(|(topic, p, last)| {
                    *topic == token.topic && *p == i64::from(*partition) && last >= offset
                })
            });
            if covered {
                visible.push(seen - *acked_at);
            }
            !covered
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The `q` quantile of sorted latencies, in milliseconds.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

fn summary(sorted: &[Duration]) -> String {
    format!(
        "p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms   ({} samples)",
        quantile_ms(sorted, 0.5),
        quantile_ms(sorted, 0.99),
        quantile_ms(sorted, 1.0),
        sorted.len()
    )
}

fn print_report(
    args: &QueryBenchArgs,
    pipeline: &Pipeline,
    fill_secs: f64,
    linger_ms: u64,
    reads: &Reads,
    fresh: &Freshness,
) {
    let Reads {
        floor,
        aggregates,
        service,
    } = reads;
    println!(
        "bench query: store filled by a worker with {} workload events in {fill_secs:.1} s (pipeline {}, {} aggregates, 6 partitions)",
        args.events,
        args.pipeline.display(),
        pipeline.aggregates.len()
    );
    println!(
        "  reads at {}/s for {} s over loopback HTTP, open loop (latency from the scheduled send):",
        args.rate, args.seconds
    );
    println!(
        "    GET /dashboard.css (HTTP floor):            {}",
        summary(floor)
    );
    println!(
        "    GET aggregates (each in turn, last 65 min): {}",
        summary(aggregates)
    );
    println!(
        "    aggregate p99 / floor p99: {:.2}   (goal: aggregate p99 ≤ 5 ms)",
        quantile_ms(aggregates, 0.99) / quantile_ms(floor, 0.99)
    );
    println!("    one request at a time (service time, no queueing), per aggregate:");
    for (aggregate, latencies) in service {
        println!("      {aggregate:<28} {}", summary(latencies));
    }
    println!(
        "  freshness at {} events/s through the collector ({} per request) for {} s; worker batch linger {linger_ms} ms:",
        args.events_per_second, args.batch, args.seconds
    );
    println!(
        "    collector ack (scheduled send → answer): {}",
        summary(&fresh.acks)
    );
    println!(
        "    ack → token's offsets shown by /v1/freshness (read every 5 ms): {}   (goal: p99 ≤ 250 ms)",
        summary(&fresh.visible)
    );
    println!(
        "    acked {:.0} events/s; {} request(s) not visible 10 s after the last ack",
        fresh.acked_rate, fresh.not_visible
    );
}
