//! The contract's size limits: how long an interaction's strings may be and how many
//! properties it may carry. The collector refuses an app's event over a limit (400, with the
//! field and the limit); the worker dead-letters a record over a limit that reached the topic
//! some other way (reason `too_large`), so no read model ever holds a megabyte user id.
//! Pure code.

use super::{Interaction, InteractionView, PropertiesView};

/// Longest id (`event_id`, `user_id`, `session_id`, `item_id`), in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest `app` and device string (`platform`, `os_version`, `app_version`), in bytes.
pub const MAX_APP_BYTES: usize = 64;
/// Most `properties` entries.
pub const MAX_PROPERTIES: usize = 32;
/// Longest property key or value, in bytes.
pub const MAX_PROPERTY_BYTES: usize = 512;

/// An event over one of the contract's size limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// A string is too long.
    #[error("field '{field}' is {len} bytes long; at most {max} allowed")]
    TooLong {
        /// The field (dotted when nested; `properties` for a property key).
        field: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Too many properties.
    #[error("field 'properties' has {count} entries; at most {max} allowed")]
    TooManyProperties {
        /// How many there are.
        count: usize,
        /// [`MAX_PROPERTIES`].
        max: usize,
    },
}

impl Interaction {
    /// The first size limit the event breaks, if any (fields in contract order).
    pub fn check_sizes(&self) -> Result<(), SizeError> {
        self.view().check_sizes()
    }
}

