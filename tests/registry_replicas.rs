//! The registry's durability and replica agreement, against a real broker: its state is the
//! fold of its Kafka log, so a new replica rebuilds the same ids and versions, and replicas
//! writing at the same time never hand out the same id twice.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{call, schema_body, unique, TestRegistry};
use serde_json::{json, Value};

fn schema(name: &str, fields: usize) -> Value {
    let fields: Vec<Value> = (0..fields)
        .map(|i| json!({ "name": format!("f{i}"), "type": "long", "default": 0 }))
        .collect();
    json!({ "type": "record", "name": name, "fields": fields })
}

/// Every subject's versions with their ids and schemas, as a replica answers them.
async fn snapshot(url: &str) -> BTreeMap<String, Vec<Value>> {
    let subjects = call(url, "GET", "/subjects", None).await.body;
    let mut out = BTreeMap::new();
    for subject in subjects.as_array().unwrap() {
        let subject = subject.as_str().unwrap();
        let versions = call(url, "GET", &format!("/subjects/{subject}/versions"), None)
            .await
            .body;
        let mut entries = Vec::new();
        for v in versions.as_array().unwrap() {
            entries.push(
                call(
                    url,
                    "GET",
                    &format!("/subjects/{subject}/versions/{v}"),
                    None,
                )
                .await
                .body,
            );
        }
        out.insert(subject.to_owned(), entries);
    }
    out
}

#[tokio::test]
async fn a_restarted_registry_serves_the_same_ids_and_versions() {
    let topic = unique("_schemas");
    let first = TestRegistry::start(&topic).await;
    for (subject, fields) in [("a", 1), ("a", 2), ("b", 1), ("c", 3), ("a", 3)] {
        let answer = call(
            &first.url,
            "POST",
            &format!("/subjects/{subject}/versions"),
            Some(&schema_body(&schema("R", fields))),
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    call(
        &first.url,
        "PUT",
        "/config/b",
        Some(r#"{"compatibility":"FULL"}"#),
    )
    .await;
    call(&first.url, "DELETE", "/subjects/c", None).await;
    let before = snapshot(&first.url).await;
    assert_eq!(
        before["a"]
            .iter()
            .map(|v| v["id"].clone())
            .collect::<Vec<_>>(),
        vec![json!(1), json!(2), json!(3)]
    );
    first.stop().await;

    let second = TestRegistry::start(&topic).await;
    assert_eq!(snapshot(&second.url).await, before);
    assert_eq!(
        call(&second.url, "GET", "/config/b", None).await.body,
        json!({ "compatibilityLevel": "FULL" })
    );
    assert_eq!(
        call(&second.url, "GET", "/subjects?deleted=true", None)
            .await
            .body,
        json!(["a", "b", "c"])
    );
    // It goes on numbering where the first one stopped.
    let next = call(
        &second.url,
        "POST",
        "/subjects/d/versions",
        Some(&schema_body(&schema("D", 1))),
    )
    .await;
    assert_eq!(next.body, json!({ "id": 4 }));
    second.stop().await;
}

#[tokio::test]
async fn two_replicas_writing_at_once_agree_on_every_id() {
    let topic = unique("_schemas");
    let one = TestRegistry::start(&topic).await;
    let two = TestRegistry::start(&topic).await;
    // 40 distinct schemas, half through each replica, all at once; plus the same schema sent
    // to both replicas concurrently (it must get one id).
    let writes = (0..40).map(|i| {
        let url = if i % 2 == 0 {
            one.url.clone()
        } else {
            two.url.clone()
        };
        async move {
            let body = schema_body(&schema(&format!("S{i}"), 1 + i % 3));
            let answer = call(
                &url,
                "POST",
                &format!("/subjects/s{i}/versions"),
                Some(&body),
            )
            .await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            (i, answer.body["id"].as_u64().unwrap())
        }
    });
    let same = [one.url.clone(), two.url.clone()].map(|url| async move {
        let answer = call(
            &url,
            "POST",
            "/subjects/shared/versions",
            Some(&schema_body(&schema("Shared", 2))),
        )
        .await;
        answer.body["id"].as_u64().unwrap()
    });
    let (ids, shared) = tokio::join!(
        futures::future::join_all(writes),
        futures::future::join_all(same)
    );
    let distinct: BTreeSet<u64> = ids.iter().map(|(_, id)| *id).collect();
    assert_eq!(distinct.len(), 40, "duplicate ids handed out: {ids:?}");
    assert_eq!(shared[0], shared[1]);
    assert!(!distinct.contains(&shared[0]));
    assert_eq!(
        call(&one.url, "GET", "/subjects/shared/versions", None)
            .await
            .body,
        json!([1])
    );
    // Both replicas answer every id and version identically, once each has folded past a
    // write of its own (a replica's reads are as fresh as its last fold).
    for url in [&one.url, &two.url] {
        call(
            url,
            "PUT",
            "/config/sync-marker",
            Some(r#"{"compatibility":"NONE"}"#),
        )
        .await;
    }
    let (a, b) = (snapshot(&one.url).await, snapshot(&two.url).await);
    assert_eq!(a.len(), 41);
    assert_eq!(a, b);
    one.stop().await;
    two.stop().await;
}
