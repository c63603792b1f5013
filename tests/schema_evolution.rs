//! Schema evolution in flight, against the real broker: v1 and v2 events mixed in one topic
//! (a user's events span both versions) fold exactly with a v2 reader and with a v1 reader,
//! and an event of a newer writer ("v3", one more `EventType` symbol) reads as `unknown`
//! with the v2 reader instead of being dead-lettered.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use common::{call, kafka, unique, TestRegistry};
use eventfold::contracts::{
    frame, interaction_schema, Device, EventType, Interaction, InteractionVersion,
};
use eventfold::ingest::EventProducer;
use eventfold::kafka::{ensure_topic, TopicSpec};
use eventfold::pipeline::AggregateResult;
use eventfold::registry::RegistryClient;
use eventfold::store::{ReadStore, SqliteStore};
use eventfold::worker::{Worker, WorkerConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The pipeline name every test pipeline uses (the store keys results by it).
const PIPELINE: &str = "evo";
/// Minute-aligned event-time origin (1_764_000_000_000 is a multiple of 60_000).
const START_MS: i64 = 1_764_000_000_000;
const WINDOW_MS: i64 = 60_000;

/// The schema an event was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// `schemas/interaction/v1.avsc`, encoded here with apache-avro.
    V1,
    /// The newest contract, written by [`EventProducer`].
    V2,
    /// v2 plus the `EventType` symbol "refund", encoded here with apache-avro.
    V3,
}

/// One event as sent: the writer, the event (for v3 refunds, `event_type` is a placeholder:
/// the datum carries "refund"), and the framed bytes for writers other than v2.
struct Sent {
    writer: Writer,
    refund: bool,
    event: Interaction,
    payload: Option<Vec<u8>>,
}

impl Sent {
    /// The event as a reader of `reader` must see it: fields the writer lacks take the
    /// reader's defaults, fields the reader lacks are dropped, unknown symbols are `unknown`.
    fn as_read_by(&self, reader: InteractionVersion) -> Interaction {
        let mut read = self.event.clone();
        if self.writer == Writer::V1 || reader == InteractionVersion::V1 {
            read.value = None;
            read.device = Device::default();
        }
        if self.refund {
            read.event_type = EventType::Unknown;
        }
        read
    }
}

/// The v3 schema text: v2 with one more enum symbol.
fn v3_text() -> String {
    let v2 = InteractionVersion::V2.text();
    let v3 = v2.replace("\"purchase\"]", "\"purchase\", \"refund\"]");
    assert_ne!(v3, v2, "the v3 edit must change the v2 text");
    v3
}

/// Frames `event` written with `schema` (registered as `id`): v1 drops `value` and `device`.
fn encode(schema: &Schema, id: u32, writer: Writer, refund: bool, event: &Interaction) -> Vec<u8> {
    let mut record = event.to_avro();
    let Value::Record(fields) = &mut record else {
        panic!("to_avro yields a record")
    };
    if writer == Writer::V1 {
        fields.retain(|(name, _)| name != "value" && name != "device");
    }
    if refund {
        let slot = fields
            .iter_mut()
            .find(|(name, _)| name == "event_type")
            .expect("event_type field");
        slot.1 = Value::Enum(9, "refund".into());
    }
    let datum = GenericDatumWriter::builder(schema)
        .build()
        .expect("datum writer")
        .write_value_to_vec(record)
        .expect("the record fits its writer schema");
    frame(id, &datum)
}

const TYPES: [EventType; 8] = [
    EventType::PageView,
    EventType::Click,
    EventType::Play,
    EventType::Pause,
    EventType::Skip,
    EventType::Search,
    EventType::AddToCart,
    EventType::Purchase,
];
const PLATFORMS: [&str; 3] = ["ios", "android", "web"];
const APPS: [&str; 3] = ["web", "ios", "android"];

