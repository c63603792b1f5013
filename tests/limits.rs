//! Limits (issue #7, item 4), each with a defined behaviour and exact figures: huge strings,
//! deep nesting, millions of distinct keys, clock skew in event times, and a partition that
//! stops receiving events. Everything but the millions-of-keys test runs against the real
//! broker, with the registry, worker, collector and query API started in this process; the
//! records that bypass the collector are produced straight to the topic. docs/reliability.md
//! ("Limits") states each behaviour.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{call, kafka, schema_body, unique, wait_for_read, ReadPath};
use eventfold::clock::now_ms;
use eventfold::contracts::{frame, EventType, Interaction, InteractionVersion, MAX_NESTING};
use eventfold::pipeline::{parse_pipeline, AggregateResult, LiveAggregates, PartialChange};
use eventfold::registry::InteractionEncoder;
use eventfold::store::PartitionStatus;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};

/// A pipeline counting events and distinct users per minute, with `event_time` settings.
fn pipeline(topic: &str, event_time: &str) -> String {
    format!(
        "name: limits\nsource: {{topic: {topic}, reader_schema: interaction/v2.avsc}}\nevent_time: {{field: occurred_at, {event_time}}}\naggregates:\n  - {{name: per_minute, window: {{tumbling: 1m}}, aggregate: count}}\n  - {{name: users, window: {{tumbling: 1m}}, aggregate: count_distinct, field: user_id}}\nprojections:\n  - {{name: profiles, kind: user}}\n"
    )
}

/// The read path over a fresh topic of `partitions` partitions, folding [`pipeline`].
async fn start(partitions: i32, event_time: &str) -> ReadPath {
    ReadPath::start(partitions, |topic| pipeline(topic, event_time)).await
}

fn event(user: &str, at: i64) -> Interaction {
    Interaction {
        event_id: uuid::Uuid::new_v4().to_string(),
        event_type: EventType::Click,
        user_id: user.to_owned(),
        session_id: "s".to_owned(),
        item_id: None,
        occurred_at: at,
        app: "web".to_owned(),
        properties: BTreeMap::new(),
        value: None,
        device: Default::default(),
    }
}

fn event_json(user: &str, at: i64) -> Value {
    serde_json::to_value(event(user, at)).unwrap()
}

/// Posts a raw body to the collector: its status and JSON answer.
async fn post(path: &ReadPath, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(&path.events_url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("collector answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// Produces straight to the topic, bypassing the collector.
struct Direct {
    producer: FutureProducer,
    encoder: InteractionEncoder,
    topic: String,
}

impl Direct {
    fn new(path: &ReadPath) -> Direct {
        Direct {
            producer: kafka().producer().create().unwrap(),
            encoder: InteractionEncoder::new(path.registry.url.as_str(), &path.topic),
            topic: path.topic.clone(),
        }
    }

    /// The id of the contract (v2) in the registry, registering it if needed.
    async fn contract_id(&self) -> u32 {
        let framed = self.encoder.encode(&event("u", 0)).await.unwrap();
        u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]])
    }

    async fn send(&self, partition: Option<i32>, key: &str, payload: &[u8]) {
        let mut record = FutureRecord::to(&self.topic).key(key).payload(payload);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        if let Err((error, _)) = self.producer.send(record, Duration::from_secs(10)).await {
            panic!(
                "record of {} bytes not acknowledged: {error}",
                payload.len()
            );
        }
    }

    async fn event(&self, partition: Option<i32>, event: &Interaction) {
        let framed = self.encoder.encode(event).await.unwrap();
        self.send(partition, &event.user_id, &framed).await;
    }
}

/// The first `count` dead letters of `topic`: record key → (reason, message).
async fn dead_letters(topic: &str, count: usize) -> BTreeMap<String, (String, String)> {
    let consumer: StreamConsumer = kafka().consumer(&unique("dlq-reader")).create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut letters = BTreeMap::new();
    while letters.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("a dead letter within 30 s")
            .unwrap();
        let header = |name: &str| {
            message
                .headers()
                .and_then(|headers| headers.iter().find(|h| h.key == name))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        letters.insert(
            key,
            (
                header("eventfold.error.reason"),
                header("eventfold.error.message"),
            ),
        );
    }
    letters
}

