//! What each subcommand does.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Cli, Command, ProduceArgs, QueryWhat, SchemaWhat};
use crate::contracts::InteractionVersion;
use crate::ingest::{EventGenerator, EventProducer};
use crate::kafka::{ensure_topic, TopicSpec};
use crate::registry::{RegistryClient, SchemaLog};
use crate::settings::Settings;
use crate::telemetry::Readiness;
use crate::worker::{FoldStore, Worker};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    crate::telemetry::init_logging(settings.log.format, &settings.log.filter);
    let shutdown = crate::shutdown::on_signal();
    match cli.command {
        Command::Registry => run_registry(&settings, shutdown).await,
        Command::Collect => run_collector(&settings, shutdown).await,
        Command::Schema {
            what: SchemaWhat::Register { topic },
        } => register_contracts(&settings, &topic).await,
        Command::Schema {
            what: SchemaWhat::Check { schema, pipelines },
        } => check_schema(&schema, &pipelines),
        Command::Pipeline { dir } => check_pipelines(&dir),
        Command::Produce(args) => produce(&settings, &args).await,
        Command::Loadgen(args) => super::loadgen::run(&settings, &args).await.map(|_| ()),
        Command::Replay(args) => {
            let report = super::replay::run(&settings, &args, shutdown).await?;
            println!(
                "replayed {} records; {} now points at {}",
                report.records,
                settings.store.path.display(),
                args.into.display()
            );
            Ok(())
        }
        Command::Work => run_worker(&settings, shutdown).await,
        Command::Serve => run_query(&settings, shutdown).await,
        Command::Query { what } => query(&settings, what).await,
        Command::Demo(args) => super::demo::run(&settings, &args, shutdown).await,
        Command::Bench { what } => super::bench::run(&settings, &what).await,
        Command::Config => {
            print!("{}", settings.to_masked_toml()?);
            Ok(())
        }
        Command::HashSecret => {
            let mut secret = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut secret)?;
            let secret = secret
                .strip_suffix('\n')
                .map(|s| s.strip_suffix('\r').unwrap_or(s))
                .unwrap_or(&secret);
            println!("{}", crate::access::SecretDigest::of(secret.as_bytes()));
            Ok(())
        }
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on the metrics listener (if enabled) until
/// `shutdown`; returns the readiness the stages report to.
pub(super) async fn start_exporter(
    settings: &Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<Readiness> {
    let readiness = Readiness::default();
    if settings.metrics.enabled {
        let handle = crate::telemetry::install_recorder();
        let listener = TcpListener::bind(settings.metrics.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (metrics.listen)",
                    settings.metrics.listen
                )
            })?;
        tokio::spawn(crate::http::serve(
            listener,
            crate::telemetry::router(handle, readiness.clone()),
            settings.tls.server()?,
            shutdown,
        ));
    }
    Ok(readiness)
}

/// Runs the registry on its configured address until `shutdown`.
pub(super) async fn run_registry(
    settings: &Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let readiness = start_exporter(settings, shutdown.clone()).await?;
    run_registry_reporting(settings, shutdown, readiness).await
}

/// Runs the registry, reporting `broker` (its log is caught up) to `readiness`.
pub(super) async fn run_registry_reporting(
    settings: &Settings,
    shutdown: CancellationToken,
    readiness: Readiness,
) -> anyhow::Result<()> {
    readiness.set("broker", false);
    let log = SchemaLog::open(&settings.kafka, &settings.registry, shutdown.clone()).await?;
    readiness.set("broker", true);
    let listener = TcpListener::bind(settings.registry.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.registry.listen))?;
    tracing::info!(address = %settings.registry.listen, topic = %settings.registry.topic, "Schema registry serving.");
    let router =
        crate::registry::require_credentials(crate::registry::router(log), &settings.registry)
            .merge(crate::telemetry::health_router(readiness));
    crate::http::serve(listener, router, settings.tls.server()?, shutdown).await?;
    Ok(())
}

