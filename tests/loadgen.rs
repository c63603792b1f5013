//! loadgen through the real collector into a real broker, folded by a worker: the store's
//! per-user counts equal the ground truth exactly, duplicates counted once.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{fresh_topic, kafka, unique, TestRegistry};
use eventfold::cli::loadgen::{run, LoadgenArgs, Target};
use eventfold::ingest::{router, CollectorConfig, CollectorState, EventProducer};
use eventfold::registry::RegistryClient;
use eventfold::settings::Settings;
use eventfold::store::SqliteStore;
use eventfold::worker::{Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn loadgen_through_the_collector_matches_its_ground_truth() {
    let registry = TestRegistry::fresh().await;
    let topic = fresh_topic("loadgen", 4).await;
    let stop = CancellationToken::new();
    let collector_config = CollectorConfig {
        topic: topic.clone(),
        ..Default::default()
    };
    let producer = EventProducer::new(&kafka(), &registry.url, &topic).unwrap();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let collector_url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(eventfold::http::serve(
        listener,
        router(CollectorState::new(producer, collector_config.clone()).expect("write keys")),
        None,
        stop.clone(),
    ));

    let mut settings = Settings {
        kafka: kafka(),
        collector: collector_config,
        ..Default::default()
    };
    settings.registry.url = registry.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let truth_path = dir.path().join("truth.json");
    let args = LoadgenArgs {
        events: 3000,
        users: 60,
        items: 40,
        seed: 11,
        out_of_order: 0.05,
        late: 0.01,
        duplicates: 0.03,
        late_by_ms: 10_000,
        rate: 0,
        target: Target::Http,
        collector: collector_url,
        batch: 100,
        concurrency: 4,
        window_ms: 10_000,
        truth: Some(truth_path.clone()),
    };
    let truth = run(&settings, &args).await.unwrap();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&truth_path).unwrap()).unwrap();
    assert_eq!(written["events_sent"], serde_json::json!(3000));
    let shape = (
        truth.duplicates,
        truth.late_events,
        truth.out_of_order_events,
    );
    assert!(
        shape.0 > 30 && shape.1 > 5 && shape.2 > 50,
        "duplicates, late, out of order: {shape:?}"
    );

    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let worker = Worker::build(
        &kafka(),
        WorkerConfig {
            topic: topic.clone(),
            group_id: unique("g"),
            dead_letter_topic: unique("dlq"),
            ..Default::default()
        },
        RegistryClient::new(registry.url.clone()).unwrap(),
        Arc::new(store.clone()),
    )
    .await
    .unwrap();
    let worker = tokio::spawn(worker.run(stop.clone()));
    for _ in 0..600 {
        let read: u64 = store
            .partitions()
            .await
            .unwrap()
            .iter()
            .map(|p| p.read)
            .sum();
        if read >= truth.events_sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let partitions = store.partitions().await.unwrap();
    let folded: u64 = partitions.iter().map(|p| p.folded).sum();
    let duplicates: u64 = partitions.iter().map(|p| p.duplicates).sum();
    assert_eq!(folded, truth.distinct_events);
    assert_eq!(duplicates, truth.duplicates);
    assert_eq!(store.all_user_event_counts().await.unwrap(), truth.per_user);
    stop.cancel();
    worker.await.unwrap();
    server.await.unwrap().unwrap();
    registry.stop().await;
}