/// (read, folded, late, dead-lettered) over every partition.
async fn totals(path: &ReadPath) -> (u64, u64, u64, u64) {
    let partitions = path.store.partitions().await.unwrap();
    let sum = |f: fn(&PartitionStatus) -> u64| partitions.iter().map(f).sum();
    (
        sum(|p| p.read),
        sum(|p| p.folded),
        sum(|p| p.late),
        sum(|p| p.dead_lettered),
    )
}

/// 2⁴⁰ as an Avro long (zig-zag varint): a length no datum can hold.
const TERABYTE_LENGTH: [u8; 6] = [0x80, 0x80, 0x80, 0x80, 0x80, 0x40];

#[tokio::test]
async fn huge_strings_are_refused_by_the_collector_and_dead_lettered_by_the_worker() {
    let path = start(1, "watermark_delay: 5s, grace: 30s").await;
    let at = now_ms() - 60_000;

    // The collector: strings far over their limit are refused by index, field and limit.
    let mut long_property = event_json("u1", at);
    long_property["properties"] = json!({"k": "v".repeat(600)});
    let batch = json!([
        event_json("u1", at),
        event_json(&"u".repeat(900_000), at),
        long_property
    ]);
    let (status, answer) = post(&path, "application/json", batch.to_string().into_bytes()).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer,
        json!({
            "error": "invalid_events",
            "message": "2 event(s) are invalid; nothing was written",
            "errors": [
                {"index": 1, "field": "user_id", "code": "too_long", "reason": "is 900000 bytes long; at most 128 allowed"},
                {"index": 2, "field": "properties.k", "code": "too_long", "reason": "is 600 bytes long; at most 512 allowed"},
            ]
        })
    );
    // A body over 1 MiB is not even read to the end.
    let body = json!([event_json(&"u".repeat(2_000_000), at)]).to_string();
    let (status, answer) = post(&path, "application/json", body.into_bytes()).await;
    assert_eq!(
        (status, answer),
        (
            413,
            json!({"error": "body_too_large", "message": "the body is larger than 1048576 bytes (after decompression)"})
        )
    );
    // Every string at its limit: accepted and folded.
    let at_limit_user = "u".repeat(128);
    let mut at_limit = event_json(&at_limit_user, at);
    at_limit["app"] = json!("a".repeat(64));
    at_limit["properties"] = Value::Object(
        (0..32)
            .map(|i| (format!("{i:0>512}"), json!("v".repeat(512))))
            .collect(),
    );
    path.post(&[at_limit]).await;

    // Records that bypass the collector.
    let direct = Direct::new(&path);
    let id = direct.contract_id().await;
    // A string whose length prefix claims 2^40 bytes, followed by 5 bytes.
    let claim = frame(id, &[&TERABYTE_LENGTH[..], b"short"].concat());
    direct.send(None, "claim", &claim).await;
    // A well-formed event with a 900 kB user id.
    let huge = event(&"u".repeat(900_000), at);
    let mut datum = Vec::new();
    huge.write_avro(&mut datum);
    direct.send(None, "huge", &frame(id, &datum)).await;
    // And the worker goes on.
    direct.event(None, &event("after", at)).await;

    wait_for_read(&path.store, 4).await;
    assert_eq!(totals(&path).await, (4, 2, 0, 2));
    assert_eq!(
        dead_letters(&path.dead_letter_topic, 2).await,
        BTreeMap::from([
            ("claim".to_owned(), ("avro_decode".to_owned(), format!("the Avro datum written with schema id {id} does not decode to the reader schema: byte 6: length 1099511627776 does not fit the 5 bytes left"))),
            ("huge".to_owned(), ("too_large".to_owned(), format!("schema id {id}: field 'user_id' is 900000 bytes long; at most 128 allowed"))),
        ])
    );
    let (status, user) = path
        .get(&format!("/v1/pipelines/limits/users/{at_limit_user}"))
        .await;
    assert_eq!((status, user["user"]["events"].clone()), (200, json!(1)));
    path.stop().await;
}

