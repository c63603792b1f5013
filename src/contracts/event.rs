//! The typed interaction event and its mapping to and from Avro values of the contract.
//! Decoding accepts any contract version (fields a version lacks take their defaults);
//! encoding writes the newest version's shape.

use std::collections::BTreeMap;

use apache_avro::types::Value;
use serde::{Deserialize, Serialize};

/// What happened, as the contract's `EventType` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A symbol this reader does not know (the enum default: a newer writer added it).
    Unknown,
    /// A page or screen was shown.
    PageView,
    /// Something was clicked or tapped.
    Click,
    /// Playback started.
    Play,
    /// Playback paused.
    Pause,
    /// The user skipped ahead.
    Skip,
    /// A search was run.
    Search,
    /// An item was added to the cart.
    AddToCart,
    /// An order was placed.
    Purchase,
}

impl EventType {
    /// Every type in the contract's symbol order.
    pub const ALL: [EventType; 9] = [
        EventType::Unknown,
        EventType::PageView,
        EventType::Click,
        EventType::Play,
        EventType::Pause,
        EventType::Skip,
        EventType::Search,
        EventType::AddToCart,
        EventType::Purchase,
    ];

    /// The Avro symbol.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Unknown => "unknown",
            EventType::PageView => "page_view",
            EventType::Click => "click",
            EventType::Play => "play",
            EventType::Pause => "pause",
            EventType::Skip => "skip",
            EventType::Search => "search",
            EventType::AddToCart => "add_to_cart",
            EventType::Purchase => "purchase",
        }
    }

    /// The type with this Avro symbol.
    pub fn from_symbol(symbol: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == symbol)
    }

    /// The position of this type in [`EventType::ALL`] (its Avro enum index).
    pub(crate) fn index(self) -> u32 {
        // Declared in the order of `ALL`.
        self as u32
    }
}

// An `EventTypeSet` has a bit per type, 16 in all.
const _: () = assert!(EventType::ALL.len() <= 16, "an EventTypeSet has 16 bits");

/// A set of event types: a bit per type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTypeSet(u16);

impl EventTypeSet {
    /// Every type.
    pub const ALL: EventTypeSet = EventTypeSet((1 << EventType::ALL.len()) - 1);

    /// The set of these types.
    pub fn of(types: impl IntoIterator<Item = EventType>) -> Self {
        EventTypeSet(types.into_iter().fold(0, |set, t| set | 1 << t.index()))
    }

    /// Whether `event_type` is in the set.
    pub fn contains(self, event_type: EventType) -> bool {
        self.0 & 1 << event_type.index() != 0
    }
}

/// The platform of an event without one (a v1 event read as v2).
pub const UNKNOWN_PLATFORM: &str = "unknown";

/// The device an event came from (contract v2; v1 events read the defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// web, ios, android, …
    pub platform: String,
    /// The OS version, if known.
    pub os_version: Option<String>,
    /// The app version, if known.
    pub app_version: Option<String>,
}

impl Default for Device {
    fn default() -> Self {
        Device {
            platform: UNKNOWN_PLATFORM.to_owned(),
            os_version: None,
            app_version: None,
        }
    }
}

/// One user interaction, as the newest contract describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// The app-chosen UUID: the idempotency key.
    pub event_id: String,
    /// What happened.
    pub event_type: EventType,
    /// Who did it; the Kafka key.
    pub user_id: String,
    /// The app session.
    pub session_id: String,
    /// The item acted on, if any.
    #[serde(default)]
    pub item_id: Option<String>,
    /// Event time in ms since the Unix epoch.
    pub occurred_at: i64,
    /// The sending app.
    pub app: String,
    /// Free-form string attributes.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Price or seconds played (v2).
    #[serde(default)]
    pub value: Option<f64>,
    /// The device (v2).
    #[serde(default)]
    pub device: Device,
}

/// An Avro value that does not have the contract's shape.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InteractionError {
    /// The top-level value is not a record.
    #[error("expected an Interaction record, found {found}")]
    NotARecord {
        /// What was found.
        found: String,
    },
    /// A required field is absent.
    #[error("field '{field}' is missing")]
    MissingField {
        /// The field name.
        field: &'static str,
    },
    /// A field has the wrong type.
    #[error("field '{field}' has the wrong type: expected {expected}, found {found}")]
    WrongType {
        /// The field name.
        field: &'static str,
        /// What the contract says.
        expected: &'static str,
        /// What the value was.
        found: String,
    },
}

