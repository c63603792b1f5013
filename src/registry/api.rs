//! The Confluent Schema Registry REST API over the folded registry: reads answer from this
//! replica's state, writes go through the log. Every body is
//! `application/vnd.schemaregistry.v1+json`; every error is Confluent's `{error_code, message}`.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::compat::CompatibilityLevel;
use super::state::{Command, Reply};
use super::{RegistryError, SchemaLog};

/// The content type of every registry response.
pub const CONTENT_TYPE_V1: &str = "application/vnd.schemaregistry.v1+json";

/// The registry's routes over one replica's log.
pub fn router(log: SchemaLog) -> Router {
    let router = Router::new()
        .route("/", get(|| async { confluent_json(&json!({})) }))
        .route(
            "/schemas/types",
            get(|| async { confluent_json(&["AVRO"]) }),
        )
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_of_id))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_raw_version),
        )
        .route(
            "/config",
            get(get_global_config)
                .put(put_global_config)
                .delete(delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(check_against_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(check_against_version),
        )
        .route(
            "/mode",
            get(|| async { confluent_json(&json!({"mode": "READWRITE"})) }),
        )
        .with_state(log);
    crate::http::instrument(router, "registry")
}

/// A JSON response with the registry's content type.
pub(crate) fn confluent_json<T: Serialize + ?Sized>(body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = bytes.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_V1));
    response
}

type ApiResult = Result<Response, RegistryError>;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Flags {
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    permanent: bool,
    #[serde(default)]
    verbose: bool,
    #[serde(default)]
    default_to_global: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: Option<String>,
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct ConfigRequest {
    compatibility: Option<String>,
}

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, RegistryError> {
    serde_json::from_slice(body).map_err(|e| RegistryError::MalformedRequest(e.to_string()))
}

/// The schema text of a register/lookup/compatibility body, checked to be plain Avro.
fn schema_text(body: &Bytes) -> Result<String, RegistryError> {
    let request: SchemaRequest = parse_body(body)?;
    if let Some(kind) = request.schema_type.as_deref() {
        if !kind.eq_ignore_ascii_case("AVRO") {
            return Err(RegistryError::InvalidSchema(format!(
                "schemaType '{kind}' is not supported; this registry stores AVRO schemas"
            )));
        }
    }
    if !request.references.is_empty() {
        return Err(RegistryError::InvalidSchema(
            "schema references are not supported; register self-contained schemas".to_owned(),
        ));
    }
    let text = request
        .schema
        .ok_or_else(|| RegistryError::InvalidSchema("Empty schema".to_owned()))?;
    super::state::parse_schema(&text)?;
    Ok(text)
}

/// `latest`, `-1` or a version number in [1, 2^31-1]; `None` means latest.
fn parse_version(raw: &str) -> Result<Option<u32>, RegistryError> {
    if raw == "latest" || raw == "-1" {
        return Ok(None);
    }
    match raw.parse::<u32>() {
        Ok(n) if (1..=i32::MAX as u32).contains(&n) => Ok(Some(n)),
        _ => Err(RegistryError::InvalidVersion(raw.to_owned())),
    }
}

fn parse_id(raw: &str) -> Result<u32, RegistryError> {
    raw.parse()
        .map_err(|_| RegistryError::SchemaIdNotFound(0))
        .and_then(|id| {
            if id == 0 {
                Err(RegistryError::SchemaIdNotFound(0))
            } else {
                Ok(id)
            }
        })
}

fn parse_level(body: &Bytes) -> Result<CompatibilityLevel, RegistryError> {
    let request: ConfigRequest = parse_body(body)?;
    request
        .compatibility
        .ok_or(RegistryError::InvalidCompatibilityLevel)?
        .parse()
        .map_err(|_| RegistryError::InvalidCompatibilityLevel)
}

async fn schema_by_id(State(log): State<SchemaLog>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id)?;
    log.read(|s| {
        let stored = s.schema(id)?;
        Ok(confluent_json(&json!({ "schema": stored.text })))
    })
}

async fn raw_schema_by_id(State(log): State<SchemaLog>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id)?;
    log.read(|s| Ok(raw_schema(&s.schema(id)?.text)))
}

fn raw_schema(text: &str) -> Response {
    let mut response = text.to_owned().into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_V1));
    response
}

async fn versions_of_id(State(log): State<SchemaLog>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id)?;
    log.read(|s| {
        let pairs: Vec<Value> = s
            .subject_versions_of(id)?
            .into_iter()
            .map(|(subject, version)| json!({ "subject": subject, "version": version }))
            .collect();
        Ok(confluent_json(&pairs))
    })
}