/// Event `i` of user `i % users`: deterministic type, time (1 s apart, in order), value
/// (multiples of 0.25, so every sum is exact) and device.
fn event(i: usize, users: usize) -> Interaction {
    let user = i % users;
    let nth = i / users;
    Interaction {
        event_id: format!("evo-{i:05}"),
        event_type: TYPES[(i * 5 + i / 8 * 3) % TYPES.len()],
        user_id: format!("user-{user}"),
        session_id: format!("s-{user}-{}", nth / 10),
        item_id: Some(format!("item-{}", i % 13)),
        occurred_at: START_MS + i as i64 * 1_000 + 250,
        app: APPS[user % APPS.len()].to_owned(),
        properties: BTreeMap::from([("n".to_owned(), i.to_string())]),
        value: Some(1.0 + (i % 40) as f64 * 0.25),
        device: Device {
            platform: PLATFORMS[i % PLATFORMS.len()].to_owned(),
            os_version: Some("18.1".to_owned()),
            app_version: None,
        },
    }
}

/// Registers `text` under `subject`; returns its id.
async fn register(registry: &TestRegistry, subject: &str, text: &str) -> u32 {
    let body = serde_json::json!({ "schema": text }).to_string();
    let answer = call(
        &registry.url,
        "POST",
        &format!("/subjects/{subject}/versions"),
        Some(&body),
    )
    .await;
    assert_eq!(
        answer.status, 200,
        "register under {subject}: {}",
        answer.body
    );
    answer.body["id"].as_u64().expect("an id") as u32
}

