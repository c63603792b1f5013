//! From a collector request body to checked events: the content type picks a JSON array or
//! NDJSON, the content encoding identity or gzip (the decompressed body is bounded too), and
//! every event is validated. All-or-nothing: one invalid event refuses the batch with every
//! problem listed. Pure code (the clock is a parameter): reading the body off the socket and
//! producing the events stay in the handler ([`super::router`]).

use std::io::Read;

use axum::body::Bytes;
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::HeaderMap;
use serde_json::Value;

use super::collect::{count_events, CollectError};
use super::validate::{validate_event, EventJson, EventLimits};
use super::CollectorConfig;
use crate::contracts::Interaction;

/// How the events of a body are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`: one JSON array of events.
    JsonArray,
    /// `application/x-ndjson` (or `ndjson`, `jsonl`): one event per line.
    Ndjson,
}

/// The format a request's `Content-Type` names; 415 for any other.
pub fn body_format(headers: &HeaderMap) -> Result<BodyFormat, CollectError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(BodyFormat::JsonArray),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
            Ok(BodyFormat::Ndjson)
        }
        _ => Err(CollectError::UnsupportedMediaType(content_type.to_owned())),
    }
}

/// The checked events of a request body already read within `config.max_body_bytes`: what
/// the `POST /v1/events` handler does between reading the body and producing the events.
pub fn parse_batch(
    headers: &HeaderMap,
    format: BodyFormat,
    raw: Bytes,
    config: &CollectorConfig,
    limits: &EventLimits,
    now_ms: i64,
) -> Result<Vec<Interaction>, CollectError> {
    let bytes = decompress(headers, raw, config.max_body_bytes)?;
    let max = config.max_events_per_batch;
    if let Some(events) = fast_parse(&bytes, format, limits, now_ms, max) {
        return Ok(events);
    }
    let values = parse_events(&bytes, format, max)?;
    let mut events = Vec::with_capacity(values.len());
    let mut errors = Vec::new();
    for (index, value) in values.iter().enumerate() {
        match validate_event(index, value, limits, now_ms) {
            Ok(event) => events.push(event),
            Err(problems) => errors.extend(problems),
        }
    }
    if !errors.is_empty() {
        count_events("rejected", values.len());
        return Err(CollectError::InvalidEvents(errors));
    }
    Ok(events)
}

/// The body as sent, or gunzipped (bounded by `max` bytes) when `Content-Encoding: gzip`.
fn decompress(headers: &HeaderMap, raw: Bytes, max: usize) -> Result<Bytes, CollectError> {
    let encoding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(raw),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(raw.as_ref())
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    CollectError::Malformed(format!("the gzip body does not decompress: {e}"))
                })?;
            if out.len() > max {
                return Err(CollectError::BodyTooLarge(max));
            }
            Ok(Bytes::from(out))
        }
        other => Err(CollectError::UnsupportedMediaType(format!(
            "content-encoding {other}"
        ))),
    }
}

fn parse_events(
    bytes: &[u8],
    format: BodyFormat,
    max_events: usize,
) -> Result<Vec<Value>, CollectError> {
    let events = match format {
        BodyFormat::JsonArray => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Array(events)) => events,
            Ok(other) => {
                return Err(CollectError::Malformed(format!(
                    "expected a JSON array of events, found {}",
                    match other {
                        Value::Object(_) => "an object",
                        _ => "a scalar",
                    }
                )))
            }
            Err(e) => {
                return Err(CollectError::Malformed(format!(
                    "the body is not valid JSON: {e}"
                )))
            }
        },
        BodyFormat::Ndjson => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| CollectError::Malformed(format!("the body is not UTF-8: {e}")))?;
            let mut events = Vec::new();
            for (number, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let event = serde_json::from_str(line).map_err(|e| {
                    CollectError::Malformed(format!("line {} is not valid JSON: {e}", number + 1))
                })?;
                events.push(event);
                if events.len() > max_events {
                    break;
                }
            }
            events
        }
    };
    if events.is_empty() {
        return Err(CollectError::EmptyBatch);
    }
    if events.len() > max_events {
        return Err(CollectError::TooManyEvents {
            count: events.len(),
            max: max_events,
        });
    }
    Ok(events)
}

/// The fast path for well-formed batches: typed deserialization and the same checks as
/// the validator. `None` (anything unusual) sends the batch through the slow path, which
/// reports exactly what is wrong.
fn fast_parse(
    bytes: &[u8],
    format: BodyFormat,
    limits: &EventLimits,
    now: i64,
    max: usize,
) -> Option<Vec<Interaction>> {
    let typed: Vec<EventJson> = match format {
        BodyFormat::JsonArray => serde_json::from_slice(bytes).ok()?,
        BodyFormat::Ndjson => std::str::from_utf8(bytes)
            .ok()?
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).ok())
            .collect::<Option<_>>()?,
    };
    if typed.is_empty() || typed.len() > max {
        return None;
    }
    typed
        .into_iter()
        .map(|event| event.accept(limits, now))
        .collect()
}
