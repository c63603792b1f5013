//! Checks an Avro datum against its writer schema before the general decoder (apache-avro)
//! reads it: every length (string, bytes, fixed) fits the bytes left, arrays and maps hold
//! no more items than the datum can, and values nest at most [`MAX_NESTING`] records, arrays
//! and maps deep. apache-avro allocates a length's bytes before reading them and recurses
//! once per level, so without this a record claiming a 2⁴⁰-byte string would cost a huge
//! allocation and a datum of a recursive schema nested a million levels deep would overflow
//! the worker's stack. Walks the bytes without allocating. Pure code.

use apache_avro::schema::{
    DecimalSchema, InnerDecimalSchema, NamesRef, NamespaceRef, RecordSchema, ResolvedSchema,
    UuidSchema,
};
use apache_avro::Schema;

use super::datum::DatumReader;
use super::DatumError;

/// The deepest nesting of records, arrays and maps a datum may have. apache-avro takes
/// about 100 KiB of stack per level when it decodes and resolves a datum (measured on a
/// debug build of the tests: 8 levels fit in 1 MiB, 16 need 2 MiB), and the worker decodes
/// on tokio's 2 MiB worker threads; the shipped contracts nest 2 levels deep.
pub const MAX_NESTING: usize = 8;

/// How many array items or map entries a datum may hold beyond one per byte (items of a
/// zero-width type such as `null` take no bytes).
pub const MAX_EMPTY_ITEMS: usize = 65_536;

/// Why a datum is refused before decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundsError {
    /// A length, count, index or number that the bytes cannot hold.
    #[error(transparent)]
    Malformed(#[from] DatumError),
    /// Nested deeper than [`MAX_NESTING`].
    #[error("byte {at}: values nest more than {max} records, arrays and maps deep")]
    TooDeep {
        /// Where the next level starts.
        at: usize,
        /// [`MAX_NESTING`].
        max: usize,
    },
}

/// Checks that `datum`, written with `writer`, keeps the bounds (see the module docs).
pub fn check_bounds(writer: &Schema, datum: &[u8]) -> Result<(), BoundsError> {
    let resolved = ResolvedSchema::new(writer).map_err(|e| DatumError {
        at: 0,
        what: format!("the writer schema does not resolve: {e}"),
    })?;
    let mut walk = Walk {
        reader: DatumReader {
            bytes: datum,
            at: 0,
        },
        names: resolved.get_names(),
        items: 0,
    };
    walk.value(writer, None, 0)
}

struct Walk<'a, 's> {
    reader: DatumReader<'a>,
    names: &'a NamesRef<'s>,
    /// Array items and map entries seen so far.
    items: usize,
}

impl Walk<'_, '_> {
    fn value(
        &mut self,
        schema: &Schema,
        namespace: NamespaceRef<'_>,
        depth: usize,
    ) -> Result<(), BoundsError> {
        match schema {
            Schema::Null => {}
            Schema::Boolean => self.skip(1)?,
            Schema::Int
            | Schema::Long
            | Schema::Enum(_)
            | Schema::Date
            | Schema::TimeMillis
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => {
                self.reader.long()?;
            }
            Schema::Float => self.skip(4)?,
            Schema::Double => self.skip(8)?,
            Schema::Bytes
            | Schema::String
            | Schema::BigDecimal
            | Schema::Uuid(UuidSchema::String | UuidSchema::Bytes)
            | Schema::Decimal(DecimalSchema {
                inner: InnerDecimalSchema::Bytes,
                ..
            }) => {
                let len = self.reader.long()?;
                self.reader.take(len)?;
            }
            Schema::Fixed(fixed)
            | Schema::Duration(fixed)
            | Schema::Uuid(UuidSchema::Fixed(fixed))
            | Schema::Decimal(DecimalSchema {
                inner: InnerDecimalSchema::Fixed(fixed),
                ..
            }) => self.skip(fixed.size)?,
            Schema::Union(union) => {
                let index = self.reader.long()?;
                let branch = usize::try_from(index)
                    .ok()
                    .and_then(|i| union.variants().get(i))
                    .ok_or_else(|| {
                        self.reader.fail(format!(
                            "union index {index} of a {}-branch union",
                            union.variants().len()
                        ))
                    })?;
                self.value(branch, namespace, depth)?;
            }
            Schema::Record(RecordSchema { name, fields, .. }) => {
                let depth = self.deeper(depth)?;
                let name = name.fully_qualified_name(namespace);
                for field in fields {
                    self.value(&field.schema, name.namespace(), depth)?;
                }
            }
            Schema::Array(array) => {
                let depth = self.deeper(depth)?;
                while let Some(count) = self.block()? {
                    for _ in 0..count {
                        self.value(&array.items, namespace, depth)?;
                    }
                }
            }
            Schema::Map(map) => {
                let depth = self.deeper(depth)?;
                while let Some(count) = self.block()? {
                    for _ in 0..count {
                        let len = self.reader.long()?;
                        self.reader.take(len)?;
                        self.value(&map.types, namespace, depth)?;
                    }
                }
            }
            Schema::Ref { name } => {
                let name = name.fully_qualified_name(namespace);
                let names = self.names;
                let Some(named) = names.get(name.as_ref()).copied() else {
                    return Err(self
                        .reader
                        .fail(format!(
                            "the writer schema defines no type {}",
                            name.fullname(None)
                        ))
                        .into());
                };
                self.value(named, name.namespace(), depth)?;
            }
        }
        Ok(())
    }

    fn skip(&mut self, len: usize) -> Result<(), DatumError> {
        self.reader.take(i64::try_from(len).unwrap_or(i64::MAX))?;
        Ok(())
    }

