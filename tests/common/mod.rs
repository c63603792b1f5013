//! Shared test harness: the real broker (from `EVENTFOLD_TEST_BROKERS`, started by
//! `scripts/test.sh`), unique topic names per test, and eventfold's servers started in-process
//! with the same functions the binary uses, bound to 127.0.0.1:0.
#![allow(dead_code)]

pub mod broker;
pub mod fold;
pub mod service;
pub mod topic;

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use eventfold::kafka::{ensure_topic, KafkaConfig, TopicSpec};
use eventfold::registry::{RegistryConfig, SchemaLog};
use eventfold::store::SqliteStore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The broker address; panics with instructions when none answers (never skips).
pub fn brokers() -> String {
    let brokers =
        std::env::var("EVENTFOLD_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".to_owned());
    let reachable = brokers
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    assert!(
        reachable,
        "no Kafka broker answers at {brokers}: run the tests with scripts/test.sh, or start one \
         with `scripts/broker.sh start` and set EVENTFOLD_TEST_BROKERS=127.0.0.1:19092"
    );
    brokers
}

/// Kafka settings for tests: the test broker, short group timeouts.
pub fn kafka() -> KafkaConfig {
    KafkaConfig::local(brokers())
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The wall clock in ms since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// What a collector answer says the broker acknowledged: the events of a 200 answer, or the
/// `accepted` ones of a 503 (none when it was refused before producing); for each, the
/// partition and offset it names and the event's id (from `batch`, the events posted).
pub fn acknowledged(
    status: u16,
    answer: &serde_json::Value,
    batch: &[eventfold::contracts::Interaction],
) -> Vec<(i32, i64, String)> {
    let placed = match status {
        200 => &answer["events"],
        503 => &answer["accepted"],
        _ => return Vec::new(),
    };
    placed
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|event| {
            (
                event["partition"].as_i64().expect("a partition") as i32,
                event["offset"].as_i64().expect("an offset"),
                batch[event["index"].as_u64().expect("an index") as usize]
                    .event_id
                    .clone(),
            )
        })
        .collect()
}

/// The Python interpreter with confluent-kafka and avro installed.
pub fn python() -> String {
    let python = std::env::var("EVENTFOLD_TEST_PYTHON")
        .unwrap_or_else(|_| ".tools/venv/bin/python".to_owned());
    assert!(
        std::path::Path::new(&python).exists(),
        "no Python with confluent-kafka at {python}: run scripts/install-python-tools.sh \
         (scripts/test.sh does it) or set EVENTFOLD_TEST_PYTHON"
    );
    python
}

/// A registry replica running in this process.
pub struct TestRegistry {
    /// Its base URL.
    pub url: String,
    /// Its log topic.
    pub topic: String,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
}

impl TestRegistry {
    /// Starts a replica over `topic` (created if missing).
    pub async fn start(topic: &str) -> TestRegistry {
        TestRegistry::start_with(RegistryConfig {
            topic: topic.to_owned(),
            ..RegistryConfig::default()
        })
        .await
    }

    /// Starts a replica with `config` (its topic, users and read policy).
    pub async fn start_with(config: RegistryConfig) -> TestRegistry {
        let topic = config.topic.clone();
        let shutdown = CancellationToken::new();
        let log = SchemaLog::open(&kafka(), &config, shutdown.clone())
            .await
            .expect("registry log opens");
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let server = tokio::spawn(eventfold::http::serve(
            listener,
            eventfold::registry::require_credentials(eventfold::registry::router(log), &config),
            None,
            shutdown.clone(),
        ));
        TestRegistry {
            url,
            topic,
            shutdown,
            server,
        }
    }

    /// Starts a replica over a fresh topic.
    pub async fn fresh() -> TestRegistry {
        TestRegistry::start(&unique("_schemas")).await
    }

    /// Stops the replica and waits until its server returned.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
    }
}

/// A registry HTTP call's status and JSON body.
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
    pub content_type: String,
}

/// Calls the registry: `method` `path` with an optional raw body.
pub async fn call(url: &str, method: &str, path: &str, body: Option<&str>) -> Answer {
    call_as(url, None, method, path, body).await
}

