//! Avro reader/writer schema compatibility, following the "Schema Resolution" rules of the
//! Avro 1.11 specification, plus the Confluent compatibility levels built on top of them.
//!
//! [`can_read`] walks a writer schema and a reader schema side by side and returns every
//! reason the reader cannot decode data written with the writer, each tagged with a
//! [`Rule`] and a JSON-pointer-like path into the reader schema (`/fields/device/fields/os`,
//! `/fields/tags/items`, `/fields/attrs/values`). [`check_level`] applies a
//! [`CompatibilityLevel`] to a new schema and a subject's existing versions. Everything here
//! is pure: no IO, no async, and no panics on schema input.
//!
//! The rules: primitives match themselves and promote `int → long, float, double`,
//! `long → float, double`, `float → double` and `string ↔ bytes`; arrays and maps resolve
//! their items and values; records, enums and fixed types match when their unqualified names
//! are equal or a reader alias names the writer's full name; record fields match by name or
//! reader field alias, writer-only fields are skipped and reader-only fields need a default;
//! a writer enum symbol unknown to the reader is an error unless the reader enum declares a
//! default; fixed sizes must be equal; every branch of a writer union must be readable, and a
//! reader union reads a non-union writer with its first matching branch. Logical types are
//! checked as their underlying type, except that two decimals must agree on precision and
//! scale. Recursive named types are checked once per (writer name, reader name) pair.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use apache_avro::schema::{
    Alias, DecimalSchema, EnumSchema, FixedSchema, InnerDecimalSchema, Name, RecordField,
    RecordSchema, UuidSchema,
};
use apache_avro::Schema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A subject's compatibility level, with Confluent Schema Registry's names and meanings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CompatibilityLevel {
    /// No check: every new schema is accepted.
    None,
    /// The new schema can read data written with the latest version.
    #[default]
    Backward,
    /// The new schema can read data written with every existing version.
    BackwardTransitive,
    /// The latest version can read data written with the new schema.
    Forward,
    /// Every existing version can read data written with the new schema.
    ForwardTransitive,
    /// Both [`Backward`](Self::Backward) and [`Forward`](Self::Forward).
    Full,
    /// Both [`BackwardTransitive`](Self::BackwardTransitive) and
    /// [`ForwardTransitive`](Self::ForwardTransitive).
    FullTransitive,
}

impl CompatibilityLevel {
    /// Every level, in Confluent's documentation order.
    pub const ALL: [CompatibilityLevel; 7] = [
        Self::None,
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
    ];

    /// Confluent's upper-case name of the level, e.g. `"BACKWARD_TRANSITIVE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn checks_backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    fn checks_forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a string that names no [`CompatibilityLevel`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown compatibility level '{0}' (expected one of NONE, BACKWARD, BACKWARD_TRANSITIVE, \
     FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE)"
)]
pub struct UnknownCompatibilityLevel(pub String);

impl FromStr for CompatibilityLevel {
    type Err = UnknownCompatibilityLevel;

    /// Parses Confluent's level names, ignoring ASCII case and surrounding whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownCompatibilityLevel(s.to_string()))
    }
}

impl Serialize for CompatibilityLevel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CompatibilityLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The resolution rule an [`Incompatibility`] breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The reader's type cannot read the writer's type, even with promotion.
    TypeMismatch,
    /// A reader record field is absent from the writer record and has no default.
    ReaderFieldMissingDefaultValue,
    /// The writer enum has symbols the reader enum lacks, and the reader has no default.
    MissingEnumSymbols,
    /// No branch of the reader union can read (a branch of) the writer's type.
    MissingUnionBranch,
    /// Named types whose names differ and that no reader alias reconciles.
    NameMismatch,
    /// Fixed types of different sizes.
    FixedSizeMismatch,
    /// Two decimal logical types whose precision or scale differ (the specification matches
    /// decimals only when both are equal).
    DecimalMismatch,
    /// A schema refers to a named type it never defines.
    UnresolvedReference,
}

impl Rule {
    /// Confluent-style upper snake name of the rule, e.g. `"MISSING_UNION_BRANCH"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TypeMismatch => "TYPE_MISMATCH",
            Self::ReaderFieldMissingDefaultValue => "READER_FIELD_MISSING_DEFAULT_VALUE",
            Self::MissingEnumSymbols => "MISSING_ENUM_SYMBOLS",
            Self::MissingUnionBranch => "MISSING_UNION_BRANCH",
            Self::NameMismatch => "NAME_MISMATCH",
            Self::FixedSizeMismatch => "FIXED_SIZE_MISMATCH",
            Self::DecimalMismatch => "DECIMAL_MISMATCH",
            Self::UnresolvedReference => "UNRESOLVED_REFERENCE",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason a reader schema cannot read data written with a writer schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incompatibility {
    /// Where in the reader schema: `/` for the root, then `fields/NAME`, `items` and
    /// `values` segments, e.g. `/fields/device/fields/os`.
    pub path: String,
    /// The rule broken.
    pub rule: Rule,
    /// A human-readable explanation naming the types, fields or symbols involved.
    pub detail: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.path, self.detail, self.rule)
    }
}

/// Every reason `reader` cannot read data written with `writer` (empty = compatible).
pub fn can_read(writer: &Schema, reader: &Schema) -> Vec<Incompatibility> {
    let mut checker = Checker::new(writer, reader);
    checker.check(At::root(writer), At::root(reader), ROOT);
    checker.found
}

