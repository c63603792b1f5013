//! Configuration: defaults < file < environment, every invalid value reported with its key,
//! and secrets masked in `eventfold config`. One test: the environment is process-wide.

use std::io::Write;
use std::process::Command;

use eventfold::settings::Settings;

fn file(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(contents.as_bytes()).unwrap();
    file
}

fn load_error(contents: &str) -> String {
    let file = file(contents);
    format!(
        "{:#}",
        anyhow::Error::from(Settings::load(Some(file.path())).unwrap_err())
    )
}

#[test]
fn layering_errors_and_masking() {
    for (key, _) in std::env::vars() {
        if key.starts_with("EVENTFOLD__") {
            std::env::remove_var(key);
        }
    }
    let defaults = Settings::load(Some(file("").path())).unwrap();
    assert_eq!(defaults, Settings::default());
    assert_eq!(defaults.kafka.bootstrap_servers, "127.0.0.1:9092");

    let layered = file("[kafka]\nbootstrap_servers = \"from-file:9092\"\nsession_timeout_ms = 9000\n[worker]\nbatch_max_events = 7\n");
    let from_file = Settings::load(Some(layered.path())).unwrap();
    assert_eq!(from_file.kafka.bootstrap_servers, "from-file:9092");
    assert_eq!(from_file.kafka.session_timeout_ms, 9000);
    assert_eq!(from_file.worker.batch_max_events, 7);
    std::env::set_var("EVENTFOLD__KAFKA__BOOTSTRAP_SERVERS", "from-env:9092");
    std::env::set_var("EVENTFOLD__WORKER__BATCH_MAX_EVENTS", "11");
    let from_env = Settings::load(Some(layered.path())).unwrap();
    assert_eq!(from_env.kafka.bootstrap_servers, "from-env:9092");
    assert_eq!(
        from_env.kafka.session_timeout_ms, 9000,
        "keys the environment does not set keep the file's value"
    );
    assert_eq!(from_env.worker.batch_max_events, 11);
    std::env::remove_var("EVENTFOLD__KAFKA__BOOTSTRAP_SERVERS");
    std::env::remove_var("EVENTFOLD__WORKER__BATCH_MAX_EVENTS");

    let cases = [
        ("[kafka]\nsession_timeout_ms = \"soon\"\n", "kafka.session_timeout_ms"),
        ("[kafka]\nbootstrap_server = \"x:1\"\n", "bootstrap_server"),
        ("[kafak]\n", "kafak"),
        ("[kafka]\nbootstrap_servers = \" \"\n", "kafka.bootstrap_servers: must name at least one broker"),
        ("[kafka]\nsession_timeout_ms = 6000\nheartbeat_interval_ms = 3000\n", "kafka.heartbeat_interval_ms (3000) must be at most a third of kafka.session_timeout_ms (6000)"),
        ("[worker]\nreader_version = 9\n", "worker.reader_version: no contract version 9"),
        ("[worker]\nbatch_max_events = 0\n", "worker.batch_max_events: must be at least 1"),
        ("[worker]\ntopic = \"t\"\ndead_letter_topic = \"t\"\n", "worker.dead_letter_topic: must differ from worker.topic"),
        ("[registry]\nurl = \"ftp://registry\"\n", "registry.url: must start with http:// or https://"),
        ("[registry]\nlisten = \"not an address\"\n", "registry.listen"),
        ("[collector]\nmax_events_per_batch = 0\n", "collector.max_events_per_batch: must be at least 1"),
        ("[collector]\nmax_in_flight_requests = 0\n", "collector.max_in_flight_requests: must be at least 1"),
        ("[collector]\ndelivery_timeout_ms = 10\n", "collector.delivery_timeout_ms: must be at least 1000"),
        ("[log]\nformat = \"xml\"\n", "log.format"),
        ("[metrics]\nenabled = \"maybe\"\n", "metrics.enabled"),
        ("[[collector.write_keys]]\napp = \"web\"\nkey_sha256 = \"abc\"\n", "a SHA-256 digest is 64 hex digits, got 3 characters"),
        ("[collector]\nrate_per_second = 0\n", "collector.rate_per_second: every rate must be positive"),
        ("[collector]\ncors_allowed_origins = [\"https://shop.example/\"]\n", "collector.cors_allowed_origins: 'https://shop.example/' is not an origin"),
    ];
    for (contents, expected) in cases {
        let error = load_error(contents);
        assert!(error.contains(expected), "{contents:?}: {error}");
    }
    // All problems at once, not the first.
    let both = load_error("[worker]\nbatch_max_events = 0\nreader_version = 9\n");
    assert!(
        both.contains("batch_max_events") && both.contains("reader_version"),
        "{both}"
    );

    // `eventfold config` prints the effective settings with secrets masked.
    let secret = file("[kafka.properties]\n\"sasl.password\" = \"hunter2\"\n\"sasl.username\" = \"app\"\n[registry]\nurl = \"https://user:pa55@registry:8081\"\nusername = \"ci\"\n[[collector.write_keys]]\napp = \"web\"\nkey_sha256 = \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"\n");
    let output = Command::new(env!("CARGO_BIN_EXE_eventfold"))
        .args(["--config", secret.path().to_str().unwrap(), "config"])
        .env("EVENTFOLD__WORKER__GROUP_ID", "env-group")
        .env("EVENTFOLD__REGISTRY__PASSWORD", "regpa55word")
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(
        !printed.contains("hunter2") && !printed.contains("pa55"),
        "{printed}"
    );
    // The registry client's password is masked; write keys are stored only as digests.
    assert!(
        printed.contains("username = \"ci\"\npassword = \"****\"")
            && printed.contains(
                "key_sha256 = \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\""
            ),
        "{printed}"
    );
    assert!(
        printed.contains("\"sasl.password\" = \"****\"")
            && printed.contains("\"sasl.username\" = \"app\""),
        "{printed}"
    );
    assert!(
        printed.contains("https://****@registry:8081")
            && printed.contains("group_id = \"env-group\""),
        "{printed}"
    );
    // `eventfold hash-secret` prints the digest the settings take (the line break is not hashed).
    let mut hashing = Command::new(env!("CARGO_BIN_EXE_eventfold"))
        .arg("hash-secret")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    hashing.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    let hashed = hashing.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8(hashed.stdout).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_eventfold"))
        .arg("config")
        .env("EVENTFOLD__KAFKA__SESSION_TIMEOUT_MS", "abc")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("kafka.session_timeout_ms"));
}
