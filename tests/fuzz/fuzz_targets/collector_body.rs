//! Arbitrary bytes as the body of `POST /v1/events` through the collector's parse and
//! validate path (`ingest::body_format` + `ingest::parse_batch`, what the handler runs
//! between reading the body and producing). The first byte picks the request's form: bit 0
//! JSON array or NDJSON; bits 1–2 identity, the rest gzip-compressed here first, the rest
//! sent as if it were gzip, or an unknown content encoding. Checks: no panic; a refusal is
//! a 4xx (never 5xx); every accepted event is exactly what the authoritative validator
//! (`ingest::validate_event`) makes of the same JSON value, so the fast path never lets
//! through what the validator refuses.
#![no_main]

use std::io::{Read, Write};

use axum::body::Bytes;
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use eventfold::ingest::{body_format, parse_batch, validate_event, CollectError, CollectorConfig};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The server clock of every run, so that a corpus entry means the same thing every time.
const NOW_MS: i64 = 1_764_000_000_000;

fuzz_target!(|input: &[u8]| {
    let Some((&form, rest)) = input.split_first() else {
        return;
    };
    let ndjson = form & 1 == 1;
    let mut headers = HeaderMap::new();
    let content_type = if ndjson {
        "application/x-ndjson"
    } else {
        "application/json; charset=utf-8"
    };
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let raw = match form >> 1 & 3 {
        0 => rest.to_vec(),
        1 => {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(rest).expect("gzip into memory");
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            encoder.finish().expect("gzip into memory")
        }
        2 => {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("GZIP "));
            rest.to_vec()
        }
        _ => {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
            rest.to_vec()
        }
    };
    let config = CollectorConfig::default();
    let limits = config.limits();
    let format = body_format(&headers).expect("a content type the collector takes");
    let events = match parse_batch(
        &headers,
        format,
        Bytes::from(raw.clone()),
        &config,
        &limits,
        NOW_MS,
    ) {
        Ok(events) => events,
        Err(error) => {
            if let CollectError::InvalidEvents(problems) = &error {
                assert!(!problems.is_empty(), "an invalid batch without a problem");
            }
            let status = error.into_response().status();
            assert!(status.is_client_error(), "a bad body answered {status}");
            return;
        }
    };
    let body = match form >> 1 & 3 {
        2 => {
            let mut out = Vec::new();
            GzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .expect("the collector gunzipped it");
            out
        }
        _ => rest.to_vec(),
    };
    let values: Vec<Value> = if ndjson {
        std::str::from_utf8(&body)
            .expect("the collector read it as UTF-8")
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).expect("the collector parsed the line"))
            .collect()
    } else {
        serde_json::from_slice(&body).expect("the collector parsed the array")
    };
    assert_eq!(
        values.len(),
        events.len(),
        "accepted a different number of events"
    );
    assert!(!events.is_empty() && events.len() <= config.max_events_per_batch);
    for (index, (value, event)) in values.iter().zip(&events).enumerate() {
        match validate_event(index, value, &limits, NOW_MS) {
            Ok(validated) => assert_eq!(
                &validated, event,
                "event {index} differs from the validator's"
            ),
            Err(problems) => {
                panic!("event {index} was accepted, the validator refuses it: {problems:?}")
            }
        }
    }
});
