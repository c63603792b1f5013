//! Serving a router: request metrics by route template, request tracing (method and path,
//! never the query string, which may hold the dashboard's read token), TCP_NODELAY (no
//! 40 ms delayed-ACK stalls on small responses) and graceful shutdown, shared by every HTTP
//! stage, over plain HTTP or over TLS.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::{Listener, ListenerExt};
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use super::tls::{ServerTls, TlsListener};
use crate::telemetry::metrics as names;

/// Adds request metrics labelled with `service` and the matched route template.
pub fn instrument(router: Router, service: &'static str) -> Router {
    router.route_layer(axum::middleware::from_fn(
        move |request: Request, next: Next| record(service, request, next),
    ))
}

async fn record(service: &'static str, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(names::HTTP_REQUESTS_TOTAL, "service" => service, "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!(names::HTTP_REQUEST_SECONDS, "service" => service, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Serves `router` on `listener` until `shutdown` fires, then lets in-flight requests finish:
/// HTTPS only when `tls` is set, else plain HTTP.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<ServerTls>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    match tls {
        None => serve_on(listener.tap_io(set_nodelay), router, shutdown).await,
        Some(tls) => serve_on(TlsListener::start(listener, tls)?, router, shutdown).await,
    }
}

async fn serve_on<L>(
    listener: L,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request| {
        tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
    });
    axum::serve(listener, router.layer(trace))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Sends small responses at once (no Nagle delay).
pub(super) fn set_nodelay(tcp: &mut TcpStream) {
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "Cannot set TCP_NODELAY.");
    }
}
