//! An HTTP client for any Confluent-compatible schema registry, used by the stages after the
//! registry. Schemas fetched by id are cached for good (an id's schema never changes);
//! errors are never cached, so a registry that was briefly down is asked again.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apache_avro::Schema;
use base64::Engine;
use serde::Deserialize;

use super::RegistryEndpoint;

/// A registry request that failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryClientError {
    /// The registry does not know the schema id (40403).
    #[error("schema id {id} is not registered in {url}")]
    UnknownSchemaId {
        /// The id.
        id: u32,
        /// The registry.
        url: String,
    },
    /// The registry answered with an error.
    #[error("schema registry {url} answered {status} (error_code {error_code}): {message}")]
    Refused {
        /// The registry.
        url: String,
        /// HTTP status.
        status: u16,
        /// Confluent error code.
        error_code: u32,
        /// Its message.
        message: String,
    },
    /// The registry could not be reached, or its answer was not readable.
    #[error("cannot reach schema registry {url}: {source}")]
    Transport {
        /// The registry.
        url: String,
        /// The HTTP client error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry returned a schema that does not parse.
    #[error("schema id {id} from {url} is not valid Avro: {reason}")]
    InvalidSchema {
        /// The id.
        id: u32,
        /// The registry.
        url: String,
        /// The parse error.
        reason: String,
    },
}

impl RegistryClientError {
    /// Worth retrying later (the registry was unreachable or failed internally).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryClientError::Transport { .. } => true,
            RegistryClientError::Refused { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

#[derive(Debug, Deserialize)]
struct SchemaById {
    schema: String,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error_code: u32,
    message: String,
}

/// A registry client with a schema-by-id cache.
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    url: String,
    cache: Arc<RwLock<HashMap<u32, Arc<Schema>>>>,
}

impl RegistryClient {
    /// A client for the registry at `registry`: a URL (e.g. `http://127.0.0.1:8081`) or an
    /// endpoint with basic credentials.
    pub fn new(registry: impl Into<RegistryEndpoint>) -> Result<Self, RegistryClientError> {
        let registry = registry.into();
        let url = registry.url.trim_end_matches('/').to_owned();
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some((user, password)) = &registry.credentials {
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", password.expose()));
            if let Ok(mut value) =
                reqwest::header::HeaderValue::from_str(&format!("Basic {encoded}"))
            {
                value.set_sensitive(true);
                headers.insert(reqwest::header::AUTHORIZATION, value);
            }
        }
        let http = registry
            .http_client()
            .default_headers(headers)
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|source| RegistryClientError::Transport {
                url: url.clone(),
                source,
            })?;
        Ok(RegistryClient {
            http,
            url,
            cache: Arc::default(),
        })
    }

    /// The registry's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the registry answers (`GET /subjects`).
    pub async fn check(&self) -> Result<(), RegistryClientError> {
        let response = self
            .http
            .get(format!("{}/subjects", self.url))
            .send()
            .await
            .map_err(|source| RegistryClientError::Transport {
                url: self.url.clone(),
                source,
            })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(RegistryClientError::Refused {
                url: self.url.clone(),
                status: response.status().as_u16(),
                error_code: 0,
                message: "GET /subjects failed".to_owned(),
            })
        }
    }

    /// Registers `schema` under `subject` (idempotent); returns its id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryClientError> {
        #[derive(Deserialize)]
        struct Registered {
            id: u32,
        }
        let transport = |source| RegistryClientError::Transport {
            url: self.url.clone(),
            source,
        };
        let response = self
            .http
            .post(format!("{}/subjects/{subject}/versions", self.url))
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .json(&serde_json::json!({ "schema": schema }))
            .send()
            .await
            .map_err(transport)?;
        if !response.status().is_success() {
            return Err(self.refused(response).await);
        }
        Ok(response.json::<Registered>().await.map_err(transport)?.id)
    }

    /// The error a non-2xx answer stands for, from Confluent's error body.
    async fn refused(&self, response: reqwest::Response) -> RegistryClientError {
        let status = response.status().as_u16();
        let (error_code, message) = match response.json::<ErrorBody>().await {
            Ok(body) => (body.error_code, body.message),
            Err(_) => (0, "no Confluent error body".to_owned()),
        };
        RegistryClientError::Refused {
            url: self.url.clone(),
            status,
            error_code,
            message,
        }
    }

    /// The writer schema with this id.
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, RegistryClientError> {
        if let Some(schema) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(schema.clone());
        }
        let transport = |source| RegistryClientError::Transport {
            url: self.url.clone(),
            source,
        };
        let response = self
            .http
            .get(format!("{}/schemas/ids/{id}", self.url))
            .send()
            .await
            .map_err(transport)?;
        if !response.status().is_success() {
            return Err(match self.refused(response).await {
                RegistryClientError::Refused {
                    error_code: 40403, ..
                } => RegistryClientError::UnknownSchemaId {
                    id,
                    url: self.url.clone(),
                },
                other => other,
            });
        }
        let body: SchemaById = response.json().await.map_err(transport)?;
        let schema =
            Schema::parse_str(&body.schema).map_err(|e| RegistryClientError::InvalidSchema {
                id,
                url: self.url.clone(),
                reason: e.to_string(),
            })?;
        let schema = Arc::new(schema);
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, schema.clone());
        Ok(schema)
    }
}
