//! One store test suite, written once and run against both read stores (issue #5): the
//! embedded SQLite store (a temporary file) and PostgreSQL (a unique schema, dropped at the
//! end). PostgreSQL is `EVENTFOLD_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`); when it cannot be reached the PostgreSQL
//! tests fail, they are never skipped.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use eventfold::contracts::{Device, EventType, Interaction};
use eventfold::pipeline::{
    parse_pipeline, AggregateKind, AggregateParams, AggregateState, Partial, PartialChange,
    Pipeline, Window,
};
use eventfold::store::{
    ItemProfile, PartitionStatus, PostgresStore, ReadStore, SessionProfile, SqliteStore,
    UserProfile,
};
use eventfold::worker::{
    event_id_hash, BatchBuilder, CommitOutcome, FoldBatch, FoldStore, PartitionProgress,
};

const TOPIC: &str = "interactions";

/// A store under test, seen as the worker and as the query stage see it.
struct Stores {
    fold: Arc<dyn FoldStore>,
    read: Arc<dyn ReadStore>,
    _cleanup: Cleanup,
}

/// Removes what a store left behind when the test ends (passed or not).
struct Cleanup {
    _folder: Option<tempfile::TempDir>,
    /// The server and the schema to drop.
    schema: Option<(String, String)>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // On its own thread and runtime with its own connection: the test's runtime is
        // blocked in this drop, so the store's pooled connections cannot make progress.
        if let Some((url, schema)) = self.schema.take() {
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime to drop the test schema")
                    .block_on(async {
                        let (client, connection) =
                            tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                        tokio::spawn(connection);
                        client
                            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                            .await
                    })
            })
            .join()
            .expect("dropping the test schema")
            .expect("dropping the test schema");
        }
    }
}

async fn sqlite_stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    Stores {
        fold: Arc::new(store.clone()),
        read: Arc::new(store),
        _cleanup: Cleanup {
            _folder: Some(dir),
            schema: None,
        },
    }
}

async fn postgres_stores() -> Stores {
    let url = std::env::var("EVENTFOLD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("eventfold_{}", uuid::Uuid::new_v4().simple());
    let store = PostgresStore::open(&url, Some(&schema))
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL store tests need a server at {url} (EVENTFOLD_TEST_POSTGRES): {e}")
        });
    Stores {
        fold: Arc::new(store.clone()),
        read: Arc::new(store),
        _cleanup: Cleanup {
            _folder: None,
            schema: Some((url, schema)),
        },
    }
}

/// Runs every listed test against SQLite (`sqlite::name`) and PostgreSQL (`postgres::name`).
macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::sqlite_stores().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::postgres_stores().await).await;
                }
            )*
        }
    };
}

store_suite!(
    empty_store_reads_nothing,
    commit_advances_progress_and_accounts_every_record,
    stale_batch_is_fenced_and_changes_nothing,
    concurrent_commits_from_one_offset_apply_once,
    snapshot_returns_seen_ids_within_horizon_and_live_partials,
    old_seen_ids_are_forgotten_past_the_horizon,
    partials_are_replaced_and_deleted,
    aggregate_rows_merge_partitions_and_sessions,
    projections_hold_exact_values,
    listings_are_ordered_and_per_pipeline,
);

fn pipeline(name: &str) -> Arc<Pipeline> {
    let yaml = format!(
        "name: {name}\nsource: {{topic: {TOPIC}, reader_schema: interaction/v2.avsc}}\nevent_time: {{field: occurred_at, watermark_delay: 5s, grace: 30s}}\nlate_topic: {TOPIC}-late\naggregates:\n  - {{name: per_type, window: {{tumbling: 1m}}, group_by: [event_type], aggregate: count}}\n  - {{name: user_sessions, window: {{session: {{gap: 5s}}}}, group_by: [user_id], aggregate: count}}\nprojections:\n  - {{name: user_profiles, kind: user}}\n  - {{name: items, kind: item}}\n  - {{name: sessions, kind: session}}\n"
    );
    Arc::new(parse_pipeline(Path::new("store_suite.yaml"), &yaml).unwrap())
}

