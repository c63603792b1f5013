//! The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro
//! binary datum. Parsing never panics: every malformed frame is a [`WireError`].

/// The first byte of every framed value.
pub const MAGIC_BYTE: u8 = 0;
const HEADER_LEN: usize = 5;

/// Why bytes are not a Confluent-framed value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The record has no value at all (a tombstone).
    #[error("the record has no value")]
    Missing,
    /// Fewer than the 5 header bytes.
    #[error("the value is {len} bytes long, shorter than the 5-byte Confluent header")]
    Truncated {
        /// How many bytes there were.
        len: usize,
    },
    /// The first byte is not the magic byte 0.
    #[error("the value starts with byte {found:#04x}, not the Confluent magic byte 0x00")]
    WrongMagic {
        /// The byte found instead.
        found: u8,
    },
}

/// Splits a framed value into its schema id and the Avro datum.
pub fn parse_frame(bytes: Option<&[u8]>) -> Result<(u32, &[u8]), WireError> {
    let bytes = bytes.ok_or(WireError::Missing)?;
    if bytes.len() < HEADER_LEN {
        return Err(WireError::Truncated { len: bytes.len() });
    }
    if bytes[0] != MAGIC_BYTE {
        return Err(WireError::WrongMagic { found: bytes[0] });
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[HEADER_LEN..]))
}

/// Frames an Avro datum written with schema `id`.
pub fn frame(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + datum.len());
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exact_bytes() {
        let bytes = [0u8, 0, 0, 1, 2, 0xAA, 0xBB];
        assert_eq!(parse_frame(Some(&bytes)), Ok((258, &[0xAA, 0xBB][..])));
        assert_eq!(frame(258, &[0xAA, 0xBB]), bytes.to_vec());
    }

    #[test]
    fn rejects_malformed_frames() {
        let cases: [(Option<&[u8]>, WireError); 4] = [
            (None, WireError::Missing),
            (Some(&[]), WireError::Truncated { len: 0 }),
            (Some(&[0, 0, 0, 1]), WireError::Truncated { len: 4 }),
            (
                Some(&[1, 0, 0, 0, 1, 2]),
                WireError::WrongMagic { found: 1 },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_frame(input), Err(expected));
        }
    }

    proptest! {
        #[test]
        fn frame_round_trips(id in any::<u32>(), datum in proptest::collection::vec(any::<u8>(), 0..64)) {
            let framed = frame(id, &datum);
            prop_assert_eq!(parse_frame(Some(&framed)), Ok((id, &datum[..])));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = parse_frame(Some(&bytes));
        }
    }
}
