//! Encoding events in the Confluent wire format (with `schema_registry_converter`, subject
//! `<topic>-value`, TopicNameStrategy) and decoding them resolved from the writer schema
//! (found by id) to the reader schema the consumer was built for.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::Schema;
use rustc_hash::FxHashMap as HashMap;
use schema_registry_converter::async_impl::avro::AvroEncoder;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use super::{RegistryClient, RegistryClientError, RegistryEndpoint};
use crate::contracts::{
    check_bounds, contract_layout, parse_frame, read_view, BoundsError, Interaction,
    InteractionError, InteractionVersion, InteractionView, SizeError, WireError,
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
    /// The datum breaks a bound the general decoder relies on (a length beyond the datum,
    /// nesting deeper than [`crate::contracts::MAX_NESTING`]).
    #[error(
        "the Avro datum written with schema id {schema_id} is refused before decoding: {source}"
    )]
    Bounds {
        /// The writer schema id.
        schema_id: u32,
        /// Which bound.
        #[source]
        source: BoundsError,
    },
    /// The event is over one of the contract's size limits.
    #[error("schema id {schema_id}: {source}")]
    Size {
        /// The writer schema id.
        schema_id: u32,
        /// Which limit.
        #[source]
        source: SizeError,
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
            DecodeError::Avro { .. }
            | DecodeError::Bounds {
                source: BoundsError::Malformed(_),
                ..
            } => "avro_decode",
            DecodeError::Bounds {
                source: BoundsError::TooDeep { .. },
                ..
            } => "too_deep",
            DecodeError::Size { .. } => "too_large",
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
    /// The writer schema id last read directly and its layout's version number, packed as
    /// `id << 32 | number` (0: none yet, no version is 0): a topic's records mostly share
    /// one writer schema, and a record whose id matches is decoded without taking the lock.
    last_direct: Arc<AtomicU64>,
}

impl InteractionDecoder {
    /// A decoder that resolves every event to `reader`.
    pub fn new(client: RegistryClient, reader: Schema) -> Self {
        InteractionDecoder {
            client,
            reader_layout: contract_layout(&reader),
            reader: Arc::new(reader),
            layouts: Arc::default(),
            last_direct: Arc::default(),
        }
    }

    /// The Avro value of a framed payload, resolved to the reader schema ([`resolve_datum`]).
    pub async fn decode_value(&self, payload: Option<&[u8]>) -> Result<(u32, Value), DecodeError> {
        let (schema_id, datum) = parse_frame(payload)?;
        let writer = self.client.schema_by_id(schema_id).await?;
        let value = resolve_datum(schema_id, &writer, &self.reader, datum)?;
        Ok((schema_id, value))
    }

    /// The interaction in a framed payload, within the contract's size limits. When the
    /// writer and the reader are both shipped contract versions the datum is read directly
    /// ([`read_view`]), else resolved through apache-avro values.
    pub async fn decode(&self, payload: Option<&[u8]>) -> Result<Interaction, DecodeError> {
        Ok(match self.decode_view(payload).await? {
            DecodedInteraction::Read(view) => view.to_interaction(),
            DecodedInteraction::Resolved(event) => event,
        })
    }

    /// [`InteractionDecoder::decode`], borrowing the payload where it can.
    pub async fn decode_view<'a>(
        &self,
        payload: Option<&'a [u8]>,
    ) -> Result<DecodedInteraction<'a>, DecodeError> {
        let (schema_id, datum) = parse_frame(payload)?;
        if let (Some(writer), Some(reader)) =
            (self.writer_layout(schema_id).await?, self.reader_layout)
        {
            return read_direct(schema_id, writer, reader, datum).map(DecodedInteraction::Read);
        }
        let (_, value) = self.decode_value(payload).await?;
        let event = Interaction::from_avro(value)
            .map_err(|source| DecodeError::Shape { schema_id, source })?;
        event
            .check_sizes()
            .map_err(|source| DecodeError::Size { schema_id, source })?;
        Ok(DecodedInteraction::Resolved(event))
    }

    /// [`InteractionDecoder::decode_view`] without waiting for anything, when it needs no
    /// registry answer: for a payload that is not framed, or whose writer schema id was seen
    /// before and has a shipped contract's layout. `None`: take `decode_view`.
    pub fn decode_known<'a>(
        &self,
        payload: Option<&'a [u8]>,
    ) -> Option<Result<DecodedInteraction<'a>, DecodeError>> {
        let (schema_id, datum) = match parse_frame(payload) {
            Ok(frame) => frame,
            Err(error) => return Some(Err(error.into())),
        };
        let reader = self.reader_layout?;
        let last = self.last_direct.load(Ordering::Relaxed);
        let writer = match InteractionVersion::from_number((last & u64::from(u32::MAX)) as u32) {
            Some(writer) if last >> 32 == u64::from(schema_id) => writer,
            _ => {
                let writer = (*self
                    .layouts
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&schema_id)?)?;
                self.last_direct.store(
                    u64::from(schema_id) << 32 | u64::from(writer.number()),
                    Ordering::Relaxed,
                );
                writer
            }
        };
        Some(read_direct(schema_id, writer, reader, datum).map(DecodedInteraction::Read))
    }
}

/// A decoded interaction: read straight from the payload, or resolved through apache-avro.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodedInteraction<'a> {
    /// Read directly; its strings borrow the payload.
    Read(InteractionView<'a>),
    /// Resolved from a writer schema of another layout.
    Resolved(Interaction),
}

