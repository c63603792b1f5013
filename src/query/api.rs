//! JSON routes over the read store: one user's event counts, and per-partition progress.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::store::{PartitionStatus, SqliteStore, StoreError};

/// The query API's routes.
pub fn router(store: SqliteStore) -> Router {
    let router = Router::new()
        .route("/v1/users/{user_id}/event-counts", get(user_counts))
        .route("/v1/freshness", get(freshness))
        .with_state(store);
    crate::http::instrument(router, "query")
}

struct QueryError(StoreError);

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.0, "Query failed.");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "store_unavailable", "message": "the read store could not be read" })),
        )
            .into_response()
    }
}

fn as_of(partitions: &[PartitionStatus]) -> serde_json::Value {
    let offsets: BTreeMap<String, i64> = partitions
        .iter()
        .map(|p| (format!("{}/{}", p.topic, p.partition), p.last_offset))
        .collect();
    json!({ "offsets": offsets })
}

async fn user_counts(
    State(store): State<SqliteStore>,
    Path(user_id): Path<String>,
) -> Result<Response, QueryError> {
    let partitions = store.partitions().await.map_err(QueryError)?;
    let counts = store
        .user_event_counts(&user_id)
        .await
        .map_err(QueryError)?;
    let counts: BTreeMap<&str, u64> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    Ok(Json(json!({
        "user_id": user_id,
        "event_counts": counts,
        "total": counts.values().sum::<u64>(),
        "as_of": as_of(&partitions),
    }))
    .into_response())
}

async fn freshness(State(store): State<SqliteStore>) -> Result<Response, QueryError> {
    let partitions = store.partitions().await.map_err(QueryError)?;
    Ok(Json(json!({ "partitions": partitions, "as_of": as_of(&partitions) })).into_response())
}