fn event(
    id: &str,
    kind: EventType,
    user: &str,
    session: &str,
    item: Option<&str>,
    at: i64,
    value: Option<f64>,
) -> Interaction {
    Interaction {
        event_id: id.to_owned(),
        event_type: kind,
        user_id: user.to_owned(),
        session_id: session.to_owned(),
        item_id: item.map(str::to_owned),
        occurred_at: at,
        app: "shop".to_owned(),
        properties: BTreeMap::new(),
        value,
        device: Device::default(),
    }
}

/// A distinct event a batch holds, at its offset, late or not.
struct Folded {
    offset: i64,
    event: Interaction,
    late: bool,
}

fn folded(offset: i64, event: Interaction, late: bool) -> Folded {
    Folded {
        offset,
        event,
        late,
    }
}

fn push(builder: &mut BatchBuilder, e: Folded) {
    builder.push_event(e.offset, &e.event.view(), None, e.late);
}

fn count(n: u64) -> AggregateState {
    let mut state = AggregateState::new(AggregateKind::Count, &AggregateParams::default()).unwrap();
    for _ in 0..n {
        state.add(None).unwrap();
    }
    state
}

fn partial(aggregate: &str, start_ms: i64, end_ms: i64, group: &str, n: u64) -> PartialChange {
    PartialChange::Upsert(Box::new(Partial {
        aggregate: aggregate.to_owned(),
        window: Window { start_ms, end_ms },
        group: group.to_owned(),
        state: count(n),
    }))
}

/// A batch of `events` (distinct, each at its own offset) continuing from `previous`, storing
/// their ids and `partials`.
fn batch(
    partition: i32,
    previous: Option<i64>,
    pipeline: Option<Arc<Pipeline>>,
    events: Vec<Folded>,
    partials: Vec<PartialChange>,
) -> FoldBatch {
    let mut builder = BatchBuilder::new(TOPIC, partition, previous, 1_000_000, None, pipeline);
    let seen = events
        .iter()
        .map(|e| event_id_hash(&e.event.event_id))
        .collect();
    for e in events {
        push(&mut builder, e);
    }
    builder.take(seen, partials)
}

/// Five click events of `user` at offsets `from..from + 5`, one per second from `at`.
fn clicks(user: &str, from: i64, at: i64) -> Vec<Folded> {
    (0..5)
        .map(|i| {
            folded(
                from + i,
                event(
                    &format!("{user}-{}", from + i),
                    EventType::Click,
                    user,
                    &format!("{user}-s"),
                    None,
                    at + i * 1000,
                    None,
                ),
                false,
            )
        })
        .collect()
}

async fn commit(stores: &Stores, batches: Vec<FoldBatch>) -> Vec<CommitOutcome> {
    stores.fold.commit(Arc::new(batches)).await.unwrap()
}

async fn empty_store_reads_nothing(stores: Stores) {
    assert_eq!(
        stores.fold.progress(TOPIC, 0).await.unwrap(),
        PartitionProgress::default()
    );
    assert_eq!(stores.read.partitions().await.unwrap(), vec![]);
    assert!(stores
        .read
        .all_user_event_counts()
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        stores.read.user_profile("shop", "nobody").await.unwrap(),
        None
    );
    let snapshot = stores
        .fold
        .snapshot(TOPIC, 0, 100, Some(pipeline("shop")))
        .await
        .unwrap();
    assert_eq!(snapshot.progress, PartitionProgress::default());
    assert!(snapshot.seen.is_empty());
    assert!(snapshot.partials.is_empty());
}

