//! The dashboard end to end in headless Chromium (Debian `chromium`, driven over the Chrome
//! DevTools Protocol): the real read path runs in this process, the page loads from the
//! query API, and the figures it shows must equal the API's — also after more events
//! arrive while the page stays open (pushed by the progress stream). A screenshot is kept
//! under the target folder. Without Chromium the test fails, saying how to install it.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use common::ReadPath;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const MINUTE: i64 = 60_000;

/// The Chromium binary: `EVENTFOLD_TEST_CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> PathBuf {
    if let Ok(path) = std::env::var("EVENTFOLD_TEST_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .expect(
            "the dashboard test needs headless Chromium: install the Debian package `chromium` \
             (`bash .ci/run` does) or set EVENTFOLD_TEST_CHROMIUM to the browser's path",
        )
}

/// A headless Chromium with a fresh profile, and a DevTools connection to its page.
struct Browser {
    process: tokio::process::Child,
    page: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn open(url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let process = tokio::process::Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1440,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        // Chromium writes the port it chose into the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let mut port = None;
        for _ in 0..300 {
            if let Some(line) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| text.lines().next().map(str::to_owned))
            {
                port = Some(line);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let port = port.expect("chromium opened its DevTools port within 30 s");
        let targets: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page_url = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == json!("page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let (page, _) = tokio_tungstenite::connect_async(page_url).await.unwrap();
        Browser {
            process,
            page,
            next_id: 1,
            _profile: profile,
        }
    }

    /// Calls a DevTools method on the page; its result.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"id": id, "method": method, "params": params});
        self.page
            .send(Message::Text(request.to_string().into()))
            .await
            .unwrap();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.page.next())
                .await
                .expect("DevTools answers within 30 s")
                .expect("DevTools connection open")
                .unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let mut answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == json!(id) {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].take();
            }
        }
    }

    /// The figures the page shows, read from its `data-*` attributes (revenue as a float,
    /// like the API's).
    async fn figures(&mut self) -> Value {
        let mut result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": READ_FIGURES, "returnByValue": true}),
            )
            .await;
        let mut figures = result["result"]["value"].take();
        if let Some(revenue) = figures["revenue"].as_f64() {
            figures["revenue"] = json!(revenue);
        }
        figures
    }

    async fn screenshot(&mut self, name: &str) -> PathBuf {
        let result = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(result["data"].as_str().unwrap())
            .unwrap();
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::write(&path, png).unwrap();
        println!("dashboard screenshot: {}", path.display());
        path
    }

    async fn close(mut self) {
        self.process.kill().await.unwrap();
    }
}

const READ_FIGURES: &str = r#"(() => {
  const el = (id) => document.querySelector(`[data-testid="${id}"]`);
  const value = (id) => (el(id).dataset.value ? Number(el(id).dataset.value) : null);
  const rows = [...document.querySelectorAll('[data-testid="freshness-row"]')];
  return {
    state: el("status").dataset.state,
    transport: el("status").dataset.transport || null,
    folded: value("folded-total"),
    events: value("kpi-events-last-minute"),
    users: value("kpi-unique-users"),
    revenue: value("kpi-revenue-hour"),
    sessions: value("kpi-active-sessions"),
    offsets: Object.fromEntries(rows.map((r) => [
      r.dataset.topic + "/" + r.dataset.partition,
      Number(r.querySelector('[data-testid="fresh-offset"]').textContent.replace(/[^0-9-]/g, "")),
    ])),
  };
})()"#;

/// The shipped dashboard pipeline, reading `topic`.
fn dashboard_pipeline(topic: &str) -> String {
    std::fs::read_to_string("pipelines/interactions.yaml")
        .unwrap()
        .replace("topic: interactions\n", &format!("topic: {topic}\n"))
        .replace(
            "late_topic: interactions-late",
            &format!("late_topic: {topic}-late"),
        )
}

/// Events of users browsing, clicking, buying and playing, at `occurred_at`; every fifth a
/// purchase of 12.25 + (i mod 4).
fn events(first: usize, times: &[i64]) -> Vec<Value> {
    const TYPES: [&str; 5] = ["page_view", "click", "add_to_cart", "purchase", "play"];
    times
        .iter()
        .enumerate()
        .map(|(n, at)| {
            let i = first + n;
            let kind = TYPES[i % 5];
            let mut event = json!({
                "event_id": uuid::Uuid::new_v4().to_string(),
                "event_type": kind,
                "user_id": format!("user-{}", i % 23),
                "session_id": format!("session-{}-{}", i % 23, at / (10 * MINUTE)),
                "item_id": format!("sku-{}", i % 7),
                "occurred_at": at,
                "app": "web",
            });
            match kind {
                "purchase" => event["value"] = json!(12.25 + (i % 4) as f64),
                "play" => event["value"] = json!(30 + i % 90),
                _ => {}
            }
            event
        })
        .collect()
}

