//! The collector's HTTP API (`POST /v1/events`): apps send a batch of events as a JSON array
//! or NDJSON, optionally gzip-compressed. Batch semantics: validation is all-or-nothing (one
//! invalid event and nothing is written, with every problem listed); then every event is
//! produced and the answer waits for the broker's acknowledgements. 200 means every event is
//! durable in Kafka, with its partition and offset and one consistency token for the batch.
//! 503 means some were not acknowledged: the body lists which were, and the app retries the
//! batch (duplicates are harmless: workers count an `event_id` once). A request beyond
//! `max_in_flight_requests` is answered 503 at once, its body read only to be discarded,
//! which bounds the collector's memory under overload.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::batch::{body_format, parse_batch};
use super::token::ConsistencyToken;
use super::validate::{EventLimits, FieldError};
use super::write_keys::{KeyRefusal, WriteKeys, WriteKeysError, WRITE_KEY_HEADER};
use super::{CollectorConfig, EventProducer};
use crate::telemetry::metrics as names;
use crate::telemetry::{TraceParent, TRACEPARENT};
use tracing::Instrument;

/// What the collector's handlers share.
#[derive(Clone)]
pub struct CollectorState {
    producer: Arc<EventProducer>,
    config: Arc<CollectorConfig>,
    limits: Arc<EventLimits>,
    keys: Arc<WriteKeys>,
    /// One permit per request being handled (`max_in_flight_requests`).
    in_flight: Arc<Semaphore>,
}

impl CollectorState {
    /// State over a producer and the collector's settings (reads the write keys file).
    pub fn new(producer: EventProducer, config: CollectorConfig) -> Result<Self, WriteKeysError> {
        let limits = config.limits();
        let keys = WriteKeys::load(
            &config.write_keys,
            config.write_keys_file.as_deref(),
            config.rate_per_second,
            config.burst,
        )?;
        Ok(CollectorState {
            in_flight: Arc::new(Semaphore::new(config.max_in_flight_requests.max(1))),
            producer: Arc::new(producer),
            config: Arc::new(config),
            limits: Arc::new(limits),
            keys: Arc::new(keys),
        })
    }
}

