//! Serving HTTP for every stage (registry, collector, query API with the dashboard, metrics
//! and health): request metrics and tracing, graceful shutdown, and optional TLS (section
//! `[tls]`) terminated with rustls. Also reads the PEM files that TLS needs, for the servers
//! and for the clients that trust a private CA.

mod config;
mod pem;
mod serve;
mod tls;

pub use config::{TlsConfig, TlsConfigError};
pub use pem::{read_certificates, read_private_key, PemFileError};
pub use serve::{instrument, serve};
pub use tls::ServerTls;