/// The revenue of the purchases among `events`.
fn revenue(events: &[Value]) -> f64 {
    events
        .iter()
        .filter(|e| e["event_type"] == json!("purchase"))
        .map(|e| e["value"].as_f64().unwrap())
        .sum()
}

/// What the page must show, computed from the query API's answers.
async fn expected(path: &ReadPath) -> Value {
    let pipeline = "/v1/pipelines/interactions";
    let (_, fresh) = path.get("/v1/freshness").await;
    let partitions = fresh["partitions"].as_array().unwrap();
    let folded: u64 = partitions
        .iter()
        .map(|p| p["folded"].as_u64().unwrap())
        .sum();
    let ref_now = partitions
        .iter()
        .filter_map(|p| p["max_event_ms"].as_i64())
        .max()
        .unwrap();
    let offsets: serde_json::Map<String, Value> = partitions
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p["topic"].as_str().unwrap(), p["partition"]),
                p["last_offset"].clone(),
            )
        })
        .collect();
    let (_, events) = path
        .get(&format!("{pipeline}/aggregates/events_per_minute"))
        .await;
    let windows = events["windows"].as_array().unwrap();
    let latest = windows
        .iter()
        .map(|w| w["start_ms"].as_i64().unwrap())
        .max()
        .unwrap();
    let in_latest: u64 = windows
        .iter()
        .filter(|w| w["start_ms"] == json!(latest))
        .map(|w| w["value"].as_u64().unwrap())
        .sum();
    let (_, users) = path
        .get(&format!("{pipeline}/aggregates/unique_users_per_minute"))
        .await;
    let users = users["windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["start_ms"] == json!(latest))
        .map(|w| w["value"].clone())
        .unwrap();
    let (_, revenue) = path
        .get(&format!("{pipeline}/aggregates/revenue_per_minute"))
        .await;
    let hour_end = latest + MINUTE;
    let revenue: f64 = revenue["windows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| {
            let start = w["start_ms"].as_i64().unwrap();
            start >= hour_end - 60 * MINUTE && start < hour_end
        })
        .map(|w| w["value"].as_f64().unwrap())
        .sum();
    let (_, sessions) = path.get(&format!("{pipeline}/sessions?limit=1000")).await;
    let active = sessions["sessions"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["end_ms"].as_i64().unwrap() >= ref_now - 30 * MINUTE)
        .count();
    json!({
        "state": "live",
        "transport": "stream",
        "folded": folded,
        "events": in_latest,
        "users": users,
        "revenue": (revenue * 100.0).round() / 100.0,
        "sessions": active,
        "offsets": offsets,
    })
}

/// Reads the page until it shows `folded` events folded (up to 30 s).
async fn figures_once_folded(browser: &mut Browser, folded: u64) -> Value {
    let mut figures = Value::Null;
    for _ in 0..120 {
        figures = browser.figures().await;
        if figures["folded"] == json!(folded)
            && figures["sessions"].is_number()
            && figures["state"] == json!("live")
        {
            return figures;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the page never showed {folded} events folded: {figures}");
}

#[tokio::test]
async fn the_dashboard_shows_the_apis_figures_and_follows_new_events() {
    let path = ReadPath::start(3, dashboard_pipeline).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let minute = now / MINUTE * MINUTE;
    let span = (now - minute).max(1);
    // 20 minutes of history (15 events a minute), then 40 events in the current minute,
    // in event-time order so that none is late.
    let mut times: Vec<i64> = (1..=20i64)
        .rev()
        .flat_map(|m| (0..15).map(move |i| minute - m * MINUTE + i * 3_000))
        .collect();
    times.extend((0..40).map(|i| minute + i * span / 40));
    let first = events(0, &times);
    let token = path.post(&first).await;
    let (status, _) = path
        .get(&format!(
            "/v1/pipelines/interactions/aggregates/events_per_minute?consistency_token={token}"
        ))
        .await;
    assert_eq!(status, 200);

    let mut browser = Browser::open(&format!("{}/", path.query_url)).await;
    let shown = figures_once_folded(&mut browser, first.len() as u64).await;
    let want = expected(&path).await;
    assert_eq!(shown, want);
    // The API's figures are the events posted: 40 in the latest minute, 23 users among them.
    assert_eq!(want["events"], json!(40));
    assert_eq!(want["users"], json!(23));
    assert_eq!(want["revenue"], json!(revenue(&first)));
    browser.screenshot("dashboard.png").await;

    // More events while the page stays open: the stream announces them, the page follows.
    let more = events(first.len(), &[minute + span; 25]);
    path.post(&more).await;
    let total = (first.len() + more.len()) as u64;
    let shown = figures_once_folded(&mut browser, total).await;
    let want = expected(&path).await;
    assert_eq!(shown, want);
    assert_eq!(want["events"], json!(65));
    assert_eq!(want["revenue"], json!(revenue(&first) + revenue(&more)));
    browser.screenshot("dashboard-after-more-events.png").await;

    browser.close().await;
    path.stop().await;
}