/// The collector's routes, answering CORS for the allowed origins.
pub fn router(state: CollectorState) -> Router {
    let origins: Vec<HeaderValue> = state
        .config
        .cors_allowed_origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    let router = Router::new()
        .route("/v1/events", post(collect))
        .with_state(state);
    let router = crate::http::instrument(router, "collector");
    if origins.is_empty() {
        return router;
    }
    router.layer(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::POST])
            .allow_headers([
                CONTENT_TYPE,
                CONTENT_ENCODING,
                HeaderName::from_static(WRITE_KEY_HEADER),
                HeaderName::from_static(TRACEPARENT),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

pub(super) fn count_events(outcome: &'static str, n: usize) {
    metrics::counter!(names::COLLECTOR_EVENTS_TOTAL, "outcome" => outcome).increment(n as u64);
}

/// Where the broker stored one event of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AcceptedEvent {
    /// The event's position in the batch (0-based).
    pub index: usize,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// The answer to a batch the broker acknowledged entirely.
#[derive(Serialize)]
struct Accepted {
    accepted: usize,
    events: Vec<AcceptedEvent>,
    consistency_token: String,
}

/// A refused request.
#[derive(Debug)]
pub enum CollectError {
    /// 401, 403 or 429.
    Refused(KeyRefusal),
    /// 415.
    UnsupportedMediaType(String),
    /// 413, body.
    BodyTooLarge(usize),
    /// 413, events.
    TooManyEvents { count: usize, max: usize },
    /// 400.
    Malformed(String),
    /// 400.
    EmptyBatch,
    /// 400, with every problem.
    InvalidEvents(Vec<FieldError>),
    /// 503: already handling `max_in_flight_requests` requests; the body was discarded.
    Overloaded(usize),
    /// 503: some or all events were not acknowledged.
    Unavailable {
        reason: String,
        accepted: Vec<AcceptedEvent>,
        failed: Vec<usize>,
    },
    /// 500: a fault that retrying will not fix (logged).
    Internal(String),
}

impl IntoResponse for CollectError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            CollectError::Refused(KeyRefusal::Missing) => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "missing_key", "message": format!("send the app's write key in {WRITE_KEY_HEADER} or Authorization: Bearer")}),
            ),
            CollectError::Refused(KeyRefusal::Invalid) => (
                StatusCode::FORBIDDEN,
                json!({"error": "invalid_key", "message": "the write key is not known"}),
            ),
            CollectError::Refused(KeyRefusal::RateLimited(wait)) => {
                let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
                return retry_later(
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({"error": "rate_limited", "message": format!("this app sends more requests than it may; retry after {seconds} s")}),
                    seconds,
                );
            }
            CollectError::Overloaded(max) => {
                return retry_later(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": "overloaded", "message": format!("the collector is already handling {max} requests; retry after 1 s")}),
                    1,
                );
            }
            CollectError::UnsupportedMediaType(found) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({"error": "unsupported_media_type", "message": format!("content type '{found}' is not accepted; send application/json (an array of events) or application/x-ndjson (one event per line)")}),
            ),
            CollectError::BodyTooLarge(max) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "body_too_large", "message": format!("the body is larger than {max} bytes (after decompression)")}),
            ),
            CollectError::TooManyEvents { count, max } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "too_many_events", "message": format!("the batch holds {count} events; at most {max} are accepted per request")}),
            ),
            CollectError::Malformed(reason) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "malformed_body", "message": reason}),
            ),
            CollectError::EmptyBatch => (
                StatusCode::BAD_REQUEST,
                json!({"error": "empty_batch", "message": "the batch holds no events"}),
            ),
            CollectError::InvalidEvents(errors) => {
                let events: std::collections::BTreeSet<usize> =
                    errors.iter().map(|e| e.index).collect();
                (
                    StatusCode::BAD_REQUEST,
                    json!({"error": "invalid_events", "message": format!("{} event(s) are invalid; nothing was written", events.len()), "errors": errors}),
                )
            }
            CollectError::Unavailable {
                reason,
                accepted,
                failed,
            } => {
                return retry_later(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": "unavailable", "message": format!("Kafka did not acknowledge every event ({reason}); retry the batch: events are deduplicated by event_id"), "accepted": accepted, "failed": failed}),
                    1,
                );
            }
            CollectError::Internal(reason) => {
                tracing::error!(error = %reason, "Collector request failed.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "internal", "message": "the events could not be written"}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// A refusal the client should retry: `status`, the JSON `body` and `Retry-After: seconds`.
fn retry_later(status: StatusCode, body: Value, seconds: u64) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Reads a refused request's body to its end without keeping it (up to `max` bytes). Closing
/// the connection with the body unread would make the client's TCP stack receive a reset,
/// which can drop the refusal (and its `Retry-After`) before the client reads it.
async fn discard_body(body: Body, max: usize) {
    let mut chunks = body.into_data_stream();
    let mut read = 0;
    while let Some(Ok(chunk)) = chunks.next().await {
        read += chunk.len();
        if read > max {
            break;
        }
    }
}

async fn collect(
    State(state): State<CollectorState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, CollectError> {
    let admitted = state
        .keys
        .admit(&headers, Instant::now())
        .map_err(CollectError::Refused)
        .and_then(|_| {
            state
                .in_flight
                .try_acquire()
                .map_err(|_| CollectError::Overloaded(state.config.max_in_flight_requests))
        });
    let _permit = match admitted {
        Ok(permit) => permit,
        Err(refusal) => {
            discard_body(body, state.config.max_body_bytes).await;
            return Err(refusal);
        }
    };
    let format = body_format(&headers)?;
    let max = state.config.max_body_bytes;
    let raw = axum::body::to_bytes(body, max)
        .await
        .map_err(|_| CollectError::BodyTooLarge(max))?;
    let events = parse_batch(
        &headers,
        format,
        raw,
        &state.config,
        &state.limits,
        crate::clock::now_ms(),
    )?;
    let started = std::time::Instant::now();
    let trace = headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse)
        .unwrap_or_else(TraceParent::random)
        .child();
    let span = tracing::info_span!("collect", trace_id = %trace.trace_id, span_id = %trace.span_id, events = events.len());
    let traceparent = trace.header();
    let outcomes = match state
        .producer
        .send_batch(&events, Some(&traceparent))
        .instrument(span)
        .await
    {
        Ok(outcomes) => outcomes,
        Err(error) if error.is_transient() => {
            count_events("unavailable", events.len());
            return Err(CollectError::Unavailable {
                reason: error.to_string(),
                accepted: Vec::new(),
                failed: (0..events.len()).collect(),
            });
        }
        Err(error) => return Err(CollectError::Internal(error.to_string())),
    };
    let mut token = ConsistencyToken {
        topic: state.producer.topic().to_owned(),
        offsets: Default::default(),
    };
    let mut accepted = Vec::with_capacity(outcomes.len());
    let mut failed = Vec::new();
    let mut failure = None;
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(delivery) => {
                token.observe(delivery.partition, delivery.offset);
                accepted.push(AcceptedEvent {
                    index,
                    partition: delivery.partition,
                    offset: delivery.offset,
                });
            }
            Err(error) => {
                if !error.is_transient() {
                    return Err(CollectError::Internal(error.to_string()));
                }
                failed.push(index);
                failure.get_or_insert_with(|| error.to_string());
            }
        }
    }
    metrics::histogram!(names::COLLECTOR_PRODUCE_SECONDS).record(started.elapsed().as_secs_f64());
    count_events("accepted", accepted.len());
    count_events("unavailable", failed.len());
    if let Some(reason) = failure {
        tracing::warn!(failed = failed.len(), accepted = accepted.len(), %reason, "Events not acknowledged by Kafka.");
        return Err(CollectError::Unavailable {
            reason,
            accepted,
            failed,
        });
    }
    Ok(Json(Accepted {
        accepted: accepted.len(),
        events: accepted,
        consistency_token: token.encode(),
    })
    .into_response())
}
