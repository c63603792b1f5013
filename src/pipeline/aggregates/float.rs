//! Serde for `f64` fields of stored partials. Two traps make plain JSON numbers unsafe for
//! partials that must merge exactly (invariant 4): `serde_json` writes infinities and NaN
//! as `null` (which would read back as "no value"), and without its `float_roundtrip`
//! feature it may parse a 17-digit number one ulp off. So a value is written as its
//! shortest round-trip text in a string (`"1.5"`, `"inf"`, `"-inf"`, `"nan"`), parsed back
//! with Rust's correctly rounded parser; plain numbers are accepted on input too.

use serde::{Deserialize, Deserializer, Serializer};

/// Writes `value` as a string of its shortest round-trip text.
pub(super) fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&to_text(*value))
}

/// Reads what [`serialize`] writes, or a plain number.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Repr::deserialize(deserializer)?.into_f64()
}

/// The same for `Option<f64>`, with `None` as null.
pub(super) mod option {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{to_text, Repr};

    /// Writes `None` as null, a value as [`super::serialize`] does.
    pub(crate) fn serialize<S: Serializer>(
        value: &Option<f64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            None => serializer.serialize_none(),
            Some(x) => serializer.serialize_some(&to_text(*x)),
        }
    }

    /// Reads what [`serialize`] writes.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<f64>, D::Error> {
        Option::<Repr>::deserialize(deserializer)?
            .map(Repr::into_f64)
            .transpose()
    }
}

fn to_text(x: f64) -> String {
    if x.is_nan() {
        "nan".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        // Display is the shortest text that parses back to the same bits.
        x.to_string()
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Repr {
    Number(f64),
    Text(String),
}

impl Repr {
    fn into_f64<E: serde::de::Error>(self) -> Result<f64, E> {
        match self {
            Repr::Number(x) => Ok(x),
            Repr::Text(text) => match text.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "nan" => Ok(f64::NAN),
                other => match other.parse::<f64>() {
                    Ok(x) if x.is_finite() => Ok(x),
                    _ => Err(E::custom(format!(
                        "expected a number, \"inf\", \"-inf\" or \"nan\", found {other:?}"
                    ))),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Holder(#[serde(with = "super::option")] Option<f64>);

    #[derive(Debug, Serialize, Deserialize)]
    struct Plain(#[serde(with = "super")] f64);

    #[test]
    fn round_trips() {
        let cases = [
            (None, "null"),
            (Some(1.5), "\"1.5\""),
            (Some(-9855.546357526451), "\"-9855.546357526451\""),
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
        assert_eq!(serde_json::from_str::<Plain>("0.25").unwrap().0, 0.25);
        for bad in ["\"infinity\"", "\"1e999\"", "\"\"", "true"] {
            assert!(serde_json::from_str::<Holder>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_f64_round_trips_exactly(x in any::<f64>()) {
            let json = serde_json::to_string(&Plain(x)).unwrap();
            let back: Plain = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back.0.to_bits() == x.to_bits(), !x.is_nan() || back.0.is_nan());
        }
    }
}
