//! The collector's per-app write keys: each app presents its key in `X-Eventfold-Key` (or
//! `Authorization: Bearer`); the configuration holds only SHA-256 digests (inline in
//! `collector.write_keys` and/or one `app:sha256hex` per line in `collector.write_keys_file`).
//! Each app has one token bucket, so one app cannot use up another's request rate. No keys
//! configured = open (local use).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::access::{bearer_token, SecretDigest, TokenBucket};

/// The header apps send their write key in.
pub const WRITE_KEY_HEADER: &str = "x-eventfold-key";

/// One app's key in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteKey {
    /// The app the key belongs to.
    pub app: String,
    /// SHA-256 of the key (`eventfold hash-secret`).
    pub key_sha256: SecretDigest,
    /// Requests per second for this app (default `collector.rate_per_second`).
    #[serde(default)]
    pub rate_per_second: Option<f64>,
    /// Requests at once for this app (default `collector.burst`).
    #[serde(default)]
    pub burst: Option<u32>,
}

/// The keys file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WriteKeysError {
    /// Unreadable.
    #[error("cannot read collector.write_keys_file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line that is not `app:sha256hex`.
    #[error("collector.write_keys_file {path} line {line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// No key presented (401).
    Missing,
    /// A key that is not configured (403).
    Invalid,
    /// The app's bucket is empty (429): retry after this long.
    RateLimited(Duration),
}

struct AppBudget {
    app: String,
    bucket: TokenBucket,
}

/// The configured keys and one bucket per app.
pub struct WriteKeys {
    keys: Vec<(SecretDigest, usize)>,
    apps: Vec<AppBudget>,
}

impl WriteKeys {
    /// The keys of `entries` plus those of `file`; apps without their own rate get
    /// `rate_per_second` and `burst`.
    pub fn load(
        entries: &[WriteKey],
        file: Option<&Path>,
        rate_per_second: f64,
        burst: u32,
    ) -> Result<Self, WriteKeysError> {
        let mut all = entries.to_vec();
        if let Some(path) = file {
            all.extend(read_file(path)?);
        }
        let mut keys = Vec::with_capacity(all.len());
        let mut apps: Vec<AppBudget> = Vec::new();
        for entry in all {
            let index = match apps.iter().position(|budget| budget.app == entry.app) {
                Some(index) => index,
                None => {
                    apps.push(AppBudget {
                        bucket: TokenBucket::new(
                            entry.rate_per_second.unwrap_or(rate_per_second),
                            entry.burst.unwrap_or(burst),
                        ),
                        app: entry.app,
                    });
                    apps.len() - 1
                }
            };
            keys.push((entry.key_sha256, index));
        }
        Ok(WriteKeys { keys, apps })
    }

    /// Whether no key is configured (every request is let in).
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The app whose key `headers` present and whose bucket had a token at `now`; `None`
    /// when the collector is open.
    pub fn admit(&self, headers: &HeaderMap, now: Instant) -> Result<Option<&str>, KeyRefusal> {
        if self.is_open() {
            return Ok(None);
        }
        let presented = headers
            .get(WRITE_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .or_else(|| bearer_token(headers))
            .ok_or(KeyRefusal::Missing)?;
        let presented = SecretDigest::of(presented.as_bytes());
        let mut found = None;
        for (digest, index) in &self.keys {
            if digest.equals_in_constant_time(&presented) && found.is_none() {
                found = Some(*index);
            }
        }
        let budget = &self.apps[found.ok_or(KeyRefusal::Invalid)?];
        budget.bucket.take(now).map_err(KeyRefusal::RateLimited)?;
        Ok(Some(&budget.app))
    }
}

fn read_file(path: &Path) -> Result<Vec<WriteKey>, WriteKeysError> {
    let text = std::fs::read_to_string(path).map_err(|source| WriteKeysError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let problem = |reason: String| WriteKeysError::Line {
            path: path.to_owned(),
            line: number + 1,
            reason,
        };
        let (app, hex) = line
            .split_once(':')
            .ok_or_else(|| problem("expected app:sha256hex".to_owned()))?;
        let key_sha256 = SecretDigest::parse_hex(hex).map_err(|e| problem(e.to_string()))?;
        entries.push(WriteKey {
            app: app.trim().to_owned(),
            key_sha256,
            rate_per_second: None,
            burst: None,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::io::Write;

    fn presenting(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(WRITE_KEY_HEADER, HeaderValue::from_str(key).unwrap());
        headers
    }

    #[test]
    fn file_and_inline_keys_with_one_bucket_per_app() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "# keys\nios:{}\n", SecretDigest::of(b"ios-key")).unwrap();
        let inline = WriteKey {
            app: "web".to_owned(),
            key_sha256: SecretDigest::of(b"web-key"),
            rate_per_second: Some(1.0),
            burst: Some(2),
        };
        let keys = WriteKeys::load(&[inline], Some(file.path()), 10.0, 5).unwrap();
        let now = Instant::now();
        assert_eq!(keys.admit(&HeaderMap::new(), now), Err(KeyRefusal::Missing));
        assert_eq!(
            keys.admit(&presenting("nope"), now),
            Err(KeyRefusal::Invalid)
        );
        assert_eq!(keys.admit(&presenting("web-key"), now), Ok(Some("web")));
        assert_eq!(keys.admit(&presenting("web-key"), now), Ok(Some("web")));
        assert_eq!(
            keys.admit(&presenting("web-key"), now),
            Err(KeyRefusal::RateLimited(Duration::from_secs(1)))
        );
        assert_eq!(keys.admit(&presenting("ios-key"), now), Ok(Some("ios")));
    }

    #[test]
    fn a_bad_line_names_file_and_line() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "web:{}\nios-no-colon", SecretDigest::of(b"k")).unwrap();
        let error = WriteKeys::load(&[], Some(file.path()), 1.0, 1)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            error,
            format!(
                "collector.write_keys_file {} line 2: expected app:sha256hex",
                file.path().display()
            )
        );
    }
}
