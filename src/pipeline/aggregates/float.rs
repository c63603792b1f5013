//! Serde for an optional `f64` that may be infinite. JSON has no infinities and
//! `serde_json` writes them as `null`, which would read back as "no value" and silently
//! corrupt a stored [`Min`](super::Min) or [`Max`](super::Max) partial (invariant 4).
//! Finite values stay numbers; `"inf"`, `"-inf"` and `"nan"` stand for the rest.

use serde::{Deserialize, Deserializer, Serializer};

/// Writes `None` as null, finite values as numbers, others as strings.
pub(super) fn serialize<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match *value {
        None => serializer.serialize_none(),
        Some(x) if x.is_finite() => serializer.serialize_some(&x),
        Some(x) if x.is_nan() => serializer.serialize_some("nan"),
        Some(x) if x > 0.0 => serializer.serialize_some("inf"),
        Some(_) => serializer.serialize_some("-inf"),
    }
}

/// Reads what [`serialize`] writes.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }
    match Option::<Repr>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Repr::Number(x)) => Ok(Some(x)),
        Some(Repr::Text(text)) => match text.as_str() {
            "inf" => Ok(Some(f64::INFINITY)),
            "-inf" => Ok(Some(f64::NEG_INFINITY)),
            "nan" => Ok(Some(f64::NAN)),
            other => Err(serde::de::Error::custom(format!(
                "expected a number, \"inf\", \"-inf\" or \"nan\", found {other:?}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Holder(#[serde(with = "super")] Option<f64>);

    #[test]
    fn round_trips() {
        let cases = [
            (None, "null"),
            (Some(1.5), "1.5"),
            (Some(f64::INFINITY), "\"inf\""),
            (Some(f64::NEG_INFINITY), "\"-inf\""),
            (Some(f64::NAN), "\"nan\""),
        ];
        for (value, json) in cases {
            assert_eq!(serde_json::to_string(&Holder(value)).unwrap(), json);
            let back: Holder = serde_json::from_str(json).unwrap();
            assert_eq!(back.0.map(f64::to_bits), value.map(f64::to_bits), "{json}");
        }
        assert_eq!(serde_json::from_str::<Holder>("3").unwrap().0, Some(3.0));
        assert!(serde_json::from_str::<Holder>("\"infinity\"").is_err());
    }
}
