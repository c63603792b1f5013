//! Windowed aggregates folded by consumer-group workers against a real broker, compared with
//! the workload's ground truth: late, out-of-order and duplicate events included, with one
//! worker and with two workers of which one stops mid-run.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{fresh_topic, kafka, unique, wait_for_read, TestRegistry};
use eventfold::contracts::{EventType, Interaction};
use eventfold::ingest::{EventProducer, GroundTruth, Workload, WorkloadConfig};
use eventfold::pipeline::AggregateResult;
use eventfold::registry::RegistryClient;
use eventfold::store::{ReadStore, SqliteStore};
use eventfold::worker::{Worker, WorkerConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Setup {
    registry: TestRegistry,
    topic: String,
    group: String,
    pipeline: std::path::PathBuf,
    _dir: tempfile::TempDir,
    store_path: std::path::PathBuf,
    store: SqliteStore,
}

impl Setup {
    async fn new() -> Setup {
        let registry = TestRegistry::fresh().await;
        let topic = fresh_topic("folded", 4).await;
        let dir = tempfile::tempdir().unwrap();
        let pipeline = dir.path().join("test.yaml");
        std::fs::write(
            &pipeline,
            format!(
                "name: test\nsource: {{topic: {topic}, reader_schema: interaction/v2.avsc}}\nevent_time: {{field: occurred_at, watermark_delay: 5s, grace: 30s}}\nlate_topic: {topic}-late\naggregates:\n  - {{name: per_type, window: {{tumbling: 1m}}, group_by: [event_type], aggregate: count}}\n  - {{name: users, window: {{tumbling: 1m}}, aggregate: count_distinct, field: user_id}}\n  - {{name: revenue, window: {{tumbling: 1m}}, filter: {{event_type: purchase}}, aggregate: sum, field: value}}\n  - {{name: user_sessions, window: {{session: {{gap: 5s}}}}, group_by: [user_id], aggregate: count}}\n  - {{name: type_sessions, window: {{session: {{gap: 1s}}}}, group_by: [event_type], aggregate: count}}\nprojections:\n  - {{name: user_profiles, kind: user}}\n  - {{name: items, kind: item}}\n  - {{name: sessions, kind: session}}\n"
            ),
        )
        .unwrap();
        let store_path = dir.path().join("store.db");
        let store = SqliteStore::open(&store_path).unwrap();
        Setup {
            registry,
            group: unique("g"),
            topic,
            pipeline,
            _dir: dir,
            store_path,
            store,
        }
    }

    async fn start_worker(&self) -> (CancellationToken, JoinHandle<()>) {
        let config = WorkerConfig {
            topic: self.topic.clone(),
            group_id: self.group.clone(),
            dead_letter_topic: format!("{}-dlq", self.topic),
            pipeline: Some(self.pipeline.clone()),
            batch_max_events: 100,
            batch_linger_ms: 20,
            ..WorkerConfig::default()
        };
        let worker = Worker::build(
            &kafka(),
            config,
            RegistryClient::new(self.registry.url.clone()).unwrap(),
            Arc::new(self.store.clone()),
        )
        .await
        .unwrap();
        let stop = CancellationToken::new();
        (stop.clone(), tokio::spawn(worker.run(stop)))
    }

    /// `eventfold work` as a process of its own, on the same settings as `start_worker`.
    fn spawn_worker_process(&self) -> std::process::Child {
        std::process::Command::new(env!("CARGO_BIN_EXE_eventfold"))
            .arg("work")
            .env("EVENTFOLD__KAFKA__BOOTSTRAP_SERVERS", common::brokers())
            .env("EVENTFOLD__KAFKA__SESSION_TIMEOUT_MS", "6000")
            .env("EVENTFOLD__KAFKA__HEARTBEAT_INTERVAL_MS", "1000")
            .env("EVENTFOLD__REGISTRY__URL", &self.registry.url)
            .env("EVENTFOLD__WORKER__TOPIC", &self.topic)
            .env("EVENTFOLD__WORKER__GROUP_ID", &self.group)
            .env(
                "EVENTFOLD__WORKER__DEAD_LETTER_TOPIC",
                format!("{}-dlq", self.topic),
            )
            .env("EVENTFOLD__WORKER__PIPELINE", &self.pipeline)
            .env("EVENTFOLD__WORKER__BATCH_MAX_EVENTS", "100")
            .env("EVENTFOLD__WORKER__BATCH_LINGER_MS", "20")
            .env("EVENTFOLD__STORE__PATH", &self.store_path)
            .env("EVENTFOLD__METRICS__ENABLED", "false")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the eventfold binary starts")
    }

    async fn read(&self) -> u64 {
        let partitions = self.store.partitions().await.unwrap();
        partitions.iter().map(|p| p.read).sum()
    }

    async fn produce(&self, events: &[Interaction]) {
        let producer = EventProducer::new(&kafka(), &self.registry.url, &self.topic).unwrap();
        for chunk in events.chunks(200) {
            futures::future::try_join_all(chunk.iter().map(|e| producer.send(e)))
                .await
                .unwrap();
        }
    }

    async fn assert_projections(&self, events: &[Interaction], truth: &GroundTruth) {
        let mut seen = std::collections::HashSet::new();
        let distinct: Vec<&Interaction> = events
            .iter()
            .filter(|e| seen.insert(e.event_id.clone()))
            .collect();
        let items = self.store.item_profiles("test").await.unwrap();
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
        let stored: BTreeMap<String, (i64, i64, u64, bool)> = self
            .store
            .session_profiles("test")
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.session_id, (s.start_ms, s.end_ms, s.events, s.converted)))
            .collect();
        assert_eq!(stored, sessions);
        for user in truth.per_user.keys().take(10) {
            let mine: Vec<&&Interaction> = distinct.iter().filter(|e| &e.user_id == user).collect();
            let profile = self
                .store
                .user_profile("test", user)
                .await
                .unwrap()
                .unwrap();
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

    async fn assert_matches(&self, truth: &GroundTruth) {
        let partitions = self.store.partitions().await.unwrap();
        let sum = |f: fn(&eventfold::store::PartitionStatus) -> u64| {
            partitions.iter().map(f).sum::<u64>()
        };
        assert_eq!(
            (
                sum(|p| p.read),
                sum(|p| p.folded),
                sum(|p| p.late),
                sum(|p| p.duplicates),
                sum(|p| p.dead_lettered)
            ),
            (
                truth.events_sent,
                truth.distinct_events - truth.late_events,
                truth.late_events,
                truth.duplicates,
                0
            )
        );
        let rows = self
            .store
            .aggregate_rows("test", "per_type", i64::MIN, i64::MAX)
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
        for row in self
            .store
            .aggregate_rows("test", "revenue", i64::MIN, i64::MAX)
            .await
            .unwrap()
        {
            let AggregateResult::Sum(sum) = row.state.result(&Default::default()) else {
                panic!("sum")
            };
            let want = truth.windows[&row.window.start_ms].revenue;
            assert!((sum - want).abs() < 1e-6, "revenue {sum} vs {want}");
        }
        for row in self
            .store
            .aggregate_rows("test", "users", i64::MIN, i64::MAX)
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
        assert_eq!(
            self.store.all_user_event_counts().await.unwrap(),
            truth.per_user
        );
    }
}

/// How a test derives a session's group from an event.
type GroupKey = fn(&Interaction) -> String;

/// Sessions per group from distinct, on-time events: sorted event times split where the next
/// is at least `gap` after the previous; (group, start, end = last + gap, events).
fn expected_sessions(
    events: &[Interaction],
    late: &std::collections::HashSet<String>,
    gap: i64,
    key: fn(&Interaction) -> String,
) -> Vec<(String, i64, i64, u64)> {
    let mut seen = std::collections::HashSet::new();
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

impl Setup {
    async fn assert_sessions(
        &self,
        events: &[Interaction],
        late: &std::collections::HashSet<String>,
    ) {
        let cases: [(&str, i64, GroupKey); 2] = [
            ("user_sessions", 5_000, |e| e.user_id.clone()),
            ("type_sessions", 1_000, |e| e.event_type.as_str().to_owned()),
        ];
        for (aggregate, gap, key) in cases {
            let mut folded: Vec<(String, i64, i64, u64)> = self
                .store
                .aggregate_rows_merging("test", aggregate, i64::MIN, i64::MAX, true)
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
}

fn workload(
    seed: u64,
    count: usize,
) -> (
    Vec<Interaction>,
    GroundTruth,
    std::collections::HashSet<String>,
) {
    let config = WorkloadConfig {
        seed,
        users: 60,
        items: 40,
        start_ms: 1_764_000_000_000,
        mean_gap_ms: 100,
        out_of_order_fraction: 0.05,
        out_of_order_ms: 3_000,
        late_fraction: 0.02,
        late_by_ms: 100_000,
        duplicate_fraction: 0.03,
        ..WorkloadConfig::default()
    };
    let mut truth = GroundTruth::new(60_000);
    let mut late = std::collections::HashSet::new();
    let events = Workload::new(config)
        .take(count)
        .map(|(planned, event)| {
            truth.record(planned, &event);
            if planned == eventfold::ingest::Planned::Late {
                late.insert(event.event_id.clone());
            }
            event
        })
        .collect();
    (events, truth, late)
}

#[tokio::test]
async fn one_worker_folds_windows_exactly_with_late_out_of_order_and_duplicates() {
    let setup = Setup::new().await;
    let (events, truth, late) = workload(5, 3000);
    assert!(truth.late_events > 10 && truth.duplicates > 30 && truth.out_of_order_events > 50);
    let (stop, worker) = setup.start_worker().await;
    setup.produce(&events).await;
    wait_for_read(&setup.store, truth.events_sent).await;
    setup.assert_matches(&truth).await;
    setup.assert_projections(&events, &truth).await;
    setup.assert_sessions(&events, &late).await;
    stop.cancel();
    worker.await.unwrap();
    setup.registry.stop().await;
}

#[tokio::test]
async fn two_workers_and_a_takeover_still_fold_exactly() {
    let setup = Setup::new().await;
    let (events, truth, late) = workload(6, 4000);
    let (stop_a, worker_a) = setup.start_worker().await;
    let (stop_b, worker_b) = setup.start_worker().await;
    setup.produce(&events[..2000]).await;
    wait_for_read(&setup.store, 2000).await;
    stop_a.cancel();
    worker_a.await.unwrap();
    setup.produce(&events[2000..]).await;
    wait_for_read(&setup.store, truth.events_sent).await;
    setup.assert_matches(&truth).await;
    setup.assert_projections(&events, &truth).await;
    setup.assert_sessions(&events, &late).await;
    stop_b.cancel();
    worker_b.await.unwrap();
    setup.registry.stop().await;
}

/// A worker process killed with SIGKILL at random moments (no flush, no group leave, a
/// commit possibly in flight) and started again, four times over: the store still equals
/// the ground truth exactly (nothing lost, nothing counted twice).
#[tokio::test]
async fn workers_killed_at_random_moments_still_fold_exactly() {
    use rand::{Rng, SeedableRng};
    let setup = Setup::new().await;
    let (events, truth, late) = workload(7, 6000);
    // Events keep arriving while the workers are killed and restarted (about 40 s: a new
    // member gets partitions only once the killed one's session has timed out).
    let producing = tokio::spawn({
        let (events, url, topic) = (
            events.clone(),
            setup.registry.url.clone(),
            setup.topic.clone(),
        );
        async move {
            let producer = EventProducer::new(&kafka(), &url, &topic).unwrap();
            for chunk in events.chunks(60) {
                futures::future::try_join_all(chunk.iter().map(|e| producer.send(e)))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        }
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut kills = 0;
    let mut kill_points = Vec::new();
    while kills < 4 {
        let mut worker = setup.spawn_worker_process();
        // Let it join and fold for a while, then kill it without warning.
        let started = setup.read().await;
        for _ in 0..1_200 {
            if setup.read().await > started {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        worker.kill().unwrap();
        worker.wait().unwrap();
        kills += 1;
        kill_points.push(setup.read().await);
    }
    println!(
        "records accounted for at each SIGKILL: {kill_points:?} of {}",
        truth.events_sent
    );
    let mid_stream: std::collections::BTreeSet<u64> = kill_points
        .iter()
        .copied()
        .filter(|&read| read > 0 && read < truth.events_sent)
        .collect();
    assert!(
        mid_stream.len() >= 2,
        "at least two kills should land mid-stream, at different points: {kill_points:?}"
    );
    producing.await.unwrap();
    let mut last = setup.spawn_worker_process();
    wait_for_read(&setup.store, truth.events_sent).await;
    last.kill().unwrap();
    last.wait().unwrap();
    setup.assert_matches(&truth).await;
    setup.assert_projections(&events, &truth).await;
    setup.assert_sessions(&events, &late).await;
    setup.registry.stop().await;
}

/// Exact values per (aggregate, window start, group) computed by brute force from the
/// distinct, on-time events, for every tumbling/hopping aggregate of a pipeline.
fn reference(
    pipeline: &eventfold::pipeline::Pipeline,
    events: &[&Interaction],
) -> BTreeMap<(String, i64, String), Vec<String>> {
    use eventfold::pipeline::{assign, field_value, WindowSpec};
    let text = |v: Option<eventfold::pipeline::aggregates::Value<'_>>| match v {
        Some(eventfold::pipeline::aggregates::Value::Text(t)) => Some(t.to_owned()),
        Some(eventfold::pipeline::aggregates::Value::Number(n)) => Some(n.to_string()),
        None => None,
    };
    let mut out: BTreeMap<(String, i64, String), Vec<String>> = BTreeMap::new();
    for aggregate in &pipeline.aggregates {
        if matches!(aggregate.window, WindowSpec::Session { .. }) {
            continue;
        }
        for event in events {
            if !aggregate
                .filter
                .iter()
                .all(|(f, want)| text(field_value(event, f)).as_deref() == Some(want.as_str()))
            {
                continue;
            }
            let value = match &aggregate.field {
                Some(field) => match text(field_value(event, field)) {
                    Some(v) => v,
                    None => continue,
                },
                None => String::new(),
            };
            let group: Vec<Option<String>> = aggregate
                .group_by
                .iter()
                .map(|f| text(field_value(event, f)))
                .collect();
            let group = serde_json::to_string(&group).unwrap();
            for window in assign(&aggregate.window, event.occurred_at).unwrap() {
                out.entry((aggregate.name.clone(), window.start_ms, group.clone()))
                    .or_default()
                    .push(value.clone());
            }
        }
    }
    out
}

#[tokio::test]
async fn every_aggregate_of_the_shipped_pipeline_matches_a_brute_force_reference() {
    let registry = TestRegistry::fresh().await;
    let topic = fresh_topic("shipped", 4).await;
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pipelines/interactions.yaml"
    ))
    .unwrap();
    let path = dir.path().join("interactions.yaml");
    std::fs::write(
        &path,
        shipped
            .replace("topic: interactions", &format!("topic: {topic}"))
            .replace(
                "late_topic: interactions-late",
                &format!("late_topic: {topic}-late"),
            ),
    )
    .unwrap();
    let pipeline = eventfold::pipeline::load_pipeline(&path).unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let (events, truth, late) = workload(8, 3000);
    let producer = EventProducer::new(&kafka(), &registry.url, &topic).unwrap();
    for chunk in events.chunks(200) {
        futures::future::try_join_all(chunk.iter().map(|e| producer.send(e)))
            .await
            .unwrap();
    }
    let worker = Worker::build(
        &kafka(),
        WorkerConfig {
            topic: topic.clone(),
            group_id: unique("g"),
            dead_letter_topic: unique("dlq"),
            pipeline: Some(path.clone()),
            ..WorkerConfig::default()
        },
        RegistryClient::new(registry.url.clone()).unwrap(),
        Arc::new(store.clone()),
    )
    .await
    .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    wait_for_read(&store, truth.events_sent).await;
    stop.cancel();
    running.await.unwrap();

    let mut seen = std::collections::HashSet::new();
    let on_time: Vec<&Interaction> = events
        .iter()
        .filter(|e| seen.insert(e.event_id.clone()) && !late.contains(&e.event_id))
        .collect();
    let expected = reference(&pipeline, &on_time);
    let mut checked = BTreeMap::new();
    for aggregate in pipeline
        .aggregates
        .iter()
        .filter(|a| !matches!(a.window, eventfold::pipeline::WindowSpec::Session { .. }))
    {
        let rows = store
            .aggregate_rows("interactions", &aggregate.name, i64::MIN, i64::MAX)
            .await
            .unwrap();
        let wanted: Vec<_> = expected.keys().filter(|k| k.0 == aggregate.name).collect();
        assert_eq!(
            rows.len(),
            wanted.len(),
            "{}: windows × groups",
            aggregate.name
        );
        for row in rows {
            let values = &expected[&(
                aggregate.name.clone(),
                row.window.start_ms,
                row.group.clone(),
            )];
            let numbers: Vec<f64> = values.iter().filter_map(|v| v.parse().ok()).collect();
            match row.state.result(&aggregate.params) {
                AggregateResult::Count(n) => {
                    assert_eq!(n, values.len() as u64, "{}", aggregate.name)
                }
                AggregateResult::Sum(sum) => {
                    assert!((sum - numbers.iter().sum::<f64>()).abs() < 1e-6)
                }
                AggregateResult::Avg(avg) => {
                    let mean = numbers.iter().sum::<f64>() / numbers.len() as f64;
                    assert!(
                        (avg.unwrap() - mean).abs() < 1e-9,
                        "{}: {avg:?} vs {mean}",
                        aggregate.name
                    );
                }
                AggregateResult::CountDistinct(n) => {
                    let exact = values
                        .iter()
                        .collect::<std::collections::HashSet<_>>()
                        .len() as f64;
                    assert!(
                        (n as f64 - exact).abs() <= (exact * 0.02).max(1.0),
                        "{}: {n} vs {exact}",
                        aggregate.name
                    );
                }
                AggregateResult::TopK(top) => {
                    let mut counts: BTreeMap<&String, u64> = BTreeMap::new();
                    for v in values {
                        *counts.entry(v).or_default() += 1;
                    }
                    for entry in &top {
                        let exact = counts[&entry.key];
                        assert!(
                            entry.count - entry.error <= exact && exact <= entry.count,
                            "{}: {entry:?} vs {exact}",
                            aggregate.name
                        );
                    }
                    let best = counts.values().max().copied().unwrap_or(0);
                    assert_eq!(
                        top[0].count - top[0].error,
                        best,
                        "{}: the top key is exact here",
                        aggregate.name
                    );
                }
                AggregateResult::Percentiles(quantiles) => {
                    let mut sorted = numbers.clone();
                    sorted.sort_by(f64::total_cmp);
                    for q in quantiles {
                        let rank = ((q.q * (sorted.len() - 1) as f64).round()) as usize;
                        let exact = sorted[rank];
                        let got = q.value.unwrap();
                        assert!(
                            (got - exact).abs() <= exact.abs() * 0.011 + 1e-9,
                            "{} p{}: {got} vs {exact}",
                            aggregate.name,
                            q.q
                        );
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
            *checked.entry(aggregate.name.clone()).or_insert(0) += 1;
        }
    }
    assert_eq!(
        checked.len(),
        7,
        "every windowed aggregate of interactions.yaml was checked: {checked:?}"
    );
    registry.stop().await;
}