async fn list_subjects(State(log): State<SchemaLog>, Query(flags): Query<Flags>) -> Response {
    confluent_json(&log.read(|s| s.subjects(flags.deleted)))
}

async fn list_versions(
    State(log): State<SchemaLog>,
    Path(subject): Path<String>,
    Query(flags): Query<Flags>,
) -> ApiResult {
    log.read(|s| Ok(confluent_json(&s.versions(&subject, flags.deleted)?)))
}

fn version_body(subject: &str, version: u32, id: u32, schema: &str) -> Response {
    confluent_json(&json!({
        "subject": subject,
        "version": version,
        "id": id,
        "schema": schema,
    }))
}

async fn get_version(
    State(log): State<SchemaLog>,
    Path((subject, version)): Path<(String, String)>,
    Query(flags): Query<Flags>,
) -> ApiResult {
    let version = parse_version(&version)?;
    log.read(|s| {
        let (v, stored) = s.version(&subject, version, flags.deleted)?;
        Ok(version_body(&subject, v.version, v.id, &stored.text))
    })
}

async fn get_raw_version(
    State(log): State<SchemaLog>,
    Path((subject, version)): Path<(String, String)>,
    Query(flags): Query<Flags>,
) -> ApiResult {
    let version = parse_version(&version)?;
    log.read(|s| {
        Ok(raw_schema(
            &s.version(&subject, version, flags.deleted)?.1.text,
        ))
    })
}

async fn lookup(
    State(log): State<SchemaLog>,
    Path(subject): Path<String>,
    Query(flags): Query<Flags>,
    body: Bytes,
) -> ApiResult {
    let text = schema_text(&body)?;
    log.read(|s| {
        let (v, stored) = s.lookup(&subject, &text, flags.deleted)?;
        Ok(version_body(&subject, v.version, v.id, &stored.text))
    })
}