/// Checks a new schema against the subject's existing schemas (oldest first) under `level`:
/// BACKWARD = new reads latest; FORWARD = latest reads new; FULL = both; *_TRANSITIVE =
/// against all existing; NONE = always ok.
///
/// Returns one message per incompatibility (empty = accepted), each prefixed with the
/// direction and the version that failed, where version `n` is the `n`-th (1-based) entry of
/// `existing`: `"new schema cannot read version 2: /fields/x: …"` or
/// `"version 2 cannot read new schema: /fields/x: …"`.
pub fn check_level(level: CompatibilityLevel, new: &Schema, existing: &[&Schema]) -> Vec<String> {
    let first = if level.is_transitive() {
        0
    } else {
        existing.len().saturating_sub(1)
    };
    let mut messages = Vec::new();
    for (index, old) in existing.iter().enumerate().skip(first) {
        let version = index + 1;
        if level.checks_backward() {
            for problem in can_read(old, new) {
                messages.push(format!(
                    "new schema cannot read version {version}: {problem}"
                ));
            }
        }
        if level.checks_forward() {
            for problem in can_read(new, old) {
                messages.push(format!(
                    "version {version} cannot read new schema: {problem}"
                ));
            }
        }
    }
    messages
}

/// The path of the reader schema's root.
const ROOT: &str = "/";

/// How many `Ref` hops a lookup follows before giving up.
const MAX_REF_HOPS: usize = 8;

/// Appends one segment to a reader path.
fn child(path: &str, segment: &str) -> String {
    if path == ROOT {
        format!("/{segment}")
    } else {
        format!("{path}/{segment}")
    }
}

/// A schema together with the namespace enclosing it, which qualifies relative names.
#[derive(Clone, Copy)]
struct At<'a> {
    schema: &'a Schema,
    ns: Option<&'a str>,
}

impl<'a> At<'a> {
    fn new(schema: &'a Schema, ns: Option<&'a str>) -> Self {
        At { schema, ns }
    }

    fn root(schema: &'a Schema) -> Self {
        At { schema, ns: None }
    }

    fn with(self, schema: &'a Schema) -> Self {
        At::new(schema, self.ns)
    }
}

/// The namespace that names inside a named type inherit.
fn inner_ns<'a>(name: &'a Name, enclosing: Option<&'a str>) -> Option<&'a str> {
    name.namespace().or(enclosing)
}

/// A schema reduced to what resolution looks at: logical types become their underlying type.
#[derive(Clone, Copy)]
enum Shape<'a> {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Array(&'a Schema),
    Map(&'a Schema),
    Union(&'a [Schema]),
    Record(&'a RecordSchema),
    Enum(&'a EnumSchema),
    Fixed(&'a FixedSchema),
}

/// The shape of a schema, or `None` for a `Ref` that still needs a lookup.
fn shape_of(schema: &Schema) -> Option<Shape<'_>> {
    let shape = match schema {
        Schema::Null => Shape::Null,
        Schema::Boolean => Shape::Boolean,
        Schema::Int | Schema::Date | Schema::TimeMillis => Shape::Int,
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => Shape::Long,
        Schema::Float => Shape::Float,
        Schema::Double => Shape::Double,
        Schema::Bytes
        | Schema::BigDecimal
        | Schema::Uuid(UuidSchema::Bytes)
        | Schema::Decimal(DecimalSchema {
            inner: InnerDecimalSchema::Bytes,
            ..
        }) => Shape::Bytes,
        Schema::String | Schema::Uuid(UuidSchema::String) => Shape::String,
        Schema::Fixed(fixed)
        | Schema::Duration(fixed)
        | Schema::Uuid(UuidSchema::Fixed(fixed))
        | Schema::Decimal(DecimalSchema {
            inner: InnerDecimalSchema::Fixed(fixed),
            ..
        }) => Shape::Fixed(fixed),
        Schema::Array(array) => Shape::Array(&array.items),
        Schema::Map(map) => Shape::Map(&map.types),
        Schema::Union(union) => Shape::Union(union.variants()),
        Schema::Record(record) => Shape::Record(record),
        Schema::Enum(enumeration) => Shape::Enum(enumeration),
        Schema::Ref { .. } => return None,
    };
    Some(shape)
}

/// The `(precision, scale)` of a decimal logical type.
fn decimal_of(schema: &Schema) -> Option<(usize, usize)> {
    match schema {
        Schema::Decimal(decimal) => Some((decimal.precision, decimal.scale)),
        _ => None,
    }
}

/// A resolved schema (never a `Ref`) with its enclosing namespace.
#[derive(Clone, Copy)]
struct Node<'a> {
    shape: Shape<'a>,
    /// `(precision, scale)` when the schema is a decimal logical type.
    decimal: Option<(usize, usize)>,
    ns: Option<&'a str>,
}

impl Node<'_> {
    /// A short description for messages: `int`, `array`, `record 'com.acme.User'`, ….
    fn describe(&self) -> String {
        match self.shape {
            Shape::Null => "null".into(),
            Shape::Boolean => "boolean".into(),
            Shape::Int => "int".into(),
            Shape::Long => "long".into(),
            Shape::Float => "float".into(),
            Shape::Double => "double".into(),
            Shape::Bytes => "bytes".into(),
            Shape::String => "string".into(),
            Shape::Array(_) => "array".into(),
            Shape::Map(_) => "map".into(),
            Shape::Union(_) => "union".into(),
            Shape::Record(record) => format!("record '{}'", record.name.fullname(self.ns)),
            Shape::Enum(enumeration) => format!("enum '{}'", enumeration.name.fullname(self.ns)),
            Shape::Fixed(fixed) => format!("fixed '{}'", fixed.name.fullname(self.ns)),
        }
    }
}

/// The name and aliases of a named schema other than a record.
fn named_parts(schema: &Schema) -> Option<(&Name, Option<&Vec<Alias>>)> {
    match schema {
        Schema::Enum(enumeration) => Some((&enumeration.name, enumeration.aliases.as_ref())),
        Schema::Fixed(fixed)
        | Schema::Duration(fixed)
        | Schema::Uuid(UuidSchema::Fixed(fixed))
        | Schema::Decimal(DecimalSchema {
            inner: InnerDecimalSchema::Fixed(fixed),
            ..
        }) => Some((&fixed.name, fixed.aliases.as_ref())),
        _ => None,
    }
}

/// Every named type a schema defines, by full name (and, where free, by alias).
#[derive(Default)]
struct NameTable<'a> {
    named: HashMap<String, At<'a>>,
}

