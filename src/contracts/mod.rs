//! The event contract: the versioned Avro schemas of `schemas/`, the typed [`Interaction`]
//! event, its size limits, the bounds a datum must keep before it is decoded, and the
//! Confluent wire format that frames every Kafka value. Pure code: no IO.
//! Upholds invariant 8 (contracts evolve forward): every version is embedded here and the
//! newest is what producers write.

mod bounds;
mod datum;
mod event;
mod limits;
mod schemas;
mod view;
mod wire;

pub use bounds::{check_bounds, BoundsError, MAX_EMPTY_ITEMS, MAX_NESTING};
pub use datum::{contract_layout, peek_event_id, read_interaction, read_view, DatumError};
pub use event::{Device, EventType, EventTypeSet, Interaction, InteractionError, UNKNOWN_PLATFORM};
pub use limits::{SizeError, MAX_APP_BYTES, MAX_ID_BYTES, MAX_PROPERTIES, MAX_PROPERTY_BYTES};
pub use schemas::{
    interaction_schema, latest_schema, ContractError, InteractionVersion,
    INTERACTION_SUBJECT_SUFFIX,
};
pub use view::{InteractionView, PropertiesView};
pub use wire::{frame, parse_frame, WireError, MAGIC_BYTE};
