//! Serving a router: request tracing, TCP_NODELAY (no 40 ms delayed-ACK stalls on small
//! responses) and graceful shutdown, shared by every HTTP stage.

use axum::serve::ListenerExt;
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
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "Cannot set TCP_NODELAY.");
        }
    });
    axum::serve(listener, router.layer(TraceLayer::new_for_http()))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