async fn register(
    State(log): State<SchemaLog>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult {
    let schema = schema_text(&body)?;
    match log.submit(Command::Register { subject, schema }).await? {
        Reply::Registered { id } => Ok(confluent_json(&json!({ "id": id }))),
        other => Err(unexpected(other)),
    }
}

async fn delete_subject(
    State(log): State<SchemaLog>,
    Path(subject): Path<String>,
    Query(flags): Query<Flags>,
) -> ApiResult {
    match log
        .submit(Command::DeleteSubject {
            subject,
            permanent: flags.permanent,
        })
        .await?
    {
        Reply::Deleted(versions) => Ok(confluent_json(&versions)),
        other => Err(unexpected(other)),
    }
}

async fn delete_version(
    State(log): State<SchemaLog>,
    Path((subject, version)): Path<(String, String)>,
    Query(flags): Query<Flags>,
) -> ApiResult {
    let version = parse_version(&version)?;
    match log
        .submit(Command::DeleteVersion {
            subject,
            version,
            permanent: flags.permanent,
        })
        .await?
    {
        Reply::DeletedVersion(v) => Ok(confluent_json(&v)),
        other => Err(unexpected(other)),
    }
}

fn level_body(level: CompatibilityLevel) -> Response {
    confluent_json(&json!({ "compatibilityLevel": level.as_str() }))
}

async fn get_global_config(State(log): State<SchemaLog>) -> Response {
    level_body(log.read(|s| s.level(None)))
}

async fn get_subject_config(
    State(log): State<SchemaLog>,
    Path(subject): Path<String>,
    Query(flags): Query<Flags>,
) -> ApiResult {
    log.read(|s| match s.subject_level(&subject) {
        Some(level) => Ok(level_body(level)),
        None if flags.default_to_global => Ok(level_body(s.level(None))),
        None => Err(RegistryError::SubjectLevelCompatibilityNotConfigured(
            subject,
        )),
    })
}

async fn set_config(log: &SchemaLog, subject: Option<String>, body: &Bytes) -> ApiResult {
    let level = parse_level(body)?;
    match log.submit(Command::SetConfig { subject, level }).await? {
        Reply::Config(level) => Ok(confluent_json(&json!({ "compatibility": level.as_str() }))),
        other => Err(unexpected(other)),
    }
}

async fn put_global_config(State(log): State<SchemaLog>, body: Bytes) -> ApiResult {
    set_config(&log, None, &body).await
}

async fn put_subject_config(
    State(log): State<SchemaLog>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult {
    set_config(&log, Some(subject), &body).await
}

async fn delete_config(log: &SchemaLog, subject: Option<String>) -> ApiResult {
    match log.submit(Command::DeleteConfig { subject }).await? {
        Reply::ConfigDeleted(level) => Ok(level_body(level)),
        other => Err(unexpected(other)),
    }
}

async fn delete_global_config(State(log): State<SchemaLog>) -> ApiResult {
    delete_config(&log, None).await
}

async fn delete_subject_config(
    State(log): State<SchemaLog>,
    Path(subject): Path<String>,
) -> ApiResult {
    delete_config(&log, Some(subject)).await
}

fn compatibility_body(messages: Vec<String>, verbose: bool) -> Response {
    if verbose {
        confluent_json(&json!({ "is_compatible": messages.is_empty(), "messages": messages }))
    } else {
        confluent_json(&json!({ "is_compatible": messages.is_empty() }))
    }
}

async fn check_against_version(
    State(log): State<SchemaLog>,
    Path((subject, version)): Path<(String, String)>,
    Query(flags): Query<Flags>,
    body: Bytes,
) -> ApiResult {
    let version = parse_version(&version)?;
    let text = schema_text(&body)?;
    let messages = log.read(|s| s.check_compatibility(&subject, Some(version), &text))?;
    Ok(compatibility_body(messages, flags.verbose))
}

async fn check_against_all(
    State(log): State<SchemaLog>,
    Path(subject): Path<String>,
    Query(flags): Query<Flags>,
    body: Bytes,
) -> ApiResult {
    let text = schema_text(&body)?;
    let messages = log.read(|s| s.check_compatibility(&subject, None, &text))?;
    Ok(compatibility_body(messages, flags.verbose))
}

fn unexpected(reply: Reply) -> RegistryError {
    RegistryError::Backend(format!("unexpected reply from the registry log: {reply:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::InteractionVersion;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    /// Sends one request; gives the status and the JSON body.
    async fn send(app: &Router, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(CONTENT_TYPE, CONTENT_TYPE_V1)
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn the_api_over_an_in_memory_log_registers_and_refuses_like_over_kafka() {
        let app = router(SchemaLog::in_memory());
        let subject = "/subjects/interactions-value/versions";
        let v1 = json!({ "schema": InteractionVersion::V1.text() });
        let v2 = json!({ "schema": InteractionVersion::V2.text() });
        assert_eq!(
            send(&app, "POST", subject, v1.clone()).await,
            (StatusCode::OK, json!({ "id": 1 }))
        );
        assert_eq!(
            send(&app, "POST", subject, v2).await,
            (StatusCode::OK, json!({ "id": 2 }))
        );
        assert_eq!(
            send(&app, "POST", subject, v1).await,
            (StatusCode::OK, json!({ "id": 1 })),
            "registering a schema twice gives its id"
        );
        assert_eq!(
            send(&app, "GET", subject, Value::Null).await,
            (StatusCode::OK, json!([1, 2]))
        );
        let (status, body) = send(&app, "GET", "/schemas/ids/2", Value::Null).await;
        assert_eq!(
            (status, body["schema"].as_str()),
            (StatusCode::OK, Some(InteractionVersion::V2.text()))
        );
        let narrower = json!({ "schema": r#"{"type":"record","name":"Interaction","namespace":"io.eventfold.events","fields":[{"name":"event_id","type":"long"}]}"# });
        let (status, body) = send(&app, "POST", subject, narrower).await;
        assert_eq!(
            (status, &body["error_code"]),
            (StatusCode::CONFLICT, &json!(409))
        );
        assert_eq!(
            send(&app, "GET", "/schemas/ids/3", Value::Null).await,
            (
                StatusCode::NOT_FOUND,
                json!({ "error_code": 40403, "message": "Schema 3 not found" })
            )
        );
    }

    #[test]
    fn versions_parse_like_confluent() {
        assert_eq!(parse_version("latest"), Ok(None));
        assert_eq!(parse_version("-1"), Ok(None));
        assert_eq!(parse_version("7"), Ok(Some(7)));
        assert_eq!(parse_version("2147483647"), Ok(Some(2_147_483_647)));
        for bad in ["0", "-2", "abc", "2147483648", "1.5", ""] {
            assert_eq!(
                parse_version(bad),
                Err(RegistryError::InvalidVersion(bad.into())),
                "{bad}"
            );
        }
    }
}
