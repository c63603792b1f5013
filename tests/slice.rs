//! The first end-to-end slice against a real broker: events produced in the Confluent wire
//! format are folded by consumer-group workers into per-user, per-type counts, exactly once
//! in effect — with duplicates, undecodable records, restarts and a second worker.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{kafka, unique, wait_for_read, TestRegistry};
use eventfold::contracts::{EventType, Interaction};
use eventfold::ingest::{EventGenerator, EventProducer};
use eventfold::kafka::{ensure_topic, TopicSpec};
use eventfold::registry::{InteractionEncoder, RegistryClient};
use eventfold::store::SqliteStore;
use eventfold::worker::{Worker, WorkerConfig};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type Counts = BTreeMap<String, BTreeMap<EventType, u64>>;

fn expected_counts(events: &[Interaction]) -> Counts {
    let mut seen = std::collections::HashSet::new();
    let mut counts = Counts::new();
    for event in events {
        if seen.insert(event.event_id.clone()) {
            *counts
                .entry(event.user_id.clone())
                .or_default()
                .entry(event.event_type)
                .or_insert(0) += 1;
        }
    }
    counts
}

struct Setup {
    registry: TestRegistry,
    topic: String,
    group: String,
    dead_letters: String,
}

impl Setup {
    async fn new(partitions: i32) -> Setup {
        let registry = TestRegistry::fresh().await;
        let topic = unique("interactions");
        ensure_topic(
            &kafka(),
            &TopicSpec {
                name: &topic,
                partitions,
                replication: 1,
                configs: &[],
            },
        )
        .await
        .unwrap();
        Setup {
            registry,
            group: unique("workers"),
            dead_letters: format!("{topic}-dlq"),
            topic,
        }
    }

    fn config(&self) -> WorkerConfig {
        WorkerConfig {
            topic: self.topic.clone(),
            group_id: self.group.clone(),
            dead_letter_topic: self.dead_letters.clone(),
            batch_max_events: 50,
            batch_linger_ms: 20,
            ..WorkerConfig::default()
        }
    }

    async fn produce(&self, events: &[Interaction]) {
        let producer = EventProducer::new(&kafka(), &self.registry.url, &self.topic).unwrap();
        futures::future::try_join_all(events.iter().map(|e| producer.send(e)))
            .await
            .unwrap();
    }

    async fn start_worker(&self, store: &SqliteStore) -> (CancellationToken, JoinHandle<()>) {
        let registry = RegistryClient::new(self.registry.url.clone()).unwrap();
        let worker = Worker::build(&kafka(), self.config(), registry, Arc::new(store.clone()))
            .await
            .unwrap();
        let stop = CancellationToken::new();
        (stop.clone(), tokio::spawn(worker.run(stop)))
    }
}

fn events(seed: u64, count: usize) -> Vec<Interaction> {
    EventGenerator::new(seed, 40, 20, 1_764_000_000_000)
        .take(count)
        .collect()
}

#[tokio::test]
async fn duplicates_count_once_and_bad_records_are_dead_lettered() {
    let setup = Setup::new(3).await;
    let mut sent = events(1, 600);
    sent.extend(sent[100..130].to_vec()); // apps retry: same event_id, same user key
    setup.produce(&sent).await;
    let raw: FutureProducer = kafka().producer().create().unwrap();
    let bad: [(&str, Vec<u8>); 4] = [
        ("corrupt", b"not avro at all".to_vec()),
        ("wrong_magic", vec![1, 0, 0, 0, 1, 2, 3]),
        ("unknown_id", vec![0, 0x7f, 0xff, 0xff, 0xff, 2, 3]),
        ("truncated", vec![0, 0]),
    ];
    for (key, payload) in &bad {
        raw.send(
            FutureRecord::to(&setup.topic).key(*key).payload(payload),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let (stop, worker) = setup.start_worker(&store).await;
    wait_for_read(&store, 634).await;

    assert_eq!(
        store.all_user_event_counts().await.unwrap(),
        expected_counts(&sent)
    );
    let partitions = store.partitions().await.unwrap();
    let sum =
        |f: fn(&eventfold::store::PartitionStatus) -> u64| partitions.iter().map(f).sum::<u64>();
    assert_eq!(
        (
            sum(|p| p.read),
            sum(|p| p.folded),
            sum(|p| p.duplicates),
            sum(|p| p.dead_lettered)
        ),
        (634, 600, 30, 4)
    );
    for p in &partitions {
        assert_eq!(
            p.read,
            p.folded + p.duplicates + p.dead_lettered,
            "partition {}",
            p.partition
        );
    }

    // The dead-letter topic holds the 4 records unchanged, with the reason and their origin.
    let consumer: StreamConsumer = kafka().consumer(&unique("dlq-reader")).create().unwrap();
    consumer.subscribe(&[&setup.dead_letters]).unwrap();
    let mut reasons = BTreeMap::new();
    while reasons.len() < 4 {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap()
            .unwrap();
        let headers: BTreeMap<String, String> = message
            .headers()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    String::from_utf8_lossy(h.value.unwrap()).into_owned(),
                )
            })
            .collect();
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        let original = bad.iter().find(|(k, _)| *k == key).unwrap();
        assert_eq!(message.payload().unwrap(), original.1.as_slice());
        assert_eq!(headers["eventfold.source.topic"], setup.topic);
        assert!(headers["eventfold.source.offset"].parse::<i64>().is_ok());
        assert!(!headers["eventfold.error.message"].is_empty());
        reasons.insert(key, headers["eventfold.error.reason"].clone());
    }
    assert_eq!(
        reasons,
        BTreeMap::from([
            ("corrupt".to_owned(), "wrong_magic_byte".to_owned()),
            ("truncated".to_owned(), "truncated".to_owned()),
            ("unknown_id".to_owned(), "unknown_schema_id".to_owned()),
            ("wrong_magic".to_owned(), "wrong_magic_byte".to_owned()),
        ])
    );
    stop.cancel();
    worker.await.unwrap();
    setup.registry.stop().await;
}