impl Interaction {
    /// Reads an event from a record decoded with (resolved to) any contract version.
    pub fn from_avro(value: Value) -> Result<Self, InteractionError> {
        let Value::Record(fields) = value else {
            return Err(InteractionError::NotARecord {
                found: kind(&value),
            });
        };
        let mut fields: BTreeMap<String, Value> = fields.into_iter().collect();
        let mut take = |field: &'static str| {
            fields
                .remove(field)
                .ok_or(InteractionError::MissingField { field })
        };
        let event_id = string(take("event_id")?, "event_id")?;
        let event_type = match take("event_type")? {
            Value::Enum(_, symbol) => EventType::from_symbol(&symbol).unwrap_or(EventType::Unknown),
            other => return Err(wrong("event_type", "enum", &other)),
        };
        let user_id = string(take("user_id")?, "user_id")?;
        let session_id = string(take("session_id")?, "session_id")?;
        let item_id = optional_string(take("item_id")?, "item_id")?;
        let occurred_at = match take("occurred_at")? {
            Value::TimestampMillis(ms) | Value::Long(ms) => ms,
            other => return Err(wrong("occurred_at", "timestamp-millis", &other)),
        };
        let app = string(take("app")?, "app")?;
        let properties = match take("properties")? {
            Value::Map(map) => map
                .into_iter()
                .map(|(k, v)| string(v, "properties").map(|v| (k, v)))
                .collect::<Result<BTreeMap<_, _>, _>>()?,
            other => return Err(wrong("properties", "map", &other)),
        };
        let value = match fields.remove("value") {
            None => None,
            Some(v) => match unwrap_union(v) {
                Value::Null => None,
                Value::Double(d) => Some(d),
                other => return Err(wrong("value", "double", &other)),
            },
        };
        let device = match fields.remove("device") {
            None => Device::default(),
            Some(v) => device(v)?,
        };
        Ok(Interaction {
            event_id,
            event_type,
            user_id,
            session_id,
            item_id,
            occurred_at,
            app,
            properties,
            value,
            device,
        })
    }

    /// The event as a record of the newest contract (v2), ready to encode.
    pub fn to_avro(&self) -> Value {
        let nullable = |v: Option<Value>| match v {
            None => Value::Union(0, Box::new(Value::Null)),
            Some(v) => Value::Union(1, Box::new(v)),
        };
        Value::Record(vec![
            ("event_id".into(), Value::String(self.event_id.clone())),
            (
                "event_type".into(),
                Value::Enum(self.event_type.index(), self.event_type.as_str().into()),
            ),
            ("user_id".into(), Value::String(self.user_id.clone())),
            ("session_id".into(), Value::String(self.session_id.clone())),
            (
                "item_id".into(),
                nullable(self.item_id.clone().map(Value::String)),
            ),
            (
                "occurred_at".into(),
                Value::TimestampMillis(self.occurred_at),
            ),
            ("app".into(), Value::String(self.app.clone())),
            (
                "properties".into(),
                Value::Map(
                    self.properties
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect(),
                ),
            ),
            ("value".into(), nullable(self.value.map(Value::Double))),
            (
                "device".into(),
                Value::Record(vec![
                    (
                        "platform".into(),
                        Value::String(self.device.platform.clone()),
                    ),
                    (
                        "os_version".into(),
                        nullable(self.device.os_version.clone().map(Value::String)),
                    ),
                    (
                        "app_version".into(),
                        nullable(self.device.app_version.clone().map(Value::String)),
                    ),
                ]),
            ),
        ])
    }
}

