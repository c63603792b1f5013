//! The collector over HTTP: every bad-input case with its exact status and error body, the
//! happy path in JSON, NDJSON and gzip against a real broker, and a broker that stops
//! answering mid-run (503 with Retry-After; every acknowledged event is in the topic); write
//! keys (401/403, nothing produced), one app's rate limit (429) and CORS preflights.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::broker::{OwnBroker, Storage};
use common::{fresh_topic, kafka, now_ms, unique, TestRegistry};
use eventfold::access::SecretDigest;
use eventfold::contracts::Interaction;
use eventfold::ingest::{
    router, CollectorConfig, CollectorState, ConsistencyToken, EventProducer, WriteKey,
};
use eventfold::kafka::KafkaConfig;
use eventfold::registry::{InteractionDecoder, RegistryClient};
use http_body_util::BodyExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use serde_json::{json, Value};
use tower::ServiceExt;

fn event(user: &str, kind: &str) -> Value {
    json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": kind,
        "user_id": user,
        "session_id": format!("s-{user}"),
        "item_id": "sku-1",
        "occurred_at": now_ms() - 500,
        "app": "web",
        "properties": {"ref": "newsletter"},
        "value": 9.5
    })
}

fn state(
    kafka: &KafkaConfig,
    registry: &str,
    topic: &str,
    config: CollectorConfig,
) -> CollectorState {
    let producer = EventProducer::with_timeouts(
        kafka,
        registry,
        topic,
        Duration::from_millis(config.queue_timeout_ms),
        Duration::from_millis(config.delivery_timeout_ms),
    )
    .unwrap();
    CollectorState::new(producer, config).expect("write keys")
}

async fn post(
    state: &CollectorState,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value, Option<String>) {
    let mut request = Request::post("/v1/events").header("content-type", content_type);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    send(state, request, body).await
}

/// Sends one request to the collector: its status, JSON body (null if none) and
/// `Retry-After`.
async fn send(
    state: &CollectorState,
    request: axum::http::request::Builder,
    body: Vec<u8>,
) -> (StatusCode, Value, Option<String>) {
    let response = router(state.clone())
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        retry_after,
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn bad_input_is_refused_with_exact_statuses_and_bodies() {
    // Nothing here reaches Kafka: every case is refused before producing.
    let config = CollectorConfig {
        max_body_bytes: 4096,
        max_events_per_batch: 3,
        ..Default::default()
    };
    let state = state(
        &KafkaConfig::local("127.0.0.1:1"),
        "http://127.0.0.1:1",
        "unused",
        config,
    );
    let good = serde_json::to_vec(&json!([event("u1", "click")])).unwrap();

    let (status, body, _) = post(&state, "text/plain", None, good.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    let (status, body, _) = post(&state, "application/json", Some("br"), good.clone()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    let (status, body, _) = post(&state, "application/json", None, vec![b' '; 5000]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body,
        json!({"error": "body_too_large", "message": "the body is larger than 4096 bytes (after decompression)"})
    );
    // A small gzip body that inflates past the limit (a zip bomb) is refused the same way.
    let (status, body, _) = post(
        &state,
        "application/json",
        Some("gzip"),
        gzip(&vec![b' '; 100_000]),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    let (status, body, _) = post(
        &state,
        "application/json",
        Some("gzip"),
        b"not gzip".to_vec(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_body"))
    );
    let four: Vec<Value> = (0..4).map(|i| event(&format!("u{i}"), "click")).collect();
    let (status, body, _) = post(
        &state,
        "application/json",
        None,
        serde_json::to_vec(&four).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body,
        json!({"error": "too_many_events", "message": "the batch holds 4 events; at most 3 are accepted per request"})
    );
    let (status, body, _) = post(
        &state,
        "application/json",
        None,
        b"[{\"event_id\": ".to_vec(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_body"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("the body is not valid JSON: "),
        "{body}"
    );
    let (status, body, _) = post(&state, "application/json", None, b"{\"a\": 1}".to_vec()).await;
    assert_eq!(
        body,
        json!({"error": "malformed_body", "message": "expected a JSON array of events, found an object"})
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body, _) = post(
        &state,
        "application/x-ndjson",
        None,
        b"{}\n{oops\n".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("line 2 is not valid JSON"),
        "{body}"
    );
    let (status, body, _) = post(&state, "application/json", None, b"[]".to_vec()).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "empty_batch", "message": "the batch holds no events"})
        )
    );

    // Invalid events: every problem, with index, field and code; nothing is written.
    let mut unknown_type = event("u2", "teleport");
    unknown_type["occurred_at"] = json!(now_ms() + 3_600_000);
    let mut no_user = event("u3", "click");
    no_user.as_object_mut().unwrap().remove("user_id");
    let batch = json!([event("u1", "click"), unknown_type, no_user]);
    let (status, body, _) = post(
        &state,
        "application/json",
        None,
        serde_json::to_vec(&batch).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], json!("invalid_events"));
    assert_eq!(
        body["message"],
        json!("2 event(s) are invalid; nothing was written")
    );
    let found: Vec<(u64, &str, &str)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["field"].as_str().unwrap(),
                e["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (1, "event_type", "unknown_event_type"),
            (1, "occurred_at", "in_the_future"),
            (2, "user_id", "missing")
        ]
    );
}

