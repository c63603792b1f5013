//! [`InteractionView`]: an interaction borrowed from wherever it lives — the Avro bytes of a
//! Kafka record or an owned [`Interaction`] — so the worker reads and folds an event without
//! a `String` per field.

use std::collections::BTreeMap;

use super::datum::DatumReader;
use super::{Device, EventType, Interaction};

/// An interaction whose strings are borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InteractionView<'a> {
    /// The app-chosen UUID: the idempotency key.
    pub event_id: &'a str,
    /// What happened.
    pub event_type: EventType,
    /// Who did it.
    pub user_id: &'a str,
    /// The app session.
    pub session_id: &'a str,
    /// The item acted on, if any.
    pub item_id: Option<&'a str>,
    /// Event time in ms since the Unix epoch.
    pub occurred_at: i64,
    /// The sending app.
    pub app: &'a str,
    /// Free-form string attributes.
    pub properties: PropertiesView<'a>,
    /// Price or seconds played (v2).
    pub value: Option<f64>,
    /// The device's platform (v2; `unknown` for v1).
    pub platform: &'a str,
    /// The OS version, if known.
    pub os_version: Option<&'a str>,
    /// The app version, if known.
    pub app_version: Option<&'a str>,
}

/// An interaction's properties, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PropertiesView<'a> {
    /// The Avro encoding of a map of strings, already read and checked once, with its
    /// number of entries as written (a repeated key counts each time).
    Read {
        /// The map's bytes: blocks of entries ending with an empty block.
        bytes: &'a [u8],
        /// Entries as written.
        written: usize,
        /// The length in bytes of the longest key or value.
        longest: usize,
    },
    /// An owned event's map.
    Map(&'a BTreeMap<String, String>),
    /// Not kept (a worker's batch keeps no properties: nothing folds or projects them).
    NotKept,
}

impl<'a> PropertiesView<'a> {
    /// The properties as a map: a repeated key keeps its last value, as Avro maps do.
    pub fn to_map(&self) -> BTreeMap<&'a str, &'a str> {
        self.entries().collect()
    }

    /// Every entry in the order written (a repeated key each time; a map's in key order).
    pub fn entries(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let (read, map) = match *self {
            PropertiesView::Read { bytes, .. } => (Some(MapEntries::new(bytes)), None),
            PropertiesView::Map(map) => (None, Some(map)),
            PropertiesView::NotKept => (None, None),
        };
        read.into_iter().flatten().chain(
            map.into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }
}

/// The entries of an Avro map of strings that was read and checked before (so a malformed
/// one ends the iteration instead of failing).
struct MapEntries<'a> {
    reader: DatumReader<'a>,
    left_in_block: u64,
}

impl<'a> MapEntries<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        MapEntries {
            reader: DatumReader { bytes, at: 0 },
            left_in_block: 0,
        }
    }
}

impl<'a> Iterator for MapEntries<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        while self.left_in_block == 0 {
            let count = self.reader.long().ok()?;
            if count == 0 {
                return None;
            }
            if count < 0 {
                self.reader.long().ok()?;
            }
            self.left_in_block = count.unsigned_abs();
        }
        self.left_in_block -= 1;
        let key = self.reader.str().ok()?;
        let value = self.reader.str().ok()?;
        Some((key, value))
    }
}

impl Interaction {
    /// This event, borrowed.
    pub fn view(&self) -> InteractionView<'_> {
        InteractionView {
            event_id: &self.event_id,
            event_type: self.event_type,
            user_id: &self.user_id,
            session_id: &self.session_id,
            item_id: self.item_id.as_deref(),
            occurred_at: self.occurred_at,
            app: &self.app,
            properties: PropertiesView::Map(&self.properties),
            value: self.value,
            platform: &self.device.platform,
            os_version: self.device.os_version.as_deref(),
            app_version: self.device.app_version.as_deref(),
        }
    }
}

impl InteractionView<'_> {
    /// The event, owned.
    pub fn to_interaction(&self) -> Interaction {
        Interaction {
            event_id: self.event_id.to_owned(),
            event_type: self.event_type,
            user_id: self.user_id.to_owned(),
            session_id: self.session_id.to_owned(),
            item_id: self.item_id.map(str::to_owned),
            occurred_at: self.occurred_at,
            app: self.app.to_owned(),
            properties: self
                .properties
                .entries()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            value: self.value,
            device: Device {
                platform: self.platform.to_owned(),
                os_version: self.os_version.map(str::to_owned),
                app_version: self.app_version.map(str::to_owned),
            },
        }
    }
}
