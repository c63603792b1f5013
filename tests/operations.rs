//! Operations against a real broker: the Prometheus counters and histograms move as events
//! flow through the collector and a worker, and readiness follows the worker's assignment.
//! (One test per binary: the metrics recorder is process-wide.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{fresh_topic, kafka, unique, wait_for_folded, TestRegistry};
use eventfold::ingest::{router, CollectorConfig, CollectorState, EventProducer};
use eventfold::registry::RegistryClient;
use eventfold::store::SqliteStore;
use eventfold::telemetry::{install_recorder, Readiness};
use eventfold::worker::{Worker, WorkerConfig};
use http_body_util::BodyExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name_and_labels)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

async fn get(router: &axum::Router, path: &str) -> (StatusCode, String) {
    let response = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    (
        status,
        String::from_utf8(
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn metrics_and_readiness_follow_the_events() {
    let handle = install_recorder();
    let registry = TestRegistry::fresh().await;
    let topic = fresh_topic("ops", 2).await;
    let stop = CancellationToken::new();

    let readiness = Readiness::default();
    let exporter = eventfold::telemetry::router(handle.clone(), readiness.clone());
    let (status, body) = get(&exporter, "/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"checks":{},"ready":false}"#
        )
    );
    assert_eq!(
        get(&exporter, "/healthz").await,
        (StatusCode::OK, "ok".to_owned())
    );

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let worker = Worker::build_reporting(
        &kafka(),
        WorkerConfig {
            topic: topic.clone(),
            group_id: unique("g"),
            dead_letter_topic: unique("dlq"),
            batch_linger_ms: 20,
            ..Default::default()
        },
        RegistryClient::new(registry.url.clone()).unwrap(),
        Arc::new(store.clone()),
        readiness.clone(),
    )
    .await
    .unwrap();
    let (_, checks) = readiness.report();
    assert_eq!(checks.get("broker"), Some(&true));
    assert_eq!(checks.get("registry"), Some(&true));
    assert_eq!(checks.get("store"), Some(&true));
    assert_eq!(checks.get("partitions_assigned"), Some(&false));
    let worker = tokio::spawn(worker.run(stop.clone()));
    for _ in 0..200 {
        if readiness.report().0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = get(&exporter, "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let producer = EventProducer::new(&kafka(), &registry.url, &topic).unwrap();
    let collector = router(
        CollectorState::new(
            producer,
            CollectorConfig {
                topic: topic.clone(),
                ..Default::default()
            },
        )
        .expect("write keys"),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let events: Vec<_> = (0..20)
        .map(|i| json!({"event_id": uuid::Uuid::new_v4().to_string(), "event_type": "click", "user_id": format!("u{i}"), "session_id": "s", "occurred_at": now - 1000, "app": "web"}))
        .collect();
    let post = |body: String| {
        collector.clone().oneshot(
            Request::post("/v1/events")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
    };
    assert_eq!(
        post(serde_json::to_string(&events).unwrap())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let bad = json!([{"event_type": "click"}, {"event_type": "nope"}, {}]);
    assert_eq!(
        post(bad.to_string()).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    wait_for_folded(&store, 20).await;

    let (status, text) = get(&exporter, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        metric(
            &text,
            r#"eventfold_collector_events_total{outcome="accepted"}"#
        ),
        20.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"eventfold_collector_events_total{outcome="rejected"}"#
        ),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            r#"eventfold_http_requests_total{service="collector",route="/v1/events",method="POST",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"eventfold_http_requests_total{service="collector",route="/v1/events",method="POST",status="400"}"#
        ),
        1.0
    );
    assert!(
        metric(
            &text,
            r#"eventfold_http_requests_total{service="registry",route="/subjects/{subject}/versions",method="POST",status="200"}"#
        ) >= 1.0,
        "the encoder registered the contract"
    );
    assert_eq!(
        metric(&text, "eventfold_ingest_events_produced_total"),
        20.0
    );
    assert_eq!(
        metric(&text, r#"eventfold_worker_events_total{outcome="folded"}"#),
        20.0
    );
    assert_eq!(
        metric(&text, "eventfold_worker_event_time_to_folded_seconds_count"),
        20.0
    );
    assert_eq!(
        metric(&text, "eventfold_worker_ingest_to_folded_seconds_count"),
        20.0
    );
    assert_eq!(
        metric(&text, "eventfold_collector_produce_duration_seconds_count"),
        1.0
    );
    assert!(metric(&text, "eventfold_store_commit_duration_seconds_count") >= 1.0);
    assert!(metric(&text, "eventfold_worker_fold_duration_seconds_count") >= 1.0);
    assert!(metric(&text, "eventfold_worker_batches_total") >= 1.0);
    assert!(metric(&text, r#"eventfold_worker_rebalances_total{kind="assign"}"#) >= 1.0);
    assert!(text.contains("# TYPE eventfold_worker_event_time_to_folded_seconds histogram"));
    // Bounded labels only: no user ids or event ids in any series.
    assert!(
        !text.contains("u1")
            && !events
                .iter()
                .any(|e| text.contains(e["event_id"].as_str().unwrap()))
    );

    stop.cancel();
    worker.await.unwrap();
    registry.stop().await;
}