async fn commit_advances_progress_and_accounts_every_record(stores: Stores) {
    // Partition 0, offsets 0–5: an on-time event, a late one, a duplicate, a dead letter,
    // then another on-time event.
    let mut builder = BatchBuilder::new(TOPIC, 0, None, 1_000, None, None);
    push(
        &mut builder,
        folded(
            0,
            event("a", EventType::Click, "u1", "s1", None, 10_000, None),
            false,
        ),
    );
    push(
        &mut builder,
        folded(
            1,
            event("b", EventType::PageView, "u1", "s1", None, 2_000, None),
            true,
        ),
    );
    builder.push_duplicate(2);
    builder.push_dead_letter(3);
    builder.push_dead_letter(4);
    push(
        &mut builder,
        folded(
            5,
            event("c", EventType::Click, "u2", "s2", None, 12_000, None),
            false,
        ),
    );
    let first = builder.take(vec![event_id_hash("a")], vec![]);
    push(
        &mut builder,
        folded(
            6,
            event("d", EventType::Click, "u1", "s1", None, 11_000, None),
            false,
        ),
    );
    let second = builder.take(vec![event_id_hash("d")], vec![]);
    let other = batch(1, None, None, clicks("u3", 0, 20_000), vec![]);
    // Each partition records when its last batch was cut (the idle rule reads it).
    let (second_cut, other_cut) = (second.cut_at_ms, other.cut_at_ms);
    assert!(first.cut_at_ms > 0 && first.cut_at_ms <= second_cut);

    assert_eq!(
        commit(&stores, vec![first, other]).await,
        vec![
            CommitOutcome::Applied {
                folded: 2,
                duplicates: 1,
                late: 1
            },
            CommitOutcome::Applied {
                folded: 5,
                duplicates: 0,
                late: 0
            },
        ]
    );
    assert_eq!(
        commit(&stores, vec![second]).await,
        vec![CommitOutcome::Applied {
            folded: 1,
            duplicates: 0,
            late: 0
        }]
    );
    assert_eq!(
        stores.fold.progress(TOPIC, 0).await.unwrap(),
        PartitionProgress {
            last_offset: Some(6),
            max_event_ms: Some(12_000)
        }
    );
    let partitions = stores.read.partitions().await.unwrap();
    assert_eq!(
        partitions,
        vec![
            PartitionStatus {
                topic: TOPIC.to_owned(),
                partition: 0,
                last_offset: 6,
                read: 7,
                folded: 3,
                duplicates: 1,
                dead_lettered: 2,
                late: 1,
                max_event_ms: Some(12_000),
                updated_at_ms: Some(second_cut),
            },
            PartitionStatus {
                topic: TOPIC.to_owned(),
                partition: 1,
                last_offset: 4,
                read: 5,
                folded: 5,
                duplicates: 0,
                dead_lettered: 0,
                late: 0,
                max_event_ms: Some(24_000),
                updated_at_ms: Some(other_cut),
            },
        ]
    );
    for p in &partitions {
        assert_eq!(p.read, p.folded + p.duplicates + p.dead_lettered + p.late);
    }
    // Late events count in the per-user counts (read models are not windowed).
    assert_eq!(
        stores.read.user_event_counts("u1").await.unwrap(),
        BTreeMap::from([(EventType::Click, 2), (EventType::PageView, 1)])
    );
    let all = stores.read.all_user_event_counts().await.unwrap();
    assert_eq!(
        all,
        BTreeMap::from([
            (
                "u1".to_owned(),
                BTreeMap::from([(EventType::Click, 2), (EventType::PageView, 1)])
            ),
            ("u2".to_owned(), BTreeMap::from([(EventType::Click, 1)])),
            ("u3".to_owned(), BTreeMap::from([(EventType::Click, 5)])),
        ])
    );
}

