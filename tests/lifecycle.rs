//! Lifecycle of the real binary against a real broker: `eventfold work` stopped with SIGTERM
//! mid-stream commits what it holds, leaves the group and exits 0; the next worker resumes
//! from the store with nothing lost and nothing counted twice.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{fresh_topic, kafka, unique, TestRegistry};
use eventfold::contracts::{EventType, Interaction};
use eventfold::ingest::{EventGenerator, EventProducer};
use eventfold::store::SqliteStore;

struct Names {
    topic: String,
    group: String,
    registry: String,
    store: std::path::PathBuf,
}

fn spawn_worker(names: &Names) -> Child {
    Command::new(env!("CARGO_BIN_EXE_eventfold"))
        .arg("work")
        .env("EVENTFOLD__KAFKA__BOOTSTRAP_SERVERS", common::brokers())
        .env("EVENTFOLD__KAFKA__SESSION_TIMEOUT_MS", "6000")
        .env("EVENTFOLD__KAFKA__HEARTBEAT_INTERVAL_MS", "1000")
        .env("EVENTFOLD__REGISTRY__URL", &names.registry)
        .env("EVENTFOLD__WORKER__TOPIC", &names.topic)
        .env("EVENTFOLD__WORKER__GROUP_ID", &names.group)
        .env(
            "EVENTFOLD__WORKER__DEAD_LETTER_TOPIC",
            format!("{}-dlq", names.topic),
        )
        .env("EVENTFOLD__WORKER__BATCH_MAX_EVENTS", "50")
        .env("EVENTFOLD__STORE__PATH", &names.store)
        .env("EVENTFOLD__METRICS__ENABLED", "false")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the eventfold binary starts")
}

/// Produces `events` a hundred at a time, 60 ms apart: a stream, not a backlog.
async fn produce_paced(producer: &EventProducer, events: &[Interaction]) {
    for chunk in events.chunks(100) {
        futures::future::try_join_all(chunk.iter().map(|e| producer.send(e)))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
}

async fn read(store: &SqliteStore) -> u64 {
    store
        .partitions()
        .await
        .unwrap()
        .iter()
        .map(|p| p.read)
        .sum()
}

#[tokio::test]
async fn sigterm_commits_and_leaves_then_the_next_worker_resumes_exactly() {
    let registry = TestRegistry::fresh().await;
    let topic = fresh_topic("lifecycle", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let names = Names {
        topic: topic.clone(),
        group: unique("workers"),
        registry: registry.url.clone(),
        store: dir.path().join("store.db"),
    };
    let store = SqliteStore::open(&names.store).unwrap();
    let events: Vec<Interaction> = EventGenerator::new(21, 50, 30, 1_764_000_000_000)
        .take(4000)
        .collect();

    // The second half is produced only once the first worker has stopped, so the stop
    // lands mid-stream however long the worker takes to join and start.
    let (stopped, second_half) = tokio::sync::oneshot::channel::<()>();
    let producing = tokio::spawn({
        let (events, url, topic) = (events.clone(), registry.url.clone(), topic.clone());
        async move {
            let producer = EventProducer::new(&kafka(), &url, &topic).unwrap();
            let (first, second) = events.split_at(events.len() / 2);
            produce_paced(&producer, first).await;
            second_half.await.unwrap();
            produce_paced(&producer, second).await;
        }
    });
    let mut first = spawn_worker(&names);
    for _ in 0..300 {
        if read(&store).await >= 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = read(&store).await;
    assert!(before >= 500, "the first worker folded {before} records");
    let status = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || {
        let status = first.wait().unwrap();
        let mut log = String::new();
        std::io::Read::read_to_string(first.stderr.as_mut().unwrap(), &mut log).unwrap();
        (status, log)
    })
    .await
    .unwrap();
    assert_eq!(exit.0.code(), Some(0), "{}", exit.1);
    assert!(
        exit.1
            .contains("Worker stopped: batches committed, group left."),
        "{}",
        exit.1
    );
    let at_stop = read(&store).await;
    stopped.send(()).unwrap();
    producing.await.unwrap();
    assert!(
        (before..=2000).contains(&at_stop),
        "the stop should land mid-stream, after the {before} records seen before it (read {at_stop})"
    );

    let mut second = spawn_worker(&names);
    for _ in 0..600 {
        if read(&store).await >= 4000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status();
    let _ = tokio::task::spawn_blocking(move || second.wait()).await;

    let partitions = store.partitions().await.unwrap();
    let total =
        |f: fn(&eventfold::store::PartitionStatus) -> u64| partitions.iter().map(f).sum::<u64>();
    assert_eq!(
        (
            total(|p| p.read),
            total(|p| p.folded),
            total(|p| p.duplicates)
        ),
        (4000, 4000, 0)
    );
    let mut expected: BTreeMap<String, BTreeMap<EventType, u64>> = BTreeMap::new();
    for event in &events {
        *expected
            .entry(event.user_id.clone())
            .or_default()
            .entry(event.event_type)
            .or_default() += 1;
    }
    assert_eq!(store.all_user_event_counts().await.unwrap(), expected);
    registry.stop().await;
}
