//! The registry's REST API against a real broker: every endpoint, and every error with the
//! exact status and Confluent error code; HTTP basic credentials on writes (and on reads when
//! they are closed).

mod common;

use common::{call, call_as, schema_body, unique, TestRegistry};
use eventfold::access::{Secret, SecretDigest};
use eventfold::registry::{
    InteractionEncoder, RegistryClient, RegistryClientError, RegistryConfig, RegistryEndpoint,
    RegistryUser,
};
use serde_json::json;

fn record(name: &str, fields: serde_json::Value) -> serde_json::Value {
    json!({ "type": "record", "name": name, "fields": fields })
}

#[tokio::test]
async fn register_lookup_and_read_every_way() {
    let registry = TestRegistry::fresh().await;
    let url = registry.url.as_str();
    let v1 = record("User", json!([{ "name": "id", "type": "string" }]));
    let v2 = record(
        "User",
        json!([{ "name": "id", "type": "string" }, { "name": "age", "type": "int", "default": 0 }]),
    );

    let first = call(
        url,
        "POST",
        "/subjects/users-value/versions",
        Some(&schema_body(&v1)),
    )
    .await;
    assert_eq!(
        (first.status, first.body.clone()),
        (200, json!({ "id": 1 }))
    );
    assert_eq!(first.content_type, "application/vnd.schemaregistry.v1+json");
    // Idempotent, compared in canonical form (whitespace and doc differences do not matter).
    let spaced = serde_json::to_string_pretty(&v1).unwrap();
    let again = call(
        url,
        "POST",
        "/subjects/users-value/versions",
        Some(&json!({ "schema": spaced, "schemaType": "AVRO" }).to_string()),
    )
    .await;
    assert_eq!((again.status, again.body), (200, json!({ "id": 1 })));
    let second = call(
        url,
        "POST",
        "/subjects/users-value/versions",
        Some(&schema_body(&v2)),
    )
    .await;
    assert_eq!((second.status, second.body), (200, json!({ "id": 2 })));
    // The same schema under another subject keeps its id.
    let other = call(
        url,
        "POST",
        "/subjects/other-value/versions",
        Some(&schema_body(&v1)),
    )
    .await;
    assert_eq!(other.body, json!({ "id": 1 }));

    let types = call(url, "GET", "/schemas/types", None).await;
    assert_eq!((types.status, types.body), (200, json!(["AVRO"])));
    let by_id = call(url, "GET", "/schemas/ids/2", None).await;
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.body["schema"], json!(v2.to_string()));
    let raw = call(url, "GET", "/schemas/ids/1/schema", None).await;
    assert_eq!(raw.body, v1);
    let id_versions = call(url, "GET", "/schemas/ids/1/versions", None).await;
    assert_eq!(
        id_versions.body,
        json!([{ "subject": "other-value", "version": 1 }, { "subject": "users-value", "version": 1 }])
    );
    let subjects = call(url, "GET", "/subjects", None).await;
    assert_eq!(subjects.body, json!(["other-value", "users-value"]));
    let versions = call(url, "GET", "/subjects/users-value/versions", None).await;
    assert_eq!(versions.body, json!([1, 2]));
    let latest = call(url, "GET", "/subjects/users-value/versions/latest", None).await;
    assert_eq!(
        latest.body,
        json!({ "subject": "users-value", "version": 2, "id": 2, "schema": v2.to_string() })
    );
    let one = call(url, "GET", "/subjects/users-value/versions/1", None).await;
    assert_eq!(one.body["id"], json!(1));
    let one_raw = call(url, "GET", "/subjects/users-value/versions/1/schema", None).await;
    assert_eq!(one_raw.body, v1);
    let lookup = call(
        url,
        "POST",
        "/subjects/users-value",
        Some(&schema_body(&v2)),
    )
    .await;
    assert_eq!(
        (lookup.status, lookup.body),
        (
            200,
            json!({ "subject": "users-value", "version": 2, "id": 2, "schema": v2.to_string() })
        )
    );
    registry.stop().await;
}

