//! TLS on every HTTP server (`[tls]`) and HTTPS registries for the clients
//! (`registry.ca_path`), with a CA and a server certificate made by rcgen at test time:
//! HTTPS answers over HTTP/2 and HTTP/1.1 (ALPN), plain HTTP and untrusting clients get no
//! HTTP answer, a silent client blocks nobody and is cut at the handshake timeout, shutdown
//! lets in-flight HTTPS requests finish, Python's ssl agrees, every config problem is
//! reported with its path, and the real binaries (registry, collector, worker, query API,
//! metrics) work end to end over HTTPS.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use eventfold::http::{ServerTls, TlsConfig};
use eventfold::registry::RegistryConfig;
use eventfold::settings::Settings;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A CA, and a certificate for `localhost` and `127.0.0.1` that it signed, in PEM files.
struct Pki {
    dir: tempfile::TempDir,
    /// The CA certificate.
    ca: PathBuf,
    /// The server's chain: its certificate, then the CA's.
    chain: PathBuf,
    /// The server's private key (PKCS#8).
    key: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "eventfold test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "eventfold test server");
        let server = params.signed_by(&key, &issuer).unwrap();
        let pki = Pki {
            ca: dir.path().join("ca.pem"),
            chain: dir.path().join("chain.pem"),
            key: dir.path().join("key.pem"),
            dir,
        };
        std::fs::write(&pki.ca, ca.pem()).unwrap();
        std::fs::write(&pki.chain, format!("{}{}", server.pem(), ca.pem())).unwrap();
        std::fs::write(&pki.key, key.serialize_pem()).unwrap();
        pki
    }

    fn config(&self, handshake_timeout_ms: u64) -> TlsConfig {
        TlsConfig {
            cert_path: Some(self.chain.clone()),
            key_path: Some(self.key.clone()),
            handshake_timeout_ms,
        }
    }

    fn server(&self, handshake_timeout_ms: u64) -> ServerTls {
        self.config(handshake_timeout_ms)
            .server()
            .expect("the certificate and key load")
            .expect("TLS is configured")
    }

    /// A file in the same folder.
    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// A client trusting only this CA; `http1_only` turns HTTP/2 off.
    fn client(&self, http1_only: bool) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.ca).unwrap()).unwrap();
        let builder = reqwest::Client::builder()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(30));
        let builder = if http1_only {
            builder.http1_only()
        } else {
            builder
        };
        builder.build().unwrap()
    }
}

/// Serves `router` over TLS on a fresh loopback port in this process.
async fn serve_tls(
    router: Router,
    tls: ServerTls,
) -> (
    SocketAddr,
    CancellationToken,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(eventfold::http::serve(
        listener,
        router,
        Some(tls),
        stop.clone(),
    ));
    (address, stop, server)
}

fn health() -> Router {
    eventfold::telemetry::health_router(eventfold::telemetry::Readiness::default())
}

/// Sends a plain HTTP request to `address`; every byte the server sends back until it
/// closes, and the client's own address.
fn plain_http(address: SocketAddr) -> (Vec<u8>, SocketAddr) {
    let mut tcp = TcpStream::connect(address).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer)
        .expect("the server closes the connection");
    (answer, tcp.local_addr().unwrap())
}

/// The error chain of a request as one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn https_only_over_h2_and_http1_and_nothing_for_plain_or_untrusting_clients() {
    let pki = Pki::new();
    let (address, stop, server) = serve_tls(health(), pki.server(10_000)).await;
    let url = format!("https://localhost:{}/healthz", address.port());

    for (http1_only, version) in [
        (false, reqwest::Version::HTTP_2),
        (true, reqwest::Version::HTTP_11),
    ] {
        let response = pki.client(http1_only).get(&url).send().await.unwrap();
        assert_eq!(
            (response.status().as_u16(), response.version()),
            (200, version)
        );
        assert_eq!(response.text().await.unwrap(), "ok");
    }

    // Plain HTTP to the TLS port: no HTTP answer, only TLS' own alert before the close.
    let (answer, _) = tokio::task::spawn_blocking(move || plain_http(address))
        .await
        .unwrap();
    assert_eq!(
        answer,
        PLAIN_HTTP_ANSWER,
        "{:?}",
        String::from_utf8_lossy(&answer)
    );

    // A client trusting only the system's CAs fails the handshake.
    let error = reqwest::Client::new().get(&url).send().await.unwrap_err();
    assert!(error.is_connect(), "{}", chain(&error));
    assert!(
        chain(&error).contains("certificate verify failed"),
        "{}",
        chain(&error)
    );

    // An independent client: Python's ssl and urllib.
    let python = common::python();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/tls_client.py");
    let (url, ca) = (url.clone(), pki.ca.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(&url)
            .arg(&ca)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        answer,
        json!({
            "status": 200,
            "body": "ok",
            "tls_version": "TLSv1.3",
            "alpn": "h2",
            "untrusted": "SSLCertVerificationError: self-signed certificate in certificate chain",
        })
    );

    stop.cancel();
    server.await.unwrap().unwrap();
}

