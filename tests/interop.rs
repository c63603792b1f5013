//! Interoperability with clients nobody here wrote, against the real broker: Confluent's
//! Python client (confluent-kafka: librdkafka, `SchemaRegistryClient`, `AvroSerializer`,
//! `AvroDeserializer`, driven by `tests/interop/confluent_client.py`) registers in OUR
//! registry and produces events our worker folds exactly, and decodes the events our
//! producer writes to exactly the values sent.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{call, kafka, python, unique, TestRegistry};
use eventfold::contracts::{EventType, Interaction};
use eventfold::ingest::{EventGenerator, EventProducer};
use eventfold::kafka::{ensure_topic, TopicSpec};
use eventfold::registry::RegistryClient;
use eventfold::store::SqliteStore;
use eventfold::worker::{Worker, WorkerConfig};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/confluent_client.py"
);
const SCHEMA_V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/interaction/v1.avsc");
/// 2025-11-24T16:00:00Z: a fixed start so every run generates the same events.
const START_MS: i64 = 1_764_000_000_000;

/// Runs the Python client with `args`; panics with its stderr unless it succeeds, and
/// returns its stdout parsed as JSON.
async fn confluent_client(args: Vec<String>) -> Value {
    let python = python();
    let shown = format!("{python} {SCRIPT} {}", args.join(" "));
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(SCRIPT)
            .args(&args)
            .env("PYTHONUNBUFFERED", "1")
            .output()
    })
    .await
    .expect("the Python task ran")
    .unwrap_or_else(|e| panic!("cannot run `{shown}`: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`{shown}` failed ({}):\nstderr:\n{stderr}\nstdout:\n{stdout}",
        output.status
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("`{shown}` printed no JSON ({e}):\n{stdout}\nstderr:\n{stderr}"))
}

async fn create_topic(name: &str) {
    ensure_topic(
        &kafka(),
        &TopicSpec {
            name,
            partitions: 3,
            replication: 1,
            configs: &[],
        },
    )
    .await
    .expect("topic created");
}

/// An event in the JSON shape of contract v1 (the v2-only fields dropped).
fn v1_json(event: &Interaction) -> Value {
    let mut value = serde_json::to_value(event).expect("an event serializes");
    let fields = value.as_object_mut().expect("an event is a JSON object");
    fields.remove("value");
    fields.remove("device");
    value
}