    /// One level deeper, if allowed.
    fn deeper(&self, depth: usize) -> Result<usize, BoundsError> {
        if depth >= MAX_NESTING {
            return Err(BoundsError::TooDeep {
                at: self.reader.at,
                max: MAX_NESTING,
            });
        }
        Ok(depth + 1)
    }

    /// The item count of the next block of an array or map; `None` at the end.
    fn block(&mut self) -> Result<Option<usize>, DatumError> {
        let count = self.reader.long()?;
        if count == 0 {
            return Ok(None);
        }
        if count < 0 {
            // A negative count is followed by the block's size in bytes.
            self.reader.long()?;
        }
        let left = self.reader.bytes.len() - self.reader.at;
        let allowed = self.reader.bytes.len() + MAX_EMPTY_ITEMS - self.items;
        match usize::try_from(count.unsigned_abs()) {
            Ok(count) if count <= allowed => {
                self.items += count;
                Ok(Some(count))
            }
            _ => Err(self.reader.fail(format!(
                "a block of {} items cannot be held by the {left} bytes left",
                count.unsigned_abs()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::reader::datum::GenericDatumReader;
    use proptest::prelude::*;

    fn schema(json: &str) -> Schema {
        Schema::parse_str(json).unwrap()
    }

    /// `["null", Node]` where a Node holds the next one: any depth is a valid schema.
    const LIST: &str = r#"{"type":"record","name":"Node","namespace":"t","fields":[{"name":"next","type":["null","Node"]}]}"#;

    /// A list `levels` nodes deep: union index 1 (another node) `levels − 1` times, then null.
    fn list(levels: usize) -> Vec<u8> {
        let mut datum = vec![2u8; levels - 1];
        datum.push(0);
        datum
    }

    #[test]
    fn a_recursive_datum_is_followed_to_the_limit_and_refused_beyond() {
        let list_schema = schema(LIST);
        assert_eq!(check_bounds(&list_schema, &list(MAX_NESTING)), Ok(()));
        // The walk stops at the first level too deep: the 9th node starts at byte 8.
        assert_eq!(
            check_bounds(&list_schema, &list(MAX_NESTING + 1)),
            Err(BoundsError::TooDeep { at: 8, max: 8 })
        );
        assert_eq!(
            check_bounds(&list_schema, &list(1_000_000)),
            Err(BoundsError::TooDeep { at: 8, max: 8 })
        );
        // What passes, apache-avro decodes and resolves within half of a tokio worker
        // thread's 2 MiB stack.
        let decoded = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                check_bounds(&list_schema, &list(MAX_NESTING))?;
                let decoded = GenericDatumReader::builder(&list_schema)
                    .reader_schema(&list_schema)
                    .build()
                    .and_then(|reader| reader.read_value(&mut &list(MAX_NESTING)[..]));
                Ok::<_, BoundsError>(decoded.is_ok())
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(decoded, Ok(true));
    }

    #[test]
    fn lengths_and_counts_must_fit_the_bytes_left() {
        let string = schema(r#""string""#);
        // 2^40 as a zig-zag varint: 0x80 0x80 0x80 0x80 0x80 0x40.
        let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x40, b'a'];
        assert_eq!(
            check_bounds(&string, &huge).unwrap_err().to_string(),
            "byte 6: length 1099511627776 does not fit the 1 bytes left"
        );
        assert_eq!(check_bounds(&string, &[0x04, b'a', b'b']), Ok(()));
        let fixed = schema(r#"{"type":"fixed","name":"F","size":16}"#);
        assert_eq!(
            check_bounds(&fixed, &[0; 15]).unwrap_err().to_string(),
            "byte 0: length 16 does not fit the 15 bytes left"
        );
        let map = schema(r#"{"type":"map","values":"long"}"#);
        // A block claiming 2^40 entries.
        assert_eq!(
            check_bounds(&map, &huge).unwrap_err().to_string(),
            "byte 6: a block of 1099511627776 items cannot be held by the 1 bytes left"
        );
        let nulls = schema(r#"{"type":"array","items":"null"}"#);
        // 65,536 nulls take no bytes and are allowed; past that, an array of nothing is refused.
        let mut allowed = Vec::new();
        crate::contracts::event::binary::long(&mut allowed, MAX_EMPTY_ITEMS as i64);
        allowed.push(0);
        assert_eq!(check_bounds(&nulls, &allowed), Ok(()));
        let mut refused = Vec::new();
        crate::contracts::event::binary::long(&mut refused, i64::MAX);
        refused.push(0);
        assert!(matches!(
            check_bounds(&nulls, &refused),
            Err(BoundsError::Malformed(_))
        ));
        let union = schema(r#"["null","long"]"#);
        assert_eq!(
            check_bounds(&union, &[0x04]).unwrap_err().to_string(),
            "byte 1: union index 2 of a 2-branch union"
        );
    }

    proptest! {
        /// Every datum of the contract keeps the bounds, and noise never makes the check panic.
        #[test]
        fn contract_datums_pass_and_noise_never_panics(
            event in crate::contracts::datum::tests::arbitrary_event(),
            noise in proptest::collection::vec(any::<u8>(), 0..96),
        ) {
            let v2 = crate::contracts::interaction_schema(crate::contracts::InteractionVersion::V2).unwrap();
            let mut datum = Vec::new();
            event.write_avro(&mut datum);
            prop_assert_eq!(check_bounds(&v2, &datum), Ok(()));
            let _ = check_bounds(&v2, &noise);
            let _ = check_bounds(&schema(LIST), &noise);
        }
    }
}
