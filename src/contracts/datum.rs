//! Reading an interaction datum straight from Avro binary when the writer schema has the
//! layout of a shipped contract version: the worker's hot path. Gives exactly what resolving
//! the writer schema to the reader schema through apache-avro values gives (checked by a
//! property test), without building the intermediate values. Any other writer schema takes
//! the general path ([`Interaction::from_avro`]).

use apache_avro::Schema;

use super::view::{InteractionView, PropertiesView};
use super::{interaction_schema, EventType, Interaction, InteractionVersion, UNKNOWN_PLATFORM};

/// The binary layout of a contract version, recognised by the Parsing Canonical Form (which
/// keeps exactly what decides the bytes: field order, types, enum symbols).
pub fn contract_layout(schema: &Schema) -> Option<InteractionVersion> {
    static FORMS: std::sync::LazyLock<Vec<(InteractionVersion, String)>> =
        std::sync::LazyLock::new(|| {
            InteractionVersion::ALL
                .into_iter()
                .filter_map(|v| interaction_schema(v).ok().map(|s| (v, s.canonical_form())))
                .collect()
        });
    let form = schema.canonical_form();
    FORMS.iter().find(|(_, f)| *f == form).map(|(v, _)| *v)
}

/// The datum does not hold an event of the layout it was read with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {at}: {what}")]
pub struct DatumError {
    /// The byte offset in the datum where reading failed.
    pub at: usize,
    /// What was wrong there.
    pub what: String,
}

/// Reads one event written with the layout of `writer` and resolves it to `reader` (fields
/// the reader lacks are dropped, fields the writer lacks take the reader's defaults). The
/// whole datum must be consumed.
pub fn read_interaction(
    writer: InteractionVersion,
    reader: InteractionVersion,
    datum: &[u8],
) -> Result<Interaction, DatumError> {
    read_view(writer, reader, datum).map(|view| view.to_interaction())
}

/// [`read_interaction`] without copying: the event's strings borrow `datum`.
pub fn read_view(
    writer: InteractionVersion,
    reader: InteractionVersion,
    datum: &[u8],
) -> Result<InteractionView<'_>, DatumError> {
    let mut r = DatumReader {
        bytes: datum,
        at: 0,
    };
    let event_id = r.str()?;
    let symbol = r.long()?;
    let event_type = usize::try_from(symbol)
        .ok()
        .and_then(|i| EventType::ALL.get(i).copied())
        .ok_or_else(|| r.fail(format!("enum index {symbol} is not a symbol of EventType")))?;
    let user_id = r.str()?;
    let session_id = r.str()?;
    let item_id = r.nullable(DatumReader::str)?;
    let occurred_at = r.long()?;
    let app = r.str()?;
    let properties = r.string_map()?;
    let (mut value, mut platform, mut os_version, mut app_version) =
        (None, UNKNOWN_PLATFORM, None, None);
    if writer >= InteractionVersion::V2 {
        value = r.nullable(DatumReader::double)?;
        platform = r.str()?;
        os_version = r.nullable(DatumReader::str)?;
        app_version = r.nullable(DatumReader::str)?;
    }
    if r.at != datum.len() {
        return Err(r.fail(format!(
            "{} bytes left over after the datum",
            datum.len() - r.at
        )));
    }
    if reader < InteractionVersion::V2 {
        (value, platform, os_version, app_version) = (None, UNKNOWN_PLATFORM, None, None);
    }
    Ok(InteractionView {
        event_id,
        event_type,
        user_id,
        session_id,
        item_id,
        occurred_at,
        app,
        properties,
        value,
        platform,
        os_version,
        app_version,
    })
}

/// The bytes of the `event_id` of a framed event written with a contract's layout (each
/// layout starts with it), found without reading the rest of the datum: a hint, for work that
/// can start before the event is decoded, which decoding confirms or not (another layout's
/// first field, or bytes that are not an event). `None` when the payload is not framed or
/// ends before a first string does.
pub fn peek_event_id(payload: Option<&[u8]>) -> Option<&[u8]> {
    let (_, datum) = super::parse_frame(payload).ok()?;
    let mut r = DatumReader {
        bytes: datum,
        at: 0,
    };
    let len = r.long().ok()?;
    r.take(len).ok()
}

/// The number a zig-zag encoded `z` stands for.
fn zigzag(z: u64) -> i64 {
    (z >> 1) as i64 ^ -((z & 1) as i64)
}

/// A cursor over a datum's bytes that checks every read against the bytes left.
pub(super) struct DatumReader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) at: usize,
}

impl<'a> DatumReader<'a> {
    pub(super) fn fail(&self, what: String) -> DatumError {
        DatumError { at: self.at, what }
    }

    #[inline]
    pub(super) fn long(&mut self) -> Result<i64, DatumError> {
        // Most numbers of a datum (lengths, enum and union indexes) fit one byte.
        match self.bytes.get(self.at) {
            Some(&byte) if byte < 0x80 => {
                self.at += 1;
                Ok(zigzag(u64::from(byte)))
            }
            _ => self.long_of_bytes(),
        }
    }