/// Runs the collector on its configured address until `shutdown`.
pub(super) async fn run_collector(
    settings: &Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let readiness = start_exporter(settings, shutdown.clone()).await?;
    let config = &settings.collector;
    let endpoint = settings.registry.endpoint()?;
    let registry = RegistryClient::new(endpoint.clone())?;
    readiness.set("registry", registry.check().await.is_ok());
    readiness.set(
        "broker",
        ensure_topic_named(settings, &config.topic, 6).await.is_ok(),
    );
    let producer = EventProducer::with_timeouts(
        &settings.kafka,
        endpoint,
        &config.topic,
        std::time::Duration::from_millis(config.queue_timeout_ms),
        std::time::Duration::from_millis(config.delivery_timeout_ms),
    )?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(address = %config.listen, topic = %config.topic, "Collector serving.");
    let state = crate::ingest::CollectorState::new(producer, config.clone())?;
    let router = crate::ingest::router(state).merge(crate::telemetry::health_router(readiness));
    crate::http::serve(listener, router, settings.tls.server()?, shutdown).await?;
    Ok(())
}

pub(super) async fn register_contracts(settings: &Settings, topic: &str) -> anyhow::Result<()> {
    let subject = format!("{topic}-value");
    let registry = RegistryClient::new(settings.registry.endpoint()?)?;
    for version in InteractionVersion::ALL {
        let id = registry
            .register(&subject, version.text())
            .await
            .with_context(|| format!("registering v{} under {subject}", version.number()))?;
        println!("{subject}: v{} registered with id {id}", version.number());
    }
    Ok(())
}

pub(super) async fn ensure_interactions_topic(
    settings: &Settings,
    partitions: i32,
) -> anyhow::Result<()> {
    ensure_topic_named(settings, &settings.worker.topic, partitions).await
}

async fn ensure_topic_named(
    settings: &Settings,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<()> {
    let spec = TopicSpec {
        name: topic,
        partitions,
        replication: 1,
        configs: &[],
    };
    ensure_topic(&settings.kafka, &spec).await?;
    Ok(())
}

fn load_all(dir: &std::path::Path) -> anyhow::Result<Vec<crate::pipeline::Pipeline>> {
    crate::pipeline::load_pipelines(dir).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "{} pipeline file(s) have problems:\n  {}",
            errors.len(),
            lines.join("\n  ")
        )
    })
}

fn check_pipelines(dir: &std::path::Path) -> anyhow::Result<()> {
    for pipeline in load_all(dir)? {
        println!(
            "{}: {} reads topic '{}' with contract v{} ({} aggregates, {} projections, watermark delay {} ms, grace {} ms)",
            pipeline.file.display(),
            pipeline.name,
            pipeline.topic,
            pipeline.reader_version.number(),
            pipeline.aggregates.len(),
            pipeline.projections.len(),
            pipeline.watermark_delay_ms,
            pipeline.grace_ms
        );
    }
    Ok(())
}

fn check_schema(schema: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(schema)
        .with_context(|| format!("cannot read {}", schema.display()))?;
    let writer = apache_avro::Schema::parse_str(&text)
        .with_context(|| format!("{} is not a valid Avro schema", schema.display()))?;
    let mut broken = 0;
    for pipeline in load_all(dir)? {
        let problems = crate::registry::compat::can_read(&writer, &pipeline.reader);
        if problems.is_empty() {
            println!(
                "ok      {} ({}): reads {}",
                pipeline.name,
                pipeline.file.display(),
                schema.display()
            );
        } else {
            broken += 1;
            println!("BREAKS  {} ({}):", pipeline.name, pipeline.file.display());
            for problem in problems {
                println!("          {problem}");
            }
        }
    }
    anyhow::ensure!(
        broken == 0,
        "{broken} pipeline(s) cannot read events written with {}",
        schema.display()
    );
    Ok(())
}

