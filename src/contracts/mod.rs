//! The event contract: the versioned Avro schemas of `schemas/`, the typed [`Interaction`]
//! event, and the Confluent wire format that frames every Kafka value. Pure code: no IO.
//! Upholds invariant 8 (contracts evolve forward): every version is embedded here and the
//! newest is what producers write.

mod datum;
mod event;
mod schemas;
mod wire;

pub use datum::{contract_layout, read_interaction, DatumError};
pub use event::{Device, EventType, Interaction, InteractionError};
pub use schemas::{
    interaction_schema, latest_schema, ContractError, InteractionVersion,
    INTERACTION_SUBJECT_SUFFIX,
};
pub use wire::{frame, parse_frame, WireError, MAGIC_BYTE};
