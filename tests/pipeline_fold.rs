//! Windowed aggregates folded by consumer-group workers against a real broker, compared with
//! the workload's ground truth: late, out-of-order and duplicate events included, with one
//! worker and with two workers of which one stops mid-run.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::fold::{assert_folded_exactly, pipeline_yaml, worker_process, workload, Sent};
use common::{fresh_topic, kafka, unique, wait_for_read, TestRegistry};
use eventfold::contracts::Interaction;
use eventfold::ingest::EventProducer;
use eventfold::pipeline::AggregateResult;
use eventfold::registry::RegistryClient;
use eventfold::store::{ReadStore, SqliteStore};
use eventfold::worker::{Worker, WorkerConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Event time of the workloads' first event.
const START_MS: i64 = 1_764_000_000_000;

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
        std::fs::write(&pipeline, pipeline_yaml(&topic)).unwrap();
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
        worker_process(
            &common::brokers(),
            &self.registry.url,
            &self.topic,
            &self.group,
            &self.pipeline,
            &self.store_path,
        )
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

    /// Asserts the store read exactly what was sent and equals its ground truth.
    async fn assert_exact(&self, sent: &Sent) {
        assert_folded_exactly(&self.store, sent, sent.truth.events_sent, 0).await;
    }
}

#[tokio::test]
async fn one_worker_folds_windows_exactly_with_late_out_of_order_and_duplicates() {
    let setup = Setup::new().await;
    let sent = workload(5, 3000, START_MS);
    let truth = &sent.truth;
    assert!(truth.late_events > 10 && truth.duplicates > 30 && truth.out_of_order_events > 50);
    let (stop, worker) = setup.start_worker().await;
    setup.produce(&sent.events).await;
    wait_for_read(&setup.store, truth.events_sent).await;
    setup.assert_exact(&sent).await;
    stop.cancel();
    worker.await.unwrap();
    setup.registry.stop().await;
}

#[tokio::test]
async fn two_workers_and_a_takeover_still_fold_exactly() {
    let setup = Setup::new().await;
    let sent = workload(6, 4000, START_MS);
    let (stop_a, worker_a) = setup.start_worker().await;
    let (stop_b, worker_b) = setup.start_worker().await;
    setup.produce(&sent.events[..2000]).await;
    wait_for_read(&setup.store, 2000).await;
    stop_a.cancel();
    worker_a.await.unwrap();
    setup.produce(&sent.events[2000..]).await;
    wait_for_read(&setup.store, sent.truth.events_sent).await;
    setup.assert_exact(&sent).await;
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
    let sent = workload(7, 6000, START_MS);
    let truth = &sent.truth;
    // Events keep arriving while the workers are killed and restarted (about 40 s: a new
    // member gets partitions only once the killed one's session has timed out).
    let producing = tokio::spawn({
        let (events, url, topic) = (
            sent.events.clone(),
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
    setup.assert_exact(&sent).await;
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
    let Sent {
        events,
        truth,
        late,
    } = workload(8, 3000, START_MS);
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
