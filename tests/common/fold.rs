//! The exact comparison every fold test makes: a seeded workload (late, out-of-order and
//! duplicate events) and its ground truth, the `test` pipeline that folds it, and
//! assertions that a store folded with that pipeline equals the truth: the accounting
//! (read = folded + late + duplicates + dead-lettered), every windowed aggregate, every
//! session and every projection.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use eventfold::contracts::{EventType, Interaction};
use eventfold::ingest::{GroundTruth, Planned, Workload, WorkloadConfig};
use eventfold::pipeline::AggregateResult;
use eventfold::store::{ReadStore, SqliteStore};

/// The pipeline every fold test runs (its name in the store).
pub const PIPELINE: &str = "test";

/// The `test` pipeline over `topic`, as YAML: per-type counts, distinct users and revenue
/// per minute, user and event-type sessions, and the user, item and session projections.
pub fn pipeline_yaml(topic: &str) -> String {
    format!(
        "name: {PIPELINE}\nsource: {{topic: {topic}, reader_schema: interaction/v2.avsc}}\nevent_time: {{field: occurred_at, watermark_delay: 5s, grace: 30s}}\nlate_topic: {topic}-late\naggregates:\n  - {{name: per_type, window: {{tumbling: 1m}}, group_by: [event_type], aggregate: count}}\n  - {{name: users, window: {{tumbling: 1m}}, aggregate: count_distinct, field: user_id}}\n  - {{name: revenue, window: {{tumbling: 1m}}, filter: {{event_type: purchase}}, aggregate: sum, field: value}}\n  - {{name: user_sessions, window: {{session: {{gap: 5s}}}}, group_by: [user_id], aggregate: count}}\n  - {{name: type_sessions, window: {{session: {{gap: 1s}}}}, group_by: [event_type], aggregate: count}}\nprojections:\n  - {{name: user_profiles, kind: user}}\n  - {{name: items, kind: item}}\n  - {{name: sessions, kind: session}}\n"
    )
}

/// What a test sends: the events in order (duplicates included), their ground truth and
/// the ids of the late ones.
pub struct Sent {
    pub events: Vec<Interaction>,
    pub truth: GroundTruth,
    pub late: HashSet<String>,
}

/// `count` events of the seeded workload, 60 users and 40 items, the first at
/// `start_ms`, ~100 ms apart: 5 % out of order (≤ 3 s), 2 % late (by 100 s), 3 %
/// duplicates.
pub fn workload(seed: u64, count: usize, start_ms: i64) -> Sent {
    let config = WorkloadConfig {
        seed,
        users: 60,
        items: 40,
        start_ms,
        mean_gap_ms: 100,
        out_of_order_fraction: 0.05,
        out_of_order_ms: 3_000,
        late_fraction: 0.02,
        late_by_ms: 100_000,
        duplicate_fraction: 0.03,
        ..WorkloadConfig::default()
    };
    let mut truth = GroundTruth::new(60_000);
    let mut late = HashSet::new();
    let events = Workload::new(config)
        .take(count)
        .map(|(planned, event)| {
            truth.record(planned, &event);
            if planned == Planned::Late {
                late.insert(event.event_id.clone());
            }
            event
        })
        .collect();
    Sent {
        events,
        truth,
        late,
    }
}

/// The store's accounting, summed over partitions: (read, folded, late, duplicates,
/// dead-lettered).
pub async fn accounting(store: &SqliteStore) -> (u64, u64, u64, u64, u64) {
    let partitions = store.partitions().await.unwrap();
    let sum =
        |f: fn(&eventfold::store::PartitionStatus) -> u64| partitions.iter().map(f).sum::<u64>();
    (
        sum(|p| p.read),
        sum(|p| p.folded),
        sum(|p| p.late),
        sum(|p| p.duplicates),
        sum(|p| p.dead_lettered),
    )
}

/// Asserts the store read exactly `records` records, of which `dead_lettered` were not
/// events, and folded every distinct on-time event once: every other record is a late
/// event or a copy of an event already read.
pub async fn assert_accounting(
    store: &SqliteStore,
    truth: &GroundTruth,
    records: u64,
    dead_lettered: u64,
) {
    assert_eq!(
        accounting(store).await,
        (
            records,
            truth.distinct_events - truth.late_events,
            truth.late_events,
            records - dead_lettered - truth.distinct_events,
            dead_lettered
        ),
        "(read, folded, late, duplicates, dead-lettered)"
    );
}

