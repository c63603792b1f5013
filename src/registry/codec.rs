//! Encoding events in the Confluent wire format (with `schema_registry_converter`, subject
//! `<topic>-value`, TopicNameStrategy) and decoding them resolved from the writer schema
//! (found by id) to the reader schema the consumer was built for.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::Schema;
use schema_registry_converter::async_impl::avro::AvroEncoder;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use super::{RegistryClient, RegistryClientError, RegistryEndpoint};
use crate::contracts::{
    contract_layout, parse_frame, read_interaction, Interaction, InteractionError,
    InteractionVersion, WireError,
};

/// Why a Kafka value could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not Confluent-framed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The writer schema could not be fetched.
    #[error(transparent)]
    Registry(#[from] RegistryClientError),
    /// The datum does not decode with its writer schema, or does not resolve to the reader.
    #[error("the Avro datum written with schema id {schema_id} does not decode to the reader schema: {reason}")]
    Avro {
        /// The writer schema id.
        schema_id: u32,
        /// apache-avro's error.
        reason: String,
    },
    /// The decoded value is not an interaction.
    #[error("schema id {schema_id}: {source}")]
    Shape {
        /// The writer schema id.
        schema_id: u32,
        /// What is wrong.
        #[source]
        source: InteractionError,
    },
}

impl DecodeError {
    /// Worth retrying (the registry was unreachable); every other error is the record's own.
    pub fn is_transient(&self) -> bool {
        matches!(self, DecodeError::Registry(e) if e.is_transient())
    }

    /// A short, bounded label for metrics and dead-letter headers.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Wire(WireError::Missing) => "missing_value",
            DecodeError::Wire(WireError::Truncated { .. }) => "truncated",
            DecodeError::Wire(WireError::WrongMagic { .. }) => "wrong_magic_byte",
            DecodeError::Registry(RegistryClientError::UnknownSchemaId { .. }) => {
                "unknown_schema_id"
            }
            DecodeError::Registry(_) => "registry_error",
            DecodeError::Avro { .. } => "avro_decode",
            DecodeError::Shape { .. } => "invalid_event",
        }
    }
}

/// Decodes interaction values with a fixed reader schema.
#[derive(Clone)]
pub struct InteractionDecoder {
    client: RegistryClient,
    reader: Arc<Schema>,
    /// The reader's contract layout, when it is a shipped contract version.
    reader_layout: Option<InteractionVersion>,
    /// Per writer schema id: its contract layout, when it has one (then decoding reads the
    /// datum directly).
    layouts: Arc<RwLock<HashMap<u32, Option<InteractionVersion>>>>,
}

impl InteractionDecoder {
    /// A decoder that resolves every event to `reader`.
    pub fn new(client: RegistryClient, reader: Schema) -> Self {
        InteractionDecoder {
            client,
            reader_layout: contract_layout(&reader),
            reader: Arc::new(reader),
            layouts: Arc::default(),
        }
    }

    /// The Avro value of a framed payload, resolved to the reader schema.
    pub async fn decode_value(&self, payload: Option<&[u8]>) -> Result<(u32, Value), DecodeError> {
        let (schema_id, mut datum) = parse_frame(payload)?;
        let writer = self.client.schema_by_id(schema_id).await?;
        let avro = |e: apache_avro::Error| DecodeError::Avro {
            schema_id,
            reason: e.to_string(),
        };
        let value = GenericDatumReader::builder(&writer)
            .reader_schema(&self.reader)
            .build()
            .map_err(avro)?
            .read_value(&mut datum)
            .map_err(avro)?;
        if !datum.is_empty() {
            return Err(DecodeError::Avro {
                schema_id,
                reason: format!("{} bytes left over after the datum", datum.len()),
            });
        }
        Ok((schema_id, value))
    }

