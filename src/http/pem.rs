//! Reading PEM files (certificate chains, CA bundles, private keys) with rustls-pki-types'
//! `PemObject`, each error naming the setting, the file and what is wrong with it.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A PEM file named by a setting could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PemFileError {
    /// The file cannot be read.
    #[error("{setting}: cannot read '{}': {reason}", path.display())]
    Unreadable {
        /// The setting that names the file, e.g. `tls.cert_path`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A PEM section is broken (no end marker, bad base64).
    #[error("{setting}: '{}' is not valid PEM: {reason}", path.display())]
    Malformed {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What the PEM parser found.
        reason: String,
    },
    /// No `CERTIFICATE` section.
    #[error("{setting}: '{}' holds no PEM certificate (BEGIN CERTIFICATE)", path.display())]
    NoCertificate {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// No private key section.
    #[error(
        "{setting}: '{}' holds no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
        path.display()
    )]
    NoPrivateKey {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A certificate parses as PEM but not as an X.509 certificate.
    #[error("{setting}: certificate {number} in '{}' is not valid: {reason}", path.display())]
    InvalidCertificate {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Its position in the file, from 1.
        number: usize,
        /// What the parser found.
        reason: String,
    },
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, PemFileError> {
    std::fs::read(path).map_err(|error| PemFileError::Unreadable {
        setting,
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

fn malformed(setting: &'static str, path: &Path, error: pem::Error) -> PemFileError {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_owned();
    let reason = match error {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!(
                "a section has no line '-----END {}-----'",
                text(&end_marker)
            )
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("bad section start '{}'", text(&line))
        }
        other => other.to_string(),
    };
    PemFileError::Malformed {
        setting,
        path: path.to_owned(),
        reason,
    }
}

/// Every certificate in the PEM file at `path` (named by `setting`), in file order; at least
/// one.
pub fn read_certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, PemFileError> {
    let pem = read(setting, path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| malformed(setting, path, error))?;
    if certificates.is_empty() {
        return Err(PemFileError::NoCertificate {
            setting,
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in the PEM file at `path` (named by
/// `setting`).
pub fn read_private_key(
    setting: &'static str,
    path: &Path,
) -> Result<PrivateKeyDer<'static>, PemFileError> {
    let pem = read(setting, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|error| match error {
        pem::Error::NoItemsFound => PemFileError::NoPrivateKey {
            setting,
            path: path.to_owned(),
        },
        other => malformed(setting, path, other),
    })
}