impl<'a> NameTable<'a> {
    fn build(root: &'a Schema) -> Self {
        let mut table = NameTable::default();
        let mut aliases = Vec::new();
        table.collect(At::root(root), &mut aliases);
        for (alias, at) in aliases {
            table.named.entry(alias).or_insert(at);
        }
        table
    }

    fn collect(&mut self, at: At<'a>, aliases: &mut Vec<(String, At<'a>)>) {
        match at.schema {
            Schema::Array(array) => self.collect(at.with(&array.items), aliases),
            Schema::Map(map) => self.collect(at.with(&map.types), aliases),
            Schema::Union(union) => {
                for variant in union.variants() {
                    self.collect(at.with(variant), aliases);
                }
            }
            Schema::Record(record) => {
                if self.define(&record.name, record.aliases.as_ref(), at, aliases) {
                    let ns = inner_ns(&record.name, at.ns);
                    for field in &record.fields {
                        self.collect(At::new(&field.schema, ns), aliases);
                    }
                }
            }
            other => {
                if let Some((name, named_aliases)) = named_parts(other) {
                    self.define(name, named_aliases, at, aliases);
                }
            }
        }
    }

    /// Records a definition; false if the name was already defined.
    fn define(
        &mut self,
        name: &Name,
        named_aliases: Option<&Vec<Alias>>,
        at: At<'a>,
        aliases: &mut Vec<(String, At<'a>)>,
    ) -> bool {
        let full = name.fullname(at.ns);
        if self.named.contains_key(&full) {
            return false;
        }
        self.named.insert(full, at);
        let alias_ns = inner_ns(name, at.ns);
        for alias in named_aliases.into_iter().flatten() {
            aliases.push((alias.fullname(alias_ns), at));
        }
        true
    }

    fn lookup(&self, name: &Name, ns: Option<&str>) -> Option<At<'a>> {
        self.named
            .get(&name.fullname(ns))
            .or_else(|| self.named.get(&name.fullname(None)))
            .copied()
    }

    /// Follows `Ref`s to a definition; the error is the full name that is not defined.
    fn resolve(&self, at: At<'a>) -> Result<Node<'a>, String> {
        let mut current = at;
        for _ in 0..MAX_REF_HOPS {
            let Schema::Ref { name } = current.schema else {
                break;
            };
            current = self
                .lookup(name, current.ns)
                .ok_or_else(|| name.fullname(current.ns))?;
        }
        let shape = shape_of(current.schema).ok_or_else(|| ref_name(current))?;
        Ok(Node {
            shape,
            decimal: decimal_of(current.schema),
            ns: current.ns,
        })
    }
}

/// The full name a `Ref` points to (empty for any other schema).
fn ref_name(at: At<'_>) -> String {
    match at.schema {
        Schema::Ref { name } => name.fullname(at.ns),
        _ => String::new(),
    }
}

/// Which schema a lookup belongs to.
#[derive(Clone, Copy)]
enum Side {
    Writer,
    Reader,
}

fn same_primitive(writer: &Shape<'_>, reader: &Shape<'_>) -> bool {
    matches!(
        (writer, reader),
        (Shape::Null, Shape::Null)
            | (Shape::Boolean, Shape::Boolean)
            | (Shape::Int, Shape::Int)
            | (Shape::Long, Shape::Long)
            | (Shape::Float, Shape::Float)
            | (Shape::Double, Shape::Double)
            | (Shape::Bytes, Shape::Bytes)
            | (Shape::String, Shape::String)
    )
}

fn promotes(writer: &Shape<'_>, reader: &Shape<'_>) -> bool {
    matches!(
        (writer, reader),
        (Shape::Int, Shape::Long | Shape::Float | Shape::Double)
            | (Shape::Long, Shape::Float | Shape::Double)
            | (Shape::Float, Shape::Double)
            | (Shape::String, Shape::Bytes)
            | (Shape::Bytes, Shape::String)
    )
}

/// A named type's name, reader-side aliases and enclosing namespace.
#[derive(Clone, Copy)]
struct Named<'s> {
    name: &'s Name,
    aliases: Option<&'s Vec<Alias>>,
    ns: Option<&'s str>,
}

impl<'s> Named<'s> {
    fn record(record: &'s RecordSchema, ns: Option<&'s str>) -> Self {
        Named {
            name: &record.name,
            aliases: record.aliases.as_ref(),
            ns,
        }
    }

    fn enumeration(enumeration: &'s EnumSchema, ns: Option<&'s str>) -> Self {
        Named {
            name: &enumeration.name,
            aliases: enumeration.aliases.as_ref(),
            ns,
        }
    }

    fn fixed(fixed: &'s FixedSchema, ns: Option<&'s str>) -> Self {
        Named {
            name: &fixed.name,
            aliases: fixed.aliases.as_ref(),
            ns,
        }
    }

    fn full(&self) -> String {
        self.name.fullname(self.ns)
    }
}

/// Named types match when their unqualified names are equal (Avro 1.11: "records with the
/// same (unqualified) name") or a reader alias is the writer's full name.
fn names_match(writer: Named<'_>, reader: Named<'_>) -> bool {
    if writer.name.name() == reader.name.name() {
        return true;
    }
    let writer_full = writer.full();
    let alias_ns = inner_ns(reader.name, reader.ns);
    reader
        .aliases
        .into_iter()
        .flatten()
        .any(|alias| alias.fullname(alias_ns) == writer_full)
}