/// [`call`] with HTTP basic `(user, password)`.
pub async fn call_as(
    url: &str,
    credentials: Option<(&str, &str)>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Answer {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(reqwest::Client::new);
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client.request(method, format!("{url}{path}"));
    if let Some((user, password)) = credentials {
        request = request.basic_auth(user, Some(password));
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .body(body.to_owned());
    }
    let response = request.send().await.expect("registry answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Answer {
        status,
        body,
        content_type,
    }
}

/// The JSON body `{"schema": "<schema>"}` for a schema given as JSON.
pub fn schema_body(schema: &serde_json::Value) -> String {
    serde_json::json!({ "schema": schema.to_string() }).to_string()
}

/// Waits (up to 60 s) until the store accounted for exactly `records` records read; fails
/// if it reads more (nothing may be read twice) or never gets there.
pub async fn wait_for_read(store: &SqliteStore, records: u64) {
    for _ in 0..600 {
        let read: u64 = store
            .partitions()
            .await
            .unwrap()
            .iter()
            .map(|p| p.read)
            .sum();
        assert!(
            read <= records,
            "read {read} records, more than the {records} in the topic"
        );
        if read == records {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the store did not account for {records} records in 60 s: {:?}",
        store.partitions().await
    );
}

/// A new topic named after `prefix`, with `partitions` partitions.
pub async fn fresh_topic(prefix: &str, partitions: i32) -> String {
    let topic = unique(prefix);
    let spec = TopicSpec {
        name: &topic,
        partitions,
        replication: 1,
        configs: &[],
    };
    ensure_topic(&kafka(), &spec).await.expect("topic created");
    topic
}

/// Waits (up to 30 s) until the store folded `events` events.
pub async fn wait_for_folded(store: &SqliteStore, events: u64) {
    for _ in 0..300 {
        let folded: u64 = store
            .partitions()
            .await
            .unwrap()
            .iter()
            .map(|p| p.folded)
            .sum();
        if folded == events {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The read path running in this process: a registry, a fresh topic, a worker folding it
/// into a fresh store with one pipeline, and the collector and query API (with the
/// dashboard) served on loopback.
pub struct ReadPath {
    /// The pipeline's source topic.
    pub topic: String,
    /// Base URL of the query API.
    pub query_url: String,
    /// `POST` URL of the collector's events.
    pub events_url: String,
    /// The store the worker writes.
    pub store: SqliteStore,
    /// Where the worker dead-letters records.
    pub dead_letter_topic: String,
    /// The registry the collector and the worker use.
    pub registry: TestRegistry,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl ReadPath {
    /// Starts everything over a fresh topic of `partitions` partitions; `pipeline` writes
    /// the pipeline file's YAML for that topic.
    pub async fn start(partitions: i32, pipeline: impl FnOnce(&str) -> String) -> ReadPath {
        use eventfold::ingest::{CollectorConfig, CollectorState, EventProducer};
        use eventfold::query::QueryState;
        use eventfold::store::FollowingStore;
        use eventfold::worker::{Worker, WorkerConfig};

        let registry = TestRegistry::fresh().await;
        let topic = fresh_topic("read-path", partitions).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let pipeline_path = dir.path().join("pipeline.yaml");
        std::fs::write(&pipeline_path, pipeline(&topic)).expect("pipeline written");
        let store_path = dir.path().join("store.db");
        let store = SqliteStore::open(&store_path).expect("store opens");
        let stop = CancellationToken::new();
        let dead_letter_topic = unique("dlq");
        let worker = Worker::build(
            &kafka(),
            WorkerConfig {
                topic: topic.clone(),
                group_id: unique("g"),
                dead_letter_topic: dead_letter_topic.clone(),
                pipeline: Some(pipeline_path.clone()),
                batch_linger_ms: 10,
                ..Default::default()
            },
            eventfold::registry::RegistryClient::new(registry.url.clone()).expect("client"),
            std::sync::Arc::new(store.clone()),
        )
        .await
        .expect("worker builds");
        let query = eventfold::query::router(
            QueryState::new(
                std::sync::Arc::new(FollowingStore::open(&store_path).expect("store opens")),
                vec![eventfold::pipeline::load_pipeline(&pipeline_path).expect("pipeline loads")],
                Duration::from_secs(20),
            )
            .with_shutdown(stop.clone()),
        );
        let collector = eventfold::ingest::router(
            CollectorState::new(
                EventProducer::new(&kafka(), &registry.url, &topic).expect("producer"),
                CollectorConfig {
                    topic: topic.clone(),
                    ..Default::default()
                },
            )
            .expect("write keys"),
        );
        let mut tasks = vec![tokio::spawn(worker.run(stop.clone()))];
        let mut urls = Vec::new();
        for router in [query, collector] {
            let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .expect("bind");
            urls.push(format!(
                "http://{}",
                listener.local_addr().expect("address")
            ));
            let serve = eventfold::http::serve(listener, router, None, stop.clone());
            tasks.push(tokio::spawn(async move {
                serve.await.expect("server runs");
            }));
        }
        ReadPath {
            topic,
            query_url: urls[0].clone(),
            events_url: format!("{}/v1/events", urls[1]),
            store,
            dead_letter_topic,
            registry,
            stop,
            tasks,
            _dir: dir,
        }
    }

    /// Posts events (JSON objects) to the collector; returns its consistency token.
    pub async fn post(&self, events: &[serde_json::Value]) -> String {
        let response = reqwest::Client::new()
            .post(&self.events_url)
            .json(events)
            .send()
            .await
            .expect("collector answers");
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let body: serde_json::Value = response.json().await.expect("JSON answer");
        body["consistency_token"]
            .as_str()
            .expect("a consistency token")
            .to_owned()
    }

    /// `GET` on the query API; the status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = reqwest::get(format!("{}{path}", self.query_url))
            .await
            .expect("query API answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// The shutdown signal of every server and the worker.
    pub fn shutdown(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops the servers, the worker and the registry, waiting for each.
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            task.await.expect("task ends cleanly");
        }
        self.registry.stop().await;
    }
}