/// The fold loop claims the `event_id`s of the records it has fetched before it decodes
/// them, read off their first bytes: a record whose first bytes are an event's and whose rest
/// is broken is dead-lettered and gives its claim back, so the event's own record right
/// behind it in the partition is folded, not taken for a duplicate.
#[tokio::test]
async fn a_broken_record_does_not_make_the_next_record_with_its_id_a_duplicate() {
    let setup = Setup::new(1).await;
    let sent = events(3, 21);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let (stop, worker) = setup.start_worker(&store).await;
    // The partition is held once its first record is folded: later records' ids are claimed.
    setup.produce(&sent[..1]).await;
    wait_for_read(&store, 1).await;
    let encoder = InteractionEncoder::new(setup.registry.url.as_str(), &setup.topic);
    let mut records = Vec::new();
    for event in &sent[1..] {
        let whole = encoder.encode(event).await.unwrap();
        // The framed event cut after its id (one length byte), then an enum index that is
        // no symbol of EventType (zig-zag 63).
        assert!(event.event_id.len() < 64);
        let mut broken = whole[..5 + 1 + event.event_id.len()].to_vec();
        broken.push(0x7e);
        records.push((event.user_id.clone(), broken));
        records.push((event.user_id.clone(), whole));
    }
    // Sent together, so the worker fetches and claims them together.
    let raw: FutureProducer = kafka().producer().create().unwrap();
    futures::future::try_join_all(records.iter().map(|(key, payload)| {
        raw.send(
            FutureRecord::to(&setup.topic).key(key).payload(payload),
            Duration::from_secs(5),
        )
    }))
    .await
    .unwrap();
    wait_for_read(&store, 41).await;

    assert_eq!(
        store.all_user_event_counts().await.unwrap(),
        expected_counts(&sent)
    );
    assert_eq!(
        common::fold::accounting(&store).await,
        (41, 21, 0, 0, 20),
        "(read, folded, late, duplicates, dead-lettered)"
    );
    stop.cancel();
    worker.await.unwrap();
    setup.registry.stop().await;
}

#[tokio::test]
async fn a_restarted_worker_resumes_from_the_store_without_double_counting() {
    let setup = Setup::new(3).await;
    let first = events(2, 400);
    setup.produce(&first).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let (stop, worker) = setup.start_worker(&store).await;
    wait_for_read(&store, 400).await;
    stop.cancel();
    worker.await.unwrap();

    let second = events(3, 300);
    setup.produce(&second).await;
    let (stop, worker) = setup.start_worker(&store).await;
    wait_for_read(&store, 700).await;
    let all: Vec<Interaction> = first.iter().chain(&second).cloned().collect();
    assert_eq!(
        store.all_user_event_counts().await.unwrap(),
        expected_counts(&all)
    );
    // A worker in a new group (Kafka offsets from the beginning) still folds nothing twice:
    // the store's offsets, not Kafka's, decide where a partition resumes.
    stop.cancel();
    worker.await.unwrap();
    let fresh_group = Setup {
        group: unique("other-group"),
        ..setup
    };
    let (stop, worker) = fresh_group.start_worker(&store).await;
    fresh_group.produce(&events(4, 10)).await;
    wait_for_read(&store, 710).await;
    let all: Vec<Interaction> = all.into_iter().chain(events(4, 10)).collect();
    assert_eq!(
        store.all_user_event_counts().await.unwrap(),
        expected_counts(&all)
    );
    stop.cancel();
    worker.await.unwrap();
    fresh_group.registry.stop().await;
}

#[tokio::test]
async fn two_workers_share_the_partitions_and_one_takes_over_when_the_other_stops() {
    let setup = Setup::new(4).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let (stop_a, worker_a) = setup.start_worker(&store).await;
    let (stop_b, worker_b) = setup.start_worker(&store).await;
    let first = events(5, 800);
    setup.produce(&first).await;
    wait_for_read(&store, 800).await;
    stop_a.cancel();
    worker_a.await.unwrap();
    let second = events(6, 400);
    setup.produce(&second).await;
    wait_for_read(&store, 1200).await;
    let all: Vec<Interaction> = first.iter().chain(&second).cloned().collect();
    assert_eq!(
        store.all_user_event_counts().await.unwrap(),
        expected_counts(&all)
    );
    let partitions = store.partitions().await.unwrap();
    assert_eq!(partitions.len(), 4);
    assert_eq!(partitions.iter().map(|p| p.folded).sum::<u64>(), 1200);
    stop_b.cancel();
    worker_b.await.unwrap();
    setup.registry.stop().await;
}