/// Asserts the windowed aggregates equal the truth: per-type counts and revenue exactly,
/// distinct users within HyperLogLog's 2 %; and every user's counts by type.
pub async fn assert_aggregates(store: &SqliteStore, truth: &GroundTruth) {
    let rows = store
        .aggregate_rows(PIPELINE, "per_type", i64::MIN, i64::MAX)
        .await
        .unwrap();
    let mut folded: BTreeMap<i64, BTreeMap<String, u64>> = BTreeMap::new();
    for row in rows {
        let AggregateResult::Count(n) = row.state.result(&Default::default()) else {
            panic!("count")
        };
        let group: Vec<String> = serde_json::from_str(&row.group).unwrap();
        folded
            .entry(row.window.start_ms)
            .or_default()
            .insert(group[0].clone(), n);
    }
    let expected: BTreeMap<i64, BTreeMap<String, u64>> = truth
        .windows
        .iter()
        .map(|(start, w)| {
            (
                *start,
                w.per_type
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), *v))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(folded, expected);
    for row in store
        .aggregate_rows(PIPELINE, "revenue", i64::MIN, i64::MAX)
        .await
        .unwrap()
    {
        let AggregateResult::Sum(sum) = row.state.result(&Default::default()) else {
            panic!("sum")
        };
        let want = truth.windows[&row.window.start_ms].revenue;
        assert!((sum - want).abs() < 1e-6, "revenue {sum} vs {want}");
    }
    for row in store
        .aggregate_rows(PIPELINE, "users", i64::MIN, i64::MAX)
        .await
        .unwrap()
    {
        let AggregateResult::CountDistinct(n) = row.state.result(&Default::default()) else {
            panic!("distinct")
        };
        let want = truth.windows[&row.window.start_ms].unique_users as f64;
        assert!(
            (n as f64 - want).abs() <= (want * 0.02).max(1.0),
            "unique users {n} vs {want}"
        );
    }
    assert_eq!(store.all_user_event_counts().await.unwrap(), truth.per_user);
}

/// Asserts the item and session projections equal the distinct events, and the first ten
/// users' profiles too.
pub async fn assert_projections(store: &SqliteStore, events: &[Interaction], truth: &GroundTruth) {
    let mut seen = HashSet::new();
    let distinct: Vec<&Interaction> = events
        .iter()
        .filter(|e| seen.insert(e.event_id.clone()))
        .collect();
    let items = store.item_profiles(PIPELINE).await.unwrap();
    assert_eq!(items.len(), truth.per_item.len());
    for item in &items {
        let counts = &truth.per_item[&item.item_id];
        let n = |k: EventType| counts.get(&k).copied().unwrap_or(0);
        assert_eq!(
            (item.views, item.clicks, item.add_to_carts, item.purchases),
            (
                n(EventType::PageView),
                n(EventType::Click),
                n(EventType::AddToCart),
                n(EventType::Purchase)
            ),
            "{}",
            item.item_id
        );
    }
    let mut sessions: BTreeMap<String, (i64, i64, u64, bool)> = BTreeMap::new();
    for e in &distinct {
        let s = sessions
            .entry(e.session_id.clone())
            .or_insert((i64::MAX, i64::MIN, 0, false));
        *s = (
            s.0.min(e.occurred_at),
            s.1.max(e.occurred_at),
            s.2 + 1,
            s.3 || e.event_type == EventType::Purchase,
        );
    }
    let stored: BTreeMap<String, (i64, i64, u64, bool)> = store
        .session_profiles(PIPELINE)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.session_id, (s.start_ms, s.end_ms, s.events, s.converted)))
        .collect();
    assert_eq!(stored, sessions);
    for user in truth.per_user.keys().take(10) {
        let mine: Vec<&&Interaction> = distinct.iter().filter(|e| &e.user_id == user).collect();
        let profile = store.user_profile(PIPELINE, user).await.unwrap().unwrap();
        assert_eq!(profile.events, mine.len() as u64);
        assert_eq!(
            profile.last_seen_ms,
            mine.iter().map(|e| e.occurred_at).max().unwrap()
        );
        assert_eq!(
            profile.first_seen_ms,
            mine.iter().map(|e| e.occurred_at).min().unwrap()
        );
        let value: f64 = mine.iter().filter_map(|e| e.value).sum();
        assert!((profile.total_value - value).abs() < 1e-6);
        assert_eq!(profile.counts, truth.per_user[user]);
    }
}