fn expected_counts(events: &[Interaction]) -> BTreeMap<String, BTreeMap<EventType, u64>> {
    let mut counts: BTreeMap<String, BTreeMap<EventType, u64>> = BTreeMap::new();
    for event in events {
        *counts
            .entry(event.user_id.clone())
            .or_default()
            .entry(event.event_type)
            .or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_producer_events_are_folded_by_eventfold() {
    const EVENTS: usize = 200;
    let kafka = kafka();
    let registry = TestRegistry::fresh().await;
    let topic = unique("interop-python-in");
    create_topic(&topic).await;

    // Deterministic v1 events, some with properties so the map is exercised too.
    let mut events: Vec<Interaction> = EventGenerator::new(4242, 17, 30, START_MS)
        .take(EVENTS)
        .collect();
    for (index, event) in events.iter_mut().enumerate() {
        if index % 5 == 0 {
            event.properties = BTreeMap::from([
                (
                    "referrer".to_owned(),
                    format!("https://example.com/{index}"),
                ),
                ("query".to_owned(), "héllo wörld".to_owned()),
            ]);
        }
        if index % 11 == 0 {
            event.app = "ios".to_owned();
        }
    }
    let dir = tempfile::TempDir::new().expect("temp dir");
    let events_file = dir.path().join("events.json");
    let array = Value::Array(events.iter().map(v1_json).collect());
    std::fs::write(&events_file, serde_json::to_vec(&array).unwrap()).expect("events written");

    let produced = confluent_client(vec![
        "produce".into(),
        "--brokers".into(),
        kafka.bootstrap_servers.clone(),
        "--registry".into(),
        registry.url.clone(),
        "--topic".into(),
        topic.clone(),
        "--schema".into(),
        SCHEMA_V1.into(),
        "--events".into(),
        events_file.display().to_string(),
    ])
    .await;
    assert_eq!(produced["produced"], json!(EVENTS), "{produced}");
    let schema_id = produced["schema_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no schema id in {produced}"));

    // Python registered the schema under <topic>-value (TopicNameStrategy) as version 1,
    // with the id its serializer framed the events with.
    let subject = format!("{topic}-value");
    let versions = call(
        &registry.url,
        "GET",
        &format!("/subjects/{subject}/versions"),
        None,
    )
    .await;
    assert_eq!((versions.status, versions.body), (200, json!([1])));
    let version = call(
        &registry.url,
        "GET",
        &format!("/subjects/{subject}/versions/1"),
        None,
    )
    .await;
    assert_eq!(version.status, 200, "{}", version.body);
    assert_eq!(version.body["id"], json!(schema_id), "{}", version.body);
    assert_eq!(version.body["subject"], json!(subject));

    // Our worker folds them.
    let store_dir = tempfile::TempDir::new().expect("temp dir");
    let store = SqliteStore::open(&store_dir.path().join("fold.db")).expect("store opens");
    let worker = Worker::build(
        &kafka,
        WorkerConfig {
            topic: topic.clone(),
            group_id: unique("interop-workers"),
            dead_letter_topic: unique("interop-dead-letter"),
            ..WorkerConfig::default()
        },
        RegistryClient::new(registry.url.clone()).expect("registry client"),
        Arc::new(store.clone()),
    )
    .await
    .expect("worker builds");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let partitions = loop {
        let partitions = store.partitions().await.expect("progress reads");
        let read: u64 = partitions.iter().map(|p| p.read).sum();
        if read >= EVENTS as u64 {
            break partitions;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker read {read} of {EVENTS} events within 60 s: {partitions:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    shutdown.cancel();
    running.await.expect("the worker stopped cleanly");

    let sum = |f: fn(&eventfold::store::PartitionStatus) -> u64| -> u64 {
        partitions.iter().map(f).sum()
    };
    assert_eq!(sum(|p| p.read), EVENTS as u64, "{partitions:?}");
    assert_eq!(sum(|p| p.folded), EVENTS as u64, "{partitions:?}");
    assert_eq!(sum(|p| p.duplicates), 0, "{partitions:?}");
    assert_eq!(sum(|p| p.dead_lettered), 0, "{partitions:?}");
    assert!(
        partitions.iter().all(|p| p.topic == topic),
        "{partitions:?}"
    );
    assert_eq!(
        store.all_user_event_counts().await.expect("counts read"),
        expected_counts(&events)
    );

    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eventfold_events_decode_with_confluent_deserializer() {
    const EVENTS: usize = 50;
    let kafka = kafka();
    let registry = TestRegistry::fresh().await;
    let topic = unique("interop-python-out");
    create_topic(&topic).await;

    // Deterministic events exercising every v2 field: values (prices) on cart/purchase, a
    // device with and without versions, properties, a missing item.
    let mut events: Vec<Interaction> = EventGenerator::new(777, 9, 20, START_MS)
        .take(EVENTS)
        .collect();
    for (index, event) in events.iter_mut().enumerate() {
        if index % 3 == 0 {
            event.device.platform = "ios".to_owned();
            event.device.os_version = Some(format!("18.{}", index % 4));
        }
        if index % 4 == 0 {
            event.device.app_version = Some("2.1.0".to_owned());
        }
        if index % 7 == 0 {
            event.value = Some(index as f64 * 1.5 + 0.25);
            event.properties = BTreeMap::from([
                ("coupon".to_owned(), "XMAS".to_owned()),
                ("note".to_owned(), "ünïcode ✓".to_owned()),
            ]);
        }
        if index % 9 == 0 {
            event.item_id = None;
        }
    }

    let producer = EventProducer::new(&kafka, &registry.url, &topic).expect("producer");
    for event in &events {
        producer.send(event).await.expect("event acknowledged");
    }

    let decoded = confluent_client(vec![
        "consume".into(),
        "--brokers".into(),
        kafka.bootstrap_servers.clone(),
        "--registry".into(),
        registry.url.clone(),
        "--topic".into(),
        topic.clone(),
        "--count".into(),
        EVENTS.to_string(),
        "--timeout-s".into(),
        "60".into(),
        "--group".into(),
        unique("interop-python-readers"),
    ])
    .await;

    let mut sent = events.clone();
    sent.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    let expected: Vec<Value> = sent
        .iter()
        .map(|e| serde_json::to_value(e).expect("an event serializes"))
        .collect();
    let decoded = decoded.as_array().expect("a JSON array").clone();
    assert_eq!(decoded.len(), EVENTS);
    for (got, want) in decoded.iter().zip(&expected) {
        assert_eq!(got, want);
    }
    // And back: the decoded JSON reads as exactly the events sent.
    let back: Vec<Interaction> = decoded
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("decoded JSON is an Interaction"))
        .collect();
    assert_eq!(back, sent);

    registry.stop().await;
}