/// The specification's shallow "match" of a non-union writer with one reader union branch.
///
/// Fixed sizes and decimal parameters are left to the recursive check, so that a branch of
/// the right name reports `FIXED_SIZE_MISMATCH` or `DECIMAL_MISMATCH` rather than a vaguer
/// `MISSING_UNION_BRANCH` (the verdict is the same: a union holds one type of each name).
fn branch_matches(writer: &Node<'_>, reader: &Node<'_>) -> bool {
    let (w, r) = (writer.shape, reader.shape);
    match (w, r) {
        (Shape::Array(_), Shape::Array(_)) | (Shape::Map(_), Shape::Map(_)) => true,
        (Shape::Record(wr), Shape::Record(rr)) => {
            names_match(Named::record(wr, writer.ns), Named::record(rr, reader.ns))
        }
        (Shape::Enum(we), Shape::Enum(re)) => names_match(
            Named::enumeration(we, writer.ns),
            Named::enumeration(re, reader.ns),
        ),
        (Shape::Fixed(wf), Shape::Fixed(rf)) => {
            names_match(Named::fixed(wf, writer.ns), Named::fixed(rf, reader.ns))
        }
        _ => same_primitive(&w, &r) || promotes(&w, &r),
    }
}

/// The writer field a reader field reads: same name first, then the reader field's aliases.
fn writer_field<'a>(writer: &'a RecordSchema, reader: &RecordField) -> Option<&'a RecordField> {
    let by_name = |name: &str| writer.fields.iter().find(|field| field.name == name);
    by_name(&reader.name).or_else(|| reader.aliases.iter().find_map(|alias| by_name(alias)))
}

/// The walk over one writer/reader pair.
struct Checker<'a> {
    writer: NameTable<'a>,
    reader: NameTable<'a>,
    /// (writer full name, reader full name) of record pairs already checked or in progress.
    visited: HashSet<(String, String)>,
    found: Vec<Incompatibility>,
}

impl<'a> Checker<'a> {
    fn new(writer: &'a Schema, reader: &'a Schema) -> Self {
        Checker {
            writer: NameTable::build(writer),
            reader: NameTable::build(reader),
            visited: HashSet::new(),
            found: Vec::new(),
        }
    }

    fn report(&mut self, path: &str, rule: Rule, detail: String) {
        self.found.push(Incompatibility {
            path: path.to_string(),
            rule,
            detail,
        });
    }

