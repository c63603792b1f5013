//! The registry's state and the deterministic fold of its log: every replica applies the same
//! commands in the same order and so hands out the same ids and versions. Pure code, no IO.

use std::collections::{BTreeMap, HashMap};

use apache_avro::Schema;
use serde::{Deserialize, Serialize};

use super::compat::{self, CompatibilityLevel};
use super::RegistryError;

/// A write request, as appended to the registry's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Register `schema` under `subject` (idempotent).
    Register {
        /// The subject.
        subject: String,
        /// The schema's JSON text as submitted.
        schema: String,
    },
    /// Delete every version of a subject.
    DeleteSubject {
        /// The subject.
        subject: String,
        /// Hard delete (the versions must be soft-deleted first).
        permanent: bool,
    },
    /// Delete one version (`None` = the latest).
    DeleteVersion {
        /// The subject.
        subject: String,
        /// The version, or `None` for the latest.
        version: Option<u32>,
        /// Hard delete (the version must be soft-deleted first).
        permanent: bool,
    },
    /// Set the compatibility level of a subject, or the global one.
    SetConfig {
        /// `None` = global.
        subject: Option<String>,
        /// The new level.
        level: CompatibilityLevel,
    },
    /// Remove a subject's level (it falls back to global), or reset the global one.
    DeleteConfig {
        /// `None` = global.
        subject: Option<String>,
    },
    /// Changes nothing: a replica appends one and waits to read it back to know it has
    /// folded everything appended before (a marker; never the high watermark).
    Sync,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The schema's id under the subject.
    Registered {
        /// The id.
        id: u32,
    },
    /// The versions deleted.
    Deleted(Vec<u32>),
    /// The one version deleted.
    DeletedVersion(u32),
    /// The level now in force.
    Config(CompatibilityLevel),
    /// The level in force before the delete.
    ConfigDeleted(CompatibilityLevel),
    /// The marker was folded.
    Synced,
}

/// A registered schema.
#[derive(Debug, Clone)]
pub struct StoredSchema {
    /// Its global id.
    pub id: u32,
    /// The text as first registered.
    pub text: String,
    /// The parsed schema.
    pub schema: Schema,
}

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubjectVersion {
    /// The version number (1, 2, …).
    pub version: u32,
    /// The schema id.
    pub id: u32,
    /// Soft-deleted.
    pub deleted: bool,
}

#[derive(Debug, Clone, Default)]
struct Subject {
    versions: Vec<SubjectVersion>,
    last_version: u32,
    level: Option<CompatibilityLevel>,
}

impl Subject {
    fn live(&self) -> impl Iterator<Item = &SubjectVersion> {
        self.versions.iter().filter(|v| !v.deleted)
    }
}

/// The folded registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryState {
    schemas: BTreeMap<u32, StoredSchema>,
    ids_by_canonical: HashMap<String, u32>,
    subjects: BTreeMap<String, Subject>,
    global_level: CompatibilityLevel,
    applied: u64,
}

/// Parses a schema text, as the registry accepts it.
pub fn parse_schema(text: &str) -> Result<Schema, RegistryError> {
    if text.trim().is_empty() {
        return Err(RegistryError::InvalidSchema("Empty schema".to_owned()));
    }
    Schema::parse_str(text).map_err(|e| RegistryError::InvalidSchema(e.to_string()))
}

/// The form two schemas are compared in: apache-avro's full serialization of the parsed
/// schema. Like the Parsing Canonical Form it ignores whitespace and attribute order, but it
/// keeps what the PCF drops and resolution depends on (defaults, aliases, logical types,
/// decimal precision/scale), so a schema that only adds a default is a new schema, not a
/// duplicate of the old one.
fn identity(schema: &Schema) -> String {
    serde_json::to_string(schema).unwrap_or_else(|_| schema.canonical_form())
}

