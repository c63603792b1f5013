//! JSON routes over the read store: pipelines and their aggregates (partials of every
//! partition merged, each window marked final or not by [`Finality`]), projections (users,
//! items, sessions), per-user event counts and freshness. Every answer carries `as_of` (per
//! partition: last applied offset and watermark). A read may carry the collector's consistency token (`?consistency_token=`):
//! it is then answered only once every partition the token names has been folded that far,
//! waiting up to `query.wait_timeout_ms` (read-your-writes, invariant 6). Live progress is
//! pushed over Server-Sent Events by [`super::stream`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::answers::{AnswerCache, StoreVersion};
use super::finality::Finality;
use crate::ingest::ConsistencyToken;
use crate::pipeline::{AggregateResult, Pipeline, WindowSpec};
use crate::store::{PartitionStatus, ReadStore, StoreError};

/// How many aggregate answers are kept for reuse (see [`AnswerCache`]).
const ANSWERS_KEPT: usize = 512;

/// What the query handlers share.
#[derive(Clone)]
pub struct QueryState {
    pub(super) store: Arc<dyn ReadStore>,
    pub(super) pipelines: Arc<BTreeMap<String, Pipeline>>,
    wait_timeout: Duration,
    pub(super) shutdown: CancellationToken,
    answers: Arc<AnswerCache>,
}

impl QueryState {
    /// State over a store and the pipelines whose aggregates it holds.
    pub fn new(
        store: Arc<dyn ReadStore>,
        pipelines: Vec<Pipeline>,
        wait_timeout: Duration,
    ) -> Self {
        let pipelines = pipelines.into_iter().map(|p| (p.name.clone(), p)).collect();
        QueryState {
            store,
            pipelines: Arc::new(pipelines),
            wait_timeout,
            shutdown: CancellationToken::new(),
            answers: Arc::new(AnswerCache::new(ANSWERS_KEPT)),
        }
    }

    /// Ends the live streams (`/v1/stream`) when `shutdown` fires, so a graceful shutdown
    /// does not wait for the dashboards still connected.
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }
}

/// The query API's routes.
pub fn router(state: QueryState) -> Router {
    let router = Router::new()
        .route("/v1/pipelines", get(list_pipelines))
        .route(
            "/v1/pipelines/{pipeline}/aggregates/{aggregate}",
            get(read_aggregate),
        )
        .route("/v1/pipelines/{pipeline}/users/{user_id}", get(read_user))
        .route("/v1/pipelines/{pipeline}/items", get(read_items))
        .route("/v1/pipelines/{pipeline}/sessions", get(read_sessions))
        .route("/v1/users/{user_id}/event-counts", get(user_counts))
        .route("/v1/freshness", get(freshness))
        .route("/v1/stream", get(super::stream::all_progress))
        .route(
            "/v1/pipelines/{pipeline}/stream",
            get(super::stream::pipeline_progress),
        )
        .with_state(state)
        .merge(super::dashboard::routes());
    crate::http::instrument(router, "query")
}

/// A refused or failed query.
#[derive(Debug)]
pub enum QueryError {
    /// 404.
    NotFound(String),
    /// 400.
    BadRequest(String),
    /// 503: the token's offsets are not folded yet.
    NotYetVisible { behind: BTreeMap<i32, i64> },
    /// 503: the store failed (logged).
    Store(StoreError),
}

impl From<StoreError> for QueryError {
    fn from(error: StoreError) -> Self {
        QueryError::Store(error)
    }
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            QueryError::NotFound(message) => (
                StatusCode::NOT_FOUND,
                json!({"error": "not_found", "message": message}),
            ),
            QueryError::BadRequest(message) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "message": message}),
            ),
            QueryError::NotYetVisible { behind } => {
                let total: i64 = behind.values().sum();
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({
                        "error": "not_yet_visible",
                        "message": format!("the pipeline has not folded the token's writes yet: {total} record(s) behind"),
                        "behind": behind,
                    })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            QueryError::Store(error) => {
                tracing::error!(%error, "Query failed.");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": "store_unavailable", "message": "the read store could not be read"}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

#[derive(Debug, Default, Deserialize)]
struct ReadParams {
    consistency_token: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    limit: Option<usize>,
    offset: Option<usize>,
}

pub(super) fn as_of(partitions: &[PartitionStatus]) -> Value {
    let entries: BTreeMap<String, Value> = partitions
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.topic, p.partition),
                json!({"offset": p.last_offset, "max_event_ms": p.max_event_ms}),
            )
        })
        .collect();
    json!({ "partitions": entries })
}