async fn stale_batch_is_fenced_and_changes_nothing(stores: Stores) {
    let shop = pipeline("shop");
    let applied = batch(
        0,
        None,
        Some(shop.clone()),
        clicks("u1", 0, 100_000),
        vec![partial("per_type", 60_000, 120_000, "[\"click\"]", 5)],
    );
    commit(&stores, vec![applied]).await;
    let before = stores.read.partitions().await.unwrap();

    // A batch from the start again (another worker's view) and one from a wrong offset,
    // committed together with a good batch of another partition.
    let stale = batch(
        0,
        None,
        Some(shop.clone()),
        clicks("u2", 0, 100_000),
        vec![partial("per_type", 60_000, 120_000, "[\"click\"]", 99)],
    );
    let wrong = batch(
        0,
        Some(2),
        Some(shop.clone()),
        clicks("u2", 3, 100_000),
        vec![],
    );
    let good = batch(
        1,
        None,
        Some(shop.clone()),
        clicks("u4", 0, 100_000),
        vec![],
    );
    let stored = PartitionProgress {
        last_offset: Some(4),
        max_event_ms: Some(104_000),
    };
    assert_eq!(
        commit(&stores, vec![stale, wrong, good]).await,
        vec![
            CommitOutcome::Fenced { stored },
            CommitOutcome::Fenced { stored },
            CommitOutcome::Applied {
                folded: 5,
                duplicates: 0,
                late: 0
            },
        ]
    );
    let after = stores.read.partitions().await.unwrap();
    assert_eq!(after[0], before[0]);
    assert_eq!(after.len(), 2);
    assert_eq!(
        stores.read.user_event_counts("u2").await.unwrap(),
        BTreeMap::new()
    );
    assert_eq!(stores.read.user_profile("shop", "u2").await.unwrap(), None);
    let rows = stores
        .read
        .aggregate_rows("shop", "per_type", i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, count(5));
}

