//! One event followed across services: the W3C `traceparent` an app sends to the collector
//! travels in a Kafka header, and the worker's span for that record carries the same trace
//! id, with the collector's span as its parent.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{fresh_topic, kafka, unique, wait_for_folded, TestRegistry};
use eventfold::ingest::{router, CollectorConfig, CollectorState, EventProducer};
use eventfold::registry::RegistryClient;
use eventfold::store::SqliteStore;
use eventfold::worker::{Worker, WorkerConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

type Spans = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

struct Capture(Spans);

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: Context<'_, S>,
    ) {
        let mut fields = Fields(BTreeMap::new());
        attrs.record(&mut fields);
        let level = attrs.metadata().level().to_string();
        fields.0.insert("level".to_owned(), level);
        self.0
            .lock()
            .unwrap()
            .push((attrs.metadata().name().to_owned(), fields.0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_travels_from_the_collector_to_the_worker() {
    let spans: Spans = Arc::default();
    let subscriber = tracing_subscriber::registry()
        .with(Capture(spans.clone()).with_filter(tracing_subscriber::filter::LevelFilter::DEBUG));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let registry = TestRegistry::fresh().await;
    let topic = fresh_topic("traced", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let stop = CancellationToken::new();
    let worker = Worker::build(
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
    )
    .await
    .unwrap();
    let worker = tokio::spawn(worker.run(stop.clone()));

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
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let body = json!([{"event_id": uuid::Uuid::new_v4().to_string(), "event_type": "purchase", "user_id": "u", "session_id": "s", "occurred_at": now, "app": "web", "value": 5.0}]);
    let response = collector
        .clone()
        .oneshot(
            Request::post("/v1/events")
                .header("content-type", "application/json")
                .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A trace the app did not sample, and a request with no trace: the collector records its
    // span for both, the worker none (a span per record only for sampled traces).
    let unsampled = "0af7651916cd43dd8448eb211c80319c";
    for traceparent in [Some(format!("00-{unsampled}-b7ad6b7169203331-00")), None] {
        let body = json!([{"event_id": uuid::Uuid::new_v4().to_string(), "event_type": "click", "user_id": "u", "session_id": "s", "occurred_at": now, "app": "web"}]);
        let mut request = Request::post("/v1/events").header("content-type", "application/json");
        if let Some(value) = traceparent {
            request = request.header("traceparent", value);
        }
        let response = collector
            .clone()
            .oneshot(request.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    wait_for_folded(&store, 3).await;
    stop.cancel();
    worker.await.unwrap();

    let spans = spans.lock().unwrap().clone();
    let collect = spans
        .iter()
        .find(|(name, fields)| {
            name == "collect" && fields.get("trace_id").map(String::as_str) == Some(trace_id)
        })
        .unwrap_or_else(|| panic!("no collector span with the trace id: {spans:?}"));
    let fold = spans
        .iter()
        .find(|(name, fields)| {
            name == "fold_record" && fields.get("trace_id").map(String::as_str) == Some(trace_id)
        })
        .unwrap_or_else(|| panic!("no worker span with the trace id: {spans:?}"));
    assert_eq!(fold.1.get("parent_span_id"), collect.1.get("span_id"));
    // The collector's span is recorded at the default filter (info); a worker records its
    // record spans only when its debug spans are on (at info it reads no headers at all).
    assert_eq!(collect.1.get("level").map(String::as_str), Some("INFO"));
    assert_eq!(fold.1.get("level").map(String::as_str), Some("DEBUG"));
    assert_ne!(
        collect.1.get("span_id").map(String::as_str),
        Some("00f067aa0ba902b7"),
        "the collector starts a child span"
    );
    let named = |wanted: &str| {
        spans
            .iter()
            .filter(|(name, _)| name == wanted)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(named("collect").len(), 3, "{spans:?}");
    assert!(named("collect")
        .iter()
        .any(|(_, fields)| fields.get("trace_id").map(String::as_str) == Some(unsampled)));
    let folds = named("fold_record");
    assert_eq!(
        folds.len(),
        1,
        "only the sampled record has a span: {folds:?}"
    );
    registry.stop().await;
}
