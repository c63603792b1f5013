//! The registry's REST API against a real broker: every endpoint, and every error with the
//! exact status and Confluent error code.

mod common;

use common::{call, schema_body, TestRegistry};
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
