//! Serving a router: request tracing and graceful shutdown, shared by every HTTP stage.

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

/// Serves `router` on `listener` until `shutdown` fires, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router.layer(TraceLayer::new_for_http()))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