async fn concurrent_commits_from_one_offset_apply_once(stores: Stores) {
    commit(
        &stores,
        vec![batch(0, None, None, clicks("u0", 0, 0), vec![])],
    )
    .await;
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let fold = stores.fold.clone();
            let user = format!("w{i}");
            tokio::spawn(async move {
                fold.commit(Arc::new(vec![batch(
                    0,
                    Some(4),
                    None,
                    clicks(&user, 5, 0),
                    vec![],
                )]))
                .await
                .unwrap()
            })
        })
        .collect();
    let mut applied = 0;
    let mut fenced = 0;
    for attempt in attempts {
        match attempt.await.unwrap()[0] {
            CommitOutcome::Applied { folded: 5, .. } => applied += 1,
            CommitOutcome::Fenced {
                stored:
                    PartitionProgress {
                        last_offset: Some(9),
                        ..
                    },
            } => fenced += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!((applied, fenced), (1, 7));
    let partitions = stores.read.partitions().await.unwrap();
    assert_eq!((partitions[0].last_offset, partitions[0].read), (9, 10));
    let users = stores.read.all_user_event_counts().await.unwrap();
    assert_eq!(users.len(), 2, "u0 and exactly one winner: {users:?}");
}

async fn snapshot_returns_seen_ids_within_horizon_and_live_partials(stores: Stores) {
    let shop = pipeline("shop");
    // Offsets 0–9, 10–19, 20–29; the last event at 1,000,000 ms. With a 5 s delay, 30 s
    // grace and 1 min windows, windows ending after 905,000 ms are still live.
    let mut builder = BatchBuilder::new(TOPIC, 0, None, 1_000_000, None, Some(shop.clone()));
    let mut seen_by_batch = Vec::new();
    for chunk in 0..3i64 {
        let mut ids = Vec::new();
        for offset in chunk * 10..chunk * 10 + 10 {
            let id = format!("e{offset}");
            ids.push(event_id_hash(&id));
            let at = 971_000 + offset * 1_000;
            push(
                &mut builder,
                folded(
                    offset,
                    event(&id, EventType::Click, "u1", "s1", None, at, None),
                    false,
                ),
            );
        }
        let partials = if chunk == 2 {
            vec![
                partial("per_type", 840_000, 900_000, "[\"click\"]", 3),
                partial("per_type", 900_000, 960_000, "[\"click\"]", 7),
                partial("per_type", 960_000, 1_020_000, "[\"click\"]", 1),
            ]
        } else {
            vec![]
        };
        seen_by_batch.push(((chunk + 1) * 10 - 1, ids.clone()));
        let outcome = commit(&stores, vec![builder.take(ids, partials)]).await;
        assert!(matches!(outcome[0], CommitOutcome::Applied { .. }));
    }
    let snapshot = stores
        .fold
        .snapshot(TOPIC, 0, 15, Some(shop.clone()))
        .await
        .unwrap();
    assert_eq!(
        snapshot.progress,
        PartitionProgress {
            last_offset: Some(29),
            max_event_ms: Some(1_000_000)
        }
    );
    // Horizon 15 from offset 29: batches ending after offset 14.
    assert_eq!(snapshot.seen, seen_by_batch[1..].to_vec());
    let mut live: Vec<(i64, i64, AggregateState)> = snapshot
        .partials
        .into_iter()
        .map(|p| (p.window.start_ms, p.window.end_ms, p.state))
        .collect();
    live.sort_by_key(|(start, ..)| *start);
    assert_eq!(
        live,
        vec![(900_000, 960_000, count(7)), (960_000, 1_020_000, count(1))]
    );
    // Without a pipeline: no partials; another partition: nothing.
    let bare = stores.fold.snapshot(TOPIC, 0, 100, None).await.unwrap();
    assert_eq!(bare.seen.len(), 3);
    assert!(bare.partials.is_empty());
    let other = stores
        .fold
        .snapshot(TOPIC, 1, 100, Some(shop))
        .await
        .unwrap();
    assert_eq!(other.progress, PartitionProgress::default());
    assert!(other.seen.is_empty() && other.partials.is_empty());
}

async fn old_seen_ids_are_forgotten_past_the_horizon(stores: Stores) {
    // A horizon of 10 offsets: committing up to offset 24 forgets batches ending at ≤ 14.
    let mut builder = BatchBuilder::new(TOPIC, 0, None, 10, None, None);
    for chunk in 0..5i64 {
        for offset in chunk * 5..chunk * 5 + 5 {
            push(
                &mut builder,
                folded(
                    offset,
                    event(
                        &format!("e{offset}"),
                        EventType::Click,
                        "u",
                        "s",
                        None,
                        0,
                        None,
                    ),
                    false,
                ),
            );
        }
        let batch = builder.take(vec![chunk as u128], vec![]);
        commit(&stores, vec![batch]).await;
    }
    let snapshot = stores.fold.snapshot(TOPIC, 0, 1_000, None).await.unwrap();
    assert_eq!(snapshot.seen, vec![(19, vec![3]), (24, vec![4])]);
}

async fn partials_are_replaced_and_deleted(stores: Stores) {
    let shop = pipeline("shop");
    let first = batch(
        0,
        None,
        Some(shop.clone()),
        clicks("u1", 0, 0),
        vec![
            partial("user_sessions", 0, 9_000, "[\"u1\"]", 5),
            partial("per_type", 0, 60_000, "[\"click\"]", 5),
        ],
    );
    commit(&stores, vec![first]).await;
    // The session grows (new key) and replaces the old one; the count is rewritten whole.
    let second = batch(
        0,
        Some(4),
        Some(shop.clone()),
        clicks("u1", 5, 5_000),
        vec![
            PartialChange::Delete {
                aggregate: "user_sessions".to_owned(),
                window: Window {
                    start_ms: 0,
                    end_ms: 9_000,
                },
                group: "[\"u1\"]".to_owned(),
            },
            partial("user_sessions", 0, 14_000, "[\"u1\"]", 10),
            partial("per_type", 0, 60_000, "[\"click\"]", 10),
        ],
    );
    commit(&stores, vec![second]).await;
    let sessions = stores
        .read
        .aggregate_rows("shop", "user_sessions", i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert_eq!(
        sessions
            .iter()
            .map(|r| (r.window, r.group.as_str(), r.state.clone()))
            .collect::<Vec<_>>(),
        vec![(
            Window {
                start_ms: 0,
                end_ms: 14_000
            },
            "[\"u1\"]",
            count(10)
        )]
    );
    let counts = stores
        .read
        .aggregate_rows("shop", "per_type", i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].state, count(10));
}

async fn aggregate_rows_merge_partitions_and_sessions(stores: Stores) {
    let shop = pipeline("shop");
    let zero = batch(
        0,
        None,
        Some(shop.clone()),
        clicks("u1", 0, 0),
        vec![
            partial("per_type", 0, 60_000, "[\"click\"]", 2),
            partial("per_type", 0, 60_000, "[\"purchase\"]", 1),
            partial("per_type", 60_000, 120_000, "[\"click\"]", 4),
            partial("user_sessions", 1_000, 3_000, "[\"u1\"]", 2),
        ],
    );
    let one = batch(
        1,
        None,
        Some(shop.clone()),
        clicks("u2", 0, 0),
        vec![
            partial("per_type", 0, 60_000, "[\"click\"]", 3),
            partial("user_sessions", 2_500, 4_000, "[\"u1\"]", 5),
            partial("user_sessions", 9_000, 10_000, "[\"u1\"]", 1),
        ],
    );
    commit(&stores, vec![zero, one]).await;
    let rows = stores
        .read
        .aggregate_rows("shop", "per_type", i64::MIN, i64::MAX)
        .await
        .unwrap();
    let summary: Vec<(i64, &str, AggregateState)> = rows
        .iter()
        .map(|r| (r.window.start_ms, r.group.as_str(), r.state.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, "[\"click\"]", count(5)),
            (0, "[\"purchase\"]", count(1)),
            (60_000, "[\"click\"]", count(4)),
        ]
    );
    // [from, to) keeps windows that overlap it.
    let second_minute = stores
        .read
        .aggregate_rows("shop", "per_type", 60_000, 61_000)
        .await
        .unwrap();
    assert_eq!(second_minute.len(), 1);
    assert_eq!(second_minute[0].state, count(4));
    let sessions = stores
        .read
        .aggregate_rows_merging("shop", "user_sessions", i64::MIN, i64::MAX, true)
        .await
        .unwrap();
    assert_eq!(
        sessions
            .iter()
            .map(|r| (r.window, r.state.clone()))
            .collect::<Vec<_>>(),
        vec![
            (
                Window {
                    start_ms: 1_000,
                    end_ms: 4_000
                },
                count(7)
            ),
            (
                Window {
                    start_ms: 9_000,
                    end_ms: 10_000
                },
                count(1)
            ),
        ]
    );
    let unmerged = stores
        .read
        .aggregate_rows_merging("shop", "user_sessions", i64::MIN, i64::MAX, false)
        .await
        .unwrap();
    assert_eq!(unmerged.len(), 3);
}