impl DecodedInteraction<'_> {
    /// The event, borrowed.
    pub fn view(&self) -> InteractionView<'_> {
        match self {
            DecodedInteraction::Read(view) => *view,
            DecodedInteraction::Resolved(event) => event.view(),
        }
    }
}

/// Reads a datum of a shipped layout and checks the contract's size limits.
fn read_direct(
    schema_id: u32,
    writer: InteractionVersion,
    reader: InteractionVersion,
    datum: &[u8],
) -> Result<InteractionView<'_>, DecodeError> {
    let view = read_view(writer, reader, datum).map_err(|e| DecodeError::Avro {
        schema_id,
        reason: e.to_string(),
    })?;
    view.check_sizes()
        .map_err(|source| DecodeError::Size { schema_id, source })?;
    Ok(view)
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

/// Decodes an Avro datum written with `writer` (schema id `schema_id`, for the error) and
/// resolves it to `reader` through apache-avro values: the general path of
/// [`InteractionDecoder`], for any writer schema. The datum is checked against its bounds
/// first ([`check_bounds`]), so apache-avro never allocates for a length the datum cannot
/// hold nor recurses deeper than the bound. The whole datum must be consumed, and no more: a
/// datum that ends early is refused (apache-avro alone would read a string, boolean or union
/// cut off by the end as null).
pub fn resolve_datum(
    schema_id: u32,
    writer: &Schema,
    reader: &Schema,
    datum: &[u8],
) -> Result<Value, DecodeError> {
    check_bounds(writer, datum).map_err(|source| DecodeError::Bounds { schema_id, source })?;
    let avro = |e: apache_avro::Error| DecodeError::Avro {
        schema_id,
        reason: e.to_string(),
    };
    let mut bytes = DatumBytes {
        rest: datum,
        overrun: false,
    };
    let value = GenericDatumReader::builder(writer)
        .reader_schema(reader)
        .build()
        .map_err(avro)?
        .read_value(&mut bytes)
        .map_err(avro)?;
    let reason = if bytes.overrun {
        format!(
            "the datum ends early: its {} bytes are truncated",
            datum.len()
        )
    } else if !bytes.rest.is_empty() {
        format!("{} bytes left over after the datum", bytes.rest.len())
    } else {
        return Ok(value);
    };
    Err(DecodeError::Avro { schema_id, reason })
}

/// A datum being decoded that remembers whether the decoder asked for bytes past its end.
struct DatumBytes<'a> {
    rest: &'a [u8],
    overrun: bool,
}

impl Read for DatumBytes<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.overrun |= buf.len() > self.rest.len();
        self.rest.read(buf)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::{interaction_schema, read_interaction};

    fn schema(version: InteractionVersion) -> Schema {
        interaction_schema(version).unwrap()
    }

    /// Found by the `avro_decode` fuzz target: a v2 datum cut off inside `device.platform`
    /// (a length of 36 with 22 bytes left), read with reader v1, which drops `device`.
    /// apache-avro alone reads the cut-off string as null and the datum looked whole; the
    /// bounds walk refuses it first (and the decoder's overrun check stays behind it).
    #[test]
    fn a_datum_truncated_inside_a_dropped_field_is_refused() {
        let datum = [
            0, 0, 0, 0, 0, 0, 0, 0, 0, 72, 48, 98, 45, 55, 101, 56, 102, 57, 97, 48, 98, 49, 99,
            50, 100, 2, 4, 117, 49, 50, 46, 49,
        ];
        let (v1, v2) = (
            schema(InteractionVersion::V1),
            schema(InteractionVersion::V2),
        );
        let error = resolve_datum(7, &v2, &v1, &datum).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the Avro datum written with schema id 7 is refused before decoding: byte 10: \
             length 36 does not fit the 22 bytes left"
        );
        assert_eq!(error.reason(), "avro_decode");
        assert_eq!(
            read_interaction(InteractionVersion::V2, InteractionVersion::V1, &datum)
                .unwrap_err()
                .to_string(),
            "byte 10: length 36 does not fit the 22 bytes left"
        );
    }

    #[test]
    fn whole_datums_resolve_and_left_over_bytes_are_refused() {
        let event = Interaction {
            event_id: "e".into(),
            event_type: crate::contracts::EventType::Play,
            user_id: "u".into(),
            session_id: "s".into(),
            item_id: None,
            occurred_at: 5,
            app: "web".into(),
            properties: Default::default(),
            value: Some(1.5),
            device: Default::default(),
        };
        let mut datum = Vec::new();
        event.write_avro(&mut datum);
        let (v1, v2) = (
            schema(InteractionVersion::V1),
            schema(InteractionVersion::V2),
        );
        let resolved = resolve_datum(1, &v2, &v1, &datum).unwrap();
        let expected = Interaction {
            value: None,
            ..event.clone()
        };
        assert_eq!(Interaction::from_avro(resolved).unwrap(), expected);
        let full = resolve_datum(1, &v2, &v2, &datum).unwrap();
        assert_eq!(Interaction::from_avro(full).unwrap(), event);
        datum.push(0);
        assert_eq!(
            resolve_datum(1, &v2, &v2, &datum).unwrap_err().to_string(),
            "the Avro datum written with schema id 1 does not decode to the reader schema: \
             1 bytes left over after the datum"
        );
    }
}
