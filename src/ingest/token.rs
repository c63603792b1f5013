//! The consistency token: an opaque string naming, per partition, the highest offset a write
//! reached. A reader that presents it gets an answer only once every named partition has
//! been folded that far (invariant 6).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Partition → highest offset written, for one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyToken {
    /// The topic.
    #[serde(rename = "t")]
    pub topic: String,
    /// Partition → offset.
    #[serde(rename = "o")]
    pub offsets: BTreeMap<i32, i64>,
}

/// A token that is not one eventfold issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the consistency token is malformed: {0}")]
pub struct TokenError(String);

impl ConsistencyToken {
    /// Records that `partition` reached `offset`.
    pub fn observe(&mut self, partition: i32, offset: i64) {
        let entry = self.offsets.entry(partition).or_insert(offset);
        *entry = (*entry).max(offset);
    }

    /// The opaque form handed to apps.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("ef1.{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Parses a token from [`ConsistencyToken::encode`].
    pub fn decode(token: &str) -> Result<Self, TokenError> {
        let body = token
            .strip_prefix("ef1.")
            .ok_or_else(|| TokenError("it does not start with 'ef1.'".to_owned()))?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|e| TokenError(format!("not base64url: {e}")))?;
        serde_json::from_slice(&json).map_err(|e| TokenError(format!("not a token body: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_the_highest_offset() {
        let mut token = ConsistencyToken {
            topic: "interactions".into(),
            offsets: BTreeMap::new(),
        };
        token.observe(2, 10);
        token.observe(2, 7);
        token.observe(0, 3);
        let encoded = token.encode();
        assert!(encoded.starts_with("ef1."));
        assert_eq!(
            ConsistencyToken::decode(&encoded).unwrap().offsets,
            BTreeMap::from([(0, 3), (2, 10)])
        );
        for bad in ["", "ef1.", "ef1.!!!", "xx.abc", "ef1.e30"] {
            assert!(ConsistencyToken::decode(bad).is_err(), "{bad}");
        }
    }
}