async fn projections_hold_exact_values(stores: Stores) {
    let shop = pipeline("shop");
    let first = batch(
        0,
        None,
        Some(shop.clone()),
        vec![
            folded(
                0,
                event(
                    "1",
                    EventType::PageView,
                    "ann",
                    "s1",
                    Some("i1"),
                    5_000,
                    None,
                ),
                false,
            ),
            folded(
                1,
                event("2", EventType::Click, "ann", "s1", Some("i1"), 6_000, None),
                false,
            ),
            folded(
                2,
                event(
                    "3",
                    EventType::AddToCart,
                    "ann",
                    "s1",
                    Some("i1"),
                    7_000,
                    None,
                ),
                false,
            ),
            folded(
                3,
                event(
                    "4",
                    EventType::Purchase,
                    "ann",
                    "s1",
                    Some("i1"),
                    8_000,
                    Some(19.5),
                ),
                false,
            ),
            folded(
                4,
                event(
                    "5",
                    EventType::PageView,
                    "bob",
                    "s2",
                    Some("i2"),
                    4_000,
                    None,
                ),
                false,
            ),
        ],
        vec![],
    );
    commit(&stores, vec![first]).await;
    // A later batch: ann continues in a new session, and an earlier late event arrives.
    let second = batch(
        0,
        Some(4),
        Some(shop.clone()),
        vec![
            folded(
                5,
                event(
                    "6",
                    EventType::PageView,
                    "ann",
                    "s3",
                    Some("i2"),
                    20_000,
                    Some(0.5),
                ),
                false,
            ),
            folded(
                6,
                event("7", EventType::Click, "ann", "s1", None, 1_000, None),
                true,
            ),
            folded(
                7,
                event(
                    "8",
                    EventType::Purchase,
                    "bob",
                    "s2",
                    Some("i2"),
                    9_000,
                    Some(5.0),
                ),
                false,
            ),
        ],
        vec![],
    );
    commit(&stores, vec![second]).await;
    assert_eq!(
        stores.read.user_profile("shop", "ann").await.unwrap(),
        Some(UserProfile {
            user_id: "ann".to_owned(),
            first_seen_ms: 1_000,
            last_seen_ms: 20_000,
            events: 6,
            total_value: 20.0,
            current_session: "s3".to_owned(),
            counts: BTreeMap::from([
                (EventType::PageView, 2),
                (EventType::Click, 2),
                (EventType::AddToCart, 1),
                (EventType::Purchase, 1),
            ]),
        })
    );
    assert_eq!(
        stores.read.item_profiles("shop").await.unwrap(),
        vec![
            ItemProfile {
                item_id: "i1".to_owned(),
                views: 1,
                clicks: 1,
                add_to_carts: 1,
                purchases: 1,
                conversion_rate: Some(1.0),
            },
            ItemProfile {
                item_id: "i2".to_owned(),
                views: 2,
                clicks: 0,
                add_to_carts: 0,
                purchases: 1,
                conversion_rate: Some(0.5),
            },
        ]
    );
    assert_eq!(
        stores.read.session_profiles("shop").await.unwrap(),
        vec![
            SessionProfile {
                session_id: "s1".to_owned(),
                user_id: "ann".to_owned(),
                start_ms: 1_000,
                end_ms: 8_000,
                length_ms: 7_000,
                events: 5,
                converted: true,
            },
            SessionProfile {
                session_id: "s2".to_owned(),
                user_id: "bob".to_owned(),
                start_ms: 4_000,
                end_ms: 9_000,
                length_ms: 5_000,
                events: 2,
                converted: true,
            },
            SessionProfile {
                session_id: "s3".to_owned(),
                user_id: "ann".to_owned(),
                start_ms: 20_000,
                end_ms: 20_000,
                length_ms: 0,
                events: 1,
                converted: false,
            },
        ]
    );
}