impl InteractionView<'_> {
    /// The first size limit the event breaks, if any (fields in contract order; of
    /// properties written twice under one key, the last value counts, as in a map).
    pub fn check_sizes(&self) -> Result<(), SizeError> {
        let too_long = |field: &str, text: &str, max: usize| {
            (text.len() > max).then(|| SizeError::TooLong {
                field: field.to_owned(),
                len: text.len(),
                max,
            })
        };
        let strings = [
            ("event_id", Some(self.event_id), MAX_ID_BYTES),
            ("user_id", Some(self.user_id), MAX_ID_BYTES),
            ("session_id", Some(self.session_id), MAX_ID_BYTES),
            ("item_id", self.item_id, MAX_ID_BYTES),
            ("app", Some(self.app), MAX_APP_BYTES),
            ("device.platform", Some(self.platform), MAX_APP_BYTES),
            ("device.os_version", self.os_version, MAX_APP_BYTES),
            ("device.app_version", self.app_version, MAX_APP_BYTES),
        ];
        for (field, text, max) in strings {
            if let Some(error) = text.and_then(|text| too_long(field, text, max)) {
                return Err(error);
            }
        }
        let check = |entries: &mut dyn Iterator<Item = (&str, &str)>, count: usize| {
            if count > MAX_PROPERTIES {
                return Err(SizeError::TooManyProperties {
                    count,
                    max: MAX_PROPERTIES,
                });
            }
            for (key, value) in entries {
                if let Some(error) = too_long("properties", key, MAX_PROPERTY_BYTES) {
                    return Err(error);
                }
                if value.len() > MAX_PROPERTY_BYTES {
                    return Err(SizeError::TooLong {
                        field: format!("properties.{key}"),
                        len: value.len(),
                        max: MAX_PROPERTY_BYTES,
                    });
                }
            }
            Ok(())
        };
        match self.properties {
            PropertiesView::NotKept => Ok(()),
            // Too few entries and too short ones to break a limit: nothing to read again.
            PropertiesView::Read {
                written, longest, ..
            } if written <= MAX_PROPERTIES && longest <= MAX_PROPERTY_BYTES => Ok(()),
            PropertiesView::Map(map) => check(
                &mut map.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                map.len(),
            ),
            // One entry cannot repeat a key; more are checked as the map they make.
            read @ PropertiesView::Read { written, .. } if written <= 1 => {
                check(&mut read.entries(), written)
            }
            read => {
                let map = read.to_map();
                check(&mut map.iter().map(|(k, v)| (*k, *v)), map.len())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::EventType;

    fn event() -> Interaction {
        Interaction {
            event_id: "e".repeat(MAX_ID_BYTES),
            event_type: EventType::Click,
            user_id: "u".repeat(MAX_ID_BYTES),
            session_id: "s".into(),
            item_id: Some("i".repeat(MAX_ID_BYTES)),
            occurred_at: 0,
            app: "a".repeat(MAX_APP_BYTES),
            properties: (0..MAX_PROPERTIES)
                .map(|i| (format!("{i:0>512}"), "v".repeat(MAX_PROPERTY_BYTES)))
                .collect(),
            value: None,
            device: Default::default(),
        }
    }

    /// `check_sizes` of `event` and of its Avro datum read back (whose properties are
    /// checked from their bytes), which must agree.
    fn checked(event: &Interaction) -> Result<(), SizeError> {
        use crate::contracts::{read_view, InteractionVersion};
        let mut datum = Vec::new();
        event.write_avro(&mut datum);
        let view = read_view(InteractionVersion::V2, InteractionVersion::V2, &datum).unwrap();
        let read = view.check_sizes();
        assert_eq!(read, event.check_sizes());
        read
    }

    #[test]
    fn an_event_at_every_limit_passes_and_one_byte_more_fails_naming_the_field() {
        assert_eq!(checked(&event()), Ok(()));
        let mut user = event();
        user.user_id.push('u');
        assert_eq!(
            checked(&user).unwrap_err().to_string(),
            "field 'user_id' is 129 bytes long; at most 128 allowed"
        );
        let mut huge = event();
        huge.item_id = Some("i".repeat(1 << 20));
        assert_eq!(
            checked(&huge),
            Err(SizeError::TooLong {
                field: "item_id".into(),
                len: 1 << 20,
                max: MAX_ID_BYTES
            })
        );
        let mut platform = event();
        platform.device.platform = "p".repeat(65);
        assert_eq!(
            checked(&platform).unwrap_err().to_string(),
            "field 'device.platform' is 65 bytes long; at most 64 allowed"
        );
        let mut value = event();
        value.properties.insert("k".into(), "v".repeat(513));
        assert_eq!(
            checked(&value),
            Err(SizeError::TooManyProperties { count: 33, max: 32 })
        );
        value.properties.pop_first();
        assert_eq!(
            checked(&value).unwrap_err().to_string(),
            "field 'properties.k' is 513 bytes long; at most 512 allowed"
        );
        let mut key = event();
        key.properties.pop_first();
        key.properties.insert("k".repeat(513), "v".into());
        assert_eq!(
            checked(&key).unwrap_err().to_string(),
            "field 'properties' is 513 bytes long; at most 512 allowed"
        );
    }

    /// An Avro map may repeat a key; as in a map built from it, the last value counts.
    #[test]
    fn a_repeated_property_key_is_checked_by_its_last_value_as_read_and_as_owned() {
        use crate::contracts::{read_view, InteractionVersion};
        let long = "x".repeat(MAX_PROPERTY_BYTES + 1);
        let with = |first: &str, second: &str| {
            let mut event = event();
            event.properties = [
                ("k".to_owned(), first.to_owned()),
                ("q".to_owned(), second.to_owned()),
            ]
            .into();
            let mut datum = Vec::new();
            event.write_avro(&mut datum);
            // Rename the key `q` to `k` (same length): the map now repeats `k`.
            let at = datum
                .windows(2)
                .position(|w| w == [2, b'q'])
                .expect("the key q");
            datum[at + 1] = b'k';
            datum
        };
        let too_long = Err(SizeError::TooLong {
            field: "properties.k".into(),
            len: MAX_PROPERTY_BYTES + 1,
            max: MAX_PROPERTY_BYTES,
        });
        for (datum, expected) in [(with(&long, "v"), Ok(())), (with("v", &long), too_long)] {
            let view = read_view(InteractionVersion::V2, InteractionVersion::V2, &datum).unwrap();
            assert_eq!(view.properties.entries().count(), 2);
            assert_eq!(view.check_sizes(), expected);
            let owned = view.to_interaction();
            assert_eq!(owned.properties.len(), 1);
            assert_eq!(owned.check_sizes(), expected);
        }
    }
}
