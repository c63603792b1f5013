//! The compatibility table through the HTTP API, against a real broker: every writer/reader
//! pair of `tests/data/compat_pairs.json` (verdicts cross-checked with Apache's Python avro
//! checker) is registered under each of the seven levels, and the registry must accept or
//! refuse (409) exactly as the Avro resolution rules say.

mod common;

use common::{call, schema_body, unique, TestRegistry};
use serde_json::{json, Value};

const LEVELS: [&str; 7] = [
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
];

fn expected(level: &str, reader_reads_writer: bool, writer_reads_reader: bool) -> bool {
    match level {
        "NONE" => true,
        "BACKWARD" | "BACKWARD_TRANSITIVE" => reader_reads_writer,
        "FORWARD" | "FORWARD_TRANSITIVE" => writer_reads_reader,
        _ => reader_reads_writer && writer_reads_reader,
    }
}

/// Registers `first` then `second` under a fresh subject at `level`; whether `second` was
/// accepted, after checking that a refusal is a 409 naming a rule.
async fn second_accepted(url: &str, level: &str, first: &Value, second: &Value) -> bool {
    let subject = unique("compat");
    let put = call(
        url,
        "PUT",
        &format!("/config/{subject}"),
        Some(&json!({ "compatibility": level }).to_string()),
    )
    .await;
    assert_eq!(put.status, 200);
    let path = format!("/subjects/{subject}/versions");
    let one = call(url, "POST", &path, Some(&schema_body(first))).await;
    assert_eq!(one.status, 200, "{}", one.body);
    let two = call(url, "POST", &path, Some(&schema_body(second))).await;
    match two.status {
        200 => true,
        409 => {
            assert_eq!(two.body["error_code"], json!(409));
            let message = two.body["message"].as_str().unwrap_or_default();
            assert!(message.contains('(') && message.contains('/'), "{message}");
            false
        }
        other => panic!("unexpected status {other}: {}", two.body),
    }
}

#[tokio::test]
async fn every_pair_under_every_level() {
    let cases: Vec<Value> =
        serde_json::from_str(include_str!("data/compat_pairs.json")).expect("table parses");
    assert!(cases.len() >= 40, "the table needs at least 40 pairs");
    let registry = TestRegistry::fresh().await;
    let url = registry.url.clone();
    let mut checks = Vec::new();
    for case in &cases {
        for level in LEVELS {
            checks.push((case, level));
        }
    }
    let mut failures = Vec::new();
    for chunk in checks.chunks(32) {
        let results = futures::future::join_all(chunk.iter().map(|(case, level)| {
            let url = url.clone();
            async move {
                let accepted = second_accepted(&url, level, &case["writer"], &case["reader"]).await;
                (case, *level, accepted)
            }
        }))
        .await;
        for (case, level, accepted) in results {
            let want = expected(
                level,
                case["reader_can_read_writer"].as_bool().unwrap(),
                case["writer_can_read_reader"].as_bool().unwrap(),
            );
            if accepted != want {
                failures.push(format!(
                    "{} under {level}: accepted={accepted}, expected {want}",
                    case["name"]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} wrong verdicts:\n{}",
        failures.len(),
        failures.join("\n")
    );
    registry.stop().await;
}

#[tokio::test]
async fn transitive_levels_check_every_earlier_version() {
    let registry = TestRegistry::fresh().await;
    let url = registry.url.as_str();
    let v1 = json!({"type": "record", "name": "R", "fields": [{"name": "a", "type": "string"}]});
    let v2 = json!({"type": "record", "name": "R", "fields": [{"name": "a", "type": "string", "default": ""}]});
    // v2 only gives `a` a default (a new schema: defaults take part in identity). v3 drops
    // `a` and adds `b` with a default: v2 reads v3 data (default for `a`), v1 does not (`a`
    // has no default there); v3 reads both (it ignores `a`, defaults `b`).
    let v3 = json!({"type": "record", "name": "R", "fields": [{"name": "b", "type": "int", "default": 0}]});
    for (level, accepted) in [
        ("BACKWARD", true),
        ("BACKWARD_TRANSITIVE", true),
        ("FORWARD", true),
        ("FORWARD_TRANSITIVE", false),
        ("FULL", true),
        ("FULL_TRANSITIVE", false),
    ] {
        let subject = unique("transitive");
        let path = format!("/subjects/{subject}/versions");
        call(
            url,
            "PUT",
            &format!("/config/{subject}"),
            Some(&json!({"compatibility": level}).to_string()),
        )
        .await;
        assert_eq!(
            call(url, "POST", &path, Some(&schema_body(&v1)))
                .await
                .status,
            200
        );
        assert_eq!(
            call(url, "POST", &path, Some(&schema_body(&v2)))
                .await
                .status,
            200
        );
        let third = call(url, "POST", &path, Some(&schema_body(&v3))).await;
        assert_eq!(third.status == 200, accepted, "{level}: {}", third.body);
        if !accepted {
            assert!(
                third.body["message"]
                    .as_str()
                    .unwrap()
                    .contains("version 1"),
                "{}",
                third.body
            );
        }
    }
    registry.stop().await;
}
