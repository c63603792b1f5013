//! The Prometheus exporter and the health endpoints: `/metrics`, `/healthz` (alive) and
//! `/readyz` (every readiness check of the stages running in this process passes), on their
//! own listener (section `[metrics]`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};

/// Where metrics and health are served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics`, `/healthz` and `/readyz`.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Address of that listener.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

const fn default_enabled() -> bool {
    true
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: default_enabled(),
            listen: default_listen(),
        }
    }
}

/// Named readiness checks, set by the stages; ready when all are true.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<&'static str, bool>>>,
}

impl Readiness {
    /// Sets one check.
    pub fn set(&self, check: &'static str, ok: bool) {
        self.checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(check, ok);
    }

    /// Every check and whether all pass (no check registered = not ready).
    pub fn report(&self) -> (bool, BTreeMap<&'static str, bool>) {
        let checks = self
            .checks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        (!checks.is_empty() && checks.values().all(|ok| *ok), checks)
    }
}

/// How often the recorder's histogram samples are drained into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the process-wide Prometheus recorder once, with a thread draining its
/// histogram samples every [`UPKEEP_EVERY`], and returns its handle. The recorder keeps
/// each sample until a scrape or an upkeep drains it: a worker records two per event, so
/// one nobody scrapes would otherwise grow without bound.
pub fn install_recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ];
            let sizes = [1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &seconds)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_events".to_owned()), &sizes)
                });
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_ok() {
                super::metrics::describe();
                spawn_upkeep(handle.clone());
            }
            handle
        })
        .clone()
}

/// Starts the thread that drains `handle`'s histogram samples every [`UPKEEP_EVERY`].
fn spawn_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(error) = started {
        tracing::warn!(%error, "Histogram samples are drained only when /metrics is scraped.");
    }
}

/// `/metrics`, `/healthz`, `/readyz`.
pub fn router(handle: PrometheusHandle, readiness: Readiness) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(handle): State<PrometheusHandle>| async move { handle.render() }),
        )
        .with_state(handle)
        .merge(health_router(readiness))
}

/// `/healthz` (the process answers) and `/readyz` (200 when every readiness check passes,
/// else 503 with the checks), merged into every HTTP service and the metrics listener.
pub fn health_router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(readiness)
}

async fn ready(State(readiness): State<Readiness>) -> impl IntoResponse {
    let (ready, checks) = readiness.report();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({ "ready": ready, "checks": checks })),
    )
}
