//! Arbitrary requests to the schema registry's HTTP API: the production router
//! (`registry::router`) over a registry kept in memory (`SchemaLog::in_memory`, folded like
//! the Kafka log), called with `tower::ServiceExt::oneshot` on a current-thread runtime.
//!
//! An input is up to 16 requests separated by a line `~~~`; each is `METHOD PATH` on its
//! first line and the body after it. A body starting with `avro:` is sent as
//! `{"schema": "<the rest>"}`, so the fuzzer mutates schema text without JSON escaping.
//! Checks: no panic; no 5xx (the in-memory log has no backend to fail, the only 5xx the API
//! documents); every registry body is JSON, every registry error is Confluent's
//! `{error_code, message}`; a schema id handed out by a register is then found by id.
#![no_main]

use std::sync::LazyLock;

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, Request, Response, StatusCode};
use axum::Router;
use eventfold::registry::{router, SchemaLog, CONTENT_TYPE_V1};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use tower::ServiceExt;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
});

const MAX_REQUESTS: usize = 16;

/// One request of the input, or `None` when its first line is not `METHOD PATH`.
fn request(text: &str) -> Option<Request<Body>> {
    let (line, body) = text.split_once('\n').unwrap_or((text, ""));
    let (method, path) = line.split_once(' ')?;
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    let body = match body.strip_prefix("avro:") {
        Some(schema) => json!({ "schema": schema }).to_string(),
        None => body.to_owned(),
    };
    Request::builder()
        .method(method)
        .uri(path)
        .header(CONTENT_TYPE, CONTENT_TYPE_V1)
        .body(Body::from(body))
        .ok()
}

/// Sends one request; checks the status and the body; gives the status and the JSON body.
async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Option<Value>) {
    let what = format!("{} {}", request.method(), request.uri());
    let response: Response<Body> = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    assert!(!status.is_server_error(), "{what} answered {status}");
    let registry_body = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v == CONTENT_TYPE_V1);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("an in-memory body");
    if !registry_body {
        return (status, None);
    }
    let body: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{what} answered {status} with a body that is not JSON: {e}"));
    if !status.is_success() {
        assert!(
            body["error_code"].is_u64() && body["message"].is_string(),
            "{what} answered {status} without Confluent's error body: {body}"
        );
    }
    (status, Some(body))
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let app = router(SchemaLog::in_memory());
    RUNTIME.block_on(async {
        for part in text.split("\n~~~\n").take(MAX_REQUESTS) {
            let Some(request) = request(part) else {
                continue;
            };
            let register = request.method() == Method::POST
                && request.uri().path().starts_with("/subjects/")
                && request.uri().path().ends_with("/versions");
            let (status, body) = send(&app, request).await;
            let id = body.as_ref().and_then(|b| b["id"].as_u64());
            if let (true, StatusCode::OK, Some(id)) = (register, status, id) {
                let by_id = Request::get(format!("/schemas/ids/{id}"))
                    .body(Body::empty())
                    .expect("a valid request");
                let (found, _) = send(&app, by_id).await;
                assert_eq!(
                    found,
                    StatusCode::OK,
                    "registered schema id {id} is not found"
                );
            }
        }
    });
});