async fn versions(registry: &TestRegistry, subject: &str) -> serde_json::Value {
    let answer = call(
        &registry.url,
        "GET",
        &format!("/subjects/{subject}/versions"),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

async fn topic(prefix: &str) -> String {
    let topic = unique(prefix);
    ensure_topic(
        &kafka(),
        &TopicSpec {
            name: &topic,
            partitions: 3,
            replication: 1,
            configs: &[],
        },
    )
    .await
    .expect("topic created");
    topic
}

/// Produces every event, keyed by user, in order within chunks of 20 (at most ~20 s of
/// event-time disorder, far from the 35 s a record needs to be late).
async fn produce(registry: &TestRegistry, topic: &str, sent: &[Sent]) {
    let producer = EventProducer::new(&kafka(), &registry.url, topic).expect("producer");
    let producer = &producer;
    for chunk in sent.chunks(20) {
        futures::future::try_join_all(chunk.iter().map(|s| async move {
            match &s.payload {
                Some(payload) => producer.send_encoded(&s.event.user_id, payload).await,
                None => producer.send(&s.event).await,
            }
        }))
        .await
        .expect("every event is acknowledged");
    }
}

/// A worker folding `topic` with its own group and store, reading with the pipeline file.
struct Folder {
    store: SqliteStore,
    stop: CancellationToken,
    worker: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Folder {
    async fn start(registry: &TestRegistry, topic: &str, pipeline_yaml: &str) -> Folder {
        let dir = tempfile::tempdir().expect("temp dir");
        let pipeline: PathBuf = dir.path().join("evo.yaml");
        std::fs::write(&pipeline, pipeline_yaml).expect("pipeline written");
        let store = SqliteStore::open(&dir.path().join("store.db")).expect("store");
        let config = WorkerConfig {
            topic: topic.to_owned(),
            group_id: unique("evo-g"),
            dead_letter_topic: format!("{topic}-dlq"),
            pipeline: Some(pipeline),
            batch_max_events: 50,
            batch_linger_ms: 20,
            ..WorkerConfig::default()
        };
        let worker = Worker::build(
            &kafka(),
            config,
            RegistryClient::new(registry.url.clone()).expect("registry client"),
            Arc::new(store.clone()),
        )
        .await
        .expect("worker builds");
        let stop = CancellationToken::new();
        let worker = tokio::spawn(worker.run(stop.clone()));
        Folder {
            store,
            stop,
            worker,
            _dir: dir,
        }
    }

    /// Waits until the store accounts for `records` records (read), then returns
    /// (read, folded, late, duplicates, dead-lettered).
    async fn wait_for(&self, records: u64) -> (u64, u64, u64, u64, u64) {
        for _ in 0..900 {
            let partitions = self.store.partitions().await.expect("partitions");
            let sum = |f: fn(&eventfold::store::PartitionStatus) -> u64| {
                partitions.iter().map(f).sum::<u64>()
            };
            let read = sum(|p| p.read);
            if read >= records {
                return (
                    read,
                    sum(|p| p.folded),
                    sum(|p| p.late),
                    sum(|p| p.duplicates),
                    sum(|p| p.dead_lettered),
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the store did not account for {records} records within 90 s");
    }

    /// A count aggregate's results: (window start, first group value) → count.
    async fn counts(&self, aggregate: &str) -> BTreeMap<(i64, String), u64> {
        let rows = self
            .store
            .aggregate_rows(PIPELINE, aggregate, i64::MIN, i64::MAX)
            .await
            .expect("rows");
        rows.into_iter()
            .map(|row| {
                let AggregateResult::Count(n) = row.state.result(&Default::default()) else {
                    panic!("{aggregate} is a count")
                };
                let group: Vec<Option<String>> =
                    serde_json::from_str(&row.group).expect("group key");
                let key = group[0].clone().unwrap_or_else(|| "<null>".to_owned());
                ((row.window.start_ms, key), n)
            })
            .collect()
    }

    /// A sum aggregate's results: window start → sum.
    async fn sums(&self, aggregate: &str) -> BTreeMap<i64, f64> {
        let rows = self
            .store
            .aggregate_rows(PIPELINE, aggregate, i64::MIN, i64::MAX)
            .await
            .expect("rows");
        rows.into_iter()
            .map(|row| {
                let AggregateResult::Sum(sum) = row.state.result(&Default::default()) else {
                    panic!("{aggregate} is a sum")
                };
                (row.window.start_ms, sum)
            })
            .collect()
    }

    async fn stop(self) {
        self.stop.cancel();
        self.worker.await.expect("worker task");
    }
}

fn window_of(ms: i64) -> i64 {
    ms.div_euclid(WINDOW_MS) * WINDOW_MS
}

/// Expected count per (window, `key(event)`).
fn expected_counts(
    read: &[Interaction],
    key: impl Fn(&Interaction) -> Option<String>,
) -> BTreeMap<(i64, String), u64> {
    let mut out = BTreeMap::new();
    for e in read {
        if let Some(k) = key(e) {
            *out.entry((window_of(e.occurred_at), k)).or_insert(0) += 1;
        }
    }
    out
}

/// Expected revenue: per window, the sum of purchase values that are present.
fn expected_revenue(read: &[Interaction]) -> BTreeMap<i64, f64> {
    let mut out = BTreeMap::new();
    for e in read {
        if let (EventType::Purchase, Some(v)) = (e.event_type, e.value) {
            *out.entry(window_of(e.occurred_at)).or_insert(0.0) += v;
        }
    }
    out
}

fn expected_user_counts(read: &[Interaction]) -> BTreeMap<String, BTreeMap<EventType, u64>> {
    let mut out: BTreeMap<String, BTreeMap<EventType, u64>> = BTreeMap::new();
    for e in read {
        *out.entry(e.user_id.clone())
            .or_default()
            .entry(e.event_type)
            .or_insert(0) += 1;
    }
    out
}

fn per_type(e: &Interaction) -> Option<String> {
    Some(e.event_type.as_str().to_owned())
}

fn total(counts: &BTreeMap<(i64, String), u64>) -> u64 {
    counts.values().sum()
}

fn pipeline_yaml(topic: &str, reader: &str, aggregates: &str) -> String {
    format!(
        "name: {PIPELINE}\nsource: {{topic: {topic}, reader_schema: {reader}}}\nevent_time: {{field: occurred_at, watermark_delay: 5s, grace: 30s}}\nlate_topic: {topic}-late\naggregates:\n{aggregates}projections:\n  - {{name: users, kind: user}}\n"
    )
}

const V2_AGGREGATES: &str = "  - {name: per_type, window: {tumbling: 1m}, group_by: [event_type], aggregate: count}\n  - {name: revenue, window: {tumbling: 1m}, filter: {event_type: purchase}, aggregate: sum, field: value}\n  - {name: per_platform, window: {tumbling: 1m}, group_by: [device.platform], aggregate: count}\n";
const V1_AGGREGATES: &str = "  - {name: per_type, window: {tumbling: 1m}, group_by: [event_type], aggregate: count}\n  - {name: purchases_per_app, window: {tumbling: 1m}, filter: {event_type: purchase}, group_by: [app], aggregate: count}\n";

/// Checks a user projection against the events as read: event count and total value.
async fn assert_user_profiles(store: &SqliteStore, read: &[Interaction]) {
    let mut users: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
    for e in read {
        let u = users.entry(&e.user_id).or_insert((0, 0.0));
        u.0 += 1;
        u.1 += e.value.unwrap_or(0.0);
    }
    for (user, (events, value)) in users {
        let profile = store
            .user_profile(PIPELINE, user)
            .await
            .expect("profile query")
            .unwrap_or_else(|| panic!("no profile for {user}"));
        assert_eq!(
            (profile.events, profile.total_value),
            (events, value),
            "profile of {user}"
        );
    }
}

const MIXED_USERS: usize = 8;
const MIXED_EVENTS: usize = 240;

#[tokio::test]
async fn mixed_v1_and_v2_events_fold_exactly_with_a_v2_reader_and_with_a_v1_reader() {
    let registry = TestRegistry::fresh().await;
    let topic = topic("evo-mixed").await;
    let subject = format!("{topic}-value");
    let v1_id = register(&registry, &subject, InteractionVersion::V1.text()).await;
    let v2_id = register(&registry, &subject, InteractionVersion::V2.text()).await;
    assert_ne!(v1_id, v2_id);
    let v1 = interaction_schema(InteractionVersion::V1).unwrap();

    // A user's k-th event is v1 when (k + user) % 3 == 0: every user's events span both.
    let sent: Vec<Sent> = (0..MIXED_EVENTS)
        .map(|i| {
            let event = event(i, MIXED_USERS);
            let writer = if (i / MIXED_USERS + i % MIXED_USERS) % 3 == 0 {
                Writer::V1
            } else {
                Writer::V2
            };
            let payload = (writer == Writer::V1).then(|| encode(&v1, v1_id, writer, false, &event));
            Sent {
                writer,
                refund: false,
                event,
                payload,
            }
        })
        .collect();
    let v1_sent = sent.iter().filter(|s| s.writer == Writer::V1).count();
    assert_eq!((v1_sent, MIXED_EVENTS - v1_sent), (80, 160));
    for user in 0..MIXED_USERS {
        let writers: Vec<Writer> = sent
            .iter()
            .filter(|s| s.event.user_id == format!("user-{user}"))
            .map(|s| s.writer)
            .collect();
        assert!(writers.contains(&Writer::V1) && writers.contains(&Writer::V2));
    }
    let purchases = |w: Writer| {
        sent.iter()
            .filter(|s| s.writer == w && s.event.event_type == EventType::Purchase)
            .count()
    };
    assert_eq!((purchases(Writer::V1), purchases(Writer::V2)), (10, 20));

    let v2_folder = Folder::start(
        &registry,
        &topic,
        &pipeline_yaml(&topic, "interaction/v2.avsc", V2_AGGREGATES),
    )
    .await;
    produce(&registry, &topic, &sent).await;
    // The producer found v2 already registered: no third version appeared.
    assert_eq!(
        versions(&registry, &subject).await,
        serde_json::json!([1, 2])
    );

    // --- v2 reader ---
    let read_v2: Vec<Interaction> = sent
        .iter()
        .map(|s| s.as_read_by(InteractionVersion::V2))
        .collect();
    let n = MIXED_EVENTS as u64;
    assert_eq!(v2_folder.wait_for(n).await, (n, n, 0, 0, 0));
    let per_type_v2 = v2_folder.counts("per_type").await;
    let expected_per_type = expected_counts(&read_v2, per_type);
    assert_eq!(per_type_v2, expected_per_type);
    assert_eq!(total(&per_type_v2), n);
    for kind in TYPES {
        let of_kind: u64 = per_type_v2
            .iter()
            .filter(|(k, _)| k.1 == kind.as_str())
            .map(|(_, n)| n)
            .sum();
        assert_eq!(
            of_kind, 30,
            "{kind:?}: 30 of each type over the four windows"
        );
    }
    assert_eq!(
        per_type_v2
            .keys()
            .map(|k| k.0)
            .collect::<std::collections::BTreeSet<_>>(),
        (0..4).map(|w| START_MS + w * WINDOW_MS).collect(),
        "240 events 1 s apart span four 1-minute windows"
    );
    // Only v2 purchases carry a value; v1 purchases read `value` as null and are skipped.
    let revenue = v2_folder.sums("revenue").await;
    let expected = expected_revenue(&read_v2);
    let all_purchase_values: f64 = sent
        .iter()
        .filter(|s| s.event.event_type == EventType::Purchase)
        .filter_map(|s| s.event.value)
        .sum();
    let v2_purchase_values: f64 = sent
        .iter()
        .filter(|s| s.writer == Writer::V2 && s.event.event_type == EventType::Purchase)
        .filter_map(|s| s.event.value)
        .sum();
    assert_eq!(revenue, expected);
    assert_eq!(
        revenue,
        BTreeMap::from([
            (START_MS, 25.25),
            (START_MS + WINDOW_MS, 36.0),
            (START_MS + 2 * WINDOW_MS, 29.25),
            (START_MS + 3 * WINDOW_MS, 31.5),
        ])
    );
    assert_eq!(revenue.values().sum::<f64>(), v2_purchase_values);
    assert_eq!((v2_purchase_values, all_purchase_values), (122.0, 177.25));
    // v1 events read the device default: platform "unknown".
    let per_platform = v2_folder.counts("per_platform").await;
    assert_eq!(
        per_platform,
        expected_counts(&read_v2, |e| Some(e.device.platform.clone()))
    );
    assert_eq!(
        per_platform
            .iter()
            .filter(|(k, _)| k.1 == "unknown")
            .map(|(_, n)| n)
            .sum::<u64>(),
        v1_sent as u64
    );
    let user_counts = expected_user_counts(&read_v2);
    assert_eq!(user_counts.len(), MIXED_USERS);
    assert_eq!(
        v2_folder.store.all_user_event_counts().await.unwrap(),
        user_counts
    );
    assert_user_profiles(&v2_folder.store, &read_v2).await;
    v2_folder.stop().await;

    // --- v1 reader: same topic, new group and store; v2 events drop their new fields ---
    let v1_folder = Folder::start(
        &registry,
        &topic,
        &pipeline_yaml(&topic, "interaction/v1.avsc", V1_AGGREGATES),
    )
    .await;
    let read_v1: Vec<Interaction> = sent
        .iter()
        .map(|s| s.as_read_by(InteractionVersion::V1))
        .collect();
    assert_eq!(v1_folder.wait_for(n).await, (n, n, 0, 0, 0));
    assert_eq!(v1_folder.counts("per_type").await, per_type_v2);
    assert_eq!(
        v1_folder.counts("purchases_per_app").await,
        expected_counts(&read_v1, |e| (e.event_type == EventType::Purchase)
            .then(|| e.app.clone()))
    );
    assert_eq!(
        v1_folder.store.all_user_event_counts().await.unwrap(),
        user_counts
    );
    // Read with v1, no event has a value.
    assert_user_profiles(&v1_folder.store, &read_v1).await;
    v1_folder.stop().await;
    registry.stop().await;
}

const V3_USERS: usize = 3;
const V3_EVENTS: usize = 36;

#[tokio::test]
async fn a_newer_writers_unknown_enum_symbol_folds_as_unknown_with_the_v2_reader() {
    let registry = TestRegistry::fresh().await;
    let topic = topic("evo-v3").await;
    let subject = format!("{topic}-value");
    let v1_id = register(&registry, &subject, InteractionVersion::V1.text()).await;
    let v2_id = register(&registry, &subject, InteractionVersion::V2.text()).await;
    let none = call(
        &registry.url,
        "PUT",
        &format!("/config/{subject}"),
        Some(r#"{"compatibility":"NONE"}"#),
    )
    .await;
    assert_eq!(none.status, 200, "{}", none.body);
    assert_eq!(none.body, serde_json::json!({"compatibility": "NONE"}));
    let v3_text = v3_text();
    let v3_id = register(&registry, &subject, &v3_text).await;
    assert!(v1_id != v3_id && v2_id != v3_id);
    assert_eq!(
        versions(&registry, &subject).await,
        serde_json::json!([1, 2, 3])
    );
    let v1 = interaction_schema(InteractionVersion::V1).unwrap();
    let v3 = Schema::parse_str(&v3_text).unwrap();

    // Writers cycle v1, v2, v3 per event; every second v3 event is a "refund".
    let sent: Vec<Sent> = (0..V3_EVENTS)
        .map(|i| {
            let mut event = event(i, V3_USERS);
            let writer = [Writer::V1, Writer::V2, Writer::V3][i % 3];
            let refund = writer == Writer::V3 && (i / 3) % 2 == 0;
            if writer == Writer::V3 {
                // Known purchases, and refunds (whose datum says "refund"), both with a value.
                event.event_type = EventType::Purchase;
            }
            let payload = match writer {
                Writer::V1 => Some(encode(&v1, v1_id, writer, false, &event)),
                Writer::V2 => None,
                Writer::V3 => Some(encode(&v3, v3_id, writer, refund, &event)),
            };
            Sent {
                writer,
                refund,
                event,
                payload,
            }
        })
        .collect();
    let refunds = sent.iter().filter(|s| s.refund).count() as u64;
    assert_eq!(refunds, 6);
    let v3_purchases = sent
        .iter()
        .filter(|s| s.writer == Writer::V3 && !s.refund)
        .count();
    assert_eq!(
        v3_purchases, 6,
        "v3 purchases with a known symbol are sent too"
    );

    let folder = Folder::start(
        &registry,
        &topic,
        &pipeline_yaml(&topic, "interaction/v2.avsc", V2_AGGREGATES),
    )
    .await;
    produce(&registry, &topic, &sent).await;
    assert_eq!(
        versions(&registry, &subject).await,
        serde_json::json!([1, 2, 3])
    );
    let n = V3_EVENTS as u64;
    assert_eq!(
        folder.wait_for(n).await,
        (n, n, 0, 0, 0),
        "none dead-lettered"
    );

    let read: Vec<Interaction> = sent
        .iter()
        .map(|s| s.as_read_by(InteractionVersion::V2))
        .collect();
    let per_type = folder.counts("per_type").await;
    assert_eq!(per_type, expected_counts(&read, self::per_type));
    // 36 events 1 s apart: all in the first window.
    assert_eq!(
        per_type.get(&(START_MS, "unknown".to_owned())),
        Some(&refunds)
    );
    assert_eq!(
        per_type.get(&(START_MS, "purchase".to_owned())),
        Some(&10),
        "6 v3 purchases and 4 of the v1/v2 events"
    );
    assert_eq!(total(&per_type), n);
    let revenue = folder.sums("revenue").await;
    assert_eq!(revenue, expected_revenue(&read));
    let want: f64 = sent
        .iter()
        .filter(|s| {
            s.writer != Writer::V1 && !s.refund && s.event.event_type == EventType::Purchase
        })
        .filter_map(|s| s.event.value)
        .sum();
    assert_eq!(revenue.values().sum::<f64>(), want);
    let refund_values: f64 = sent
        .iter()
        .filter(|s| s.refund)
        .filter_map(|s| s.event.value)
        .sum();
    // v2 and v3 purchase values only: not v1 purchases, not refunds (read as unknown).
    assert_eq!((want, refund_values), (36.0, 31.5));
    assert_eq!(revenue, BTreeMap::from([(START_MS, 36.0)]));
    let user_counts = folder.store.all_user_event_counts().await.unwrap();
    assert_eq!(user_counts, expected_user_counts(&read));
    assert_eq!(
        user_counts
            .values()
            .filter_map(|c| c.get(&EventType::Unknown))
            .sum::<u64>(),
        refunds
    );
    assert_user_profiles(&folder.store, &read).await;
    folder.stop().await;
    registry.stop().await;
}

/// v2's text with its `user_id` field moved first: a compatible writer whose layout is no
/// contract's, so its datum does not start with the `event_id`.
fn user_first_text() -> String {
    let mut schema: serde_json::Value =
        serde_json::from_str(InteractionVersion::V2.text()).expect("v2 is JSON");
    let fields = schema["fields"].as_array_mut().expect("v2 has fields");
    let at = fields
        .iter()
        .position(|f| f["name"] == "user_id")
        .expect("v2 has user_id");
    let user_id = fields.remove(at);
    fields.insert(0, user_id);
    schema.to_string()
}

const RETRIED: usize = 20;

/// A writer with the fields in another order is read by name. And when its record and a
/// retry of the same event in the contract's layout are fetched together, the first in the
/// partition is folded and the retry is its duplicate: the fold loop claims the ids of the
/// records it has fetched off their first bytes before decoding them, and the reordered
/// record, whose first bytes are its user's id, claims its `event_id` only once decoded,
/// ahead of the later record's claim.
#[tokio::test]
async fn a_reordered_writers_record_is_folded_before_its_retry_in_the_contracts_layout() {
    let registry = TestRegistry::fresh().await;
    let topic = topic("evo-order").await;
    let subject = format!("{topic}-value");
    let v2_id = register(&registry, &subject, InteractionVersion::V2.text()).await;
    let user_first_text = user_first_text();
    let user_first_id = register(&registry, &subject, &user_first_text).await;
    assert_ne!(v2_id, user_first_id);
    let v2 = interaction_schema(InteractionVersion::V2).unwrap();
    let user_first = Schema::parse_str(&user_first_text).unwrap();
    // Every record carries v2's fields (`Writer::V2`), in one order or the other; one user,
    // so one partition.
    let sent_as = |schema: &Schema, id: u32, event: Interaction| Sent {
        writer: Writer::V2,
        refund: false,
        payload: Some(encode(schema, id, Writer::V2, false, &event)),
        event,
    };

    let folder = Folder::start(
        &registry,
        &topic,
        &pipeline_yaml(&topic, "interaction/v2.avsc", V2_AGGREGATES),
    )
    .await;
    // The worker holds the partition once its first record is folded: from then on it
    // claims the ids of the records it fetches together.
    let first = sent_as(&v2, v2_id, event(0, 1));
    produce(&registry, &topic, std::slice::from_ref(&first)).await;
    assert_eq!(folder.wait_for(1).await, (1, 1, 0, 0, 0));
    // Each event in the reordered layout, then its retry in the contract's layout with
    // another type (so the folded counts tell which of the two was folded).
    let pairs: Vec<Sent> = (1..=RETRIED)
        .flat_map(|i| {
            let event = event(i, 1);
            let mut retry = event.clone();
            let next = TYPES.iter().position(|t| *t == event.event_type).unwrap() + 1;
            retry.event_type = TYPES[next % TYPES.len()];
            [
                sent_as(&user_first, user_first_id, event),
                sent_as(&v2, v2_id, retry),
            ]
        })
        .collect();
    produce(&registry, &topic, &pairs).await;
    let n = 1 + 2 * RETRIED as u64;
    assert_eq!(
        folder.wait_for(n).await,
        (n, 1 + RETRIED as u64, 0, RETRIED as u64, 0),
        "(read, folded, late, duplicates, dead-lettered)"
    );

    let read: Vec<Interaction> = std::iter::once(&first)
        .chain(pairs.iter().step_by(2))
        .map(|s| s.as_read_by(InteractionVersion::V2))
        .collect();
    assert_eq!(
        folder.counts("per_type").await,
        expected_counts(&read, per_type)
    );
    assert_eq!(
        folder.store.all_user_event_counts().await.unwrap(),
        expected_user_counts(&read)
    );
    folder.stop().await;
    registry.stop().await;
}
