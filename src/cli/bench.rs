//! `eventfold bench`: throughput measured side by side in one run, against the configured
//! broker, so the figures are ratios that a noisy machine does not distort.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::ingest::{router, CollectorConfig, CollectorState, EventGenerator, EventProducer};
use crate::kafka::{ensure_topic, TopicSpec};
use crate::registry::{InteractionEncoder, RegistryConfig, SchemaLog};
use crate::settings::Settings;

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
        /// HTTP requests in flight.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
}

/// Runs a benchmark and prints its figures.
pub async fn run(settings: &Settings, what: &BenchWhat) -> anyhow::Result<()> {
    match what {
        BenchWhat::Ingest {
            events,
            batch,
            concurrency,
        } => ingest(settings, *events, *batch, *concurrency).await,
    }
}

async fn ingest(
    settings: &Settings,
    count: usize,
    batch: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let run_id = Uuid::new_v4().simple().to_string();
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
        stop.clone(),
    ));

    let raw_topic = format!("bench-raw-{run_id}");
    let collector_topic = format!("bench-collector-{run_id}");
    for topic in [&raw_topic, &collector_topic] {
        ensure_topic(
            &settings.kafka,
            &TopicSpec {
                name: topic,
                partitions: 6,
                replication: 1,
                configs: &[],
            },
        )
        .await?;
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
    raw_produce(&producer, &raw_topic, &encoded[..count.min(2_000)]).await?;
    let raw_first = raw_produce(&producer, &raw_topic, &encoded).await?;

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
        router(CollectorState::new(event_producer, collector_config)),
        stop.clone(),
    ));
    let bodies: Vec<Vec<u8>> = events
        .chunks(batch.max(1))
        .map(serde_json::to_vec)
        .collect::<Result<_, _>>()?;
    let client = reqwest::Client::new();
    post_all(&client, &url, &bodies[..bodies.len().min(20)], concurrency).await?;
    let collector_secs = post_all(&client, &url, &bodies, concurrency).await?;
    let raw_second = raw_produce(&producer, &raw_topic, &encoded).await?;
    stop.cancel();

    // The faster of the two raw runs (before and after the collector run): the conservative ratio.
    let raw_secs = raw_first.min(raw_second);
    let raw_rate = count as f64 / raw_secs;
    let collector_rate = count as f64 / collector_secs;
    println!("bench ingest: {count} events, batches of {batch}, {concurrency} requests in flight");
    println!(
        "  raw rdkafka produce (pre-encoded): {raw_rate:>10.0} events/s (best of {:.0} and {:.0})",
        count as f64 / raw_first,
        count as f64 / raw_second
    );
    println!("  collector (HTTP JSON → Avro → Kafka acks): {collector_rate:>10.0} events/s");
    println!("  collector / raw: {:.2}", collector_rate / raw_rate);
    Ok(())
}

/// Produces pre-encoded records and waits for every ack; returns the seconds taken.
async fn raw_produce(
    producer: &FutureProducer,
    topic: &str,
    records: &[(String, Vec<u8>)],
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut acks = futures::stream::iter(records.iter().map(|(key, payload)| {
        producer.send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(30),
        )
    }))
    .buffer_unordered(10_000);
    while let Some(result) = acks.next().await {
        result.map_err(|(e, _)| e)?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Posts every body to the collector, `concurrency` at a time; returns the seconds taken.
async fn post_all(
    client: &reqwest::Client,
    url: &str,
    bodies: &[Vec<u8>],
    concurrency: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut responses = futures::stream::iter(bodies.iter().map(|body| {
        client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    }))
    .buffer_unordered(concurrency.max(1));
    while let Some(response) = responses.next().await {
        let response = response?;
        anyhow::ensure!(
            response.status().is_success(),
            "the collector answered {}",
            response.status()
        );
    }
    Ok(started.elapsed().as_secs_f64())
}
