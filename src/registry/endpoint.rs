//! Where a registry is, the HTTP basic credentials to send it (`registry.url`,
//! `registry.username`, `registry.password`) and the CA certificates to trust besides the
//! system's (`registry.ca_path`); a bare URL converts into one without credentials or extra
//! trust. Every HTTP client that reaches a registry is built from [`RegistryEndpoint::http_client`].

use std::path::Path;

use crate::access::Secret;
use crate::http::{read_certificates, PemFileError};

/// A registry's base URL, optional basic credentials and extra trusted CA certificates.
#[derive(Debug, Clone)]
pub struct RegistryEndpoint {
    /// Base URL, e.g. `http://127.0.0.1:8081`.
    pub url: String,
    /// User and password.
    pub credentials: Option<(String, Secret)>,
    /// CA certificates trusted besides the system's, for an `https://` URL.
    pub trusted: Vec<reqwest::Certificate>,
}

impl RegistryEndpoint {
    /// A client builder that trusts the system's CAs and `trusted` (with no other setting).
    pub fn http_client(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder().tls_certs_merge(self.trusted.iter().cloned())
    }
}

/// The certificates of the PEM bundle at `path` (`registry.ca_path`), each checked by the
/// HTTP client's TLS library.
pub(super) fn trusted_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, PemFileError> {
    const SETTING: &str = "registry.ca_path";
    read_certificates(SETTING, path)?
        .iter()
        .enumerate()
        .map(|(index, der)| {
            reqwest::Certificate::from_der(der).map_err(|error| PemFileError::InvalidCertificate {
                setting: SETTING,
                path: path.to_owned(),
                number: index + 1,
                reason: error.to_string(),
            })
        })
        .collect()
}

impl From<String> for RegistryEndpoint {
    fn from(url: String) -> Self {
        RegistryEndpoint {
            url,
            credentials: None,
            trusted: Vec::new(),
        }
    }
}

impl From<&str> for RegistryEndpoint {
    fn from(url: &str) -> Self {
        RegistryEndpoint::from(url.to_owned())
    }
}

impl From<&String> for RegistryEndpoint {
    fn from(url: &String) -> Self {
        RegistryEndpoint::from(url.clone())
    }
}