async fn listings_are_ordered_and_per_pipeline(stores: Stores) {
    let shop = pipeline("shop");
    let other = pipeline("other");
    let items: Vec<Folded> = ["i3", "i1", "i2"]
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let session = format!("s{}", 3 - n);
            folded(
                n as i64,
                event(
                    &format!("e{n}"),
                    EventType::Click,
                    "u",
                    &session,
                    Some(item),
                    0,
                    None,
                ),
                false,
            )
        })
        .collect();
    let theirs = batch(
        1,
        None,
        Some(other),
        vec![folded(
            0,
            event("x", EventType::PageView, "v", "t", Some("j"), 0, None),
            false,
        )],
        vec![],
    );
    commit(
        &stores,
        vec![batch(0, None, Some(shop), items, vec![]), theirs],
    )
    .await;
    let ids: Vec<String> = stores
        .read
        .item_profiles("shop")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.item_id)
        .collect();
    assert_eq!(ids, ["i1", "i2", "i3"]);
    let sessions: Vec<String> = stores
        .read
        .session_profiles("shop")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(sessions, ["s1", "s2", "s3"]);
    let theirs = stores.read.item_profiles("other").await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!((theirs[0].item_id.as_str(), theirs[0].views), ("j", 1));
    assert_eq!(theirs[0].conversion_rate, Some(0.0));
    assert_eq!(stores.read.user_profile("other", "u").await.unwrap(), None);
    assert!(stores
        .read
        .item_profiles("nobody")
        .await
        .unwrap()
        .is_empty());
}
