//! `eventfold loadgen`: sends a realistic workload through the collector (HTTP) or straight
//! to Kafka, at a target rate or as fast as possible, shows progress, and writes the ground
//! truth of what it sent.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;

use crate::contracts::Interaction;
use crate::ingest::{EventProducer, GroundTruth, Workload, WorkloadConfig};
use crate::settings::Settings;

/// Where loadgen sends events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Through the collector's `POST /v1/events`, in batches.
    Http,
    /// Straight to Kafka with the in-process producer.
    Kafka,
}

/// Options of `eventfold loadgen`.
#[derive(Debug, clap::Args)]
pub struct LoadgenArgs {
    /// Events to send (duplicates included).
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,
    /// Distinct users.
    #[arg(long, default_value_t = 1000)]
    pub users: u32,
    /// Distinct items (Zipf popularity).
    #[arg(long, default_value_t = 500)]
    pub items: u32,
    /// Seed: the same seed sends the same events.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fraction of events sent slightly out of order (within the watermark delay).
    #[arg(long, default_value_t = 0.05)]
    pub out_of_order: f64,
    /// Fraction of events sent late (far behind the clock).
    #[arg(long, default_value_t = 0.01)]
    pub late: f64,
    /// Fraction of events sent twice with the same event_id.
    #[arg(long, default_value_t = 0.01)]
    pub duplicates: f64,
    /// How far behind a late event is, in ms.
    #[arg(long, default_value_t = 300_000)]
    pub late_by_ms: i64,
    /// Target events per second (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Where to send.
    #[arg(long, value_enum, default_value_t = Target::Http)]
    pub target: Target,
    /// The collector's base URL (for `--target http`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub collector: String,
    /// Events per HTTP request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Requests (or produce batches) in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Window size of the ground truth, in ms.
    #[arg(long, default_value_t = 60_000)]
    pub window_ms: i64,
    /// Write the ground truth here (JSON).
    #[arg(long)]
    pub truth: Option<PathBuf>,
}

/// Runs loadgen; returns the ground truth it wrote.
pub async fn run(settings: &Settings, args: &LoadgenArgs) -> anyhow::Result<GroundTruth> {
    let mean_gap_ms = 10;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let config = WorkloadConfig {
        seed: args.seed,
        users: args.users,
        items: args.items,
        start_ms: now - (args.events as i64).saturating_mul(mean_gap_ms),
        mean_gap_ms,
        out_of_order_fraction: args.out_of_order,
        late_fraction: args.late,
        late_by_ms: args.late_by_ms,
        duplicate_fraction: args.duplicates,
        ..WorkloadConfig::default()
    };
    let mut truth = GroundTruth::new(args.window_ms);
    let mut batches: Vec<Vec<Interaction>> = Vec::new();
    for (planned, event) in Workload::new(config).take(args.events as usize) {
        truth.record(planned, &event);
        match batches.last_mut() {
            Some(batch) if batch.len() < args.batch.max(1) => batch.push(event),
            _ => batches.push(vec![event]),
        }
    }
    let sent = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let progress = tokio::spawn({
        let (sent, retries, total) = (sent.clone(), retries.clone(), args.events);
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let done = sent.load(Ordering::Relaxed);
                eprintln!(
                    "loadgen: {done}/{total} events, {:.0} events/s, {} retries",
                    done as f64 / started.elapsed().as_secs_f64(),
                    retries.load(Ordering::Relaxed)
                );
            }
        }
    });
    let sender = Sender::new(settings, args)?;
    let pace = (args.rate > 0)
        .then(|| Duration::from_secs_f64(args.batch.max(1) as f64 / args.rate as f64));
    let mut ticker = pace.map(tokio::time::interval);
    let mut in_flight = futures::stream::FuturesUnordered::new();
    for batch in batches {
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        while in_flight.len() >= args.concurrency.max(1) {
            if let Some(result) = in_flight.next().await {
                result?;
            }
        }
        let (sender, sent, retries) = (&sender, sent.clone(), retries.clone());
        in_flight.push(async move {
            sender.send(&batch, &retries).await?;
            sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
            anyhow::Ok(())
        });
    }
    while let Some(result) = in_flight.next().await {
        result?;
    }
    progress.abort();
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "loadgen: sent {} events ({} distinct, {} duplicates, {} late, {} out of order) in {elapsed:.1} s: {:.0} events/s",
        truth.events_sent,
        truth.distinct_events,
        truth.duplicates,
        truth.late_events,
        truth.out_of_order_events,
        truth.events_sent as f64 / elapsed
    );
    if let Some(path) = &args.truth {
        std::fs::write(path, serde_json::to_vec_pretty(&truth)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("loadgen: ground truth written to {}", path.display());
    }
    Ok(truth)
}

enum Sender {
    Http {
        client: reqwest::Client,
        url: String,
    },
    Kafka(Box<EventProducer>),
}

impl Sender {
    fn new(settings: &Settings, args: &LoadgenArgs) -> anyhow::Result<Sender> {
        Ok(match args.target {
            Target::Http => Sender::Http {
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()?,
                url: format!("{}/v1/events", args.collector.trim_end_matches('/')),
            },
            Target::Kafka => Sender::Kafka(Box::new(EventProducer::new(
                &settings.kafka,
                settings.registry.endpoint()?,
                &settings.collector.topic,
            )?)),
        })
    }

    /// Sends a batch until it is acknowledged, retrying on 429/503 (a retried batch may
    /// land twice; workers count each event_id once).
    async fn send(&self, batch: &[Interaction], retries: &AtomicU64) -> anyhow::Result<()> {
        match self {
            Sender::Kafka(producer) => {
                for event in batch {
                    loop {
                        match producer.send(event).await {
                            Ok(_) => break,
                            Err(error) if error.is_transient() => {
                                retries.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                            Err(error) => return Err(error.into()),
                        }
                    }
                }
                Ok(())
            }
            Sender::Http { client, url } => {
                let body = serde_json::to_vec(batch)?;
                for attempt in 0..60 {
                    let response = client
                        .post(url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    let status = match response {
                        Ok(response) if response.status().is_success() => return Ok(()),
                        Ok(response) if matches!(response.status().as_u16(), 429 | 503) => {
                            response.status()
                        }
                        Ok(response) => {
                            let status = response.status();
                            let text = response.text().await.unwrap_or_default();
                            anyhow::bail!("the collector refused a batch: {status} {text}");
                        }
                        Err(error) if attempt < 59 => {
                            tracing::warn!(%error, "Collector unreachable; retrying.");
                            reqwest::StatusCode::SERVICE_UNAVAILABLE
                        }
                        Err(error) => return Err(error.into()),
                    };
                    tracing::debug!(%status, "Collector asked to retry.");
                    retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                anyhow::bail!("the collector did not accept a batch after 60 attempts")
            }
        }
    }
}
