//! Overload: many clients post to the collector (a real `eventfold collect` process) for a
//! sustained period, far more than a throttled broker accepts (it is paused 90 % of the
//! time), one app also past its rate limit. The collector answers only 200, 429 or 503, each
//! refusal with `Retry-After`; its memory stays under a bound derived from its settings
//! (requests in flight × body size + producer queue × message size + a read buffer per
//! connection + a fixed allowance); and every event it acknowledged is in the topic once,
//! at the partition and offset it named. Without `max_in_flight_requests` the same load
//! took it to 92 MiB after 24 s and still rising (it peaks at 70–77 MiB with the limit;
//! the bound is ~98 MiB), and no request was refused as `overloaded`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::broker::{OwnBroker, Storage};
use common::service::Service;
use common::topic::{append_markers, read_to_markers};
use common::{acknowledged, free_port, now_ms, TestRegistry};
use eventfold::access::SecretDigest;
use eventfold::ingest::{Workload, WorkloadConfig};

const PARTITIONS: i32 = 2;
/// Requests the collector handles at once (`collector.max_in_flight_requests`).
const MAX_IN_FLIGHT: u64 = 32;
/// Largest request body (`collector.max_body_bytes`).
const MAX_BODY_BYTES: u64 = 64 * 1024;
/// Messages librdkafka queues before refusing more (`queue.buffering.max.messages`).
const QUEUE_MESSAGES: u64 = 1_000;
/// How long the clients keep posting.
const OVERLOAD: Duration = Duration::from_secs(24);
/// Clients of the app with a generous rate, and of the app over its rate limit.
const STEADY_CLIENTS: u64 = 184;
const FLOOD_CLIENTS: u64 = 8;
/// Events per request.
const BATCH: usize = 200;

/// The collector's resident memory (`VmRSS`), in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the collector runs");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib * 1024
}

/// What the clients saw.
#[derive(Default)]
struct Answers {
    /// Requests by status and error code (`200`, `429 rate_limited`, `503 overloaded`, …).
    by_kind: BTreeMap<String, u64>,
    /// Each acknowledged event: the partition and offset the collector named, and its id.
    acknowledged: Vec<(i32, i64, String)>,
}

