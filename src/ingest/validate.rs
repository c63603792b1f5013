//! Validation of events sent by apps as JSON: required fields, types, enum symbols, sizes and
//! timestamp sanity, each problem reported with the event's index, the field and the reason.
//! Pure code: the clock is a parameter.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::contracts::{self, EventType, Interaction};

/// Limits an event must respect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLimits {
    /// Longest id (`event_id`, `user_id`, `session_id`, `item_id`) in bytes.
    pub max_id_bytes: usize,
    /// Longest `app` in bytes.
    pub max_app_bytes: usize,
    /// Most `properties` entries.
    pub max_properties: usize,
    /// Longest property key or value in bytes.
    pub max_property_bytes: usize,
    /// How far in the future `occurred_at` may be (device clock skew).
    pub max_future_ms: i64,
    /// How far in the past `occurred_at` may be.
    pub max_age_ms: i64,
}

impl Default for EventLimits {
    /// The contract's size limits (which workers enforce too) and the collector's default
    /// clock-skew bounds.
    fn default() -> Self {
        EventLimits {
            max_id_bytes: contracts::MAX_ID_BYTES,
            max_app_bytes: contracts::MAX_APP_BYTES,
            max_properties: contracts::MAX_PROPERTIES,
            max_property_bytes: contracts::MAX_PROPERTY_BYTES,
            max_future_ms: 5 * 60 * 1000,
            max_age_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// One problem with one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The event's position in the batch (0-based).
    pub index: usize,
    /// The field (dotted for nested fields), or `""` for the event itself.
    pub field: String,
    /// A stable, machine-readable code.
    pub code: &'static str,
    /// What is wrong, for people.
    pub reason: String,
}

const FIELDS: [&str; 10] = [
    "event_id",
    "event_type",
    "user_id",
    "session_id",
    "item_id",
    "occurred_at",
    "app",
    "properties",
    "value",
    "device",
];

struct Checker<'a> {
    index: usize,
    limits: &'a EventLimits,
    errors: Vec<FieldError>,
}

impl Checker<'_> {
    fn fail(&mut self, field: &str, code: &'static str, reason: impl Into<String>) {
        self.errors.push(FieldError {
            index: self.index,
            field: field.to_owned(),
            code,
            reason: reason.into(),
        });
    }