    /// [`DatumReader::long`] of more than one byte (an event's time), or none left: kept
    /// out of line so the one-byte path inlines small.
    #[inline(never)]
    fn long_of_bytes(&mut self) -> Result<i64, DatumError> {
        let mut z: u64 = 0;
        let mut shift = 0;
        while shift < 64 {
            let Some(&byte) = self.bytes.get(self.at) else {
                return Err(self.fail("the datum ends inside a number".into()));
            };
            self.at += 1;
            z |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(zigzag(z));
            }
            shift += 7;
        }
        Err(self.fail("a number is longer than 10 bytes".into()))
    }

    pub(super) fn take(&mut self, len: i64) -> Result<&'a [u8], DatumError> {
        let left = self.bytes.len() - self.at;
        let len = usize::try_from(len)
            .ok()
            .filter(|n| *n <= left)
            .ok_or_else(|| self.fail(format!("length {len} does not fit the {left} bytes left")))?;
        let slice = &self.bytes[self.at..self.at + len];
        self.at += len;
        Ok(slice)
    }

    #[inline]
    pub(super) fn str(&mut self) -> Result<&'a str, DatumError> {
        let len = self.long()?;
        let start = self.at;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| DatumError {
            at: start,
            what: "a string is not valid UTF-8".into(),
        })
    }

    fn double(&mut self) -> Result<f64, DatumError> {
        let bytes = self.take(8)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(bytes);
        Ok(f64::from_le_bytes(raw))
    }

    /// A `["null", T]` union.
    fn nullable<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, DatumError>,
    ) -> Result<Option<T>, DatumError> {
        match self.long()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            other => Err(self.fail(format!("union index {other} of a two-branch union"))),
        }
    }

    /// A map of strings: blocks of entries, a negative count followed by the block's size.
    /// Every entry is checked; the map is kept as its bytes.
    fn string_map(&mut self) -> Result<PropertiesView<'a>, DatumError> {
        let start = self.at;
        let (mut written, mut longest) = (0usize, 0usize);
        loop {
            let count = self.long()?;
            if count == 0 {
                return Ok(PropertiesView::Read {
                    bytes: &self.bytes[start..self.at],
                    written,
                    longest,
                });
            }
            if count < 0 {
                self.long()?;
            }
            for _ in 0..count.unsigned_abs() {
                let (key, value) = (self.str()?, self.str()?);
                longest = longest.max(key.len()).max(value.len());
                written += 1;
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::contracts::Device;
    use apache_avro::reader::datum::GenericDatumReader;
    use apache_avro::writer::datum::GenericDatumWriter;
    use proptest::prelude::*;

    fn general(writer: &Schema, reader: &Schema, datum: &[u8]) -> Option<Interaction> {
        let mut bytes = datum;
        let value = GenericDatumReader::builder(writer)
            .reader_schema(reader)
            .build()
            .ok()?
            .read_value(&mut bytes)
            .ok()?;
        if !bytes.is_empty() {
            return None;
        }
        Interaction::from_avro(value).ok()
    }

    fn schema(version: InteractionVersion) -> Schema {
        interaction_schema(version).unwrap()
    }

    pub(in crate::contracts) fn arbitrary_event() -> impl Strategy<Value = Interaction> {
        (
            (
                "[a-z0-9-]{0,40}",
                0usize..9,
                "\\PC{0,12}",
                "[a-z0-9]{0,8}",
                proptest::option::of("[a-z0-9]{0,8}"),
                any::<i64>(),
                "[a-z]{0,6}",
            ),
            (
                proptest::collection::btree_map("\\PC{0,6}", "\\PC{0,6}", 0..4),
                proptest::option::of(any::<f64>().prop_filter("not NaN", |v| !v.is_nan())),
                "[a-z]{0,8}",
                proptest::option::of("[0-9.]{0,5}"),
                proptest::option::of("[0-9.]{0,5}"),
            ),
        )
            .prop_map(
                |(
                    (event_id, kind, user_id, session_id, item_id, occurred_at, app),
                    (properties, value, platform, os_version, app_version),
                )| Interaction {
                    event_id,
                    event_type: EventType::ALL[kind],
                    user_id,
                    session_id,
                    item_id,
                    occurred_at,
                    app,
                    properties,
                    value,
                    device: Device {
                        platform,
                        os_version,
                        app_version,
                    },
                },
            )
    }

    #[test]
    fn recognises_the_shipped_layouts_only() {
        for version in InteractionVersion::ALL {
            assert_eq!(contract_layout(&schema(version)), Some(version));
        }
        let other = Schema::parse_str(
            r#"{"type":"record","name":"Interaction","namespace":"io.eventfold.events","fields":[{"name":"event_id","type":"string"}]}"#,
        )
        .unwrap();
        assert_eq!(contract_layout(&other), None);
    }

    #[test]
    fn reads_numbers_of_one_to_ten_bytes_and_refuses_cut_or_longer_ones() {
        let read = |bytes: &[u8]| {
            let mut reader = DatumReader { bytes, at: 0 };
            reader.long().map(|n| (n, reader.at))
        };
        assert_eq!(read(&[0x00, 0x05]), Ok((0, 1)));
        assert_eq!(read(&[0x01]), Ok((-1, 1)));
        assert_eq!(read(&[0x7e]), Ok((63, 1)));
        assert_eq!(read(&[0x7f]), Ok((-64, 1)));
        assert_eq!(read(&[0x80, 0x01]), Ok((64, 2)));
        assert_eq!(read(&[0xac, 0x02, 0x7f]), Ok((150, 2)));
        let max = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read(&max), Ok((i64::MAX, 10)));
        let min = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read(&min), Ok((i64::MIN, 10)));
        let fail = |at: usize, what: &str| {
            Err(DatumError {
                at,
                what: what.into(),
            })
        };
        assert_eq!(read(&[]), fail(0, "the datum ends inside a number"));
        assert_eq!(
            read(&[0x80, 0xff]),
            fail(2, "the datum ends inside a number")
        );
        assert_eq!(
            read(&[0x80; 11]),
            fail(10, "a number is longer than 10 bytes")
        );
    }

    #[test]
    fn reports_where_a_datum_is_broken() {
        assert_eq!(
            read_interaction(
                InteractionVersion::V2,
                InteractionVersion::V2,
                &[0x08, b'a']
            ),
            Err(DatumError {
                at: 1,
                what: "length 4 does not fit the 1 bytes left".into()
            })
        );
        assert_eq!(
            read_interaction(
                InteractionVersion::V1,
                InteractionVersion::V2,
                &[0x00, 0x7e]
            ),
            Err(DatumError {
                at: 2,
                what: "enum index 63 is not a symbol of EventType".into()
            })
        );
    }

    proptest! {
        #[test]
        fn equals_resolution_through_apache_avro(event in arbitrary_event()) {
            let v1 = schema(InteractionVersion::V1);
            let v2 = schema(InteractionVersion::V2);
            let mut written_v2 = Vec::new();
            event.write_avro(&mut written_v2);
            let mut v1_value = event.to_avro();
            if let apache_avro::types::Value::Record(fields) = &mut v1_value {
                fields.retain(|(name, _)| name != "value" && name != "device");
            }
            let written_v1 = GenericDatumWriter::builder(&v1)
                .build()
                .unwrap()
                .write_value_to_vec(v1_value)
                .unwrap();
            for (writer, writer_schema, datum) in [
                (InteractionVersion::V1, &v1, &written_v1),
                (InteractionVersion::V2, &v2, &written_v2),
            ] {
                for (reader, reader_schema) in
                    [(InteractionVersion::V1, &v1), (InteractionVersion::V2, &v2)]
                {
                    let direct = read_interaction(writer, reader, datum).ok();
                    prop_assert!(direct.is_some());
                    prop_assert_eq!(direct, general(writer_schema, reader_schema, datum));
                }
            }
        }

        /// The peeked `event_id` is the very bytes decoding reads as the event's id, in both
        /// layouts, and anything that decodes peeks its own id; nothing else panics.
        #[test]
        fn the_peeked_event_id_is_where_decoding_reads_it(
            event in arbitrary_event(),
            noise in proptest::collection::vec(any::<u8>(), 0..48),
        ) {
            let mut v2 = Vec::new();
            event.write_avro(&mut v2);
            // v1 is v2 without its last fields: the same first bytes.
            for datum in [&v2[..], &noise[..]] {
                let framed = crate::contracts::frame(7, datum);
                let peeked = peek_event_id(Some(&framed));
                match read_view(InteractionVersion::V2, InteractionVersion::V2, &framed[5..]) {
                    Ok(view) => {
                        let peeked = peeked.expect("a decodable event has a first string");
                        prop_assert_eq!(peeked, view.event_id.as_bytes());
                        prop_assert_eq!(peeked.as_ptr(), view.event_id.as_ptr());
                    }
                    Err(_) => prop_assert!(datum == &noise[..], "the written event decodes"),
                }
            }
            prop_assert_eq!(peek_event_id(None), None);
            prop_assert_eq!(peek_event_id(Some(&[1, 0, 0, 0, 7, 2, b'x'])), None, "wrong magic byte");
            prop_assert_eq!(peek_event_id(Some(&[0, 0, 0, 0, 7, 4, b'x'])), None, "cut string");
        }

        #[test]
        fn arbitrary_bytes_decode_like_apache_avro_or_fail(
            datum in proptest::collection::vec(any::<u8>(), 0..96),
        ) {
            let v2 = schema(InteractionVersion::V2);
            let direct = read_interaction(InteractionVersion::V2, InteractionVersion::V2, &datum).ok();
            if let Some(event) = &direct {
                prop_assert_eq!(Some(event.clone()), general(&v2, &v2, &datum));
            }
        }
    }
}