/// One client: posts fresh batches as `key` until `stop`, recording every answer. It does
/// not honour `Retry-After` (it waits 50 ms after a refusal): it is the overload.
async fn client(
    url: String,
    key: &'static str,
    seed: u64,
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Answers>>,
) {
    let http = reqwest::Client::new();
    let mut events = Workload::new(WorkloadConfig {
        seed,
        users: 500,
        start_ms: now_ms() - 600_000,
        mean_gap_ms: 1,
        ..WorkloadConfig::default()
    })
    .map(|(_, event)| event);
    while !stop.load(Ordering::Relaxed) {
        let batch: Vec<_> = events.by_ref().take(BATCH).collect();
        let response = match http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-eventfold-key", key)
            .json(&batch)
            .send()
            .await
        {
            Ok(response) => response,
            Err(error) => {
                let kind = format!("no answer: {error:?}");
                *answers.lock().unwrap().by_kind.entry(kind).or_default() += 1;
                continue;
            }
        };
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").cloned();
        let body: serde_json::Value = response.json().await.expect("a JSON answer");
        let kind = match status {
            200 => "200".to_owned(),
            429 | 503 => {
                assert!(
                    retry_after.is_some(),
                    "{status} without Retry-After: {body}"
                );
                format!("{status} {}", body["error"].as_str().unwrap_or("?"))
            }
            other => panic!("the collector answered {other}: {body}"),
        };
        {
            let mut answers = answers.lock().unwrap();
            *answers.by_kind.entry(kind).or_default() += 1;
            answers
                .acknowledged
                .extend(acknowledged(status, &body, &batch));
        }
        if status != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_what_the_broker_accepts_the_collector_refuses_with_retry_after_in_bounded_memory() {
    let broker = OwnBroker::start(Storage::Memory, None);
    let kafka = broker.kafka();
    let registry = TestRegistry::fresh().await;
    let topic = broker.fresh_topic("overload", PARTITIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let settings = dir.path().join("eventfold.toml");
    std::fs::write(
        &settings,
        format!(
            r#"[kafka]
bootstrap_servers = "{brokers}"
[kafka.properties]
"queue.buffering.max.messages" = "{QUEUE_MESSAGES}"
[registry]
url = "{registry}"
[collector]
listen = "{listen}"
topic = "{topic}"
max_body_bytes = {MAX_BODY_BYTES}
max_in_flight_requests = {MAX_IN_FLIGHT}
delivery_timeout_ms = 2000
[[collector.write_keys]]
app = "steady"
key_sha256 = "{steady}"
rate_per_second = 100000
burst = 100000
[[collector.write_keys]]
app = "flood"
key_sha256 = "{flood}"
rate_per_second = 5
burst = 5
[metrics]
enabled = false
"#,
            brokers = broker.address,
            registry = registry.url,
            steady = SecretDigest::of(b"steady-key"),
            flood = SecretDigest::of(b"flood-key"),
        ),
    )
    .unwrap();
    let mut collector = Service::new("collector", dir.path(), move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_eventfold"));
        command
            .arg("--config")
            .arg(&settings)
            .arg("collect")
            // Two runtime threads whatever the machine: the allocator keeps a cache per
            // thread.
            .env("TOKIO_WORKER_THREADS", "2");
        command
    });
    collector.start();
    let pid = collector.pid();
    let mut listening = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect(&listen).is_ok() {
            listening = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        listening,
        "the collector did not listen on {listen} within 10 s"
    );
    // Warm up (registers the contract, connects to the broker), then measure the baseline.
    let url = format!("http://{listen}/v1/events");
    let warm_up_batch: Vec<_> = Workload::new(WorkloadConfig {
        seed: 1_000,
        start_ms: now_ms() - 600_000,
        ..WorkloadConfig::default()
    })
    .map(|(_, event)| event)
    .take(BATCH)
    .collect();
    let warm_up = reqwest::Client::new()
        .post(&url)
        .header("x-eventfold-key", "steady-key")
        .json(&warm_up_batch)
        .send()
        .await
        .unwrap();
    assert_eq!(warm_up.status(), 200);
    let warm_up: serde_json::Value = warm_up.json().await.unwrap();
    let baseline = rss_bytes(pid);
    // What the settings allow the collector to hold: every request in flight with a full
    // body, its parsed events (~3 × their JSON: a dozen small strings each), their Avro
    // encoding and the answer (6 × the body in all); every queued message with its key,
    // trace header and librdkafka's bookkeeping (2 KiB each; the events here are ~270
    // bytes); a read buffer of up to a body per open connection (one per client); and a
    // fixed 32 MiB for what the allocator keeps of freed memory.
    let clients = STEADY_CLIENTS + FLOOD_CLIENTS;
    let bound = baseline
        + MAX_IN_FLIGHT * MAX_BODY_BYTES * 6
        + QUEUE_MESSAGES * 2048
        + clients * MAX_BODY_BYTES
        + (32 << 20);

    // The broker accepts work 100 ms in every second.
    let stop = Arc::new(AtomicBool::new(false));
    let throttle = std::thread::spawn({
        let (stop, pid) = (stop.clone(), broker.pid().to_string());
        move || {
            let signal = |signal: &str| {
                assert!(Command::new("kill")
                    .args([signal, &pid])
                    .status()
                    .unwrap()
                    .success());
            };
            while !stop.load(Ordering::Relaxed) {
                signal("-STOP");
                std::thread::sleep(Duration::from_millis(900));
                signal("-CONT");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    let answers = Arc::new(Mutex::new(Answers {
        acknowledged: acknowledged(200, &warm_up, &warm_up_batch),
        ..Answers::default()
    }));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let key = if i < STEADY_CLIENTS {
                "steady-key"
            } else {
                "flood-key"
            };
            tokio::spawn(client(url.clone(), key, i, stop.clone(), answers.clone()))
        })
        .collect();
    let mut peak = baseline;
    let mut samples = Vec::new();
    while started.elapsed() < OVERLOAD {
        let rss = rss_bytes(pid);
        peak = peak.max(rss);
        if samples.len() < (started.elapsed().as_secs() / 4) as usize + 1 {
            samples.push(rss >> 20);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    throttle.join().unwrap();
    let overloaded_for = started.elapsed();
    let final_rss = rss_bytes(pid);

    // Every acknowledged event is in the topic once, where the collector said.
    append_markers(&kafka, &topic, PARTITIONS).await;
    let records = read_to_markers(&kafka, &topic, PARTITIONS, &registry.url).await;
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let mut copies: HashMap<&String, u64> = HashMap::new();
    for id in records.values() {
        *copies.entry(id).or_default() += 1;
    }
    let acknowledged = &answers.acknowledged;
    let misplaced: Vec<_> = acknowledged
        .iter()
        .filter(|(partition, offset, id)| records.get(&(*partition, *offset)) != Some(id))
        .collect();
    let doubled = acknowledged
        .iter()
        .filter(|(_, _, id)| copies.get(id).copied().unwrap_or(0) > 1)
        .count();
    let requests: u64 = answers.by_kind.values().sum();
    println!(
        "overload: {requests} requests in {:.1} s from {} clients ({:?}); {} events \
         acknowledged, {} records in the topic, {} acknowledged events missing or misplaced, \
         {doubled} in the topic more than once; collector RSS: baseline {} MiB, peak {} MiB, \
         every 4 s {samples:?} MiB, after {} MiB, bound {} MiB",
        overloaded_for.as_secs_f64(),
        clients,
        answers.by_kind,
        acknowledged.len(),
        records.len(),
        misplaced.len(),
        baseline >> 20,
        peak >> 20,
        final_rss >> 20,
        bound >> 20,
    );
    let kinds = [
        "200",
        "429 rate_limited",
        "503 overloaded",
        "503 unavailable",
    ];
    assert_eq!(
        kinds
            .iter()
            .map(|kind| answers.by_kind.get(*kind).copied().unwrap_or(0))
            .sum::<u64>(),
        requests,
        "every request gets 200, 429 or 503: {:?}",
        answers.by_kind
    );
    for kind in kinds {
        assert!(
            answers.by_kind.get(kind).copied().unwrap_or(0) > 0,
            "no '{kind}' answer: {:?}",
            answers.by_kind
        );
    }
    assert!(
        misplaced.is_empty(),
        "acknowledged, not in the topic where the collector said: {misplaced:?}"
    );
    assert_eq!(doubled, 0);
    assert!(
        peak < bound,
        "the collector's RSS peaked at {} MiB, over the {} MiB its settings allow",
        peak >> 20,
        bound >> 20
    );
    collector.kill();
    registry.stop().await;
}
