//! A plain secret from the configuration (e.g. a client's registry password): its `Debug`,
//! `Display` and serialized forms are `****`, so it cannot reach a log or `eventfold config`.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// A secret value; only [`Secret::expose`] gives the plain text.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a plain secret.
    pub fn new(plain: impl Into<String>) -> Self {
        Secret(plain.into())
    }

    /// The plain text, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("****")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_plain_text() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "**** ****");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"****\"");
        assert_eq!(secret.expose(), "hunter2");
    }
}
