//! Arbitrary bytes as a Kafka record value through the Confluent framing parser the worker
//! uses (`eventfold::contracts::parse_frame`): it must never panic, and whatever it accepts
//! must frame back to exactly the same bytes.
#![no_main]

use eventfold::contracts::{frame, parse_frame, WireError, MAGIC_BYTE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    match parse_frame(Some(bytes)) {
        Ok((id, datum)) => assert_eq!(frame(id, datum), bytes, "frame does not round-trip"),
        Err(WireError::Truncated { len }) => assert!(len == bytes.len() && len < 5),
        Err(WireError::WrongMagic { found }) => assert!(found == bytes[0] && found != MAGIC_BYTE),
        Err(WireError::Missing) => panic!("a present value was reported missing"),
    }
});