    fn string(
        &mut self,
        object: &Map<String, Value>,
        field: &str,
        max: usize,
        required: bool,
    ) -> Option<String> {
        match object.get(field) {
            None | Some(Value::Null) if !required => None,
            None | Some(Value::Null) => {
                self.fail(field, "missing", "is required");
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.fail(field, "empty", "must not be empty");
                None
            }
            Some(Value::String(s)) if s.len() > max => {
                self.fail(
                    field,
                    "too_long",
                    format!("is {} bytes long; at most {max} allowed", s.len()),
                );
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.fail(
                    field,
                    "wrong_type",
                    format!("must be a string, found {}", json_type(other)),
                );
                None
            }
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Validates one event of a batch; `now_ms` is the server's clock.
pub fn validate_event(
    index: usize,
    value: &Value,
    limits: &EventLimits,
    now_ms: i64,
) -> Result<Interaction, Vec<FieldError>> {
    let mut check = Checker {
        index,
        limits,
        errors: Vec::new(),
    };
    let Value::Object(object) = value else {
        check.fail(
            "",
            "wrong_type",
            format!("an event must be a JSON object, found {}", json_type(value)),
        );
        return Err(check.errors);
    };
    for key in object.keys() {
        if !FIELDS.contains(&key.as_str()) {
            check.fail(
                key,
                "unknown_field",
                "is not a field of the interaction contract",
            );
        }
    }
    let max_id = check.limits.max_id_bytes;
    let event_id = check.string(object, "event_id", max_id, true);
    if let Some(id) = &event_id {
        if uuid::Uuid::try_parse(id).is_err() {
            check.fail(
                "event_id",
                "not_a_uuid",
                "must be a UUID (the app's idempotency key)",
            );
        }
    }
    let event_type = match object.get("event_type") {
        None | Some(Value::Null) => {
            check.fail("event_type", "missing", "is required");
            None
        }
        Some(Value::String(symbol)) => match EventType::from_symbol(symbol)
            .filter(|t| *t != EventType::Unknown)
        {
            Some(kind) => Some(kind),
            None => {
                let known: Vec<&str> = EventType::ALL.iter().skip(1).map(|t| t.as_str()).collect();
                check.fail(
                    "event_type",
                    "unknown_event_type",
                    format!("'{symbol}' is not one of {}", known.join(", ")),
                );
                None
            }
        },
        Some(other) => {
            check.fail(
                "event_type",
                "wrong_type",
                format!("must be a string, found {}", json_type(other)),
            );
            None
        }
    };
    let user_id = check.string(object, "user_id", max_id, true);
    let session_id = check.string(object, "session_id", max_id, true);
    let item_id = check.string(object, "item_id", max_id, false);
    let occurred_at = match object.get("occurred_at") {
        None | Some(Value::Null) => {
            check.fail(
                "occurred_at",
                "missing",
                "is required (ms since the Unix epoch)",
            );
            None
        }
        Some(Value::Number(n)) => match n.as_i64() {
            Some(ms) if ms > now_ms + limits.max_future_ms => {
                check.fail(
                    "occurred_at",
                    "in_the_future",
                    format!(
                        "is {} s ahead of the server clock; at most {} s allowed",
                        (ms - now_ms) / 1000,
                        limits.max_future_ms / 1000
                    ),
                );
                None
            }
            Some(ms) if ms < now_ms - limits.max_age_ms => {
                check.fail(
                    "occurred_at",
                    "too_old",
                    format!("is older than {} s", limits.max_age_ms / 1000),
                );
                None
            }
            Some(ms) => Some(ms),
            None => {
                check.fail(
                    "occurred_at",
                    "wrong_type",
                    "must be an integer number of ms since the Unix epoch",
                );
                None
            }
        },
        Some(other) => {
            check.fail(
                "occurred_at",
                "wrong_type",
                format!(
                    "must be an integer (ms since the Unix epoch), found {}",
                    json_type(other)
                ),
            );
            None
        }
    };
    let app = check.string(object, "app", limits.max_app_bytes, true);
    let properties = match object.get("properties") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => {
            if map.len() > limits.max_properties {
                check.fail(
                    "properties",
                    "too_many",
                    format!(
                        "has {} entries; at most {} allowed",
                        map.len(),
                        limits.max_properties
                    ),
                );
            }
            let mut out = BTreeMap::new();
            for (key, value) in map {
                let field = format!("properties.{key}");
                if key.len() > limits.max_property_bytes {
                    check.fail(
                        "properties",
                        "too_long",
                        format!(
                            "a key is {} bytes long; at most {} allowed",
                            key.len(),
                            limits.max_property_bytes
                        ),
                    );
                    continue;
                }
                match value {
                    Value::String(s) if s.len() > limits.max_property_bytes => check.fail(
                        &field,
                        "too_long",
                        format!(
                            "is {} bytes long; at most {} allowed",
                            s.len(),
                            limits.max_property_bytes
                        ),
                    ),
                    Value::String(s) => {
                        out.insert(key.clone(), s.clone());
                    }
                    other => check.fail(
                        &field,
                        "wrong_type",
                        format!(
                            "property values must be strings, found {}",
                            json_type(other)
                        ),
                    ),
                }
            }
            out
        }
        Some(other) => {
            check.fail(
                "properties",
                "wrong_type",
                format!("must be an object of strings, found {}", json_type(other)),
            );
            BTreeMap::new()
        }
    };
    let value_field = match object.get("value") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64().filter(|v| v.is_finite()),
        Some(other) => {
            check.fail(
                "value",
                "wrong_type",
                format!("must be a number, found {}", json_type(other)),
            );
            None
        }
    };
    let device = match object.get("device") {
        None | Some(Value::Null) => Default::default(),
        Some(Value::Object(map)) => {
            for key in map.keys() {
                if !["platform", "os_version", "app_version"].contains(&key.as_str()) {
                    check.fail(
                        &format!("device.{key}"),
                        "unknown_field",
                        "is not a field of the device record",
                    );
                }
            }
            let platform = check.string(map, "platform", limits.max_app_bytes, false);
            let os_version = check.string(map, "os_version", limits.max_app_bytes, false);
            let app_version = check.string(map, "app_version", limits.max_app_bytes, false);
            crate::contracts::Device {
                platform: platform.unwrap_or_else(|| "unknown".to_owned()),
                os_version,
                app_version,
            }
        }
        Some(other) => {
            check.fail(
                "device",
                "wrong_type",
                format!("must be an object, found {}", json_type(other)),
            );
            Default::default()
        }
    };
    match (event_id, event_type, user_id, session_id, occurred_at, app) {
        (
            Some(event_id),
            Some(event_type),
            Some(user_id),
            Some(session_id),
            Some(occurred_at),
            Some(app),
        ) if check.errors.is_empty() => Ok(Interaction {
            event_id,
            event_type,
            user_id,
            session_id,
            item_id,
            occurred_at,
            app,
            properties,
            value: value_field,
            device,
        }),
        _ => Err(check.errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_764_000_000_000;

    fn good() -> Value {
        json!({
            "event_id": "0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d",
            "event_type": "add_to_cart",
            "user_id": "u1",
            "session_id": "s1",
            "item_id": "sku-1",
            "occurred_at": NOW - 1000,
            "app": "web",
            "properties": {"ref": "mail"},
            "value": 12.5,
            "device": {"platform": "ios", "os_version": "18"}
        })
    }

    fn with(field: &str, value: Value) -> Value {
        let mut event = good();
        event[field] = value;
        event
    }

    fn without(field: &str) -> Value {
        let mut event = good();
        event.as_object_mut().unwrap().remove(field);
        event
    }

    #[test]
    fn a_good_event_validates() {
        let event = validate_event(0, &good(), &EventLimits::default(), NOW).unwrap();
        assert_eq!(event.event_type, EventType::AddToCart);
        assert_eq!(event.value, Some(12.5));
        assert_eq!(event.device.platform, "ios");
        let minimal = json!({"event_id": "0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d", "event_type": "click", "user_id": "u", "session_id": "s", "occurred_at": NOW, "app": "web"});
        assert!(validate_event(0, &minimal, &EventLimits::default(), NOW).is_ok());
    }

    #[test]
    fn every_bad_field_is_reported_with_its_code() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!([1]), "", "wrong_type"),
            (without("event_id"), "event_id", "missing"),
            (with("event_id", json!("abc")), "event_id", "not_a_uuid"),
            (with("event_id", json!(7)), "event_id", "wrong_type"),
            (
                with("event_type", json!("teleport")),
                "event_type",
                "unknown_event_type",
            ),
            (
                with("event_type", json!("unknown")),
                "event_type",
                "unknown_event_type",
            ),
            (without("user_id"), "user_id", "missing"),
            (with("user_id", json!("")), "user_id", "empty"),
            (
                with("user_id", json!("x".repeat(129))),
                "user_id",
                "too_long",
            ),
            (with("session_id", json!(null)), "session_id", "missing"),
            (with("item_id", json!(5)), "item_id", "wrong_type"),
            (without("occurred_at"), "occurred_at", "missing"),
            (
                with("occurred_at", json!("yesterday")),
                "occurred_at",
                "wrong_type",
            ),
            (with("occurred_at", json!(1.5)), "occurred_at", "wrong_type"),
            (
                with("occurred_at", json!(NOW + 3_600_000)),
                "occurred_at",
                "in_the_future",
            ),
            (with("occurred_at", json!(0)), "occurred_at", "too_old"),
            (with("app", json!("a".repeat(65))), "app", "too_long"),
            (with("properties", json!(["a"])), "properties", "wrong_type"),
            (
                with("properties", json!({"k": 1})),
                "properties.k",
                "wrong_type",
            ),
            (
                with("properties", json!({"k": "v".repeat(513)})),
                "properties.k",
                "too_long",
            ),
            (
                with(
                    "properties",
                    Value::Object((0..33).map(|i| (i.to_string(), json!("v"))).collect()),
                ),
                "properties",
                "too_many",
            ),
            (with("value", json!("12")), "value", "wrong_type"),
            (with("device", json!("ios")), "device", "wrong_type"),
            (
                with("device", json!({"model": "x"})),
                "device.model",
                "unknown_field",
            ),
            (with("colour", json!("red")), "colour", "unknown_field"),
        ];
        for (event, field, code) in cases {
            let errors = validate_event(3, &event, &EventLimits::default(), NOW)
                .expect_err(&format!("{event}"));
            assert!(
                errors.iter().any(|e| e.index == 3
                    && e.field == field
                    && e.code == code
                    && !e.reason.is_empty()),
                "{event}: {errors:?}"
            );
        }
    }
}