    fn resolve(&mut self, side: Side, at: At<'a>, path: &str) -> Option<Node<'a>> {
        let table = match side {
            Side::Writer => &self.writer,
            Side::Reader => &self.reader,
        };
        match table.resolve(at) {
            Ok(node) => Some(node),
            Err(name) => {
                let which = match side {
                    Side::Writer => "writer",
                    Side::Reader => "reader",
                };
                let detail = format!("{which} schema refers to undefined type '{name}'");
                self.report(path, Rule::UnresolvedReference, detail);
                None
            }
        }
    }

    fn check(&mut self, writer: At<'a>, reader: At<'a>, path: &str) {
        let Some(w) = self.resolve(Side::Writer, writer, path) else {
            return;
        };
        let Some(r) = self.resolve(Side::Reader, reader, path) else {
            return;
        };
        self.check_nodes(w, r, path);
    }

    fn check_nodes(&mut self, writer: Node<'a>, reader: Node<'a>, path: &str) {
        match (writer.shape, reader.shape) {
            (Shape::Union(branches), _) => {
                self.check_writer_union(branches, writer.ns, reader, path)
            }
            (_, Shape::Union(branches)) => {
                self.check_reader_union(writer, branches, reader.ns, path)
            }
            _ => self.check_plain(writer, reader, path),
        }
    }

    /// Every branch the writer may have written must be readable.
    fn check_writer_union(
        &mut self,
        branches: &'a [Schema],
        writer_ns: Option<&'a str>,
        reader: Node<'a>,
        path: &str,
    ) {
        for (index, branch) in branches.iter().enumerate() {
            let start = self.found.len();
            let at = At::new(branch, writer_ns);
            if let Some(writer) = self.resolve(Side::Writer, at, path) {
                self.check_nodes(writer, reader, path);
            }
            for problem in &mut self.found[start..] {
                if problem.path == path {
                    problem.detail = format!("writer union branch {index}: {}", problem.detail);
                }
            }
        }
    }

    /// A non-union writer is read by the first reader branch that matches it.
    fn check_reader_union(
        &mut self,
        writer: Node<'a>,
        branches: &'a [Schema],
        reader_ns: Option<&'a str>,
        path: &str,
    ) {
        let mut seen = Vec::with_capacity(branches.len());
        for branch in branches {
            let at = At::new(branch, reader_ns);
            let Some(reader) = self.resolve(Side::Reader, at, path) else {
                continue;
            };
            if branch_matches(&writer, &reader) {
                self.check_nodes(writer, reader, path);
                return;
            }
            seen.push(reader.describe());
        }
        let detail = format!(
            "reader union [{}] has no branch that can read writer type {}",
            seen.join(", "),
            writer.describe()
        );
        self.report(path, Rule::MissingUnionBranch, detail);
    }

    /// Neither side is a union.
    fn check_plain(&mut self, writer: Node<'a>, reader: Node<'a>, path: &str) {
        self.check_decimal(&writer, &reader, path);
        match (writer.shape, reader.shape) {
            (Shape::Array(w), Shape::Array(r)) => {
                let (w, r) = (At::new(w, writer.ns), At::new(r, reader.ns));
                self.check(w, r, &child(path, "items"));
            }
            (Shape::Map(w), Shape::Map(r)) => {
                let (w, r) = (At::new(w, writer.ns), At::new(r, reader.ns));
                self.check(w, r, &child(path, "values"));
            }
            (Shape::Record(w), Shape::Record(r)) => {
                self.check_record(w, writer.ns, r, reader.ns, path)
            }
            (Shape::Enum(w), Shape::Enum(r)) => self.check_enum(w, writer.ns, r, reader.ns, path),
            (Shape::Fixed(w), Shape::Fixed(r)) => {
                self.check_fixed(w, writer.ns, r, reader.ns, path)
            }
            (w, r) if same_primitive(&w, &r) || promotes(&w, &r) => {}
            _ => {
                let detail = format!(
                    "reader type {} cannot read writer type {}",
                    reader.describe(),
                    writer.describe()
                );
                self.report(path, Rule::TypeMismatch, detail);
            }
        }
    }

    /// Decimal logical types match only if precision and scale are equal (Avro 1.11,
    /// "Decimal"); a decimal and a plain `bytes`/`fixed` follow the underlying type.
    fn check_decimal(&mut self, writer: &Node<'a>, reader: &Node<'a>, path: &str) {
        if let (Some((wp, ws)), Some((rp, rs))) = (writer.decimal, reader.decimal) {
            if (wp, ws) != (rp, rs) {
                let detail = format!(
                    "reader decimal(precision {rp}, scale {rs}) cannot read writer \
                     decimal(precision {wp}, scale {ws})"
                );
                self.report(path, Rule::DecimalMismatch, detail);
            }
        }
    }

    /// Reports a name mismatch; true if the names match.
    fn check_names(
        &mut self,
        kind: &str,
        writer: Named<'_>,
        reader: Named<'_>,
        path: &str,
    ) -> bool {
        if names_match(writer, reader) {
            return true;
        }
        let detail = format!(
            "reader {kind} '{}' does not match writer {kind} '{}' (different names and no \
             reader alias for '{}')",
            reader.full(),
            writer.full(),
            writer.full()
        );
        self.report(path, Rule::NameMismatch, detail);
        false
    }

    fn check_record(
        &mut self,
        writer: &'a RecordSchema,
        writer_ns: Option<&'a str>,
        reader: &'a RecordSchema,
        reader_ns: Option<&'a str>,
        path: &str,
    ) {
        let (w_named, r_named) = (
            Named::record(writer, writer_ns),
            Named::record(reader, reader_ns),
        );
        if !self.check_names("record", w_named, r_named, path) {
            return;
        }
        let pair = (w_named.full(), r_named.full());
        if !self.visited.insert(pair) {
            return;
        }
        let w_inner = inner_ns(&writer.name, writer_ns);
        let r_inner = inner_ns(&reader.name, reader_ns);
        let fields_path = child(path, "fields");
        for field in &reader.fields {
            let field_path = child(&fields_path, &field.name);
            match writer_field(writer, field) {
                Some(source) => {
                    let w = At::new(&source.schema, w_inner);
                    let r = At::new(&field.schema, r_inner);
                    self.check(w, r, &field_path);
                }
                None if field.default.is_some() => {}
                None => {
                    let detail = format!(
                        "reader field '{}' has no default and is missing from the writer",
                        field.name
                    );
                    self.report(&field_path, Rule::ReaderFieldMissingDefaultValue, detail);
                }
            }
        }
    }

    fn check_enum(
        &mut self,
        writer: &EnumSchema,
        writer_ns: Option<&str>,
        reader: &EnumSchema,
        reader_ns: Option<&str>,
        path: &str,
    ) {
        let (w_named, r_named) = (
            Named::enumeration(writer, writer_ns),
            Named::enumeration(reader, reader_ns),
        );
        if !self.check_names("enum", w_named, r_named, path) {
            return;
        }
        if reader.default.is_some() {
            return;
        }
        let missing: Vec<&str> = writer
            .symbols
            .iter()
            .filter(|symbol| !reader.symbols.contains(symbol))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let detail = format!(
                "reader enum '{}' lacks writer symbols [{}] and declares no default symbol",
                r_named.full(),
                missing.join(", ")
            );
            self.report(path, Rule::MissingEnumSymbols, detail);
        }
    }

