//! `eventfold replay`: rebuilds a (changed) pipeline's read models from the beginning of the
//! log into a new database beside the live one, and once it has folded everything the live
//! one had when the replay started, switches `store.path` (a symbolic link) to it
//! atomically. Readers (the query API follows the link) see the old version until the
//! switch and the complete new one after it. Workers restarted afterwards resume from the
//! new database's offsets (invariant 1: the log is the truth).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::pipeline::load_pipeline;
use crate::registry::RegistryClient;
use crate::settings::Settings;
use crate::store::{switch_link, SqliteStore};
use crate::worker::Worker;

/// Options of `eventfold replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The pipeline file to rebuild (its topic is replayed from the beginning).
    #[arg(long)]
    pub pipeline: PathBuf,
    /// The new database to build; must not exist yet.
    #[arg(long)]
    pub into: PathBuf,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Records folded into the new database.
    pub records: u64,
    /// The live offsets it caught up with, per partition.
    pub caught_up_with: BTreeMap<i32, i64>,
}

/// Runs a replay and switches `settings.store.path` to the new database.
pub async fn run(
    settings: &Settings,
    args: &ReplayArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<ReplayReport> {
    let link = &settings.store.path;
    if let Ok(meta) = std::fs::symlink_metadata(link) {
        anyhow::ensure!(
            meta.file_type().is_symlink(),
            "store.path {} is a regular file: make it a symbolic link to the database (e.g. ln -s eventfold-v1.db {}) so a replay can switch it atomically",
            link.display(),
            link.display()
        );
    }
    anyhow::ensure!(
        !args.into.exists(),
        "{} already exists: replay into a new file",
        args.into.display()
    );
    let pipeline = load_pipeline(&args.pipeline)?;
    let targets: BTreeMap<i32, i64> = if link.exists() {
        SqliteStore::open(link)?
            .partitions()
            .await?
            .into_iter()
            .filter(|p| p.topic == pipeline.topic)
            .map(|p| (p.partition, p.last_offset))
            .collect()
    } else {
        BTreeMap::new()
    };
    let store = SqliteStore::open(&args.into)?;
    let mut config = settings.worker.clone();
    config.topic = pipeline.topic.clone();
    config.pipeline = Some(args.pipeline.clone());
    config.group_id = format!(
        "{}-replay-{}",
        config.group_id,
        uuid::Uuid::new_v4().simple()
    );
    let worker = Worker::build(
        &settings.kafka,
        config,
        RegistryClient::new(settings.registry.endpoint()?)?,
        Arc::new(store.clone()),
    )
    .await?;
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    tracing::info!(pipeline = %pipeline.name, into = %args.into.display(), ?targets, "Replaying from the beginning of the log.");
    loop {
        let progress: BTreeMap<i32, i64> = store
            .partitions()
            .await?
            .into_iter()
            .filter(|p| p.topic == pipeline.topic)
            .map(|p| (p.partition, p.last_offset))
            .collect();
        if targets
            .iter()
            .all(|(partition, offset)| progress.get(partition).is_some_and(|o| o >= offset))
        {
            break;
        }
        if shutdown.is_cancelled() {
            stop.cancel();
            let _ = running.await;
            anyhow::bail!(
                "replay interrupted before it caught up; {} was not switched",
                link.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    running.await.context("the replay worker failed")?;
    switch_link(link, &args.into).with_context(|| {
        format!(
            "cannot switch {} to {}",
            link.display(),
            args.into.display()
        )
    })?;
    let records = store.partitions().await?.iter().map(|p| p.read).sum();
    tracing::info!(link = %link.display(), into = %args.into.display(), records, "Replay caught up; readers switched.");
    Ok(ReplayReport {
        records,
        caught_up_with: targets,
    })
}
