//! `eventfold schema check` and `eventfold pipeline` on the shipped files, through the binary.

use std::process::Command;

fn eventfold(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_eventfold"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_shipped_pipelines_load() {
    let (code, out, err) = eventfold(&["pipeline"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("interactions reads topic 'interactions' with contract v2"),
        "{out}"
    );
}

#[test]
fn a_compatible_version_passes_and_a_breaking_one_names_pipeline_field_and_rule() {
    let (code, out, err) = eventfold(&["schema", "check", "schemas/interaction/v2.avsc"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("ok      interactions"), "{out}");

    // A v3 that renames user_id without an alias and makes value a string.
    let v2: serde_json::Value =
        serde_json::from_str(include_str!("../schemas/interaction/v2.avsc")).unwrap();
    let mut v3 = v2.clone();
    for field in v3["fields"].as_array_mut().unwrap() {
        if field["name"] == "user_id" {
            field["name"] = "account_id".into();
        }
        if field["name"] == "value" {
            field["type"] = serde_json::json!(["null", "string"]);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.avsc");
    std::fs::write(&path, v3.to_string()).unwrap();
    let (code, out, err) = eventfold(&["schema", "check", path.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(out.contains("BREAKS  interactions"), "{out}");
    assert!(
        out.contains("/fields/user_id") && out.contains("READER_FIELD_MISSING_DEFAULT_VALUE"),
        "{out}"
    );
    assert!(out.contains("/fields/value"), "{out}");
    assert!(
        err.contains("1 pipeline(s) cannot read events written with"),
        "{err}"
    );

    let (code, _, err) = eventfold(&["schema", "check", "Cargo.toml"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("Cargo.toml is not a valid Avro schema"),
        "{err}"
    );
}