/// The typed shape of a valid event: the collector's fast path deserializes straight into it
/// and checks the same limits as [`validate_event`]; anything it does not accept goes through
/// [`validate_event`], which is authoritative and says what is wrong.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventJson {
    event_id: String,
    event_type: EventType,
    user_id: String,
    session_id: String,
    #[serde(default)]
    item_id: Option<String>,
    occurred_at: i64,
    app: String,
    #[serde(default)]
    properties: Option<BTreeMap<String, String>>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    device: Option<DeviceJson>,
}

/// The typed device record of [`EventJson`].
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceJson {
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    os_version: Option<String>,
    #[serde(default)]
    app_version: Option<String>,
}

fn fits(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.len() <= max
}

fn fits_optional(s: &Option<String>, max: usize) -> bool {
    s.as_deref().is_none_or(|s| fits(s, max))
}

impl EventJson {
    /// The event, if it passes every check of [`validate_event`]; `None` sends it to the
    /// slow path for a precise error.
    pub fn accept(self, limits: &EventLimits, now_ms: i64) -> Option<Interaction> {
        let properties = self.properties.unwrap_or_default();
        let ok = fits(&self.event_id, limits.max_id_bytes)
            && uuid::Uuid::try_parse(&self.event_id).is_ok()
            && self.event_type != EventType::Unknown
            && fits(&self.user_id, limits.max_id_bytes)
            && fits(&self.session_id, limits.max_id_bytes)
            && fits_optional(&self.item_id, limits.max_id_bytes)
            && self.occurred_at <= now_ms + limits.max_future_ms
            && self.occurred_at >= now_ms - limits.max_age_ms
            && fits(&self.app, limits.max_app_bytes)
            && properties.len() <= limits.max_properties
            && properties.iter().all(|(k, v)| {
                k.len() <= limits.max_property_bytes && v.len() <= limits.max_property_bytes
            })
            && self.value.is_none_or(f64::is_finite)
            && self.device.as_ref().is_none_or(|d| {
                fits_optional(&d.platform, limits.max_app_bytes)
                    && fits_optional(&d.os_version, limits.max_app_bytes)
                    && fits_optional(&d.app_version, limits.max_app_bytes)
            });
        if !ok {
            return None;
        }
        let device = self
            .device
            .map_or_else(Default::default, |d| crate::contracts::Device {
                platform: d.platform.unwrap_or_else(|| "unknown".to_owned()),
                os_version: d.os_version,
                app_version: d.app_version,
            });
        Some(Interaction {
            event_id: self.event_id,
            event_type: self.event_type,
            user_id: self.user_id,
            session_id: self.session_id,
            item_id: self.item_id,
            occurred_at: self.occurred_at,
            app: self.app,
            properties,
            value: self.value,
            device,
        })
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_764_000_000_000;

    fn fast(value: &Value) -> Option<Interaction> {
        serde_json::from_value::<EventJson>(value.clone())
            .ok()?
            .accept(&EventLimits::default(), NOW)
    }

    #[test]
    fn the_fast_path_accepts_exactly_what_the_validator_accepts() {
        let base = json!({
            "event_id": "0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d", "event_type": "purchase", "user_id": "u1",
            "session_id": "s1", "item_id": "sku", "occurred_at": NOW - 10, "app": "web",
            "properties": {"k": "v"}, "value": 3.5, "device": {"platform": "ios", "os_version": "18"}
        });
        let mut variants = vec![base.clone()];
        let edits: Vec<(&str, Value)> = vec![
            ("event_id", json!("nope")),
            ("event_id", json!("")),
            ("event_type", json!("unknown")),
            ("event_type", json!("teleport")),
            ("event_type", json!(3)),
            ("user_id", json!(" ")),
            ("user_id", json!("x".repeat(200))),
            ("session_id", json!(null)),
            ("item_id", json!(null)),
            ("item_id", json!("")),
            ("item_id", json!(7)),
            ("occurred_at", json!(NOW + 600_000)),
            ("occurred_at", json!(0)),
            ("occurred_at", json!(1.5)),
            ("occurred_at", json!("1")),
            ("app", json!("")),
            ("properties", json!(null)),
            ("properties", json!({})),
            ("properties", json!({"k": 1})),
            ("properties", json!({"k": "v".repeat(600)})),
            ("value", json!(null)),
            ("value", json!("3")),
            ("device", json!(null)),
            ("device", json!({})),
            ("device", json!({"platform": ""})),
            ("device", json!({"model": "x"})),
            ("extra", json!(1)),
        ];
        for (field, value) in edits {
            let mut variant = base.clone();
            variant[field] = value;
            variants.push(variant);
        }
        let mut without_item = base.clone();
        without_item.as_object_mut().unwrap().remove("item_id");
        variants.push(without_item);
        for variant in variants {
            let slow = validate_event(0, &variant, &EventLimits::default(), NOW).ok();
            if let Some(accepted) = fast(&variant) {
                assert_eq!(Some(accepted), slow, "{variant}");
            }
            if slow.is_some() {
                assert!(
                    fast(&variant).is_some(),
                    "the fast path should accept {variant}"
                );
            }
        }
    }
}
