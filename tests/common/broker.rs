//! A Kafka-protocol broker of a test's own (Tansu), so the test can pause, kill and restart
//! it without disturbing other tests: in memory (`scripts/install-broker.sh`), or durable
//! (Tansu's libsql build from `scripts/install-durable-broker.sh`, storing into a SQLite
//! file that survives SIGKILL, so a restart on the same port and file keeps every record).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use eventfold::kafka::{ensure_topic, KafkaConfig, TopicSpec};

/// Where the broker keeps its records.
#[derive(Debug, Clone)]
pub enum Storage {
    /// In memory: a restart loses everything.
    Memory,
    /// In this SQLite file (created if missing).
    Durable(PathBuf),
}

/// A broker process on a loopback port of its own; killed when dropped.
pub struct OwnBroker {
    /// `127.0.0.1:PORT`.
    pub address: String,
    storage: Storage,
    log: Option<PathBuf>,
    child: Option<Child>,
}

/// The broker binary for `storage`: `EVENTFOLD_TEST_TANSU` / `EVENTFOLD_TEST_DURABLE_TANSU`,
/// else the one the install scripts put in `.tools/bin/`.
fn binary(storage: &Storage) -> (String, &'static str) {
    let (variable, installed, script) = match storage {
        Storage::Memory => ("EVENTFOLD_TEST_TANSU", "tansu", "scripts/install-broker.sh"),
        Storage::Durable(_) => (
            "EVENTFOLD_TEST_DURABLE_TANSU",
            "tansu-libsql",
            "scripts/install-durable-broker.sh",
        ),
    };
    let path = std::env::var(variable).unwrap_or_else(|_| {
        format!(
            "{}/.tools/bin/{installed}",
            env!("CARGO_MANIFEST_DIR").trim_end_matches('/')
        )
    });
    (path, script)
}

impl OwnBroker {
    /// Starts a broker on a free loopback port; its output goes to `log` if given.
    pub fn start(storage: Storage, log: Option<&Path>) -> OwnBroker {
        let port = super::free_port();
        let mut broker = OwnBroker {
            address: format!("127.0.0.1:{port}"),
            storage,
            log: log.map(Path::to_path_buf),
            child: None,
        };
        broker.restart();
        broker
    }

    /// Kafka settings for this broker, with short group timeouts.
    pub fn kafka(&self) -> KafkaConfig {
        KafkaConfig::local(self.address.clone())
    }

    /// A new topic named after `prefix`, with `partitions` partitions, on this broker.
    pub async fn fresh_topic(&self, prefix: &str, partitions: i32) -> String {
        let topic = super::unique(prefix);
        let spec = TopicSpec {
            name: &topic,
            partitions,
            replication: 1,
            configs: &[],
        };
        ensure_topic(&self.kafka(), &spec)
            .await
            .expect("topic created");
        topic
    }

    /// The broker's process id (while it runs).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the broker runs").id()
    }

    /// Starts the broker (again) on the same port and storage, once it is not running, and
    /// waits until it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the broker is still running");
        let (binary, script) = binary(&self.storage);
        // Tansu opens a sqlite:// path relative to its working directory: it runs in the
        // database's folder.
        let (engine, workdir) = match &self.storage {
            Storage::Memory => ("memory://tansu/".to_owned(), None),
            Storage::Durable(file) => (
                format!(
                    "sqlite://{}",
                    file.file_name().expect("a file name").to_string_lossy()
                ),
                file.parent(),
            ),
        };
        let output = || match &self.log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("broker log opens"),
            ),
            None => Stdio::null(),
        };
        let mut command = Command::new(&binary);
        if let Some(workdir) = workdir {
            command.current_dir(workdir);
        }
        let mut child = command
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://{}", self.address),
                "--advertised-listener-url",
                &format!("tcp://{}", self.address),
                "--storage-engine",
                &engine,
            ])
            .env("NO_COLOR", "1")
            .env_remove("CLUSTER_ID")
            .env_remove("SCHEMA_REGISTRY")
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the broker {binary}: {e}; run {script}"));
        for _ in 0..200 {
            if std::net::TcpStream::connect(&self.address).is_ok() {
                self.child = Some(child);
                return;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the broker {binary} exited at start ({status}); its log: {:?}",
                    self.log
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the broker did not listen on {} within 10 s", self.address);
    }

    /// Kills the broker with SIGKILL (no flush, no goodbye) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.signal_child(&child, "-CONT");
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. `-STOP`, `-CONT`) to the broker.
    pub fn signal(&self, signal: &str) {
        self.signal_child(self.child.as_ref().expect("the broker runs"), signal);
    }

    fn signal_child(&self, child: &Child, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {}", child.id());
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.kill();
    }
}