/// What a plain HTTP request to the TLS port gets back.
const PLAIN_HTTP_ANSWER: &[u8] = &[21, 3, 3, 0, 2, 2, 50];

#[tokio::test]
async fn a_silent_client_blocks_nobody_and_is_cut_at_the_handshake_timeout() {
    let pki = Pki::new();
    let (address, stop, server) = serve_tls(health(), pki.server(1_000)).await;
    let opened = Instant::now();
    let silent: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(address).unwrap())
        .collect();

    let client = pki.client(false);
    let url = format!("https://127.0.0.1:{}/healthz", address.port());
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answered = opened.elapsed();
    // Handshakes in the accept loop would hold this request up for 3 × 1000 ms.
    assert!(
        answered < Duration::from_millis(1_000),
        "answered after {answered:?} while 3 clients stayed silent"
    );

    let closed = tokio::task::spawn_blocking(move || {
        silent
            .into_iter()
            .map(|mut tcp| {
                tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buffer = [0u8; 64];
                let read = tcp.read(&mut buffer).unwrap();
                (read, opened.elapsed())
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (read, after) in closed {
        assert_eq!(read, 0, "the server sends nothing to a silent client");
        assert!(
            after >= Duration::from_millis(1_000) && after < Duration::from_millis(2_000),
            "closed after {after:?} with a 1000 ms handshake timeout"
        );
    }
    stop.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_https_request_finish() {
    let pki = Pki::new();
    let router = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            "done"
        }),
    );
    let (address, stop, server) = serve_tls(router, pki.server(10_000)).await;
    let client = pki.client(false);
    let url = format!("https://localhost:{}/slow", address.port());
    let request = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { client.get(&url).send().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    let response = request.await.unwrap().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    server.await.unwrap().unwrap();
    // The port is closed: even a trusting client cannot connect.
    let after = client.get(&url).send().await.unwrap_err();
    assert!(after.is_connect(), "{}", chain(&after));
    assert!(
        chain(&after).contains("Connection refused"),
        "{}",
        chain(&after)
    );
}

fn tls(cert: Option<&Path>, key: Option<&Path>) -> TlsConfig {
    TlsConfig {
        cert_path: cert.map(Path::to_owned),
        key_path: key.map(Path::to_owned),
        ..TlsConfig::default()
    }
}

#[test]
fn every_tls_problem_is_reported_with_its_path() {
    let pki = Pki::new();
    let other = Pki::new();
    let missing = pki.dir.path().join("missing.pem");
    let empty = pki.file("empty.pem", "");
    let broken = pki.file(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END PRIVATE KEY-----\n",
    );
    let garbage = pki.file(
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let show = |p: &Path| p.display().to_string();
    let (chain, key) = (show(&pki.chain), show(&pki.key));

    assert_eq!(tls(None, None).problems(), Vec::<String>::new());
    assert_eq!(
        tls(Some(&pki.chain), Some(&pki.key)).problems(),
        Vec::<String>::new()
    );
    let cases: Vec<(TlsConfig, Vec<String>)> = vec![
        (
            tls(Some(&pki.chain), None),
            vec![format!(
                "tls.cert_path: '{chain}' is set without tls.key_path (give both or neither)"
            )],
        ),
        (
            tls(None, Some(&pki.key)),
            vec![format!(
                "tls.key_path: '{key}' is set without tls.cert_path (give both or neither)"
            )],
        ),
        (
            tls(Some(&missing), Some(&missing)),
            vec![
                format!("tls.cert_path: cannot read '{}': No such file or directory (os error 2)", show(&missing)),
                format!("tls.key_path: cannot read '{}': No such file or directory (os error 2)", show(&missing)),
            ],
        ),
        (
            tls(Some(&pki.key), Some(&pki.chain)),
            vec![
                format!("tls.cert_path: '{key}' holds no PEM certificate (BEGIN CERTIFICATE)"),
                format!("tls.key_path: '{chain}' holds no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"),
            ],
        ),
        (
            tls(Some(&broken), Some(&empty)),
            vec![
                format!("tls.cert_path: '{}' is not valid PEM: {BROKEN_PEM}", show(&broken)),
                format!("tls.key_path: '{}' holds no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", show(&empty)),
            ],
        ),
        (
            tls(Some(&pki.chain), Some(&other.key)),
            vec![format!(
                "tls.key_path: the private key in '{}' does not match the certificate in '{chain}'",
                show(&other.key)
            )],
        ),
        (
            tls(Some(&garbage), Some(&pki.key)),
            vec![format!(
                "tls.cert_path: the first certificate in '{}' is not usable: {GARBAGE_CERTIFICATE}",
                show(&garbage)
            )],
        ),
        (
            TlsConfig {
                handshake_timeout_ms: 0,
                ..tls(None, None)
            },
            vec!["tls.handshake_timeout_ms: must be positive".to_owned()],
        ),
    ];
    for (config, expected) in cases {
        assert_eq!(config.problems(), expected, "{config:?}");
    }

    let registry = |path: &Path| RegistryConfig {
        ca_path: Some(path.to_owned()),
        ..RegistryConfig::default()
    };
    assert_eq!(registry(&pki.ca).problems(), Vec::<String>::new());
    assert_eq!(registry(&pki.ca).endpoint().unwrap().trusted.len(), 1);
    assert_eq!(registry(&pki.chain).endpoint().unwrap().trusted.len(), 2);
    assert_eq!(
        registry(&missing).problems(),
        vec![format!(
            "registry.ca_path: cannot read '{}': No such file or directory (os error 2)",
            show(&missing)
        )]
    );
    assert_eq!(
        registry(&pki.key).problems(),
        vec![format!(
            "registry.ca_path: '{key}' holds no PEM certificate (BEGIN CERTIFICATE)"
        )]
    );
    let invalid = registry(&garbage).problems();
    let prefix = format!(
        "registry.ca_path: certificate 1 in '{}' is not valid: ",
        show(&garbage)
    );
    assert!(
        invalid.len() == 1 && invalid[0].len() > prefix.len() && invalid[0].starts_with(&prefix),
        "{invalid:?}"
    );
}

/// pki-types' words for a section that ends with another label.
const BROKEN_PEM: &str = "a section has no line '-----END CERTIFICATE-----'";
/// rustls' words for a certificate that is not DER.
const GARBAGE_CERTIFICATE: &str = "BadEncoding";

#[test]
fn settings_report_tls_problems_and_print_the_paths() {
    let pki = Pki::new();
    let missing = pki.dir.path().join("missing.pem");
    let config = pki.file(
        "eventfold.toml",
        &format!(
            "[tls]\ncert_path = \"{}\"\n[registry]\nca_path = \"{}\"\n",
            pki.chain.display(),
            missing.display()
        ),
    );
    let error = Settings::load(Some(&config)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "invalid configuration:\n  registry.ca_path: cannot read '{}': No such file or directory (os error 2)\n  tls.cert_path: '{}' is set without tls.key_path (give both or neither)",
            missing.display(),
            pki.chain.display()
        )
    );

    // The environment sets them too, and `eventfold config` shows the paths (not secrets).
    let output = Command::new(env!("CARGO_BIN_EXE_eventfold"))
        .arg("config")
        .current_dir(pki.dir.path())
        .env("EVENTFOLD__TLS__CERT_PATH", &pki.chain)
        .env("EVENTFOLD__TLS__KEY_PATH", &pki.key)
        .env("EVENTFOLD__REGISTRY__CA_PATH", &pki.ca)
        .output()
        .unwrap();
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        printed.contains(&format!(
            "[tls]\ncert_path = \"{}\"\nkey_path = \"{}\"\nhandshake_timeout_ms = 10000\n",
            pki.chain.display(),
            pki.key.display()
        )) && printed.contains(&format!("ca_path = \"{}\"\n", pki.ca.display())),
        "{printed}"
    );
}

/// A free loopback port (bound, then released for a child process to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child `eventfold` process serving HTTPS, killed when dropped.
struct Eventfold {
    command: &'static str,
    child: Child,
    /// `https://localhost:<port>` of the address it was told to listen on.
    url: String,
}

impl Eventfold {
    /// Starts `eventfold <command>` with `pki`'s certificate, listening on a free port set by
    /// the variable `listen` (e.g. `EVENTFOLD__COLLECTOR__LISTEN`), with `env` besides.
    fn start(command: &'static str, pki: &Pki, listen: &str, env: &[(&str, String)]) -> Eventfold {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_eventfold"))
            .arg(command)
            .env("EVENTFOLD__KAFKA__BOOTSTRAP_SERVERS", common::brokers())
            .env("EVENTFOLD__KAFKA__SESSION_TIMEOUT_MS", "6000")
            .env("EVENTFOLD__KAFKA__HEARTBEAT_INTERVAL_MS", "1000")
            .env("EVENTFOLD__METRICS__ENABLED", "false")
            .env("EVENTFOLD__TLS__CERT_PATH", &pki.chain)
            .env("EVENTFOLD__TLS__KEY_PATH", &pki.key)
            .env(listen, format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the eventfold binary starts");
        Eventfold {
            command,
            child,
            url: format!("https://localhost:{port}"),
        }
    }

    /// Kills the process; its log.
    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut log = String::new();
        if let Some(stderr) = self.child.stderr.as_mut() {
            let _ = stderr.read_to_string(&mut log);
        }
        log
    }

    /// Waits (up to 30 s) until `path` answers 200 through `client`; fails with the
    /// process's log if it exits first.
    async fn wait_until_up(&mut self, client: &reqwest::Client, path: &str) {
        let url = format!("{}{path}", self.url);
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                let command = self.command;
                panic!("`eventfold {command}` exited ({status}):\n{}", self.stop());
            }
            if let Ok(response) = client.get(&url).send().await {
                if response.status().as_u16() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "`eventfold {}` did not answer 200 at {url} in 30 s",
            self.command
        );
    }
}

