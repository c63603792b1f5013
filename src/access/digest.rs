//! SHA-256 digests of keys, tokens and passwords: the configuration holds only the digest
//! (64 hex digits, see `eventfold hash-secret`), and a presented secret is hashed and compared
//! in constant time.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A digest that is not 64 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("a SHA-256 digest is 64 hex digits, got {length} characters")]
pub struct DigestError {
    length: usize,
}

/// The SHA-256 digest of a secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    /// The digest of `secret`.
    pub fn of(secret: &[u8]) -> Self {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&Sha256::digest(secret));
        SecretDigest(bytes)
    }

    /// Parses 64 hex digits (either case).
    pub fn parse_hex(hex: &str) -> Result<Self, DigestError> {
        let hex = hex.trim();
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(DigestError { length: hex.len() });
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| DigestError { length: hex.len() })?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| DigestError { length: hex.len() })?;
        }
        Ok(SecretDigest(bytes))
    }

    /// Whether `secret` hashes to this digest, in time independent of where they differ.
    pub fn matches(&self, secret: &[u8]) -> bool {
        self.equals_in_constant_time(&SecretDigest::of(secret))
    }

    /// Whether both digests are equal, in time independent of where they differ.
    pub fn equals_in_constant_time(&self, other: &SecretDigest) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
    }
}

impl fmt::Display for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{self}")
    }
}

impl Serialize for SecretDigest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SecretDigest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(deserializer)?;
        SecretDigest::parse_hex(&hex).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_matching() {
        let digest = SecretDigest::of(b"abc");
        assert_eq!(
            digest.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            SecretDigest::parse_hex(&digest.to_string().to_uppercase()).unwrap(),
            digest
        );
        assert!(digest.matches(b"abc"));
        assert!(!digest.matches(b"abd"));
        assert_eq!(
            SecretDigest::parse_hex("abc").unwrap_err().to_string(),
            "a SHA-256 digest is 64 hex digits, got 3 characters"
        );
        assert!(SecretDigest::parse_hex(&"g".repeat(64)).is_err());
    }
}