impl RegistryState {
    /// How many log records have been folded.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Applies one command from the log. Deterministic: the same state and command give the
    /// same state and reply on every replica.
    pub fn apply(&mut self, command: &Command) -> Result<Reply, RegistryError> {
        self.applied += 1;
        match command {
            Command::Register { subject, schema } => self.register(subject, schema),
            Command::DeleteSubject { subject, permanent } => {
                self.delete_subject(subject, *permanent)
            }
            Command::DeleteVersion {
                subject,
                version,
                permanent,
            } => self.delete_version(subject, *version, *permanent),
            Command::SetConfig { subject, level } => {
                match subject {
                    None => self.global_level = *level,
                    Some(subject) => {
                        self.subjects.entry(subject.clone()).or_default().level = Some(*level)
                    }
                }
                Ok(Reply::Config(*level))
            }
            Command::DeleteConfig { subject } => match subject {
                None => {
                    let previous = self.global_level;
                    self.global_level = CompatibilityLevel::default();
                    Ok(Reply::ConfigDeleted(previous))
                }
                Some(name) => {
                    let subject = self
                        .subjects
                        .get_mut(name)
                        .ok_or_else(|| RegistryError::SubjectNotFound(name.clone()))?;
                    let previous = subject.level.take().ok_or_else(|| {
                        RegistryError::SubjectLevelCompatibilityNotConfigured(name.clone())
                    })?;
                    Ok(Reply::ConfigDeleted(previous))
                }
            },
            Command::Sync => Ok(Reply::Synced),
        }
    }

    fn register(&mut self, subject_name: &str, text: &str) -> Result<Reply, RegistryError> {
        let schema = parse_schema(text)?;
        let canonical = identity(&schema);
        let existing_id = self.ids_by_canonical.get(&canonical).copied();
        let level = self.level(Some(subject_name));
        let subject = self.subjects.entry(subject_name.to_owned()).or_default();
        if let Some(id) = existing_id {
            if subject.live().any(|v| v.id == id) {
                return Ok(Reply::Registered { id });
            }
        }
        let existing: Vec<&Schema> = subject
            .live()
            .filter_map(|v| self.schemas.get(&v.id).map(|s| &s.schema))
            .collect();
        let messages = compat::check_level(level, &schema, &existing);
        if !messages.is_empty() {
            return Err(RegistryError::Incompatible {
                subject: subject_name.to_owned(),
                messages,
            });
        }
        let id = match existing_id {
            Some(id) => id,
            None => {
                let id = self.schemas.keys().next_back().map_or(1, |last| last + 1);
                self.schemas.insert(
                    id,
                    StoredSchema {
                        id,
                        text: text.to_owned(),
                        schema,
                    },
                );
                self.ids_by_canonical.insert(canonical, id);
                id
            }
        };
        subject.last_version += 1;
        subject.versions.push(SubjectVersion {
            version: subject.last_version,
            id,
            deleted: false,
        });
        Ok(Reply::Registered { id })
    }

    fn delete_subject(&mut self, name: &str, permanent: bool) -> Result<Reply, RegistryError> {
        let subject = self
            .subjects
            .get_mut(name)
            .filter(|s| !s.versions.is_empty())
            .ok_or_else(|| RegistryError::SubjectNotFound(name.to_owned()))?;
        if permanent {
            if subject.live().next().is_some() {
                return Err(RegistryError::SubjectNotSoftDeleted(name.to_owned()));
            }
            let versions = subject.versions.iter().map(|v| v.version).collect();
            self.subjects.remove(name);
            return Ok(Reply::Deleted(versions));
        }
        if subject.live().next().is_none() {
            return Err(RegistryError::SubjectSoftDeleted(name.to_owned()));
        }
        let mut deleted = Vec::new();
        for version in subject.versions.iter_mut().filter(|v| !v.deleted) {
            version.deleted = true;
            deleted.push(version.version);
        }
        Ok(Reply::Deleted(deleted))
    }

    fn delete_version(
        &mut self,
        name: &str,
        version: Option<u32>,
        permanent: bool,
    ) -> Result<Reply, RegistryError> {
        let subject = self
            .subjects
            .get_mut(name)
            .filter(|s| !s.versions.is_empty())
            .ok_or_else(|| RegistryError::SubjectNotFound(name.to_owned()))?;
        let position = match version {
            Some(number) => subject.versions.iter().position(|v| v.version == number),
            None if permanent => subject.versions.len().checked_sub(1),
            None => subject.versions.iter().rposition(|v| !v.deleted),
        };
        let label = version.map_or_else(|| "latest".to_owned(), |v| v.to_string());
        let position = position.ok_or(RegistryError::VersionNotFound(label))?;
        let entry = subject.versions[position];
        if permanent {
            if !entry.deleted {
                return Err(RegistryError::VersionNotSoftDeleted(
                    name.to_owned(),
                    entry.version,
                ));
            }
            subject.versions.remove(position);
        } else {
            if entry.deleted {
                return Err(RegistryError::VersionSoftDeleted(
                    name.to_owned(),
                    entry.version,
                ));
            }
            subject.versions[position].deleted = true;
        }
        Ok(Reply::DeletedVersion(entry.version))
    }

