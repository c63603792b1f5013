//! Blue/green replay against a real broker: a changed pipeline is rebuilt from the log into
//! a new database while the live one serves reads; the switch is atomic, and readers never
//! see a half-built version.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use common::{fresh_topic, kafka, unique, TestRegistry};
use eventfold::cli::replay::{run, ReplayArgs};
use eventfold::contracts::{EventType, Interaction};
use eventfold::ingest::{EventGenerator, EventProducer};
use eventfold::pipeline::load_pipeline;
use eventfold::query::{router, QueryState};
use eventfold::registry::RegistryClient;
use eventfold::settings::Settings;
use eventfold::store::{switch_link, FollowingStore, SqliteStore};
use eventfold::worker::{Worker, WorkerConfig};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

fn pipeline_yaml(topic: &str, with_revenue: bool) -> String {
    let revenue = if with_revenue {
        "  - {name: revenue, window: {tumbling: 1h}, filter: {event_type: purchase}, aggregate: sum, field: value}\n"
    } else {
        ""
    };
    format!("name: shop\nsource: {{topic: {topic}, reader_schema: interaction/v2.avsc}}\nevent_time: {{field: occurred_at, watermark_delay: 5s, grace: 30s}}\naggregates:\n  - {{name: per_type, window: {{tumbling: 1h}}, group_by: [event_type], aggregate: count}}\n{revenue}")
}

async fn revenue(app: &axum::Router) -> Vec<f64> {
    let response = app
        .clone()
        .oneshot(
            Request::get("/v1/pipelines/shop/aggregates/revenue")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    body["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["value"].as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_changed_pipeline_is_rebuilt_beside_the_live_one_and_switched_atomically() {
    let registry = TestRegistry::fresh().await;
    let topic = fresh_topic("replayed", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = (
        dir.path().join("shop-v1.yaml"),
        dir.path().join("shop-v2.yaml"),
    );
    std::fs::write(&v1, pipeline_yaml(&topic, false)).unwrap();
    std::fs::write(&v2, pipeline_yaml(&topic, true)).unwrap();
    let link = dir.path().join("store.db");
    let live_db = dir.path().join("store-v1.db");
    SqliteStore::open(&live_db).unwrap();
    switch_link(&link, &live_db).unwrap();

    let events: Vec<Interaction> = EventGenerator::new(9, 30, 20, 1_764_000_000_000)
        .take(1500)
        .collect();
    let producer = EventProducer::new(&kafka(), &registry.url, &topic).unwrap();
    futures::future::try_join_all(events.iter().map(|e| producer.send(e)))
        .await
        .unwrap();
    let live = SqliteStore::open(&link).unwrap();
    let stop = CancellationToken::new();
    let worker = Worker::build(
        &kafka(),
        WorkerConfig {
            topic: topic.clone(),
            group_id: unique("live"),
            dead_letter_topic: unique("dlq"),
            pipeline: Some(v1.clone()),
            ..Default::default()
        },
        RegistryClient::new(registry.url.clone()).unwrap(),
        Arc::new(live.clone()),
    )
    .await
    .unwrap();
    let live_worker = tokio::spawn(worker.run(stop.clone()));
    for _ in 0..600 {
        if live
            .partitions()
            .await
            .unwrap()
            .iter()
            .map(|p| p.read)
            .sum::<u64>()
            == 1500
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Readers follow the link; they are configured with the new pipeline's aggregates.
    let reader = router(QueryState::new(
        Arc::new(FollowingStore::open(&link).unwrap()),
        vec![load_pipeline(&v2).unwrap()],
        Duration::from_secs(1),
    ));
    assert!(
        revenue(&reader).await.is_empty(),
        "the live version has no revenue aggregate"
    );
    let watching = tokio::spawn({
        let reader = reader.clone();
        async move {
            let mut seen = Vec::new();
            for _ in 0..400 {
                seen.push(revenue(&reader).await);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen
        }
    });

    let mut settings = Settings {
        kafka: kafka(),
        ..Default::default()
    };
    settings.registry.url = registry.url.clone();
    settings.store.path = link.clone();
    settings.worker.dead_letter_topic = unique("dlq");
    let report = run(
        &settings,
        &ReplayArgs {
            pipeline: v2.clone(),
            into: dir.path().join("store-v2.db"),
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.records, 1500);
    assert_eq!(
        std::fs::canonicalize(&link).unwrap(),
        std::fs::canonicalize(dir.path().join("store-v2.db")).unwrap()
    );

    let expected: f64 = events
        .iter()
        .filter(|e| e.event_type == EventType::Purchase)
        .filter_map(|e| e.value)
        .sum();
    let after = revenue(&reader).await;
    let total: f64 = after.iter().sum();
    assert!(
        (total - expected).abs() < 1e-6,
        "revenue {total} vs {expected}"
    );
    // Every answer during the replay was the old version (nothing) or the complete new one.
    for answer in watching.await.unwrap() {
        assert!(
            answer.is_empty() || answer == after,
            "a reader saw a half-built version: {answer:?} vs {after:?}"
        );
    }
    // A second replay into an existing file, or over a regular file, is refused.
    let again = run(
        &settings,
        &ReplayArgs {
            pipeline: v2.clone(),
            into: dir.path().join("store-v2.db"),
        },
        CancellationToken::new(),
    )
    .await;
    assert!(again.unwrap_err().to_string().contains("already exists"));
    settings.store.path = live_db.clone();
    let regular = run(
        &settings,
        &ReplayArgs {
            pipeline: v2,
            into: dir.path().join("store-v3.db"),
        },
        CancellationToken::new(),
    )
    .await;
    assert!(regular
        .unwrap_err()
        .to_string()
        .contains("is a regular file"));

    stop.cancel();
    live_worker.await.unwrap();
    registry.stop().await;
}