/// How a test derives a session's group from an event.
type GroupKey = fn(&Interaction) -> String;

/// Sessions per group from distinct, on-time events: sorted event times split where the next
/// is at least `gap` after the previous; (group, start, end = last + gap, events).
fn expected_sessions(
    events: &[Interaction],
    late: &HashSet<String>,
    gap: i64,
    key: GroupKey,
) -> Vec<(String, i64, i64, u64)> {
    let mut seen = HashSet::new();
    let mut times: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for e in events {
        if seen.insert(e.event_id.clone()) && !late.contains(&e.event_id) {
            times.entry(key(e)).or_default().push(e.occurred_at);
        }
    }
    let mut out = Vec::new();
    for (group, mut ts) in times {
        ts.sort_unstable();
        let (mut start, mut last, mut n) = (ts[0], ts[0], 0u64);
        for t in ts {
            if t - last >= gap {
                out.push((group.clone(), start, last + gap, n));
                start = t;
                n = 0;
            }
            last = t;
            n += 1;
        }
        out.push((group, start, last + gap, n));
    }
    out.sort();
    out
}

/// Asserts the session aggregates (per user, 5 s gap; per event type, 1 s gap) equal the
/// sessions of the distinct, on-time events.
pub async fn assert_sessions(store: &SqliteStore, events: &[Interaction], late: &HashSet<String>) {
    let cases: [(&str, i64, GroupKey); 2] = [
        ("user_sessions", 5_000, |e| e.user_id.clone()),
        ("type_sessions", 1_000, |e| e.event_type.as_str().to_owned()),
    ];
    for (aggregate, gap, key) in cases {
        let mut folded: Vec<(String, i64, i64, u64)> = store
            .aggregate_rows_merging(PIPELINE, aggregate, i64::MIN, i64::MAX, true)
            .await
            .unwrap()
            .into_iter()
            .map(|row| {
                let AggregateResult::Count(n) = row.state.result(&Default::default()) else {
                    panic!("count")
                };
                let group: Vec<String> = serde_json::from_str(&row.group).unwrap();
                (group[0].clone(), row.window.start_ms, row.window.end_ms, n)
            })
            .collect();
        folded.sort();
        let expected = expected_sessions(events, late, gap, key);
        assert!(
            expected.len() > 20,
            "{aggregate}: the workload should make many sessions"
        );
        assert_eq!(folded, expected, "{aggregate}");
    }
}

/// Asserts everything above: the store read `records` records (`dead_lettered` of them
/// not events) and every aggregate, session and projection equals what `sent` implies.
pub async fn assert_folded_exactly(
    store: &SqliteStore,
    sent: &Sent,
    records: u64,
    dead_lettered: u64,
) {
    assert_accounting(store, &sent.truth, records, dead_lettered).await;
    assert_aggregates(store, &sent.truth).await;
    assert_projections(store, &sent.events, &sent.truth).await;
    assert_sessions(store, &sent.events, &sent.late).await;
}

/// `eventfold work` as a process of its own, folding `topic` with the pipeline file into
/// the SQLite store at `store`, with short group timeouts (6 s session).
pub fn worker_process(
    brokers: &str,
    registry: &str,
    topic: &str,
    group: &str,
    pipeline: &Path,
    store: &Path,
) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_eventfold"));
    command
        .arg("work")
        .env("EVENTFOLD__KAFKA__BOOTSTRAP_SERVERS", brokers)
        .env("EVENTFOLD__KAFKA__SESSION_TIMEOUT_MS", "6000")
        .env("EVENTFOLD__KAFKA__HEARTBEAT_INTERVAL_MS", "1000")
        .env("EVENTFOLD__REGISTRY__URL", registry)
        .env("EVENTFOLD__WORKER__TOPIC", topic)
        .env("EVENTFOLD__WORKER__GROUP_ID", group)
        .env(
            "EVENTFOLD__WORKER__DEAD_LETTER_TOPIC",
            format!("{topic}-dlq"),
        )
        .env("EVENTFOLD__WORKER__PIPELINE", pipeline)
        .env("EVENTFOLD__WORKER__BATCH_MAX_EVENTS", "100")
        .env("EVENTFOLD__WORKER__BATCH_LINGER_MS", "20")
        .env("EVENTFOLD__STORE__PATH", store)
        .env("EVENTFOLD__METRICS__ENABLED", "false");
    command
}