    /// The level in force for a subject (its own, else the global one), or the global one.
    pub fn level(&self, subject: Option<&str>) -> CompatibilityLevel {
        subject
            .and_then(|s| self.subjects.get(s))
            .and_then(|s| s.level)
            .unwrap_or(self.global_level)
    }

    /// A subject's own level, if it has one.
    pub fn subject_level(&self, subject: &str) -> Option<CompatibilityLevel> {
        self.subjects.get(subject).and_then(|s| s.level)
    }

    /// The schema with this id.
    pub fn schema(&self, id: u32) -> Result<&StoredSchema, RegistryError> {
        self.schemas
            .get(&id)
            .ok_or(RegistryError::SchemaIdNotFound(id))
    }

    /// The subject/version pairs that use schema `id`.
    pub fn subject_versions_of(&self, id: u32) -> Result<Vec<(String, u32)>, RegistryError> {
        self.schema(id)?;
        Ok(self
            .subjects
            .iter()
            .flat_map(|(name, s)| {
                s.live()
                    .filter(|v| v.id == id)
                    .map(|v| (name.clone(), v.version))
            })
            .collect())
    }

    /// The subject names with a live version (or any version, with `include_deleted`).
    pub fn subjects(&self, include_deleted: bool) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(_, s)| {
                if include_deleted {
                    !s.versions.is_empty()
                } else {
                    s.live().next().is_some()
                }
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn visible_versions(
        &self,
        name: &str,
        include_deleted: bool,
    ) -> Result<Vec<SubjectVersion>, RegistryError> {
        let versions: Vec<SubjectVersion> = self
            .subjects
            .get(name)
            .map(|s| {
                s.versions
                    .iter()
                    .filter(|v| include_deleted || !v.deleted)
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound(name.to_owned()));
        }
        Ok(versions)
    }

    /// A subject's version numbers.
    pub fn versions(&self, name: &str, include_deleted: bool) -> Result<Vec<u32>, RegistryError> {
        Ok(self
            .visible_versions(name, include_deleted)?
            .into_iter()
            .map(|v| v.version)
            .collect())
    }

    /// One version of a subject (`None` = the latest).
    pub fn version(
        &self,
        name: &str,
        version: Option<u32>,
        include_deleted: bool,
    ) -> Result<(SubjectVersion, &StoredSchema), RegistryError> {
        let versions = self.visible_versions(name, include_deleted)?;
        let found = match version {
            None => versions.last().copied(),
            Some(number) => versions.iter().find(|v| v.version == number).copied(),
        };
        let found = found.ok_or_else(|| {
            RegistryError::VersionNotFound(
                version.map_or_else(|| "latest".into(), |v| v.to_string()),
            )
        })?;
        Ok((found, self.schema(found.id)?))
    }

    /// The version of `name` whose schema is `text` (compared in canonical form).
    pub fn lookup(
        &self,
        name: &str,
        text: &str,
        include_deleted: bool,
    ) -> Result<(SubjectVersion, &StoredSchema), RegistryError> {
        let versions = self.visible_versions(name, include_deleted)?;
        let canonical = identity(&parse_schema(text)?);
        let id = self
            .ids_by_canonical
            .get(&canonical)
            .ok_or(RegistryError::SchemaNotFound)?;
        let found = versions
            .iter()
            .rev()
            .find(|v| v.id == *id)
            .ok_or(RegistryError::SchemaNotFound)?;
        Ok((*found, self.schema(found.id)?))
    }

    /// Whether `text` could be registered under `name`: against one version (`Some`) or, for
    /// `None`, against the versions the subject's level names. Returns the problems found.
    pub fn check_compatibility(
        &self,
        name: &str,
        version: Option<Option<u32>>,
        text: &str,
    ) -> Result<Vec<String>, RegistryError> {
        let schema = parse_schema(text)?;
        let level = self.level(Some(name));
        let live: Vec<SubjectVersion> = self
            .subjects
            .get(name)
            .map(|s| s.live().copied().collect())
            .unwrap_or_default();
        let against: Vec<SubjectVersion> = match version {
            None => live,
            Some(None) => live.last().copied().into_iter().collect(),
            Some(Some(number)) => {
                if live.is_empty() {
                    return Err(RegistryError::SubjectNotFound(name.to_owned()));
                }
                let found = live
                    .iter()
                    .find(|v| v.version == number)
                    .ok_or_else(|| RegistryError::VersionNotFound(number.to_string()))?;
                vec![*found]
            }
        };
        let schemas: Vec<&Schema> = against
            .iter()
            .filter_map(|v| self.schemas.get(&v.id).map(|s| &s.schema))
            .collect();
        Ok(compat::check_level(level, &schema, &schemas))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
    const V1_SPACED: &str =
        r#"{ "type": "record", "name": "R", "fields": [ {"name": "a", "type": "string"} ] }"#;
    const V2: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":0}]}"#;
    const BREAKS: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"c","type":"int"}]}"#;

    fn register(
        state: &mut RegistryState,
        subject: &str,
        schema: &str,
    ) -> Result<u32, RegistryError> {
        match state.apply(&Command::Register {
            subject: subject.into(),
            schema: schema.into(),
        })? {
            Reply::Registered { id } => Ok(id),
            other => panic!("unexpected reply {other:?}"),
        }
    }

    #[test]
    fn registration_is_idempotent_in_canonical_form_and_ids_are_shared() {
        let mut state = RegistryState::default();
        assert_eq!(register(&mut state, "s", V1), Ok(1));
        assert_eq!(register(&mut state, "s", V1_SPACED), Ok(1));
        assert_eq!(register(&mut state, "s", V2), Ok(2));
        assert_eq!(register(&mut state, "t", V1), Ok(1));
        assert_eq!(state.versions("s", false), Ok(vec![1, 2]));
        assert_eq!(state.versions("t", false), Ok(vec![1]));
        assert_eq!(
            state.subject_versions_of(1),
            Ok(vec![("s".into(), 1), ("t".into(), 1)])
        );
    }

    #[test]
    fn an_incompatible_schema_is_refused_and_changes_nothing() {
        let mut state = RegistryState::default();
        register(&mut state, "s", V1).unwrap();
        let err = register(&mut state, "s", BREAKS).unwrap_err();
        assert_eq!(err.codes().1, 409);
        assert_eq!(state.versions("s", false), Ok(vec![1]));
        assert!(state.schema(2).is_err());
        state
            .apply(&Command::SetConfig {
                subject: Some("s".into()),
                level: CompatibilityLevel::None,
            })
            .unwrap();
        assert_eq!(register(&mut state, "s", BREAKS), Ok(2));
    }

    #[test]
    fn deletes_follow_confluent_rules() {
        let mut state = RegistryState::default();
        register(&mut state, "s", V1).unwrap();
        register(&mut state, "s", V2).unwrap();
        let hard = |v| Command::DeleteVersion {
            subject: "s".into(),
            version: Some(v),
            permanent: true,
        };
        assert_eq!(state.apply(&hard(2)).unwrap_err().codes().1, 40407);
        let soft = Command::DeleteVersion {
            subject: "s".into(),
            version: None,
            permanent: false,
        };
        assert_eq!(state.apply(&soft), Ok(Reply::DeletedVersion(2)));
        assert_eq!(state.versions("s", false), Ok(vec![1]));
        assert_eq!(state.versions("s", true), Ok(vec![1, 2]));
        assert_eq!(state.apply(&hard(2)), Ok(Reply::DeletedVersion(2)));
        assert_eq!(state.versions("s", true), Ok(vec![1]));
        let subject = |permanent| Command::DeleteSubject {
            subject: "s".into(),
            permanent,
        };
        assert_eq!(state.apply(&subject(true)).unwrap_err().codes().1, 40405);
        assert_eq!(state.apply(&subject(false)), Ok(Reply::Deleted(vec![1])));
        assert_eq!(state.apply(&subject(false)).unwrap_err().codes().1, 40404);
        assert_eq!(state.versions("s", false).unwrap_err().codes().1, 40401);
        assert_eq!(state.apply(&subject(true)), Ok(Reply::Deleted(vec![1])));
        assert_eq!(state.apply(&subject(true)).unwrap_err().codes().1, 40401);
        assert!(state.schema(1).is_ok(), "ids are never reused or forgotten");
        assert_eq!(register(&mut state, "s", V2), Ok(2));
    }

    #[test]
    fn two_replicas_folding_the_same_log_agree() {
        let log = [
            Command::Register {
                subject: "a".into(),
                schema: V1.into(),
            },
            Command::Register {
                subject: "b".into(),
                schema: V2.into(),
            },
            Command::Register {
                subject: "a".into(),
                schema: BREAKS.into(),
            },
            Command::SetConfig {
                subject: None,
                level: CompatibilityLevel::None,
            },
            Command::Register {
                subject: "a".into(),
                schema: BREAKS.into(),
            },
        ];
        let run = || {
            let mut state = RegistryState::default();
            log.iter().map(|c| state.apply(c)).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
        assert_eq!(run()[4], Ok(Reply::Registered { id: 3 }));
    }
}