/// A writer schema of the topic that is not a shipped contract (so records take apache-avro's
/// general path): the contract plus an optional linked list of any depth.
fn recursive_contract() -> Value {
    let mut schema: Value = serde_json::from_str(InteractionVersion::V2.text()).unwrap();
    schema["fields"].as_array_mut().unwrap().push(json!({
        "name": "extra",
        "type": ["null", {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}],
        "default": null
    }));
    schema
}

/// `event`'s datum in [`recursive_contract`] with a list `nodes` deep (0: no list).
fn with_list(event: &Interaction, nodes: usize) -> Vec<u8> {
    let mut datum = Vec::new();
    event.write_avro(&mut datum);
    if nodes == 0 {
        datum.push(0);
    } else {
        datum.extend(std::iter::repeat_n(2u8, nodes));
        datum.push(0);
    }
    datum
}

#[tokio::test]
async fn deeply_nested_input_is_refused_without_a_stack_overflow() {
    let path = start(1, "watermark_delay: 5s, grace: 30s").await;
    let at = now_ms() - 60_000;
    let deep = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let nested = |depth: usize| {
        let mut event = event_json("u", at);
        event.as_object_mut().unwrap().remove("properties");
        let mut event = event.to_string();
        event.pop();
        format!("{event},\"properties\":{{\"k\":{}}}}}", deep(depth))
    };

    // JSON nested 10,000 deep, as an array or as NDJSON: serde_json's limit of 128 levels.
    let body = format!("[{}]", nested(10_000));
    let (status, answer) = post(&path, "application/json", body.into_bytes()).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "malformed_body");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("the body is not valid JSON: recursion limit exceeded at line 1 column"),
        "{message}"
    );
    let (status, answer) = post(&path, "application/x-ndjson", nested(10_000).into_bytes()).await;
    assert_eq!(status, 400);
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.starts_with("line 1 is not valid JSON: recursion limit exceeded at line 1 column"),
        "{message}"
    );
    // Under the limit it parses, and the validator names the field.
    let (status, answer) = post(
        &path,
        "application/json",
        format!("[{}]", nested(100)).into_bytes(),
    )
    .await;
    assert_eq!(
        (status, answer["errors"].clone()),
        (
            400,
            json!([{"index": 0, "field": "properties.k", "code": "wrong_type", "reason": "property values must be strings, found an array"}])
        )
    );

    // The registry: a schema nested 10,000 deep is invalid; 120 deep registers and is
    // compared with one 127 deep (serde_json's limit bounds how deep a schema can be).
    let subject = unique("deep");
    let nested_schema = |depth: usize| {
        format!(
            "{}\"long\"{}",
            r#"{"type":"array","items":"#.repeat(depth),
            "}".repeat(depth)
        )
    };
    let body = |depth: usize| json!({"schema": nested_schema(depth)}).to_string();
    let url = &path.registry.url;
    let versions = format!("/subjects/{subject}/versions");
    let refused = call(url, "POST", &versions, Some(&body(10_000))).await;
    assert_eq!(
        (refused.status, refused.body["error_code"].clone()),
        (422, json!(42201))
    );
    let registered = call(url, "POST", &versions, Some(&body(120))).await;
    assert_eq!(registered.status, 200, "{}", registered.body);
    let latest = format!("/compatibility/subjects/{subject}/versions/latest");
    let compared = call(url, "POST", &latest, Some(&body(127))).await;
    assert_eq!(
        (compared.status, compared.body["is_compatible"].clone()),
        (200, json!(false))
    );

    // Avro on the topic: a recursive writer schema. A list nested 900,000 deep is
    // dead-lettered before apache-avro recurses into it; one within the bound is folded.
    let direct = Direct::new(&path);
    direct.contract_id().await;
    let registered = call(
        url,
        "POST",
        &format!("/subjects/{}-value/versions", path.topic),
        Some(&schema_body(&recursive_contract())),
    )
    .await;
    assert_eq!(registered.status, 200, "{}", registered.body);
    let id = registered.body["id"].as_u64().unwrap() as u32;
    let shallow = event("shallow", at);
    direct
        .send(
            None,
            "shallow",
            &frame(id, &with_list(&shallow, MAX_NESTING - 1)),
        )
        .await;
    let deep_event = event("deep", at);
    let deep_datum = with_list(&deep_event, 900_000);
    direct.send(None, "deep", &frame(id, &deep_datum)).await;
    let claim = frame(id, &[&TERABYTE_LENGTH[..], b"short"].concat());
    direct.send(None, "claim", &claim).await;
    direct.event(None, &event("after", at)).await;

    wait_for_read(&path.store, 4).await;
    assert_eq!(totals(&path).await, (4, 2, 0, 2));
    let mut plain = Vec::new();
    deep_event.write_avro(&mut plain);
    // The list's 8th node would be the 9th level: it starts after the contract's bytes, the
    // union index of `extra` and 7 more union indexes.
    let too_deep_at = plain.len() + MAX_NESTING;
    assert_eq!(
        dead_letters(&path.dead_letter_topic, 2).await,
        BTreeMap::from([
            ("claim".to_owned(), ("avro_decode".to_owned(), format!("the Avro datum written with schema id {id} is refused before decoding: byte 6: length 1099511627776 does not fit the 5 bytes left"))),
            ("deep".to_owned(), ("too_deep".to_owned(), format!("the Avro datum written with schema id {id} is refused before decoding: byte {too_deep_at}: values nest more than 8 records, arrays and maps deep"))),
        ])
    );
    let (status, user) = path.get("/v1/pipelines/limits/users/shallow").await;
    assert_eq!((status, user["user"]["events"].clone()), (200, json!(1)));
    path.stop().await;
}