impl Drop for Eventfold {
    /// Kills the process; shows its log when the test failed.
    fn drop(&mut self) {
        let log = self.stop();
        if std::thread::panicking() {
            eprintln!("--- log of `eventfold {}` ---\n{log}", self.command);
        }
    }
}

#[tokio::test]
async fn registry_collector_worker_and_query_api_over_https() {
    let pki = Pki::new();
    let client = pki.client(false);
    let metrics_port = free_port();
    let mut registry = Eventfold::start(
        "registry",
        &pki,
        "EVENTFOLD__REGISTRY__LISTEN",
        &[
            ("EVENTFOLD__REGISTRY__TOPIC", common::unique("_schemas-tls")),
            ("EVENTFOLD__LOG__FORMAT", "json".to_owned()),
            ("RUST_LOG", "info,eventfold::http=debug".to_owned()),
            ("EVENTFOLD__METRICS__ENABLED", "true".to_owned()),
            (
                "EVENTFOLD__METRICS__LISTEN",
                format!("127.0.0.1:{metrics_port}"),
            ),
        ],
    );
    registry.wait_until_up(&client, "/healthz").await;
    let subjects = client
        .get(format!("{}/subjects", registry.url))
        .send()
        .await
        .unwrap();
    assert_eq!(subjects.status().as_u16(), 200);
    assert_eq!(subjects.text().await.unwrap(), "[]");
    // The metrics and health listener is HTTPS too.
    let metrics = client
        .get(format!("https://localhost:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("eventfold_http_requests_total{service=\"registry\",route=\"/subjects\",method=\"GET\",status=\"200\"} 1"));
    let registry_address: SocketAddr = registry
        .url
        .replace("https://localhost", "127.0.0.1")
        .parse()
        .unwrap();
    let (plain, plain_peer) = tokio::task::spawn_blocking(move || plain_http(registry_address))
        .await
        .unwrap();
    assert_eq!(plain, PLAIN_HTTP_ANSWER);

    let topic = common::fresh_topic("tls", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.db").display().to_string();
    let registry_url = ("EVENTFOLD__REGISTRY__URL", registry.url.clone());
    let ca_path = ("EVENTFOLD__REGISTRY__CA_PATH", pki.ca.display().to_string());
    let collector_topic = ("EVENTFOLD__COLLECTOR__TOPIC", topic.clone());
    let collector_listen = "EVENTFOLD__COLLECTOR__LISTEN";
    let mut collector = Eventfold::start(
        "collect",
        &pki,
        collector_listen,
        &[
            registry_url.clone(),
            ca_path.clone(),
            collector_topic.clone(),
        ],
    );
    collector.wait_until_up(&client, "/readyz").await;
    // The worker serves only metrics and health (HTTPS); its store exists once it is ready.
    let mut worker = Eventfold::start(
        "work",
        &pki,
        "EVENTFOLD__METRICS__LISTEN",
        &[
            registry_url.clone(),
            ca_path,
            ("EVENTFOLD__METRICS__ENABLED", "true".to_owned()),
            ("EVENTFOLD__WORKER__TOPIC", topic.clone()),
            ("EVENTFOLD__WORKER__GROUP_ID", common::unique("tls")),
            (
                "EVENTFOLD__WORKER__DEAD_LETTER_TOPIC",
                format!("{topic}-dlq"),
            ),
            ("EVENTFOLD__STORE__PATH", store.clone()),
        ],
    );
    worker.wait_until_up(&client, "/readyz").await;
    let mut query = Eventfold::start(
        "serve",
        &pki,
        "EVENTFOLD__QUERY__LISTEN",
        &[
            ("EVENTFOLD__QUERY__WAIT_TIMEOUT_MS", "30000".to_owned()),
            ("EVENTFOLD__STORE__PATH", store),
        ],
    );
    query.wait_until_up(&client, "/healthz").await;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let events: Vec<Value> = (0..25)
        .map(|i| {
            json!({
                "event_id": uuid::Uuid::new_v4().to_string(),
                "event_type": if i < 15 { "click" } else { "search" },
                "user_id": "tls-user",
                "session_id": "s1",
                "occurred_at": now - 1_000,
                "app": "web",
            })
        })
        .collect();
    let accepted = client
        .post(format!("{}/v1/events", collector.url))
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 200);
    let accepted: Value = accepted.json().await.unwrap();
    assert_eq!(accepted["accepted"], json!(25));
    let token = accepted["consistency_token"].as_str().unwrap();

    // The worker fetched the writer schema from the HTTPS registry to fold them.
    let counts = client
        .get(format!(
            "{}/v1/users/tls-user/event-counts?consistency_token={token}",
            query.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(counts.status().as_u16(), 200);
    let counts: Value = counts.json().await.unwrap();
    assert_eq!(
        (&counts["event_counts"], &counts["total"]),
        (&json!({"click": 15, "search": 10}), &json!(25))
    );

    // Without `registry.ca_path` a collector cannot reach the HTTPS registry.
    let mut untrusting = Eventfold::start(
        "collect",
        &pki,
        collector_listen,
        &[registry_url, collector_topic],
    );
    untrusting.wait_until_up(&client, "/healthz").await;
    let ready = client
        .get(format!("{}/readyz", untrusting.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"ready": false, "checks": {"broker": true, "registry": false}})
    );
    let refused = client
        .post(format!("{}/v1/events", untrusting.url))
        .json(&events[..1])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"],
        json!("unavailable")
    );

    // The registry logged the plain-HTTP client's failed handshake once, at debug, with its
    // address.
    let failed: Vec<Value> = registry
        .stop()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["peer"] == json!(plain_peer.to_string()))
        .collect();
    assert_eq!(
        failed
            .iter()
            .map(|line| (&line["level"], &line["fields"]["message"]))
            .collect::<Vec<_>>(),
        vec![(&json!("DEBUG"), &json!("TLS handshake failed."))],
        "{failed:?}"
    );
}
