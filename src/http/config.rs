//! Settings of TLS on every HTTP server of the process (section `[tls]`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::pem::{read_certificates, read_private_key, PemFileError};
use super::tls::ServerTls;

/// HTTPS for every HTTP server a process runs (registry, collector, query API with the
/// dashboard, metrics and health). Both paths set = HTTPS only; neither = plain HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server's certificate chain, its own certificate first, then the
    /// intermediates; set together with `key_path`.
    #[serde(default)]
    pub cert_path: Option<PathBuf>,
    /// PEM file with the private key of that certificate (PKCS#8, PKCS#1 or SEC1); set
    /// together with `cert_path`. May be the same file as `cert_path`.
    #[serde(default)]
    pub key_path: Option<PathBuf>,
    /// How long a client may take to finish the TLS handshake before its connection is
    /// closed.
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
}

const fn default_handshake_timeout_ms() -> u64 {
    10_000
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_path: None,
            key_path: None,
            handshake_timeout_ms: default_handshake_timeout_ms(),
        }
    }
}

/// The `[tls]` settings do not give a usable certificate and key.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// One path without the other.
    #[error("{set}: '{}' is set without {missing} (give both or neither)", path.display())]
    Unpaired {
        /// The setting that is set.
        set: &'static str,
        /// Its path.
        path: PathBuf,
        /// The one that is not.
        missing: &'static str,
    },
    /// The files cannot be read or hold no certificate or key (every such problem).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Files(Vec<PemFileError>),
    /// The key is not the certificate's.
    #[error(
        "tls.key_path: the private key in '{}' does not match the certificate in '{}'",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// `cert_path`.
        cert: PathBuf,
        /// `key_path`.
        key: PathBuf,
    },
    /// rustls cannot use the first certificate of the chain.
    #[error("tls.cert_path: the first certificate in '{}' is not usable: {reason}", path.display())]
    CertificateRefused {
        /// `cert_path`.
        path: PathBuf,
        /// rustls' error.
        reason: String,
    },
    /// rustls cannot use the key (e.g. an unsupported algorithm).
    #[error("tls.key_path: the private key in '{}' is not usable: {reason}", path.display())]
    KeyRefused {
        /// `key_path`.
        path: PathBuf,
        /// rustls' error.
        reason: String,
    },
}

impl TlsConfig {
    /// The TLS every server of the process terminates, or `None` for plain HTTP. Reads and
    /// checks the files: a chain, a key, and the key belongs to the chain's first certificate.
    pub fn server(&self) -> Result<Option<ServerTls>, TlsConfigError> {
        let (cert_path, key_path) = match (&self.cert_path, &self.key_path) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            (Some(cert), None) => {
                return Err(TlsConfigError::Unpaired {
                    set: "tls.cert_path",
                    path: cert.clone(),
                    missing: "tls.key_path",
                })
            }
            (None, Some(key)) => {
                return Err(TlsConfigError::Unpaired {
                    set: "tls.key_path",
                    path: key.clone(),
                    missing: "tls.cert_path",
                })
            }
        };
        let (chain, key) = match (
            read_certificates("tls.cert_path", cert_path),
            read_private_key("tls.key_path", key_path),
        ) {
            (Ok(chain), Ok(key)) => (chain, key),
            (chain, key) => {
                return Err(TlsConfigError::Files(
                    chain.err().into_iter().chain(key.err()).collect(),
                ))
            }
        };
        let timeout = Duration::from_millis(self.handshake_timeout_ms);
        ServerTls::new(chain, key, timeout)
            .map(Some)
            .map_err(|error| match error {
                rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                    TlsConfigError::KeyMismatch {
                        cert: cert_path.clone(),
                        key: key_path.clone(),
                    }
                }
                rustls::Error::InvalidCertificate(error) => TlsConfigError::CertificateRefused {
                    path: cert_path.clone(),
                    reason: error.to_string(),
                },
                other => TlsConfigError::KeyRefused {
                    path: key_path.clone(),
                    reason: other.to_string(),
                },
            })
    }

    /// Problems with the values and the files, all of them (empty = valid).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.handshake_timeout_ms == 0 {
            problems.push("tls.handshake_timeout_ms: must be positive".to_owned());
        }
        match self.server() {
            Ok(_) => {}
            Err(TlsConfigError::Files(errors)) => {
                problems.extend(errors.iter().map(ToString::to_string));
            }
            Err(error) => problems.push(error.to_string()),
        }
        problems
    }
}
