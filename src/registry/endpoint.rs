//! Where a registry is and the HTTP basic credentials to send it (`registry.url`,
//! `registry.username`, `registry.password`); a bare URL converts into one without
//! credentials.

use crate::access::Secret;

/// A registry's base URL and optional basic credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryEndpoint {
    /// Base URL, e.g. `http://127.0.0.1:8081`.
    pub url: String,
    /// User and password.
    pub credentials: Option<(String, Secret)>,
}

impl From<String> for RegistryEndpoint {
    fn from(url: String) -> Self {
        RegistryEndpoint {
            url,
            credentials: None,
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