#[test]
fn millions_of_distinct_keys_keep_sketches_bounded_and_grow_one_row_per_group() {
    let pipeline = Arc::new(
        parse_pipeline(
            std::path::Path::new("keys.yaml"),
            "name: keys\nsource: {topic: t, reader_schema: interaction/v2.avsc}\nevent_time: {field: occurred_at, watermark_delay: 0s, grace: 0s}\naggregates:\n  - {name: users, window: {tumbling: 1h}, aggregate: count_distinct, field: user_id}\n  - {name: items, window: {tumbling: 1h}, aggregate: top_k, field: item_id, k: 5}\n  - {name: per_user, window: {tumbling: 1h}, group_by: [user_id], aggregate: count}\n",
        )
        .unwrap(),
    );
    let started = Instant::now();
    let distinct = 1_000_000u64;
    // Every event has its own user; 67 % of them view one of 5 hot items, the rest an item
    // of their own.
    let hot = [30u64, 20, 10, 5, 2];
    let item = |i: u64| {
        let mut bucket = i % 100;
        for (rank, share) in hot.iter().enumerate() {
            if bucket < *share {
                return format!("hot-{rank}");
            }
            bucket -= share;
        }
        format!("item-{i}")
    };
    let mut live = LiveAggregates::new(pipeline.clone());
    let mut event = event("", 0);
    for i in 0..distinct {
        event.user_id.clear();
        event.user_id.push_str(&format!("user-{i}"));
        event.item_id = Some(item(i));
        event.occurred_at = (i % 3_600_000) as i64;
        live.add(&event.view()).unwrap();
    }
    assert_eq!(
        live.len(),
        1 + 1 + distinct as usize,
        "two sketches and one row per user"
    );

    let changes = live.take_changes();
    let mut per_user_rows = 0u64;
    for change in &changes {
        let PartialChange::Upsert(partial) = change else {
            panic!("only upserts: {change:?}")
        };
        let stored_bytes = serde_json::to_string(&partial.state).unwrap().len();
        match partial.aggregate.as_str() {
            "users" => {
                let AggregateResult::CountDistinct(estimate) =
                    partial.state.result(&pipeline.aggregates[0].params)
                else {
                    panic!()
                };
                let error = (estimate as f64 - distinct as f64) / distinct as f64;
                println!("count_distinct of {distinct}: {estimate} ({:+.3} %), {stored_bytes} bytes stored", error * 100.0);
                assert!(error.abs() <= 0.02, "{estimate}");
                // 2^14 one-byte registers, base64 in JSON: the same for 10 or 10^9 users.
                assert!(stored_bytes < 22_000, "{stored_bytes}");
            }
            "items" => {
                let AggregateResult::TopK(top) =
                    partial.state.result(&pipeline.aggregates[1].params)
                else {
                    panic!()
                };
                println!("top_k over {distinct} events: {top:?}, {stored_bytes} bytes stored");
                let keys: Vec<&str> = top.iter().map(|e| e.key.as_str()).collect();
                assert_eq!(keys, ["hot-0", "hot-1", "hot-2", "hot-3", "hot-4"]);
                for (entry, share) in top.iter().zip(hot) {
                    let truth = distinct * share / 100;
                    // Space-Saving: count − error ≤ truth ≤ count, error ≤ N / capacity.
                    assert!(entry.count - entry.error <= truth && truth <= entry.count);
                    assert!(entry.error <= distinct / 100, "{entry:?}");
                }
                // 100 counters (the default capacity), whatever the number of items.
                assert!(stored_bytes < 8_000, "{stored_bytes}");
            }
            "per_user" => per_user_rows += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!(
        per_user_rows, distinct,
        "group_by keeps one row per distinct key"
    );
    // Once the watermark passes the window, nothing of it stays in memory.
    live.evict(Some(3 * 3_600_000));
    assert_eq!(live.len(), 0);
    println!("folded {distinct} distinct keys in {:?}", started.elapsed());
}

#[tokio::test]
async fn clock_skew_is_refused_by_the_collector_and_cannot_stall_a_partition() {
    let path = start(1, "watermark_delay: 5s, grace: 10s").await;
    let now = now_ms();
    const YEAR_2100: i64 = 4_102_444_800_000;

    // The collector checks event times against its clock: 5 minutes ahead at most, 7 days old
    // at most. Nothing of a batch with one bad time is written.
    let batch = json!([
        event_json("u", now),
        event_json("u", now + 3_600_500),
        event_json("u", YEAR_2100),
        event_json("u", now - 8 * 86_400_000),
    ]);
    let (status, answer) = post(&path, "application/json", batch.to_string().into_bytes()).await;
    assert_eq!(status, 400);
    let errors = answer["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{answer}");
    assert_eq!(
        errors[0],
        json!({"index": 1, "field": "occurred_at", "code": "in_the_future", "reason": "is 3600 s ahead of the server clock; at most 300 s allowed"})
    );
    assert_eq!(
        (errors[1]["index"].clone(), errors[1]["code"].clone()),
        (json!(2), json!("in_the_future"))
    );
    assert_eq!(
        errors[2],
        json!({"index": 3, "field": "occurred_at", "code": "too_old", "reason": "is older than 604800 s"})
    );

    // Records that bypass the collector: an event from the year 2100 is folded into its own
    // window but moves the watermark only to its record's timestamp, so an event a second
    // old stays on time; one 10 minutes old is late.
    let direct = Direct::new(&path);
    direct.contract_id().await;
    let before = now_ms();
    direct.event(None, &event("a", now - 120_000)).await;
    direct.event(None, &event("b", YEAR_2100)).await;
    direct.event(None, &event("c", now - 1_000)).await;
    direct.event(None, &event("d", now - 600_000)).await;
    let after = now_ms();

    wait_for_read(&path.store, 4).await;
    assert_eq!(totals(&path).await, (4, 3, 1, 0));
    let max_event_ms = path.store.partitions().await.unwrap()[0]
        .max_event_ms
        .unwrap();
    assert!(
        (before..=after).contains(&max_event_ms),
        "the watermark source {max_event_ms} is the 2100 event's record timestamp, in [{before}, {after}]"
    );
    let minute = |t: i64| t.div_euclid(60_000) * 60_000;
    let (status, answer) = path.get("/v1/pipelines/limits/aggregates/per_minute").await;
    assert_eq!(status, 200);
    let window = |t: i64, is_final: bool| json!({"start_ms": minute(t), "end_ms": minute(t) + 60_000, "group": [], "value": 1, "final": is_final});
    assert_eq!(
        answer["windows"],
        json!([
            window(now - 120_000, true),
            window(now - 1_000, false),
            window(YEAR_2100, false)
        ])
    );
    path.stop().await;
}

#[tokio::test]
async fn a_silent_partition_stops_holding_back_the_others_after_idle_after() {
    let idle_after_ms = 8_000;
    let path = start(3, "watermark_delay: 5s, grace: 10s, idle_after: 8s").await;
    let direct = Direct::new(&path);
    direct.contract_id().await;
    // Event times an hour back, on a minute: W0 = [t0, t0 + 1 min), W1 the next minute.
    let t0 = (now_ms() / 60_000 - 60) * 60_000;
    for partition in 0..3 {
        direct
            .event(
                Some(partition),
                &event(&format!("p{partition}"), t0 + 10_000),
            )
            .await;
    }
    for partition in 0..2 {
        direct
            .event(
                Some(partition),
                &event(&format!("p{partition}"), t0 + 100_000),
            )
            .await;
    }
    let mut produced = 5;
    wait_for_read(&path.store, produced).await;
    let silent_since = path.store.partitions().await.unwrap()[2]
        .updated_at_ms
        .unwrap();

    // Partition 2 holds the others back (watermark t0 + 5 s) until it has been silent for
    // idle_after; partitions 0 and 1 keep receiving events meanwhile (watermark t0 + 95 s).
    let windows = |answer: &Value| -> Vec<(i64, u64, bool)> {
        answer["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["start_ms"].as_i64().unwrap() - t0,
                    w["value"].as_u64().unwrap(),
                    w["final"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let mut held_checks = 0;
    let released_after_ms = loop {
        let asked = now_ms();
        let (_, answer) = path.get("/v1/pipelines/limits/aggregates/per_minute").await;
        let answered = now_ms();
        let idle = answer["watermark"]["idle_partitions"].clone();
        if idle == json!([2]) {
            assert_eq!(answer["watermark"]["combined_ms"], json!(t0 + 95_000));
            assert_eq!(windows(&answer)[0], (0, 3, true), "W0 is final");
            assert!(
                !windows(&answer)[1].2,
                "W1 is not final: its end + grace is ahead"
            );
            break answered - silent_since;
        }
        assert_eq!(idle, json!([]), "{answer}");
        assert!(
            asked - silent_since < idle_after_ms,
            "held back past idle_after"
        );
        assert_eq!(answer["watermark"]["combined_ms"], json!(t0 + 5_000));
        assert_eq!(windows(&answer)[0], (0, 3, false), "W0 is held back");
        held_checks += 1;
        assert!(
            asked - silent_since < idle_after_ms + 5_000,
            "never released"
        );
        for partition in 0..2 {
            direct
                .event(
                    Some(partition),
                    &event(&format!("p{partition}"), t0 + 100_000),
                )
                .await;
        }
        produced += 2;
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("held back for {held_checks} reads; released {released_after_ms} ms after partition 2's last batch");
    assert!(held_checks > 0);
    assert!(released_after_ms >= idle_after_ms, "{released_after_ms}");

    // Partition 2 wakes up: lateness is its own. t0 + 30 s is on time for it (its watermark
    // is t0 + 5 s) and joins W0; t0 + 200 s moves its watermark to t0 + 195 s; then t0 + 20 s
    // is late (W0 ends at t0 + 60 s, + 10 s grace).
    for at in [30_000, 200_000, 20_000] {
        direct.event(Some(2), &event("p2", t0 + at)).await;
    }
    produced += 3;
    wait_for_read(&path.store, produced).await;
    let partitions = path.store.partitions().await.unwrap();
    assert_eq!(
        (partitions[2].read, partitions[2].folded, partitions[2].late),
        (4, 3, 1)
    );
    let (_, answer) = path.get("/v1/pipelines/limits/aggregates/per_minute").await;
    assert_eq!(answer["watermark"]["idle_partitions"], json!([]));
    assert_eq!(answer["watermark"]["combined_ms"], json!(t0 + 95_000));
    let w1_events = produced - 3 - 3;
    assert_eq!(
        windows(&answer),
        vec![
            (0, 4, true),
            (60_000, w1_events, false),
            (180_000, 1, false)
        ]
    );
    path.stop().await;
}
