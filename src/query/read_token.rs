//! The query API's read token: when `query.read_token_sha256` is set, every `/v1/*` route
//! and the dashboard page need `Authorization: Bearer <token>` (or `?token=<token>`, which
//! the dashboard page and its EventSource use). 401 for none, 403 for a wrong one. The
//! dashboard's script and style are the same for everyone and stay open, as do the health
//! routes merged in after this layer.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;

use super::QueryConfig;
use crate::access::{bearer_token, query_token, SecretDigest};

/// Paths that need no token: the dashboard's static script and style.
const OPEN_PATHS: [&str; 2] = ["/dashboard.css", "/dashboard.js"];

/// `router` behind the read token of `config` (unchanged when none is set).
pub fn require_read_token(router: Router, config: &QueryConfig) -> Router {
    match config.read_token_sha256 {
        None => router,
        Some(digest) => router.layer(axum::middleware::from_fn_with_state(
            Arc::new(digest),
            check,
        )),
    }
}

async fn check(State(digest): State<Arc<SecretDigest>>, request: Request, next: Next) -> Response {
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let presented = bearer_token(request.headers()).or_else(|| query_token(request.uri().query()));
    match presented {
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "missing_token", "message": "send the read token as Authorization: Bearer <token> (or ?token=<token> for the dashboard)"})),
        )
            .into_response(),
        Some(token) if digest.matches(token.as_bytes()) => next.run(request).await,
        Some(_) => (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "invalid_token", "message": "the read token is not valid"})),
        )
            .into_response(),
    }
}