async fn read_back(topic: &str, registry: &str, count: usize) -> Vec<(i32, i64, Interaction)> {
    let consumer: StreamConsumer = kafka().consumer(&unique("reader")).create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let decoder = InteractionDecoder::new(
        RegistryClient::new(registry).unwrap(),
        eventfold::contracts::interaction_schema(eventfold::contracts::InteractionVersion::LATEST)
            .unwrap(),
    );
    let mut out = Vec::new();
    while out.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("records arrive")
            .unwrap();
        out.push((
            message.partition(),
            message.offset(),
            decoder.decode(message.payload()).await.unwrap(),
        ));
    }
    out
}

#[tokio::test]
async fn accepted_batches_are_durable_with_offsets_and_a_token() {
    let registry = TestRegistry::fresh().await;
    let topic = fresh_topic("collected", 3).await;
    let state = state(&kafka(), &registry.url, &topic, CollectorConfig::default());
    let batch: Vec<Value> = (0..5)
        .map(|i| event(&format!("user-{i}"), "page_view"))
        .collect();
    let ndjson: Vec<Value> = (0..3)
        .map(|i| event(&format!("user-{i}"), "purchase"))
        .collect();
    let gzipped: Vec<Value> = vec![event("user-9", "search")];

    let (status, json_answer, _) = post(
        &state,
        "application/json; charset=utf-8",
        None,
        serde_json::to_vec(&batch).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json_answer}");
    let lines: String = ndjson.iter().map(|e| format!("{e}\n")).collect();
    let (status, ndjson_answer, _) =
        post(&state, "application/x-ndjson", None, lines.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{ndjson_answer}");
    let (status, gzip_answer, _) = post(
        &state,
        "application/json",
        Some("gzip"),
        gzip(&serde_json::to_vec(&gzipped).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{gzip_answer}");
    assert_eq!(
        (
            json_answer["accepted"].clone(),
            ndjson_answer["accepted"].clone(),
            gzip_answer["accepted"].clone()
        ),
        (json!(5), json!(3), json!(1))
    );

    // Each answer names where every event went; the token holds the highest offset per partition.
    let mut placed = BTreeMap::new();
    for (answer, sent) in [
        (&json_answer, &batch),
        (&ndjson_answer, &ndjson),
        (&gzip_answer, &gzipped),
    ] {
        let token =
            ConsistencyToken::decode(answer["consistency_token"].as_str().unwrap()).unwrap();
        assert_eq!(token.topic, topic);
        let mut highest = BTreeMap::new();
        for (i, placed_event) in answer["events"].as_array().unwrap().iter().enumerate() {
            assert_eq!(placed_event["index"], json!(i));
            let (p, o) = (
                placed_event["partition"].as_i64().unwrap() as i32,
                placed_event["offset"].as_i64().unwrap(),
            );
            placed.insert((p, o), sent[i]["event_id"].as_str().unwrap().to_owned());
            let h = highest.entry(p).or_insert(o);
            *h = (*h).max(o);
        }
        assert_eq!(token.offsets, highest);
    }
    let records = read_back(&topic, &registry.url, 9).await;
    for (partition, offset, event) in &records {
        assert_eq!(placed.get(&(*partition, *offset)), Some(&event.event_id));
    }
    let sent: Vec<&Value> = batch.iter().chain(&ndjson).chain(&gzipped).collect();
    for original in sent {
        let read = records
            .iter()
            .find(|(_, _, e)| e.event_id == original["event_id"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::to_value(read.2.event_type).unwrap(),
            original["event_type"]
        );
        assert_eq!(read.2.user_id, original["user_id"].as_str().unwrap());
        assert_eq!(read.2.value, Some(9.5));
        assert_eq!(read.2.properties["ref"], "newsletter");
    }
    registry.stop().await;
}

#[tokio::test]
async fn a_stalled_broker_gets_503_and_no_acknowledged_event_is_lost() {
    let broker = OwnBroker::start(Storage::Memory, None);
    let own_kafka = broker.kafka();
    let registry = TestRegistry::fresh().await;
    let topic = broker.fresh_topic("stall", 2).await;
    let config = CollectorConfig {
        delivery_timeout_ms: 1500,
        ..Default::default()
    };
    let state = state(&own_kafka, &registry.url, &topic, config);

    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut retry_after_seen = false;
    for round in 0..30 {
        if round == 10 {
            broker.signal("-STOP");
        }
        if round == 16 {
            broker.signal("-CONT");
        }
        let batch: Vec<Value> = (0..10)
            .map(|i| event(&format!("user-{i}"), "click"))
            .collect();
        let (status, body, retry_after) = post(
            &state,
            "application/json",
            None,
            serde_json::to_vec(&batch).unwrap(),
        )
        .await;
        match status {
            StatusCode::OK => {
                for placed in body["events"].as_array().unwrap() {
                    acknowledged.push(
                        batch[placed["index"].as_u64().unwrap() as usize]["event_id"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                    );
                }
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                retry_after_seen |= retry_after.as_deref() == Some("1");
                assert_eq!(body["error"], json!("unavailable"));
                // Events the broker did acknowledge are listed; they are durable too.
                for placed in body["accepted"].as_array().unwrap() {
                    acknowledged.push(
                        batch[placed["index"].as_u64().unwrap() as usize]["event_id"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                    );
                }
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        refused >= 5,
        "the stalled broker should have produced 503s, got {refused}"
    );
    assert!(retry_after_seen, "503 answers carry Retry-After");
    assert!(
        acknowledged.len() >= 200,
        "before and after the stall batches succeed: {}",
        acknowledged.len()
    );

    // Every acknowledged event is in the topic (read until all seen; a late delivery of a
    // timed-out event may add extra copies, which workers count once).
    let consumer: StreamConsumer = own_kafka.consumer(&unique("verify")).create().unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let decoder = InteractionDecoder::new(
        RegistryClient::new(registry.url.clone()).unwrap(),
        eventfold::contracts::interaction_schema(eventfold::contracts::InteractionVersion::LATEST)
            .unwrap(),
    );
    let mut missing: std::collections::HashSet<String> = acknowledged.iter().cloned().collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !missing.is_empty() {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("{} acknowledged events missing", missing.len()))
            .unwrap();
        missing.remove(&decoder.decode(message.payload()).await.unwrap().event_id);
    }
    registry.stop().await;
}

/// Posts one event as `key` (in `X-Eventfold-Key`, or as a bearer token when `bearer`).
async fn post_as(
    state: &CollectorState,
    key: Option<&str>,
    bearer: bool,
    event: &Value,
) -> (StatusCode, Value, Option<String>) {
    let mut request = Request::post("/v1/events").header("content-type", "application/json");
    match (key, bearer) {
        (Some(key), false) => request = request.header("x-eventfold-key", key),
        (Some(key), true) => request = request.header("authorization", format!("Bearer {key}")),
        (None, _) => {}
    }
    let body = serde_json::to_vec(&json!([event])).unwrap();
    send(state, request, body).await
}

#[tokio::test]
async fn write_keys_refuse_strangers_and_limit_each_app_separately() {
    let registry = TestRegistry::fresh().await;
    let topic = fresh_topic("keyed", 1).await;
    let config = CollectorConfig {
        write_keys: vec![
            WriteKey {
                app: "web".to_owned(),
                key_sha256: SecretDigest::of(b"web-secret"),
                rate_per_second: Some(0.1),
                burst: Some(2),
            },
            WriteKey {
                app: "ios".to_owned(),
                key_sha256: SecretDigest::of(b"ios-secret"),
                rate_per_second: None,
                burst: None,
            },
        ],
        ..Default::default()
    };
    let state = state(&kafka(), &registry.url, &topic, config);

    let (status, body, _) = post_as(&state, None, false, &event("u0", "click")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"error": "missing_key", "message": "send the app's write key in x-eventfold-key or Authorization: Bearer"})
    );
    let (status, body, _) = post_as(&state, Some("web-secreT"), false, &event("u0", "click")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"error": "invalid_key", "message": "the write key is not known"})
    );

    let mut accepted = Vec::new();
    for (key, bearer) in [("web-secret", false), ("web-secret", true)] {
        let sent = event("u1", "click");
        let (status, body, _) = post_as(&state, Some(key), bearer, &sent).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        accepted.push(sent["event_id"].clone());
    }
    // web's burst of 2 is spent and it refills at 0.1/s: the next token is ~10 s away.
    let (status, body, retry_after) =
        post_as(&state, Some("web-secret"), false, &event("u2", "click")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.as_deref(), Some("10"));
    assert_eq!(
        body,
        json!({"error": "rate_limited", "message": "this app sends more requests than it may; retry after 10 s"})
    );
    // Another app's key is not limited by web's bucket.
    let sent = event("u3", "click");
    let (status, body, _) = post_as(&state, Some("ios-secret"), false, &sent).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["events"],
        json!([{"index": 0, "partition": 0, "offset": 2}])
    );
    accepted.push(sent["event_id"].clone());

    // Offsets 0, 1, 2 hold exactly the three accepted events: nothing refused was produced.
    let records = read_back(&topic, &registry.url, 3).await;
    let found: Vec<(i32, i64, Value)> = records
        .into_iter()
        .map(|(partition, offset, event)| (partition, offset, json!(event.event_id.to_string())))
        .collect();
    let expected: Vec<(i32, i64, Value)> = accepted
        .into_iter()
        .enumerate()
        .map(|(i, id)| (0, i as i64, id))
        .collect();
    assert_eq!(found, expected);
    registry.stop().await;
}

#[tokio::test]
async fn cors_preflight_answers_only_allowed_origins() {
    let config = CollectorConfig {
        cors_allowed_origins: vec!["https://shop.example".to_owned()],
        ..Default::default()
    };
    let state = state(
        &KafkaConfig::local("127.0.0.1:1"),
        "http://127.0.0.1:1",
        "unused",
        config,
    );
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/v1/events")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-eventfold-key",
            )
            .body(Body::empty())
            .unwrap()
    };
    let allowed = router(state.clone())
        .oneshot(preflight("https://shop.example"))
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    let header = |name: &str| {
        allowed
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        (
            header("access-control-allow-origin"),
            header("access-control-allow-methods"),
            header("access-control-allow-headers"),
        ),
        (
            Some("https://shop.example".to_owned()),
            Some("POST".to_owned()),
            Some("content-type,content-encoding,x-eventfold-key,traceparent".to_owned()),
        )
    );
    let denied = router(state)
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(denied.headers().get("access-control-allow-origin"), None);
}

/// A log sink the test reads back.
#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn keys_and_tokens_never_reach_the_log() {
    let log = CapturedLog::default();
    let sink = log.clone();
    let _subscriber = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish(),
    );
    let config = CollectorConfig {
        write_keys: vec![WriteKey {
            app: "web".to_owned(),
            key_sha256: SecretDigest::of(b"web-secret"),
            rate_per_second: None,
            burst: None,
        }],
        ..Default::default()
    };
    let state = state(
        &KafkaConfig::local("127.0.0.1:1"),
        "http://127.0.0.1:1",
        "unused",
        config,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/events", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(eventfold::http::serve(
        listener,
        router(state),
        None,
        stop.clone(),
    ));
    let client = reqwest::Client::new();
    let refused = client
        .post(format!("{url}?token=query-secret"))
        .header("content-type", "application/json")
        .header("x-eventfold-key", "wrong-secret")
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let empty = client
        .post(&url)
        .header("content-type", "application/json")
        .header("authorization", "Bearer web-secret")
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 400);
    stop.cancel();
    server.await.unwrap().unwrap();

    let printed = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(printed.contains("path=/v1/events"), "{printed}");
    for secret in ["wrong-secret", "web-secret", "query-secret"] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
}
