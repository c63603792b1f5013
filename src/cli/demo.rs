//! `eventfold demo`: the registry, a worker, the query API and a steady stream of generated
//! events in one process, against the configured broker, on the embedded store.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::commands::{
    build_worker, ensure_interactions_topic, register_contracts, run_query_reporting,
    run_registry_reporting, start_exporter,
};
use super::DemoArgs;
use crate::ingest::{EventProducer, Workload, WorkloadConfig};
use crate::settings::Settings;

/// Runs the demo until Ctrl-C.
pub async fn run(
    settings: &Settings,
    args: &DemoArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut settings = settings.clone();
    if settings.worker.pipeline.is_none() {
        settings.worker.pipeline = settings.query.pipelines.first().cloned();
    }
    let settings = &settings;
    let readiness = start_exporter(settings, shutdown.clone()).await?;
    let registry = tokio::spawn({
        let (settings, shutdown, readiness) =
            (settings.clone(), shutdown.clone(), readiness.clone());
        async move { run_registry_reporting(&settings, shutdown, readiness).await }
    });
    wait_for_registry(settings.registry.endpoint()?).await?;
    register_contracts(settings, &settings.worker.topic).await?;
    ensure_interactions_topic(settings, 6).await?;
    let worker = build_worker(
        settings,
        crate::store::open_fold_store(&settings.store).await?,
        readiness.clone(),
    )
    .await?;
    let worker = tokio::spawn(worker.run(shutdown.clone()));
    let query = tokio::spawn({
        let (settings, shutdown, readiness) = (settings.clone(), shutdown.clone(), readiness);
        async move { run_query_reporting(&settings, shutdown, readiness).await }
    });
    let scheme = if settings.tls.cert_path.is_some() {
        "https"
    } else {
        "http"
    };
    println!(
        "eventfold demo running: dashboard {scheme}://{listen}/ · query API {scheme}://{listen}/v1/pipelines · registry {} · Ctrl-C to stop",
        settings.registry.url,
        listen = settings.query.listen
    );
    let producer = EventProducer::new(
        &settings.kafka,
        settings.registry.endpoint()?,
        &settings.worker.topic,
    )?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    // Event time advances with the wall clock: `rate` events per second.
    let mut events = Workload::new(WorkloadConfig {
        seed: now as u64,
        users: 200,
        items: 100,
        start_ms: now,
        mean_gap_ms: (1000 / i64::from(args.rate.max(1))).max(1),
        ..WorkloadConfig::default()
    })
    .map(|(_, event)| event);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !shutdown.is_cancelled() {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                let batch: Vec<_> = events.by_ref().take(args.rate as usize).collect();
                if let Err(error) = futures::future::try_join_all(batch.iter().map(|e| producer.send(e))).await {
                    tracing::warn!(%error, "Demo events not produced.");
                }
            }
        }
    }
    let _ = worker.await;
    let _ = query.await?;
    registry.await??;
    Ok(())
}

async fn wait_for_registry(registry: crate::registry::RegistryEndpoint) -> anyhow::Result<()> {
    let registry = crate::registry::RegistryClient::new(registry)?;
    for _ in 0..100 {
        if registry.check().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the schema registry did not come up at {}", registry.url())
}
