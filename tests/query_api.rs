//! The query API against a real broker: read-your-writes with the collector's consistency
//! token, aggregates merged over partitions, projections with paging, freshness, the live
//! progress stream (server-sent events), and every error with its status; the read token
//! (401/403/200, the dashboard's `?token=`, open health routes) and the exposure check.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{fresh_topic, kafka, unique, ReadPath, TestRegistry};
use eventfold::access::SecretDigest;
use eventfold::ingest::{
    router as collector, CollectorConfig, CollectorState, ConsistencyToken, EventProducer,
};
use eventfold::pipeline::load_pipeline;
use eventfold::query::{require_read_token, router, QueryConfig, QueryState};
use eventfold::registry::RegistryClient;
use eventfold::store::{FollowingStore, SqliteStore};
use eventfold::worker::{Worker, WorkerConfig};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

async fn call(app: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn get(app: &axum::Router, path: &str) -> (StatusCode, Value) {
    call(app, Request::get(path).body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn read_your_writes_aggregates_projections_and_errors() {
    let registry = TestRegistry::fresh().await;
    let topic = fresh_topic("queried", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let pipeline_path = dir.path().join("shop.yaml");
    std::fs::write(
        &pipeline_path,
        format!("name: shop\nsource: {{topic: {topic}, reader_schema: interaction/v2.avsc}}\nevent_time: {{field: occurred_at, watermark_delay: 5s, grace: 30s}}\naggregates:\n  - {{name: per_type, window: {{tumbling: 1m}}, group_by: [event_type], aggregate: count}}\n  - {{name: top_items, window: {{tumbling: 1h}}, aggregate: top_k, field: item_id, k: 3}}\nprojections:\n  - {{name: users, kind: user}}\n  - {{name: items, kind: item}}\n  - {{name: sessions, kind: session}}\n"),
    )
    .unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let stop = CancellationToken::new();
    let worker = Worker::build(
        &kafka(),
        WorkerConfig {
            topic: topic.clone(),
            group_id: unique("g"),
            dead_letter_topic: unique("dlq"),
            pipeline: Some(pipeline_path.clone()),
            batch_linger_ms: 10,
            ..Default::default()
        },
        RegistryClient::new(registry.url.clone()).unwrap(),
        Arc::new(store.clone()),
    )
    .await
    .unwrap();
    let worker = tokio::spawn(worker.run(stop.clone()));
    let query = router(QueryState::new(
        Arc::new(FollowingStore::open(&dir.path().join("store.db")).unwrap()),
        vec![load_pipeline(&pipeline_path).unwrap()],
        Duration::from_secs(20),
    ));
    let ingest = collector(
        CollectorState::new(
            EventProducer::new(&kafka(), &registry.url, &topic).unwrap(),
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
    let event = |i: usize, kind: &str, item: &str| json!({"event_id": uuid::Uuid::new_v4().to_string(), "event_type": kind, "user_id": format!("user-{}", i % 4), "session_id": format!("s-{}", i % 4), "item_id": item, "occurred_at": now - 1000 + i as i64, "app": "web", "value": 2.5});
    let batch: Vec<Value> = (0..12)
        .map(|i| {
            event(
                i,
                if i % 3 == 0 { "purchase" } else { "page_view" },
                if i < 6 { "sku-a" } else { "sku-b" },
            )
        })
        .collect();
    let (status, answer) = call(
        &ingest,
        Request::post("/v1/events")
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&batch).unwrap()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let token = answer["consistency_token"].as_str().unwrap().to_owned();

    // Read-your-writes: queried at once with the token, the 12 events are counted.
    let (status, body) = get(
        &query,
        &format!("/v1/pipelines/shop/aggregates/per_type?consistency_token={token}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let counted: u64 = body["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["value"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 12);
    let purchases: u64 = body["windows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["group"] == json!(["purchase"]))
        .map(|w| w["value"].as_u64().unwrap())
        .sum();
    assert_eq!(purchases, 4);
    let decoded = ConsistencyToken::decode(&token).unwrap();
    for (partition, offset) in &decoded.offsets {
        let folded = body["as_of"]["partitions"][format!("{topic}/{partition}")]["offset"]
            .as_i64()
            .unwrap();
        assert!(folded >= *offset, "as_of shows the folded offset");
    }
    let (_, top) = get(
        &query,
        &format!("/v1/pipelines/shop/aggregates/top_items?consistency_token={token}"),
    )
    .await;
    let entries = &top["windows"][0]["value"];
    assert_eq!(
        (entries[0]["key"].clone(), entries[0]["count"].clone()),
        (json!("sku-a"), json!(6))
    );
    assert_eq!(
        (entries[1]["key"].clone(), entries[1]["count"].clone()),
        (json!("sku-b"), json!(6))
    );

    let (status, user) = get(
        &query,
        &format!("/v1/pipelines/shop/users/user-0?consistency_token={token}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["user"]["events"], json!(3));
    assert_eq!(user["user"]["total_value"], json!(7.5));
    let (_, items) = get(&query, "/v1/pipelines/shop/items?limit=1&offset=1").await;
    assert_eq!(items["items"]["total"], json!(2));
    assert_eq!(items["items"]["items"][0]["item_id"], json!("sku-b"));
    assert_eq!(items["items"]["items"][0]["views"], json!(4));
    assert_eq!(items["items"]["items"][0]["purchases"], json!(2));
    let (_, sessions) = get(&query, "/v1/pipelines/shop/sessions").await;
    assert_eq!(sessions["sessions"]["total"], json!(4));
    assert_eq!(
        sessions["sessions"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["converted"] == json!(true))
            .count(),
        4
    );
    let (status, fresh) = get(&query, "/v1/freshness").await;
    assert_eq!(status, StatusCode::OK);
    assert!(fresh["watermarks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["watermark_ms"].as_i64().is_some()));
    let (_, pipelines) = get(&query, "/v1/pipelines").await;
    assert_eq!(
        pipelines["pipelines"][0]["aggregates"][1]["aggregate"],
        json!("top_k")
    );

    // A token for writes that never happened: a clear 503 saying how far behind.
    let impossible = ConsistencyToken {
        topic: topic.clone(),
        offsets: [(0, 1_000_000)].into(),
    }
    .encode();
    let slow = router(QueryState::new(
        Arc::new(FollowingStore::open(&dir.path().join("store.db")).unwrap()),
        vec![load_pipeline(&pipeline_path).unwrap()],
        Duration::from_millis(200),
    ));
    let response = slow
        .clone()
        .oneshot(
            Request::get(format!(
                "/v1/pipelines/shop/aggregates/per_type?consistency_token={impossible}"
            ))
            .body(Body::empty())
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["error"], json!("not_yet_visible"));
    assert!(body["behind"]["0"].as_i64().unwrap() > 999_000, "{body}");

    for (path, status, error) in [
        (
            "/v1/pipelines/nope/aggregates/per_type",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/v1/pipelines/shop/aggregates/nope",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/v1/pipelines/shop/users/nobody",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/v1/pipelines/shop/aggregates/per_type?from=10&to=5",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/v1/pipelines/shop/aggregates/per_type?consistency_token=garbage",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/v1/pipelines/shop/items?limit=0",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "/v1/pipelines/shop/items?limit=5000",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ] {
        let (got, body) = get(&query, path).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{path}: {body}"
        );
    }
    let (status, _) = get(&query, "/v1/pipelines/shop/items?limit=abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    stop.cancel();
    worker.await.unwrap();
    registry.stop().await;
}

/// The frames of a server-sent event stream, keep-alive comments left out.
struct Frames {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>,
    buffer: String,
}

impl Frames {
    fn new(response: reqwest::Response) -> Frames {
        Frames {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next frame's lines, or `None` when the stream ended; fails after 30 s.
    async fn next(&mut self) -> Option<Vec<String>> {
        use futures::StreamExt;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame = self.buffer[..end].to_owned();
                self.buffer.drain(..end + 2);
                if frame.starts_with(':') {
                    continue;
                }
                return Some(frame.lines().map(str::to_owned).collect());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.body.next())
                .await
                .expect("a frame within 30 s")?
                .expect("the stream reads");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next frame, which must be a `progress` event; its data.
    async fn progress(&mut self) -> Value {
        let lines = self.next().await.expect("the stream goes on");
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0], "event: progress");
        let data = lines[1].strip_prefix("data: ").expect("a data line");
        serde_json::from_str(data).unwrap()
    }
}

fn shop_pipeline(topic: &str) -> String {
    format!("name: shop\nsource: {{topic: {topic}, reader_schema: interaction/v2.avsc}}\nevent_time: {{field: occurred_at, watermark_delay: 5s, grace: 30s}}\naggregates:\n  - {{name: per_type, window: {{tumbling: 1m}}, group_by: [event_type], aggregate: count}}\n")
}

#[tokio::test]
async fn the_progress_stream_pushes_new_offsets_and_ends_on_shutdown() {
    let path = ReadPath::start(3, shop_pipeline).await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!("{}/v1/pipelines/nope/stream", path.query_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], json!("not_found"));
    assert_eq!(
        body["message"],
        json!("no pipeline 'nope' (known: [\"shop\"])")
    );

    let response = client
        .get(format!("{}/v1/pipelines/shop/stream", path.query_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let mut frames = Frames::new(response);
    // At once: the store's progress as it is (nothing folded yet).
    let first = frames.progress().await;
    assert_eq!(first["pipeline"], json!("shop"));
    assert_eq!(first["folded"], json!(0));

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let events: Vec<Value> = (0..12)
        .map(|i| json!({"event_id": uuid::Uuid::new_v4().to_string(), "event_type": "click", "user_id": format!("user-{i}"), "session_id": format!("s-{i}"), "occurred_at": now - 1000 + i, "app": "web"}))
        .collect();
    let token = ConsistencyToken::decode(&path.post(&events).await).unwrap();
    // A new message for each change of the offsets, until all 12 are folded; the last
    // one's as_of holds exactly the offsets the collector acknowledged.
    let last = loop {
        let progress = frames.progress().await;
        let folded = progress["folded"].as_u64().unwrap();
        assert!(folded <= 12, "{progress}");
        if folded == 12 {
            break progress;
        }
    };
    for (partition, offset) in &token.offsets {
        assert_eq!(
            last["as_of"]["partitions"][format!("{}/{partition}", path.topic)]["offset"],
            json!(offset),
            "{last}"
        );
    }
    let partitions = last["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), token.offsets.len());
    assert!(partitions.iter().all(|p| p["topic"] == json!(path.topic)));

    // Every partition of the store, on the unscoped stream.
    let mut all = Frames::new(
        client
            .get(format!("{}/v1/stream", path.query_url))
            .send()
            .await
            .unwrap(),
    );
    let everything = all.progress().await;
    assert_eq!(everything["pipeline"], Value::Null);
    assert_eq!(everything["folded"], json!(12));

    // Shutdown ends both streams, so the server's graceful shutdown does not wait for them.
    path.shutdown().cancel();
    assert_eq!(frames.next().await, None);
    assert_eq!(all.next().await, None);
    path.stop().await;
}

#[tokio::test]
async fn the_read_token_guards_the_api_and_the_dashboard_page() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline_path = dir.path().join("shop.yaml");
    std::fs::write(
        &pipeline_path,
        "name: shop\nsource: {topic: t, reader_schema: interaction/v2.avsc}\nevent_time: {field: occurred_at, watermark_delay: 5s, grace: 30s}\naggregates:\n  - {name: per_type, window: {tumbling: 1m}, group_by: [event_type], aggregate: count}\n",
    )
    .unwrap();
    SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let config = QueryConfig {
        read_token_sha256: Some(SecretDigest::of(b"reader-token")),
        ..QueryConfig::default()
    };
    let guarded = require_read_token(
        router(QueryState::new(
            Arc::new(FollowingStore::open(&dir.path().join("store.db")).unwrap()),
            vec![load_pipeline(&pipeline_path).unwrap()],
            Duration::from_secs(1),
        )),
        &config,
    )
    .merge(eventfold::telemetry::health_router(Default::default()));
    let get = |path: &str, authorization: Option<&str>| {
        let mut request = Request::get(path);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let answer = guarded
            .clone()
            .oneshot(request.body(Body::empty()).unwrap());
        async move {
            let response = answer.await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };

    assert_eq!(
        get("/v1/pipelines", None).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "missing_token", "message": "send the read token as Authorization: Bearer <token> (or ?token=<token> for the dashboard)"})
        )
    );
    assert_eq!(
        get("/v1/pipelines", Some("Bearer reader-tokeN")).await,
        (
            StatusCode::FORBIDDEN,
            json!({"error": "invalid_token", "message": "the read token is not valid"})
        )
    );
    let (status, body) = get("/v1/pipelines", Some("Bearer reader-token")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["pipelines"][0]["name"], json!("shop"), "{body}");
    assert_eq!(get("/", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get("/?token=reader-token", None).await.0, StatusCode::OK);
    assert_eq!(
        get("/v1/freshness?token=nope", None).await.0,
        StatusCode::FORBIDDEN
    );
    for open in ["/dashboard.js", "/dashboard.css", "/healthz"] {
        assert_eq!(get(open, None).await.0, StatusCode::OK, "{open}");
    }

    // Without a token, only loopback (or an explicit opt-in) may serve.
    let exposed = QueryConfig {
        listen: "0.0.0.0:8090".parse().unwrap(),
        ..QueryConfig::default()
    };
    assert_eq!(
        exposed.exposure_problem().as_deref(),
        Some("query.listen is 0.0.0.0:8090 (not loopback) and no query.read_token_sha256 is set: set a read token (eventfold hash-secret) or query.allow_anonymous = true")
    );
    let opted_in = QueryConfig {
        allow_anonymous: true,
        ..exposed.clone()
    };
    assert_eq!(opted_in.exposure_problem(), None);
    assert_eq!(QueryConfig::default().exposure_problem(), None);
    assert_eq!(
        QueryConfig {
            read_token_sha256: config.read_token_sha256,
            ..exposed
        }
        .exposure_problem(),
        None
    );
}
