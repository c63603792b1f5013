//! The schema registry stage: a Confluent-compatible registry server (`eventfold registry`),
//! the HTTP client every other stage uses to reach any Confluent-compatible registry, and
//! the codec that encodes events in the Confluent wire format and decodes them resolved to a
//! reader schema.
//!
//! The server is an event-sourced projection of the compacted topic `_schemas`: every
//! replica appends its write requests to that single-partition log and folds the log in
//! order, so all replicas derive the same ids and versions (invariants 1 and 8).

mod api;
mod client;
mod codec;
pub mod compat;
mod config;
mod credentials;
mod endpoint;
mod error;
mod log;
mod state;

pub use api::{router, CONTENT_TYPE_V1};
pub use client::{RegistryClient, RegistryClientError};
pub use codec::{
    resolve_datum, DecodeError, DecodedInteraction, EncodeError, InteractionDecoder,
    InteractionEncoder,
};
pub use compat::CompatibilityLevel;
pub use config::RegistryConfig;
pub use credentials::{require_credentials, RegistryUser};
pub use endpoint::RegistryEndpoint;
pub use error::RegistryError;
pub use log::{SchemaLog, SchemaLogError};
pub use state::{Command, RegistryState, Reply};