#[tokio::test]
async fn config_and_compatibility_endpoints() {
    let registry = TestRegistry::fresh().await;
    let url = registry.url.as_str();
    let global = call(url, "GET", "/config", None).await;
    assert_eq!(global.body, json!({ "compatibilityLevel": "BACKWARD" }));
    let put = call(url, "PUT", "/config", Some(r#"{"compatibility":"full"}"#)).await;
    assert_eq!(
        (put.status, put.body),
        (200, json!({ "compatibility": "FULL" }))
    );
    assert_eq!(
        call(url, "GET", "/config", None).await.body,
        json!({ "compatibilityLevel": "FULL" })
    );
    let v1 = record("Order", json!([{ "name": "id", "type": "string" }]));
    call(
        url,
        "POST",
        "/subjects/orders/versions",
        Some(&schema_body(&v1)),
    )
    .await;
    let no_subject_level = call(url, "GET", "/config/orders", None).await;
    assert_eq!(no_subject_level.status, 404);
    assert_eq!(no_subject_level.body["error_code"], json!(40408));
    let fallback = call(url, "GET", "/config/orders?defaultToGlobal=true", None).await;
    assert_eq!(fallback.body, json!({ "compatibilityLevel": "FULL" }));
    let put_subject = call(
        url,
        "PUT",
        "/config/orders",
        Some(r#"{"compatibility":"NONE"}"#),
    )
    .await;
    assert_eq!(put_subject.body, json!({ "compatibility": "NONE" }));
    assert_eq!(
        call(url, "GET", "/config/orders", None).await.body,
        json!({ "compatibilityLevel": "NONE" })
    );
    let deleted = call(url, "DELETE", "/config/orders", None).await;
    assert_eq!(
        (deleted.status, deleted.body),
        (200, json!({ "compatibilityLevel": "NONE" }))
    );
    let reset = call(url, "DELETE", "/config", None).await;
    assert_eq!(reset.body, json!({ "compatibilityLevel": "FULL" }));
    assert_eq!(
        call(url, "GET", "/config", None).await.body,
        json!({ "compatibilityLevel": "BACKWARD" })
    );

    // A required field without default breaks BACKWARD: the message names the path and rule.
    let breaking = record(
        "Order",
        json!([{ "name": "id", "type": "string" }, { "name": "total", "type": "double" }]),
    );
    let check = call(
        url,
        "POST",
        "/compatibility/subjects/orders/versions/latest?verbose=true",
        Some(&schema_body(&breaking)),
    )
    .await;
    assert_eq!(check.status, 200);
    assert_eq!(check.body["is_compatible"], json!(false));
    let message = check.body["messages"][0].as_str().unwrap();
    assert!(
        message.contains("/fields/total") && message.contains("READER_FIELD_MISSING_DEFAULT_VALUE"),
        "{message}"
    );
    let terse = call(
        url,
        "POST",
        "/compatibility/subjects/orders/versions/1",
        Some(&schema_body(&breaking)),
    )
    .await;
    assert_eq!(terse.body, json!({ "is_compatible": false }));
    let all = call(
        url,
        "POST",
        "/compatibility/subjects/orders/versions",
        Some(&schema_body(&v1)),
    )
    .await;
    assert_eq!(all.body, json!({ "is_compatible": true }));
    let refused = call(
        url,
        "POST",
        "/subjects/orders/versions",
        Some(&schema_body(&breaking)),
    )
    .await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.body["error_code"], json!(409));
    let text = refused.body["message"].as_str().unwrap();
    assert!(
        text.contains("/fields/total") && text.contains("READER_FIELD_MISSING_DEFAULT_VALUE"),
        "{text}"
    );
    assert_eq!(
        call(url, "GET", "/subjects/orders/versions", None)
            .await
            .body,
        json!([1])
    );
    registry.stop().await;
}

#[tokio::test]
async fn soft_and_permanent_deletes() {
    let registry = TestRegistry::fresh().await;
    let url = registry.url.as_str();
    let v1 = record("Item", json!([{ "name": "id", "type": "string" }]));
    let v2 = record(
        "Item",
        json!([{ "name": "id", "type": "string" }, { "name": "n", "type": "long", "default": 1 }]),
    );
    call(
        url,
        "POST",
        "/subjects/items/versions",
        Some(&schema_body(&v1)),
    )
    .await;
    call(
        url,
        "POST",
        "/subjects/items/versions",
        Some(&schema_body(&v2)),
    )
    .await;

    let hard_first = call(
        url,
        "DELETE",
        "/subjects/items/versions/2?permanent=true",
        None,
    )
    .await;
    assert_eq!(
        (hard_first.status, hard_first.body["error_code"].clone()),
        (404, json!(40407))
    );
    let soft = call(url, "DELETE", "/subjects/items/versions/2", None).await;
    assert_eq!((soft.status, soft.body), (200, json!(2)));
    let soft_again = call(url, "DELETE", "/subjects/items/versions/2", None).await;
    assert_eq!(soft_again.body["error_code"], json!(40406));
    assert_eq!(
        call(url, "GET", "/subjects/items/versions", None)
            .await
            .body,
        json!([1])
    );
    assert_eq!(
        call(url, "GET", "/subjects/items/versions?deleted=true", None)
            .await
            .body,
        json!([1, 2])
    );
    let gone = call(url, "GET", "/subjects/items/versions/2", None).await;
    assert_eq!(
        (gone.status, gone.body["error_code"].clone()),
        (404, json!(40402))
    );
    let hard = call(
        url,
        "DELETE",
        "/subjects/items/versions/2?permanent=true",
        None,
    )
    .await;
    assert_eq!((hard.status, hard.body), (200, json!(2)));

    let subject_hard_first = call(url, "DELETE", "/subjects/items?permanent=true", None).await;
    assert_eq!(subject_hard_first.body["error_code"], json!(40405));
    let subject_soft = call(url, "DELETE", "/subjects/items", None).await;
    assert_eq!((subject_soft.status, subject_soft.body), (200, json!([1])));
    assert_eq!(call(url, "GET", "/subjects", None).await.body, json!([]));
    assert_eq!(
        call(url, "GET", "/subjects?deleted=true", None).await.body,
        json!(["items"])
    );
    let soft_twice = call(url, "DELETE", "/subjects/items", None).await;
    assert_eq!(soft_twice.body["error_code"], json!(40404));
    let subject_hard = call(url, "DELETE", "/subjects/items?permanent=true", None).await;
    assert_eq!((subject_hard.status, subject_hard.body), (200, json!([1])));
    let missing = call(url, "GET", "/subjects/items/versions", None).await;
    assert_eq!(missing.body["error_code"], json!(40401));
    // Ids are never reused: the schema is still readable by id.
    assert_eq!(call(url, "GET", "/schemas/ids/1", None).await.status, 200);
    registry.stop().await;
}

#[tokio::test]
async fn bad_input_gets_confluent_errors() {
    let registry = TestRegistry::fresh().await;
    let url = registry.url.as_str();
    let v1 = record("Thing", json!([{ "name": "id", "type": "string" }]));
    call(
        url,
        "POST",
        "/subjects/things/versions",
        Some(&schema_body(&v1)),
    )
    .await;

    let cases: Vec<(&str, &str, Option<String>, u16, u64)> = vec![
        (
            "POST",
            "/subjects/things/versions",
            Some("{not json".into()),
            400,
            400,
        ),
        (
            "POST",
            "/subjects/things/versions",
            Some(r#"{"schema": 42}"#.into()),
            400,
            400,
        ),
        (
            "POST",
            "/subjects/things/versions",
            Some(r#"{"schema": "{\"type\": \"recrod\"}"}"#.into()),
            422,
            42201,
        ),
        (
            "POST",
            "/subjects/things/versions",
            Some(r#"{"schema": "not avro at all"}"#.into()),
            422,
            42201,
        ),
        (
            "POST",
            "/subjects/things/versions",
            Some(r#"{}"#.into()),
            422,
            42201,
        ),
        (
            "POST",
            "/subjects/things/versions",
            Some(json!({"schema": v1.to_string(), "schemaType": "PROTOBUF"}).to_string()),
            422,
            42201,
        ),
        ("GET", "/subjects/nope/versions", None, 404, 40401),
        ("GET", "/subjects/nope/versions/1", None, 404, 40401),
        ("POST", "/subjects/nope", Some(schema_body(&v1)), 404, 40401),
        ("GET", "/subjects/things/versions/9", None, 404, 40402),
        ("GET", "/subjects/things/versions/abc", None, 422, 42202),
        ("GET", "/subjects/things/versions/0", None, 422, 42202),
        (
            "GET",
            "/subjects/things/versions/2147483648",
            None,
            422,
            42202,
        ),
        ("DELETE", "/subjects/things/versions/x1", None, 422, 42202),
        (
            "PUT",
            "/config",
            Some(r#"{"compatibility":"SIDEWAYS"}"#.into()),
            422,
            42203,
        ),
        (
            "PUT",
            "/config/things",
            Some(r#"{"compatibility":null}"#.into()),
            422,
            42203,
        ),
        ("PUT", "/config", Some("[".into()), 400, 400),
        ("GET", "/schemas/ids/999", None, 404, 40403),
        ("GET", "/schemas/ids/999/versions", None, 404, 40403),
        (
            "POST",
            "/subjects/things",
            Some(schema_body(&record("Other", json!([])))),
            404,
            40403,
        ),
        (
            "POST",
            "/compatibility/subjects/things/versions/7",
            Some(schema_body(&v1)),
            404,
            40402,
        ),
        (
            "POST",
            "/compatibility/subjects/nope/versions/1",
            Some(schema_body(&v1)),
            404,
            40401,
        ),
        ("DELETE", "/subjects/nope", None, 404, 40401),
        ("DELETE", "/config/nope", None, 404, 40401),
    ];
    for (method, path, body, status, code) in cases {
        let answer = call(url, method, path, body.as_deref()).await;
        assert_eq!(
            (answer.status, answer.body["error_code"].as_u64()),
            (status, Some(code)),
            "{method} {path} {body:?} -> {}",
            answer.body
        );
        assert!(answer.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        assert_eq!(
            answer.content_type,
            "application/vnd.schemaregistry.v1+json"
        );
    }
    // Nothing above changed the subject.
    assert_eq!(
        call(url, "GET", "/subjects", None).await.body,
        json!(["things"])
    );
    assert_eq!(
        call(url, "GET", "/subjects/things/versions", None)
            .await
            .body,
        json!([1])
    );
    registry.stop().await;
}

fn guarded(open_reads: bool) -> RegistryConfig {
    RegistryConfig {
        topic: unique("_schemas"),
        basic_auth: vec![RegistryUser {
            user: "ci".to_owned(),
            password_sha256: SecretDigest::of(b"s3cret"),
        }],
        open_reads,
        ..RegistryConfig::default()
    }
}

#[tokio::test]
async fn writes_need_credentials_and_refusals_change_nothing() {
    let registry = TestRegistry::start_with(guarded(true)).await;
    let url = registry.url.as_str();
    let body = schema_body(&record(
        "Thing",
        json!([{ "name": "id", "type": "string" }]),
    ));
    let path = "/subjects/things/versions";

    let missing = call(url, "POST", path, Some(&body)).await;
    assert_eq!(
        (missing.status, missing.body),
        (
            401,
            json!({"error_code": 40101, "message": "this request needs HTTP basic credentials"})
        )
    );
    assert_eq!(
        missing.content_type,
        "application/vnd.schemaregistry.v1+json"
    );
    let challenge = reqwest::Client::new()
        .delete(format!("{url}/subjects/things"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        challenge.headers().get("www-authenticate").unwrap(),
        "Basic realm=\"eventfold-registry\""
    );
    for credentials in [("ci", "wrong"), ("other", "s3cret")] {
        let wrong = call_as(url, Some(credentials), "POST", path, Some(&body)).await;
        assert_eq!(
            (wrong.status, wrong.body),
            (
                403,
                json!({"error_code": 40301, "message": "the user or password is not known"})
            )
        );
    }
    // Reads are open by default; nothing was registered by the refused writes.
    assert_eq!(call(url, "GET", "/subjects", None).await.body, json!([]));
    let written = call_as(url, Some(("ci", "s3cret")), "POST", path, Some(&body)).await;
    assert_eq!((written.status, written.body), (200, json!({"id": 1})));
    let refused = call(url, "DELETE", "/subjects/things", None).await;
    assert_eq!(refused.status, 401);
    let refused = call_as(
        url,
        Some(("ci", "nope")),
        "PUT",
        "/config/things",
        Some("{\"compatibility\": \"NONE\"}"),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        call(url, "GET", "/subjects/things/versions", None)
            .await
            .body,
        json!([1])
    );
    assert_eq!(call(url, "GET", "/config/things", None).await.status, 404);
    registry.stop().await;
}

#[tokio::test]
async fn closed_reads_need_credentials_too() {
    let registry = TestRegistry::start_with(guarded(false)).await;
    let url = registry.url.as_str();
    let anonymous = call(url, "GET", "/subjects", None).await;
    assert_eq!(
        (anonymous.status, anonymous.body["error_code"].clone()),
        (401, json!(40101))
    );
    let wrong = call_as(url, Some(("ci", "x")), "GET", "/subjects", None).await;
    assert_eq!(
        (wrong.status, wrong.body["error_code"].clone()),
        (403, json!(40301))
    );
    let known = call_as(url, Some(("ci", "s3cret")), "GET", "/subjects", None).await;
    assert_eq!((known.status, known.body), (200, json!([])));

    // The stages' clients send `registry.username` and `registry.password`.
    let endpoint = RegistryEndpoint {
        url: registry.url.clone(),
        credentials: Some(("ci".to_owned(), Secret::new("s3cret"))),
        trusted: Vec::new(),
    };
    let schema = record("Client", json!([{ "name": "id", "type": "string" }])).to_string();
    let anonymous = RegistryClient::new(url).unwrap();
    assert!(matches!(
        anonymous.register("clients-value", &schema).await,
        Err(RegistryClientError::Refused {
            status: 401,
            error_code: 40101,
            ..
        })
    ));
    let client = RegistryClient::new(endpoint.clone()).unwrap();
    assert_eq!(client.register("clients-value", &schema).await.unwrap(), 1);
    let event = eventfold::ingest::EventGenerator::new(7, 10, 10, 1_700_000_000_000)
        .next()
        .unwrap();
    let encoded = InteractionEncoder::new(endpoint, "clicks")
        .encode(&event)
        .await
        .unwrap();
    assert_eq!(&encoded[..5], &[0, 0, 0, 0, 2]);
    assert_eq!(
        call_as(url, Some(("ci", "s3cret")), "GET", "/subjects", None)
            .await
            .body,
        json!(["clicks-value", "clients-value"])
    );
    registry.stop().await;
}