/// Waits until the store has folded what the token names; returns the partitions' state.
async fn visible(
    state: &QueryState,
    token: Option<&str>,
) -> Result<Vec<PartitionStatus>, QueryError> {
    let Some(token) = token else {
        return Ok(state.store.partitions().await?);
    };
    let token =
        ConsistencyToken::decode(token).map_err(|e| QueryError::BadRequest(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + state.wait_timeout;
    loop {
        let partitions = state.store.partitions().await?;
        let behind: BTreeMap<i32, i64> = token
            .offsets
            .iter()
            .filter_map(|(partition, offset)| {
                let folded = partitions
                    .iter()
                    .find(|p| p.topic == token.topic && p.partition == *partition)
                    .map_or(-1, |p| p.last_offset);
                (folded < *offset).then_some((*partition, offset - folded))
            })
            .collect();
        if behind.is_empty() {
            return Ok(partitions);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(QueryError::NotYetVisible { behind });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(super) fn pipeline<'a>(state: &'a QueryState, name: &str) -> Result<&'a Pipeline, QueryError> {
    state.pipelines.get(name).ok_or_else(|| {
        let known: Vec<&String> = state.pipelines.keys().collect();
        QueryError::NotFound(format!("no pipeline '{name}' (known: {known:?})"))
    })
}

async fn list_pipelines(State(state): State<QueryState>) -> Json<Value> {
    let pipelines: Vec<Value> = state
        .pipelines
        .values()
        .map(|p| {
            json!({
                "name": p.name,
                "topic": p.topic,
                "reader_schema": format!("interaction/v{}", p.reader_version.number()),
                "watermark_delay_ms": p.watermark_delay_ms,
                "grace_ms": p.grace_ms,
                "aggregates": p.aggregates.iter().map(|a| json!({"name": a.name, "aggregate": a.kind.to_string(), "field": a.field, "group_by": a.group_by, "window": a.window})).collect::<Vec<_>>(),
                "projections": p.projections.iter().map(|x| json!({"name": x.name, "kind": x.kind})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "pipelines": pipelines }))
}

fn result_json(result: AggregateResult) -> Value {
    match result {
        AggregateResult::Count(n) | AggregateResult::CountDistinct(n) => json!(n),
        AggregateResult::Sum(x) => json!(x),
        AggregateResult::Min(x) | AggregateResult::Max(x) | AggregateResult::Avg(x) => json!(x),
        AggregateResult::TopK(entries) => json!(entries),
        AggregateResult::Percentiles(values) => {
            json!(values
                .iter()
                .map(|q| json!({"q": q.q, "value": q.value}))
                .collect::<Vec<_>>())
        }
    }
}

async fn read_aggregate(
    State(state): State<QueryState>,
    Path((name, aggregate)): Path<(String, String)>,
    Query(params): Query<ReadParams>,
) -> Result<Json<Value>, QueryError> {
    let pipeline = pipeline(&state, &name)?;
    let spec = pipeline
        .aggregates
        .iter()
        .find(|a| a.name == aggregate)
        .ok_or_else(|| {
            QueryError::NotFound(format!("pipeline '{name}' has no aggregate '{aggregate}'"))
        })?;
    let (from, to) = (
        params.from.unwrap_or(i64::MIN),
        params.to.unwrap_or(i64::MAX),
    );
    if from >= to {
        return Err(QueryError::BadRequest(format!(
            "from ({from}) must be before to ({to})"
        )));
    }
    let identity = state.store.identity()?;
    let partitions = visible(&state, params.consistency_token.as_deref()).await?;
    let version = StoreVersion::new(identity, &partitions);
    let windows = match state.answers.get(&name, &aggregate, (from, to), &version) {
        Some(windows) => windows,
        None => {
            let rows = state
                .store
                .aggregate_rows_merging(
                    &name,
                    &aggregate,
                    from,
                    to,
                    matches!(spec.window, WindowSpec::Session { .. }),
                )
                .await?;
            let windows: Vec<Value> = rows
                .into_iter()
                .map(|row| {
                    let group: Value = serde_json::from_str(&row.group).unwrap_or(Value::Null);
                    json!({"start_ms": row.window.start_ms, "end_ms": row.window.end_ms, "group": group, "value": result_json(row.state.result(&spec.params))})
                })
                .collect();
            let windows = Arc::new(Value::Array(windows));
            state
                .answers
                .put(&name, &aggregate, (from, to), version, windows.clone());
            windows
        }
    };
    let finality = Finality::of(pipeline, &partitions, crate::clock::now_ms());
    let windows: Vec<Value> = windows
        .as_array()
        .into_iter()
        .flatten()
        .map(|window| {
            let mut window = window.clone();
            let end = window["end_ms"].as_i64().unwrap_or(i64::MAX);
            window["final"] = Value::Bool(finality.is_final(end));
            window
        })
        .collect();
    Ok(Json(
        json!({ "pipeline": name, "aggregate": aggregate, "group_by": spec.group_by, "windows": windows, "watermark": finality, "as_of": as_of(&partitions) }),
    ))
}

async fn read_user(
    State(state): State<QueryState>,
    Path((name, user_id)): Path<(String, String)>,
    Query(params): Query<ReadParams>,
) -> Result<Json<Value>, QueryError> {
    pipeline(&state, &name)?;
    let partitions = visible(&state, params.consistency_token.as_deref()).await?;
    let profile = state
        .store
        .user_profile(&name, &user_id)
        .await?
        .ok_or_else(|| QueryError::NotFound(format!("no user '{user_id}' in pipeline '{name}'")))?;
    Ok(Json(
        json!({ "user": profile, "as_of": as_of(&partitions) }),
    ))
}

fn page<T: serde::Serialize>(items: Vec<T>, params: &ReadParams) -> Result<Value, QueryError> {
    let limit = params.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(QueryError::BadRequest(format!(
            "limit must be between 1 and 1000, got {limit}"
        )));
    }
    let offset = params.offset.unwrap_or(0);
    let total = items.len();
    let items: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
    Ok(json!({ "total": total, "offset": offset, "limit": limit, "items": items }))
}

/// A paged listing of one of `name`'s projections, as fresh as the token asks.
async fn listing<T, Fut>(
    state: &QueryState,
    name: &str,
    params: &ReadParams,
    key: &str,
    load: impl FnOnce(Arc<dyn ReadStore>) -> Fut,
) -> Result<Json<Value>, QueryError>
where
    T: serde::Serialize,
    Fut: std::future::Future<Output = Result<Vec<T>, StoreError>>,
{
    pipeline(state, name)?;
    let partitions = visible(state, params.consistency_token.as_deref()).await?;
    let rows = load(state.store.clone()).await?;
    let mut body = serde_json::Map::new();
    body.insert(key.to_owned(), page(rows, params)?);
    body.insert("as_of".to_owned(), as_of(&partitions));
    Ok(Json(Value::Object(body)))
}

async fn read_items(
    State(state): State<QueryState>,
    Path(name): Path<String>,
    Query(params): Query<ReadParams>,
) -> Result<Json<Value>, QueryError> {
    let pipeline = name.clone();
    listing(&state, &name, &params, "items", |store| async move {
        store.item_profiles(&pipeline).await
    })
    .await
}

async fn read_sessions(
    State(state): State<QueryState>,
    Path(name): Path<String>,
    Query(params): Query<ReadParams>,
) -> Result<Json<Value>, QueryError> {
    let pipeline = name.clone();
    listing(&state, &name, &params, "sessions", |store| async move {
        store.session_profiles(&pipeline).await
    })
    .await
}

async fn user_counts(
    State(state): State<QueryState>,
    Path(user_id): Path<String>,
    Query(params): Query<ReadParams>,
) -> Result<Json<Value>, QueryError> {
    let partitions = visible(&state, params.consistency_token.as_deref()).await?;
    let counts = state.store.user_event_counts(&user_id).await?;
    let counts: BTreeMap<&str, u64> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    Ok(Json(json!({
        "user_id": user_id,
        "event_counts": counts,
        "total": counts.values().sum::<u64>(),
        "as_of": as_of(&partitions),
    })))
}

async fn freshness(State(state): State<QueryState>) -> Result<Json<Value>, QueryError> {
    let partitions = state.store.partitions().await?;
    let watermarks: Vec<Value> = partitions
        .iter()
        .map(|p| {
            let delay = state.pipelines.values().find(|x| x.topic == p.topic).map_or(0, |x| x.watermark_delay_ms as i64);
            json!({"topic": p.topic, "partition": p.partition, "watermark_ms": p.max_event_ms.map(|m| m - delay)})
        })
        .collect();
    Ok(Json(
        json!({ "partitions": partitions, "watermarks": watermarks, "as_of": as_of(&partitions) }),
    ))
}