/// Avro binary encoding (zig-zag varints, length-prefixed strings), written directly.
pub(super) mod binary {
    pub fn long(out: &mut Vec<u8>, n: i64) {
        let mut z = ((n << 1) ^ (n >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }

    pub fn string(out: &mut Vec<u8>, s: &str) {
        long(out, s.len() as i64);
        out.extend_from_slice(s.as_bytes());
    }

    pub fn nullable_string(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            None => long(out, 0),
            Some(s) => {
                long(out, 1);
                string(out, s);
            }
        }
    }
}

impl Interaction {
    /// Appends the event's Avro binary datum in the newest contract's layout (v2), the same
    /// bytes apache-avro writes for [`Interaction::to_avro`] (checked by a property test),
    /// without building the intermediate value: the collector's hot path.
    pub fn write_avro(&self, out: &mut Vec<u8>) {
        binary::string(out, &self.event_id);
        binary::long(out, i64::from(self.event_type.index()));
        binary::string(out, &self.user_id);
        binary::string(out, &self.session_id);
        binary::nullable_string(out, self.item_id.as_deref());
        binary::long(out, self.occurred_at);
        binary::string(out, &self.app);
        if !self.properties.is_empty() {
            binary::long(out, self.properties.len() as i64);
            for (key, value) in &self.properties {
                binary::string(out, key);
                binary::string(out, value);
            }
        }
        binary::long(out, 0);
        match self.value {
            None => binary::long(out, 0),
            Some(v) => {
                binary::long(out, 1);
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        binary::string(out, &self.device.platform);
        binary::nullable_string(out, self.device.os_version.as_deref());
        binary::nullable_string(out, self.device.app_version.as_deref());
    }
}

fn device(value: Value) -> Result<Device, InteractionError> {
    let Value::Record(fields) = value else {
        return Err(wrong("device", "record", &value));
    };
    let mut out = Device::default();
    for (name, v) in fields {
        match name.as_str() {
            "platform" => out.platform = string(v, "device.platform")?,
            "os_version" => out.os_version = optional_string(v, "device.os_version")?,
            "app_version" => out.app_version = optional_string(v, "device.app_version")?,
            _ => {}
        }
    }
    Ok(out)
}

fn unwrap_union(value: Value) -> Value {
    match value {
        Value::Union(_, inner) => *inner,
        other => other,
    }
}

fn string(value: Value, field: &'static str) -> Result<String, InteractionError> {
    match unwrap_union(value) {
        Value::String(s) => Ok(s),
        Value::Uuid(uuid) => Ok(uuid.to_string()),
        other => Err(wrong(field, "string", &other)),
    }
}

fn optional_string(value: Value, field: &'static str) -> Result<Option<String>, InteractionError> {
    match unwrap_union(value) {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(wrong(field, "null or string", &other)),
    }
}

fn wrong(field: &'static str, expected: &'static str, found: &Value) -> InteractionError {
    InteractionError::WrongType {
        field,
        expected,
        found: kind(found),
    }
}

fn kind(value: &Value) -> String {
    let debug = format!("{value:?}");
    debug.split('(').next().unwrap_or("value").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::{interaction_schema, InteractionVersion};
    use apache_avro::reader::datum::GenericDatumReader;
    use apache_avro::writer::datum::GenericDatumWriter;
    use apache_avro::Schema;

    fn to_avro_datum(schema: &Schema, value: Value) -> apache_avro::AvroResult<Vec<u8>> {
        GenericDatumWriter::builder(schema)
            .build()?
            .write_value_to_vec(value)
    }

    #[test]
    fn an_event_type_index_is_its_position_and_its_bit_in_a_set() {
        for (position, event_type) in EventType::ALL.into_iter().enumerate() {
            assert_eq!(event_type.index() as usize, position);
            let alone = EventTypeSet::of([event_type]);
            for other in EventType::ALL {
                assert_eq!(alone.contains(other), other == event_type);
                assert!(EventTypeSet::ALL.contains(other));
            }
        }
        let two = EventTypeSet::of([EventType::Play, EventType::Purchase]);
        assert!(two.contains(EventType::Play) && two.contains(EventType::Purchase));
        assert!(!two.contains(EventType::Pause));
        assert_eq!(EventTypeSet::of([]), EventTypeSet::of(std::iter::empty()));
    }

    fn from_avro_datum(
        writer: &Schema,
        bytes: &mut &[u8],
        reader: Option<&Schema>,
    ) -> apache_avro::AvroResult<Value> {
        GenericDatumReader::builder(writer)
            .maybe_reader_schema(reader)
            .build()?
            .read_value(bytes)
    }

    fn sample() -> Interaction {
        Interaction {
            event_id: "6f1c2c7e-8b0e-4c61-9d2f-0b6a3c1f4e11".into(),
            event_type: EventType::Purchase,
            user_id: "u-1".into(),
            session_id: "s-1".into(),
            item_id: Some("sku-9".into()),
            occurred_at: 1_764_000_000_123,
            app: "web".into(),
            properties: BTreeMap::from([("coupon".into(), "XMAS".into())]),
            value: Some(19.99),
            device: Device {
                platform: "ios".into(),
                os_version: Some("18.1".into()),
                app_version: None,
            },
        }
    }

    #[test]
    fn round_trips_through_the_newest_contract() {
        let schema = interaction_schema(InteractionVersion::LATEST).unwrap();
        let bytes = to_avro_datum(&schema, sample().to_avro()).unwrap();
        let back = from_avro_datum(&schema, &mut bytes.as_slice(), None).unwrap();
        assert_eq!(Interaction::from_avro(back).unwrap(), sample());
    }

    #[test]
    fn a_v1_reader_drops_v2_fields_and_a_v2_reader_fills_defaults() {
        let v1 = interaction_schema(InteractionVersion::V1).unwrap();
        let v2 = interaction_schema(InteractionVersion::V2).unwrap();
        let bytes = to_avro_datum(&v2, sample().to_avro()).unwrap();
        let as_v1 = from_avro_datum(&v2, &mut bytes.as_slice(), Some(&v1)).unwrap();
        let v1_bytes = to_avro_datum(&v1, as_v1.clone()).unwrap();
        let read = Interaction::from_avro(as_v1).unwrap();
        assert_eq!(read.value, None);
        assert_eq!(read.device, Device::default());
        assert_eq!(read.event_type, EventType::Purchase);

        let as_v2 = from_avro_datum(&v1, &mut v1_bytes.as_slice(), Some(&v2)).unwrap();
        let read = Interaction::from_avro(as_v2).unwrap();
        assert_eq!(read.value, None);
        assert_eq!(read.device.platform, "unknown");
        assert_eq!(read.item_id.as_deref(), Some("sku-9"));
    }

    #[test]
    fn an_unknown_symbol_from_a_newer_writer_reads_as_unknown() {
        let v1 = interaction_schema(InteractionVersion::V1).unwrap();
        let newer = InteractionVersion::V1
            .text()
            .replace("\"purchase\"]", "\"purchase\", \"refund\"]");
        let newer = Schema::parse_str(&newer).unwrap();
        let mut record = sample().to_avro();
        if let Value::Record(fields) = &mut record {
            fields.retain(|(name, _)| name != "value" && name != "device");
            fields[1].1 = Value::Enum(9, "refund".into());
        }
        let bytes = to_avro_datum(&newer, record).unwrap();
        let read = from_avro_datum(&newer, &mut bytes.as_slice(), Some(&v1)).unwrap();
        assert_eq!(
            Interaction::from_avro(read).unwrap().event_type,
            EventType::Unknown
        );
    }

    proptest::proptest! {
        #[test]
        fn direct_encoding_equals_apache_avro(
            id in "[a-z0-9-]{0,40}",
            kind in 0usize..9,
            user in "\\PC{0,20}",
            item in proptest::option::of("[a-z0-9]{0,12}"),
            at in proptest::num::i64::ANY,
            props in proptest::collection::btree_map("\\PC{0,8}", "\\PC{0,8}", 0..4),
            value in proptest::option::of(proptest::num::f64::ANY),
            os in proptest::option::of("[0-9.]{0,6}"),
        ) {
            let event = Interaction {
                event_id: id,
                event_type: EventType::ALL[kind],
                user_id: user.clone(),
                session_id: format!("s-{user}"),
                item_id: item,
                occurred_at: at,
                app: "web".into(),
                properties: props,
                value,
                device: Device { platform: "ios".into(), os_version: os, app_version: None },
            };
            let schema = interaction_schema(InteractionVersion::LATEST).unwrap();
            let mut direct = Vec::new();
            event.write_avro(&mut direct);
            // Map entries may come in any order (apache-avro writes a HashMap's order), so the
            // bytes are compared when there is at most one property, the decoded event always.
            if event.properties.len() <= 1 {
                proptest::prop_assert_eq!(&direct, &to_avro_datum(&schema, event.to_avro()).unwrap());
            }
            let back = from_avro_datum(&schema, &mut direct.as_slice(), None).unwrap();
            let back = Interaction::from_avro(back).unwrap();
            proptest::prop_assert_eq!(back.properties, event.properties.clone());
            proptest::prop_assert_eq!(back.value.map(f64::to_bits), event.value.map(f64::to_bits));
            proptest::prop_assert_eq!(back.event_id, event.event_id.clone());
            proptest::prop_assert_eq!(back.occurred_at, event.occurred_at);
        }
    }

    #[test]
    fn a_value_of_the_wrong_shape_is_an_error() {
        assert!(matches!(
            Interaction::from_avro(Value::Long(1)),
            Err(InteractionError::NotARecord { .. })
        ));
        assert_eq!(
            Interaction::from_avro(Value::Record(vec![])),
            Err(InteractionError::MissingField { field: "event_id" })
        );
    }
}