    fn check_fixed(
        &mut self,
        writer: &FixedSchema,
        writer_ns: Option<&str>,
        reader: &FixedSchema,
        reader_ns: Option<&str>,
        path: &str,
    ) {
        let (w_named, r_named) = (
            Named::fixed(writer, writer_ns),
            Named::fixed(reader, reader_ns),
        );
        self.check_names("fixed", w_named, r_named, path);
        if writer.size != reader.size {
            let detail = format!(
                "reader fixed '{}' has size {} but writer fixed '{}' has size {}",
                r_named.full(),
                reader.size,
                w_named.full(),
                writer.size
            );
            self.report(path, Rule::FixedSizeMismatch, detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Schema {
        Schema::parse_str(json).unwrap_or_else(|e| panic!("bad test schema {json}: {e}"))
    }

    /// `(path, rule)` of every incompatibility, in report order.
    fn verdict(writer: &Schema, reader: &Schema) -> Vec<(String, Rule)> {
        can_read(writer, reader)
            .into_iter()
            .map(|problem| (problem.path, problem.rule))
            .collect()
    }

    const INT: &str = r#""int""#;
    const LONG: &str = r#""long""#;
    const FLOAT: &str = r#""float""#;
    const DOUBLE: &str = r#""double""#;
    const STRING: &str = r#""string""#;
    const BYTES: &str = r#""bytes""#;
    const BOOLEAN: &str = r#""boolean""#;
    const NULL: &str = r#""null""#;
    const DEVICE_V1: &str = r#"{"type":"record","name":"Event","fields":[
        {"name":"device","type":{"type":"record","name":"Device","fields":[
            {"name":"model","type":"string"}]}}]}"#;
    const DEVICE_V2: &str = r#"{"type":"record","name":"Event","fields":[
        {"name":"device","type":{"type":"record","name":"Device","fields":[
            {"name":"model","type":"string"},{"name":"os","type":"string"}]}}]}"#;
    const STATUS_V1: &str = r#"{"type":"record","name":"Ticket","fields":[
        {"name":"status","type":{"type":"enum","name":"Status","symbols":["OPEN","CLOSED"]}}]}"#;
    const STATUS_V2: &str = r#"{"type":"record","name":"Ticket","fields":[
        {"name":"status","type":{"type":"enum","name":"Status","symbols":["OPEN"]}}]}"#;
    const STATUS_DEFAULT: &str = r#"{"type":"record","name":"Ticket","fields":[
        {"name":"status","type":{"type":"enum","name":"Status","symbols":["OPEN","OTHER"],
         "default":"OTHER"}}]}"#;
    const TAGS_STRING: &str = r#"{"type":"record","name":"Post","fields":[
        {"name":"tags","type":{"type":"array","items":"string"}}]}"#;
    const TAGS_INT: &str = r#"{"type":"record","name":"Post","fields":[
        {"name":"tags","type":{"type":"array","items":"int"}}]}"#;
    const ATTRS_INT: &str = r#"{"type":"record","name":"Post","fields":[
        {"name":"attrs","type":{"type":"map","values":"int"}}]}"#;
    const ATTRS_BOOL: &str = r#"{"type":"record","name":"Post","fields":[
        {"name":"attrs","type":{"type":"map","values":"boolean"}}]}"#;
    const PRICE: &str =
        r#"{"type":"record","name":"Item","fields":[{"name":"id","type":"string"}]}"#;
    const PRICE_NO_DEFAULT: &str = r#"{"type":"record","name":"Item","fields":[
        {"name":"id","type":"string"},{"name":"price","type":"double"}]}"#;
    const PRICE_DEFAULT: &str = r#"{"type":"record","name":"Item","fields":[
        {"name":"id","type":"string"},{"name":"price","type":"double","default":0.0}]}"#;
    const COST: &str = r#"{"type":"record","name":"Item","fields":[
        {"name":"id","type":"string"},{"name":"cost","type":"double"}]}"#;
    const PRICE_ALIAS: &str = r#"{"type":"record","name":"Item","fields":[
        {"name":"id","type":"string"},{"name":"price","type":"double","aliases":["cost"]}]}"#;
    const USER: &str = r#"{"type":"record","name":"User","namespace":"com.acme","fields":[]}"#;
    const USER_OTHER_NS: &str =
        r#"{"type":"record","name":"User","namespace":"org.other","fields":[]}"#;
    const CUSTOMER: &str =
        r#"{"type":"record","name":"Customer","namespace":"com.acme","fields":[]}"#;
    const CUSTOMER_ALIAS: &str = r#"{"type":"record","name":"Customer","namespace":"com.acme",
        "aliases":["User"],"fields":[]}"#;
    const HASH16: &str = r#"{"type":"fixed","name":"Hash","size":16}"#;
    const HASH32: &str = r#"{"type":"fixed","name":"Hash","size":32}"#;
    const DIGEST16: &str = r#"{"type":"fixed","name":"Digest","size":16}"#;
    const DIGEST_ALIAS: &str = r#"{"type":"fixed","name":"Digest","size":16,"aliases":["Hash"]}"#;
    const DEC_10_2: &str = r#"{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}"#;
    const DEC_10_3: &str = r#"{"type":"bytes","logicalType":"decimal","precision":10,"scale":3}"#;
    const TS_MILLIS: &str = r#"{"type":"long","logicalType":"timestamp-millis"}"#;
    const DATE: &str = r#"{"type":"int","logicalType":"date"}"#;
    const UUID: &str = r#"{"type":"string","logicalType":"uuid"}"#;
    const LIST_INT: &str = r#"{"type":"record","name":"Node","fields":[
        {"name":"value","type":"int"},{"name":"next","type":["null","Node"],"default":null}]}"#;
    const LIST_LONG: &str = r#"{"type":"record","name":"Node","fields":[
        {"name":"value","type":"long"},{"name":"next","type":["null","Node"],"default":null}]}"#;

    use Rule::*;

    /// (case, writer, reader, expected `(path, rule)` list).
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        &'static [(&'static str, Rule)],
    );

    const RULES: &[Row] = &[
        // TYPE_MISMATCH and the promotions.
        ("int to long", INT, LONG, &[]),
        ("long to int", LONG, INT, &[("/", TypeMismatch)]),
        ("int to float", INT, FLOAT, &[]),
        ("int to double", INT, DOUBLE, &[]),
        ("long to float", LONG, FLOAT, &[]),
        ("long to double", LONG, DOUBLE, &[]),
        ("float to double", FLOAT, DOUBLE, &[]),
        ("double to float", DOUBLE, FLOAT, &[("/", TypeMismatch)]),
        ("string to bytes", STRING, BYTES, &[]),
        ("bytes to string", BYTES, STRING, &[]),
        ("int to string", INT, STRING, &[("/", TypeMismatch)]),
        ("boolean to null", BOOLEAN, NULL, &[("/", TypeMismatch)]),
        ("array items ok", TAGS_INT, TAGS_INT, &[]),
        (
            "array items",
            TAGS_STRING,
            TAGS_INT,
            &[("/fields/tags/items", TypeMismatch)],
        ),
        ("map values ok", ATTRS_BOOL, ATTRS_BOOL, &[]),
        (
            "map values",
            ATTRS_INT,
            ATTRS_BOOL,
            &[("/fields/attrs/values", TypeMismatch)],
        ),
        ("fixed vs bytes", HASH16, BYTES, &[("/", TypeMismatch)]),
        (
            "record vs array",
            PRICE,
            r#"{"type":"array","items":"int"}"#,
            &[("/", TypeMismatch)],
        ),
        // Logical types follow their underlying type.
        ("long to timestamp", LONG, TS_MILLIS, &[]),
        ("timestamp to long", TS_MILLIS, LONG, &[]),
        ("date to timestamp", DATE, TS_MILLIS, &[]),
        ("timestamp to date", TS_MILLIS, DATE, &[("/", TypeMismatch)]),
        ("uuid to string", UUID, STRING, &[]),
        ("uuid to bytes", UUID, BYTES, &[]),
        ("decimal to bytes", DEC_10_2, BYTES, &[]),
        // READER_FIELD_MISSING_DEFAULT_VALUE and field matching.
        ("field added with default", PRICE, PRICE_DEFAULT, &[]),
        (
            "field added without default",
            PRICE,
            PRICE_NO_DEFAULT,
            &[("/fields/price", ReaderFieldMissingDefaultValue)],
        ),
        ("field removed", PRICE_NO_DEFAULT, PRICE, &[]),
        ("field renamed with alias", COST, PRICE_ALIAS, &[]),
        (
            "field renamed without alias",
            COST,
            PRICE_NO_DEFAULT,
            &[("/fields/price", ReaderFieldMissingDefaultValue)],
        ),
        (
            "alias read in reverse",
            PRICE_ALIAS,
            COST,
            &[("/fields/cost", ReaderFieldMissingDefaultValue)],
        ),
        ("nested field removed", DEVICE_V2, DEVICE_V1, &[]),
        (
            "nested field added",
            DEVICE_V1,
            DEVICE_V2,
            &[("/fields/device/fields/os", ReaderFieldMissingDefaultValue)],
        ),
        // MISSING_ENUM_SYMBOLS.
        ("enum symbol added", STATUS_V2, STATUS_V1, &[]),
        (
            "enum symbol removed",
            STATUS_V1,
            STATUS_V2,
            &[("/fields/status", MissingEnumSymbols)],
        ),
        ("enum default absorbs", STATUS_V1, STATUS_DEFAULT, &[]),
        (
            "enum default not in old",
            STATUS_DEFAULT,
            STATUS_V1,
            &[("/fields/status", MissingEnumSymbols)],
        ),
        // MISSING_UNION_BRANCH and unions.
        (
            "union branch added",
            r#"["null","string"]"#,
            r#"["null","string","int"]"#,
            &[],
        ),
        (
            "union branch removed",
            r#"["null","string","int"]"#,
            r#"["null","string"]"#,
            &[("/", MissingUnionBranch)],
        ),
        ("plain to union", STRING, r#"["null","string"]"#, &[]),
        (
            "plain to union by promotion",
            INT,
            r#"["null","double"]"#,
            &[],
        ),
        (
            "plain missing from union",
            BOOLEAN,
            r#"["null","string"]"#,
            &[("/", MissingUnionBranch)],
        ),
        ("union to plain", r#"["int","long"]"#, LONG, &[]),
        (
            "optional to plain",
            r#"["null","string"]"#,
            STRING,
            &[("/", TypeMismatch)],
        ),
        (
            "union record renamed",
            r#"["null",{"type":"record","name":"A","fields":[]}]"#,
            r#"["null",{"type":"record","name":"B","fields":[]}]"#,
            &[("/", MissingUnionBranch)],
        ),
        (
            "union record nested field",
            r#"["null",{"type":"record","name":"A","fields":[]}]"#,
            r#"["null",{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}]"#,
            &[("/fields/x", ReaderFieldMissingDefaultValue)],
        ),
        // NAME_MISMATCH, aliases and namespaces.
        ("record renamed", USER, CUSTOMER, &[("/", NameMismatch)]),
        ("record renamed with alias", USER, CUSTOMER_ALIAS, &[]),
        (
            "record alias is namespace-relative",
            USER_OTHER_NS,
            CUSTOMER_ALIAS,
            &[("/", NameMismatch)],
        ),
        ("record namespace changed", USER, USER_OTHER_NS, &[]),
        ("fixed renamed", HASH16, DIGEST16, &[("/", NameMismatch)]),
        ("fixed renamed with alias", HASH16, DIGEST_ALIAS, &[]),
        (
            "enum renamed",
            r#"{"type":"enum","name":"E","symbols":["A"]}"#,
            r#"{"type":"enum","name":"F","symbols":["A"]}"#,
            &[("/", NameMismatch)],
        ),
        // FIXED_SIZE_MISMATCH.
        ("fixed same", HASH16, HASH16, &[]),
        ("fixed resized", HASH16, HASH32, &[("/", FixedSizeMismatch)]),
        // DECIMAL_MISMATCH.
        ("decimal same", DEC_10_2, DEC_10_2, &[]),
        (
            "decimal rescaled",
            DEC_10_2,
            DEC_10_3,
            &[("/", DecimalMismatch)],
        ),
        // Recursive types terminate.
        ("recursive promoted", LIST_INT, LIST_LONG, &[]),
        (
            "recursive narrowed",
            LIST_LONG,
            LIST_INT,
            &[("/fields/value", TypeMismatch)],
        ),
    ];

    #[test]
    fn rules_table() {
        let mut failures = Vec::new();
        for (case, writer, reader, expected) in RULES {
            let got = verdict(&parse(writer), &parse(reader));
            let want: Vec<(String, Rule)> = expected
                .iter()
                .map(|(path, rule)| (path.to_string(), *rule))
                .collect();
            if got != want {
                failures.push(format!("{case}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn every_rule_is_covered_both_ways() {
        let rules = [
            TypeMismatch,
            ReaderFieldMissingDefaultValue,
            MissingEnumSymbols,
            MissingUnionBranch,
            NameMismatch,
            FixedSizeMismatch,
            DecimalMismatch,
        ];
        for rule in rules {
            let breaking = RULES
                .iter()
                .any(|row| row.3.iter().any(|(_, r)| *r == rule));
            assert!(breaking, "no row breaks {rule}");
        }
        assert!(RULES.iter().filter(|row| row.3.is_empty()).count() >= rules.len());
    }

    #[test]
    fn unresolved_reference_is_reported_not_panicked() {
        let dangling = Schema::Ref {
            name: Name::new("com.acme.Missing").expect("valid name"),
        };
        let got = can_read(&dangling, &Schema::Int);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rule, UnresolvedReference);
        assert!(
            got[0].detail.contains("com.acme.Missing"),
            "{}",
            got[0].detail
        );
    }

    #[test]
    fn display_names_path_detail_and_rule() {
        let got = can_read(&parse(PRICE), &parse(PRICE_NO_DEFAULT));
        assert_eq!(
            got[0].to_string(),
            "/fields/price: reader field 'price' has no default and is missing from the writer \
             (READER_FIELD_MISSING_DEFAULT_VALUE)"
        );
        let got = can_read(&parse(STATUS_V1), &parse(STATUS_V2));
        assert_eq!(
            got[0].to_string(),
            "/fields/status: reader enum 'Status' lacks writer symbols [CLOSED] and declares no \
             default symbol (MISSING_ENUM_SYMBOLS)"
        );
        let got = can_read(&parse(r#"["null","string"]"#), &parse(STRING));
        assert_eq!(
            got[0].to_string(),
            "/: writer union branch 0: reader type string cannot read writer type null \
             (TYPE_MISMATCH)"
        );
        let got = can_read(&parse(HASH16), &parse(HASH32));
        assert!(got[0].detail.contains("size 32") && got[0].detail.contains("size 16"));
    }

    #[test]
    fn rule_names_are_confluent_style() {
        assert_eq!(TypeMismatch.as_str(), "TYPE_MISMATCH");
        assert_eq!(
            ReaderFieldMissingDefaultValue.as_str(),
            "READER_FIELD_MISSING_DEFAULT_VALUE"
        );
        assert_eq!(MissingEnumSymbols.as_str(), "MISSING_ENUM_SYMBOLS");
        assert_eq!(MissingUnionBranch.as_str(), "MISSING_UNION_BRANCH");
        assert_eq!(NameMismatch.as_str(), "NAME_MISMATCH");
        assert_eq!(FixedSizeMismatch.as_str(), "FIXED_SIZE_MISMATCH");
    }

    #[test]
    fn level_names_round_trip() {
        for level in CompatibilityLevel::ALL {
            assert_eq!(level.as_str().parse::<CompatibilityLevel>(), Ok(level));
            let lower = level.as_str().to_ascii_lowercase();
            assert_eq!(lower.parse::<CompatibilityLevel>(), Ok(level));
            let json = serde_json::to_string(&level).expect("serialize");
            assert_eq!(json, format!("\"{}\"", level.as_str()));
            let back: CompatibilityLevel = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, level);
        }
        assert_eq!(
            "Backward_Transitive".parse::<CompatibilityLevel>(),
            Ok(CompatibilityLevel::BackwardTransitive)
        );
        assert_eq!(CompatibilityLevel::default(), CompatibilityLevel::Backward);
        let err = "SIDEWAYS".parse::<CompatibilityLevel>().unwrap_err();
        assert_eq!(err, UnknownCompatibilityLevel("SIDEWAYS".into()));
        assert!(serde_json::from_str::<CompatibilityLevel>("\"SIDEWAYS\"").is_err());
    }

    #[test]
    fn levels_pick_direction_and_versions() {
        // v1 lacks `price`; v2 adds it with a default; `new` makes it required.
        let v1 = parse(PRICE);
        let v2 = parse(PRICE_DEFAULT);
        let new = parse(PRICE_NO_DEFAULT);
        let existing = [&v1, &v2];
        use CompatibilityLevel as L;
        // (level, messages expected) — reading v2 works (field present), reading v1 does not;
        // old versions can always read `new` (they ignore or default the field).
        let table: &[(L, &[&str])] = &[
            (L::None, &[]),
            (L::Backward, &[]),
            (
                L::BackwardTransitive,
                &["new schema cannot read version 1: /fields/price: "],
            ),
            (L::Forward, &[]),
            (L::ForwardTransitive, &[]),
            (L::Full, &[]),
            (
                L::FullTransitive,
                &["new schema cannot read version 1: /fields/price: "],
            ),
        ];
        for (level, expected) in table {
            let got = check_level(*level, &new, &existing);
            assert_eq!(got.len(), expected.len(), "{level}: {got:?}");
            for (message, prefix) in got.iter().zip(expected.iter()) {
                assert!(message.starts_with(prefix), "{level}: {message}");
            }
        }
        // Forward direction: v2 (requires nothing) vs a new schema that drops `id`.
        let dropped = parse(r#"{"type":"record","name":"Item","fields":[]}"#);
        let got = check_level(L::Forward, &dropped, &existing);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("version 2 cannot read new schema: /fields/id: "),
            "{got:?}"
        );
        assert_eq!(check_level(L::Full, &dropped, &existing).len(), 1);
        assert_eq!(check_level(L::FullTransitive, &dropped, &existing).len(), 2);
        assert!(check_level(L::Backward, &dropped, &[]).is_empty());
    }

    #[test]
    fn compat_pairs_fixture_agrees() {
        let pairs: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/compat_pairs.json"))
                .expect("fixture is JSON");
        let pairs = pairs.as_array().expect("fixture is an array");
        assert!(pairs.len() >= 48, "only {} cases", pairs.len());
        let mut failures = Vec::new();
        for pair in pairs {
            let name = pair["name"].as_str().expect("name");
            let writer = Schema::parse(&pair["writer"]).expect("writer parses");
            let reader = Schema::parse(&pair["reader"]).expect("reader parses");
            for (key, w, r) in [
                ("reader_can_read_writer", &writer, &reader),
                ("writer_can_read_reader", &reader, &writer),
            ] {
                let want = pair[key].as_bool().expect("verdict is a bool");
                let problems = can_read(w, r);
                if problems.is_empty() != want {
                    failures.push(format!("{name} {key}: want {want}, got {problems:?}"));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
