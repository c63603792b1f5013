//! Arbitrary bytes as an Avro datum of the interaction contract, decoded with schema
//! resolution for every pair writer v1/v2 → reader v1/v2 by both paths the worker has: the
//! direct reader of the shipped layouts (`contracts::read_interaction`) and the general
//! apache-avro resolution the decoder falls back to (`registry::resolve_datum`, then
//! `Interaction::from_avro`). Neither may panic, and they must agree: both refuse, or both
//! give the same event (compared bit for bit, NaN included). The first byte picks the pair,
//! the rest is the datum.
#![no_main]

use std::sync::LazyLock;

use apache_avro::Schema;
use eventfold::contracts::{interaction_schema, read_interaction, Interaction, InteractionVersion};
use eventfold::registry::resolve_datum;
use libfuzzer_sys::fuzz_target;

static SCHEMAS: LazyLock<Vec<(InteractionVersion, Schema)>> = LazyLock::new(|| {
    InteractionVersion::ALL
        .into_iter()
        .map(|v| {
            (
                v,
                interaction_schema(v).expect("the shipped contracts parse"),
            )
        })
        .collect()
});

fuzz_target!(|input: &[u8]| {
    let Some((&pair, datum)) = input.split_first() else {
        return;
    };
    let (writer, writer_schema) = &SCHEMAS[usize::from(pair & 1)];
    let (reader, reader_schema) = &SCHEMAS[usize::from(pair >> 1 & 1)];
    let direct = read_interaction(*writer, *reader, datum);
    let general = resolve_datum(1, writer_schema, reader_schema, datum)
        .map_err(|e| e.to_string())
        .and_then(|value| Interaction::from_avro(value).map_err(|e| e.to_string()));
    match (&direct, &general) {
        (Ok(a), Ok(b)) => assert_eq!(
            format!("{a:?}"),
            format!("{b:?}"),
            "the direct reader and apache-avro decode v{} → v{} differently",
            writer.number(),
            reader.number()
        ),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "v{} → v{}: the direct reader gives {direct:?}, apache-avro gives {general:?}",
            writer.number(),
            reader.number()
        ),
    }
});