async fn produce(settings: &Settings, args: &ProduceArgs) -> anyhow::Result<()> {
    ensure_interactions_topic(settings, args.partitions).await?;
    let producer = EventProducer::new(
        &settings.kafka,
        settings.registry.endpoint()?,
        &settings.worker.topic,
    )?;
    let generator = EventGenerator::new(args.seed, args.users, args.items, crate::clock::now_ms());
    let mut last: std::collections::BTreeMap<i32, i64> = Default::default();
    let events: Vec<_> = generator.take(args.count as usize).collect();
    for chunk in events.chunks(1000) {
        let deliveries =
            futures::future::try_join_all(chunk.iter().map(|e| producer.send(e))).await?;
        for d in deliveries {
            let entry = last.entry(d.partition).or_insert(d.offset);
            *entry = (*entry).max(d.offset);
        }
    }
    println!(
        "{}",
        serde_json::json!({ "produced": args.count, "topic": settings.worker.topic, "last_offsets": last })
    );
    Ok(())
}

pub(super) async fn build_worker(
    settings: &Settings,
    store: Arc<dyn FoldStore>,
    readiness: Readiness,
) -> anyhow::Result<Worker> {
    let registry = RegistryClient::new(settings.registry.endpoint()?)?;
    let worker = Worker::build_reporting(
        &settings.kafka,
        settings.worker.clone(),
        registry,
        store,
        readiness,
    )
    .await?;
    Ok(worker)
}

async fn run_worker(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let readiness = start_exporter(settings, shutdown.clone()).await?;
    let store = crate::store::open_fold_store(&settings.store).await?;
    let worker = build_worker(settings, store, readiness).await?;
    tracing::info!(topic = %settings.worker.topic, group = %settings.worker.group_id, "Worker folding.");
    worker.run(shutdown).await;
    Ok(())
}

async fn run_query(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let readiness = start_exporter(settings, shutdown.clone()).await?;
    run_query_reporting(settings, shutdown, readiness).await
}

/// Runs the query API, reporting `store` to `readiness`.
pub(super) async fn run_query_reporting(
    settings: &Settings,
    shutdown: CancellationToken,
    readiness: Readiness,
) -> anyhow::Result<()> {
    if let Some(problem) = settings.query.exposure_problem() {
        anyhow::bail!(problem);
    }
    let store = crate::store::open_read_store(&settings.store).await?;
    readiness.set("store", store.partitions().await.is_ok());
    let listener = TcpListener::bind(settings.query.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.query.listen))?;
    tracing::info!(address = %settings.query.listen, "Query API serving.");
    let mut pipelines = Vec::new();
    for path in &settings.query.pipelines {
        pipelines.push(crate::pipeline::load_pipeline(path)?);
    }
    let state = crate::query::QueryState::new(
        store,
        pipelines,
        std::time::Duration::from_millis(settings.query.wait_timeout_ms),
    )
    .with_shutdown(shutdown.clone());
    let router = crate::query::require_read_token(crate::query::router(state), &settings.query)
        .merge(crate::telemetry::health_router(readiness));
    crate::http::serve(listener, router, settings.tls.server()?, shutdown).await?;
    Ok(())
}

async fn query(settings: &Settings, what: QueryWhat) -> anyhow::Result<()> {
    let store = crate::store::open_read_store(&settings.store).await?;
    let out = match what {
        QueryWhat::User { user_id } => {
            let counts = store.user_event_counts(&user_id).await?;
            let counts: std::collections::BTreeMap<&str, u64> =
                counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            serde_json::json!({ "user_id": user_id, "event_counts": counts })
        }
        QueryWhat::Users => {
            let all = store.all_user_event_counts().await?;
            let all: std::collections::BTreeMap<&str, std::collections::BTreeMap<&str, u64>> = all
                .iter()
                .map(|(u, c)| {
                    (
                        u.as_str(),
                        c.iter().map(|(k, v)| (k.as_str(), *v)).collect(),
                    )
                })
                .collect();
            serde_json::json!(all)
        }
        QueryWhat::Partitions => serde_json::json!(store.partitions().await?),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
