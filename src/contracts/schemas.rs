//! The interaction schema versions shipped in `schemas/interaction/`, embedded in the binary
//! so every stage agrees on them without reading files at run time.

use apache_avro::Schema;

/// The subject suffix of the TopicNameStrategy: the value schema of topic `t` is `t-value`.
pub const INTERACTION_SUBJECT_SUFFIX: &str = "-value";

/// A version of the interaction contract (`schemas/interaction/vN.avsc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InteractionVersion {
    /// The first contract: ids, type, time, app and free-form properties.
    V1,
    /// Adds `value` (price or seconds played) and a `device` record, both with defaults.
    V2,
}

impl InteractionVersion {
    /// Every version, oldest first.
    pub const ALL: [InteractionVersion; 2] = [InteractionVersion::V1, InteractionVersion::V2];
    /// The newest version: what producers write.
    pub const LATEST: InteractionVersion = InteractionVersion::V2;

    /// The schema's JSON text exactly as in `schemas/`.
    pub fn text(self) -> &'static str {
        match self {
            InteractionVersion::V1 => include_str!("../../schemas/interaction/v1.avsc"),
            InteractionVersion::V2 => include_str!("../../schemas/interaction/v2.avsc"),
        }
    }

    /// The version number (1, 2, …).
    pub fn number(self) -> u32 {
        match self {
            InteractionVersion::V1 => 1,
            InteractionVersion::V2 => 2,
        }
    }

    /// The version with this number, if it exists.
    pub fn from_number(number: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.number() == number)
    }
}

/// A contract that does not parse (a broken build, caught by the tests).
#[derive(Debug, thiserror::Error)]
#[error("schemas/interaction/v{version}.avsc is not a valid Avro schema: {source}")]
pub struct ContractError {
    version: u32,
    #[source]
    source: Box<apache_avro::Error>,
}

/// The newest contract, parsed once for the process (what producers write with).
pub fn latest_schema() -> &'static Schema {
    static LATEST: std::sync::LazyLock<Schema> = std::sync::LazyLock::new(|| {
        // The embedded contracts are checked by the tests; an unparseable one cannot ship.
        Schema::parse_str(InteractionVersion::LATEST.text()).unwrap_or(Schema::Null)
    });
    &LATEST
}

/// Parses one version of the interaction contract.
pub fn interaction_schema(version: InteractionVersion) -> Result<Schema, ContractError> {
    Schema::parse_str(version.text()).map_err(|source| ContractError {
        version: version.number(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_parses_and_names_the_same_record() {
        for version in InteractionVersion::ALL {
            let schema = interaction_schema(version).unwrap();
            match schema {
                Schema::Record(record) => {
                    assert_eq!(
                        record.name.fullname(None),
                        "io.eventfold.events.Interaction"
                    )
                }
                other => panic!("v{} is not a record: {other:?}", version.number()),
            }
        }
    }

    #[test]
    fn version_numbers_round_trip() {
        for version in InteractionVersion::ALL {
            assert_eq!(
                InteractionVersion::from_number(version.number()),
                Some(version)
            );
        }
        assert_eq!(InteractionVersion::from_number(0), None);
        assert_eq!(
            InteractionVersion::LATEST,
            *InteractionVersion::ALL.last().unwrap()
        );
    }
}