    /// The interaction in a framed payload. When the writer and the reader are both shipped
    /// contract versions the datum is read directly ([`read_interaction`]), else resolved
    /// through apache-avro values.
    pub async fn decode(&self, payload: Option<&[u8]>) -> Result<Interaction, DecodeError> {
        let (schema_id, datum) = parse_frame(payload)?;
        if let (Some(writer), Some(reader)) =
            (self.writer_layout(schema_id).await?, self.reader_layout)
        {
            return read_interaction(writer, reader, datum).map_err(|e| DecodeError::Avro {
                schema_id,
                reason: e.to_string(),
            });
        }
        let (schema_id, value) = self.decode_value(payload).await?;
        Interaction::from_avro(value).map_err(|source| DecodeError::Shape { schema_id, source })
    }
}

impl InteractionDecoder {
    async fn writer_layout(
        &self,
        schema_id: u32,
    ) -> Result<Option<InteractionVersion>, DecodeError> {
        if let Some(layout) = self
            .layouts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&schema_id)
        {
            return Ok(*layout);
        }
        let layout = contract_layout(&*self.client.schema_by_id(schema_id).await?);
        self.layouts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(schema_id, layout);
        Ok(layout)
    }
}

/// An event could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the event for subject '{subject}': {reason}")]
pub struct EncodeError {
    subject: String,
    reason: String,
    retriable: bool,
}

impl EncodeError {
    /// Worth retrying (the registry was unreachable).
    pub fn is_transient(&self) -> bool {
        self.retriable
    }
}

/// Encodes interactions with the newest contract, registering it under `<topic>-value` if
/// the registry does not have it yet (as Confluent's serializers do with auto-register).
/// `schema_registry_converter` registers the contract and yields its id (once; errors are not
/// cached); the datum is then written directly in the contract's layout
/// ([`Interaction::write_avro`]).
pub struct InteractionEncoder {
    encoder: AvroEncoder,
    strategy: SubjectNameStrategy,
    subject: String,
    id: tokio::sync::OnceCell<u32>,
}

impl InteractionEncoder {
    /// An encoder for values of `topic`, against the registry at `registry` (a URL or an
    /// endpoint with credentials).
    pub fn new(registry: impl Into<RegistryEndpoint>, topic: &str) -> Self {
        let registry = registry.into();
        let supplied = SuppliedSchema::new(
            None,
            SchemaType::Avro,
            InteractionVersion::LATEST.text().to_owned(),
        );
        let subject = format!("{topic}-value");
        InteractionEncoder {
            encoder: AvroEncoder::new(sr_settings(registry)),
            strategy: SubjectNameStrategy::TopicNameStrategyWithSchema(
                topic.to_owned(),
                false,
                supplied,
            ),
            subject,
            id: tokio::sync::OnceCell::new(),
        }
    }

    async fn schema_id(&self) -> Result<u32, EncodeError> {
        self.id
            .get_or_try_init(|| async {
                self.encoder
                    .get_schema_and_id(&self.subject, self.strategy.clone())
                    .await
                    .map(|schema| schema.id)
                    .map_err(|e| {
                        self.encoder.remove_errors_from_cache();
                        EncodeError {
                            subject: self.subject.clone(),
                            reason: e.to_string(),
                            retriable: e.retriable,
                        }
                    })
            })
            .await
            .copied()
    }

    /// The framed bytes of one event.
    pub async fn encode(&self, event: &Interaction) -> Result<Vec<u8>, EncodeError> {
        let id = self.schema_id().await?;
        let mut out = Vec::with_capacity(128);
        out.push(crate::contracts::MAGIC_BYTE);
        out.extend_from_slice(&id.to_be_bytes());
        event.write_avro(&mut out);
        Ok(out)
    }
}

/// The converter's settings for `registry`, sending its basic credentials when set and
/// trusting its extra CA certificates.
fn sr_settings(registry: RegistryEndpoint) -> SrSettings {
    let mut settings = SrSettings::new_builder(registry.url.clone());
    if let Some((user, password)) = &registry.credentials {
        settings.set_basic_authorization(user, Some(password.expose()));
    }
    settings
        .build_with(registry.http_client())
        // Fails only where `SrSettings::new` panics too: no HTTP client can be built.
        .expect("the registry HTTP client builds")
}
