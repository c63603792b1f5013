//! Pipeline files (`pipelines/*.yaml`): what a pipeline reads (topic, reader schema), how it
//! keeps event time (field, watermark delay, grace, idleness) and what it computes
//! (windowed aggregates grouped by any fields, projections). Loading checks everything and
//! reports every problem with the file, the place and what is wrong; syntax and type
//! errors carry YAML line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use apache_avro::schema::RecordSchema;
use apache_avro::Schema;
use serde::Deserialize;

use super::{AggregateKind, AggregateParams, WindowSpec};
use crate::contracts::{interaction_schema, InteractionVersion};

/// A pipeline file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineFile {
    name: String,
    source: SourceFile,
    event_time: EventTimeFile,
    #[serde(default)]
    late_topic: Option<String>,
    #[serde(default)]
    aggregates: Vec<AggregateFile>,
    #[serde(default)]
    projections: Vec<ProjectionFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    topic: String,
    reader_schema: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventTimeFile {
    field: String,
    watermark_delay: String,
    grace: String,
    #[serde(default = "default_idle_after")]
    idle_after: String,
    #[serde(default = "default_max_ahead")]
    max_ahead: String,
}

fn default_idle_after() -> String {
    "30s".to_owned()
}

/// By default the watermark never runs ahead of the records' Kafka timestamps.
fn default_max_ahead() -> String {
    "0s".to_owned()
}

/// `{tumbling: 1m}`, `{hopping: {size: 5m, hop: 1m}}` or `{session: {gap: 30m}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowFile {
    #[serde(default)]
    tumbling: Option<String>,
    #[serde(default)]
    hopping: Option<HoppingFile>,
    #[serde(default)]
    session: Option<SessionFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoppingFile {
    size: String,
    hop: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionFile {
    gap: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AggregateFile {
    name: String,
    window: WindowFile,
    aggregate: String,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    group_by: Vec<String>,
    #[serde(default)]
    filter: BTreeMap<String, String>,
    #[serde(default)]
    k: Option<usize>,
    #[serde(default)]
    quantiles: Option<Vec<f64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectionFile {
    name: String,
    kind: ProjectionKind,
}

/// The read models a pipeline can keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectionKind {
    /// Per user: last seen, counts by type, total value, current session.
    User,
    /// Per item: views, clicks, add-to-carts, purchases, conversion rate.
    Item,
    /// Per session: start, end, length, events, converted or not.
    Session,
}

/// A windowed aggregate, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateSpec {
    /// Unique within the pipeline.
    pub name: String,
    /// Event-time window.
    pub window: WindowSpec,
    /// What it computes.
    pub kind: AggregateKind,
    /// The field aggregated (none for `count`).
    pub field: Option<String>,
    /// Fields the results are grouped by.
    pub group_by: Vec<String>,
    /// Only events whose fields equal these values.
    pub filter: BTreeMap<String, String>,
    /// Sketch parameters.
    pub params: AggregateParams,
}

/// A projection, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionSpec {
    /// Unique within the pipeline.
    pub name: String,
    /// Which read model.
    pub kind: ProjectionKind,
}

/// A pipeline, checked.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Its name.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// The topic it folds.
    pub topic: String,
    /// The contract version it reads with.
    pub reader_version: InteractionVersion,
    /// The reader schema.
    pub reader: Schema,
    /// The event-time field.
    pub event_time_field: String,
    /// Watermark = highest event time seen − this.
    pub watermark_delay_ms: u64,
    /// A window is final once the watermark passes its end + this.
    pub grace_ms: u64,
    /// A partition without events for this long stops holding the others back.
    pub idle_after_ms: u64,
    /// An event's time moves its partition's watermark at most this far past its Kafka
    /// record's timestamp (see [`Pipeline::watermark_time`]; default 0).
    pub max_ahead_ms: u64,
    /// Where late events are copied.
    pub late_topic: String,
    /// Its aggregates.
    pub aggregates: Vec<AggregateSpec>,
    /// Its projections.
    pub projections: Vec<ProjectionSpec>,
}

/// One problem in a pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: a path into the file, e.g. `aggregates[2] (top_items).field`.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

/// A pipeline file that cannot be used, with every problem found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {}", .file.display(), render(.problems))]
pub struct PipelineError {
    /// The file.
    pub file: PathBuf,
    /// Every problem.
    pub problems: Vec<Problem>,
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| {
            if p.place.is_empty() {
                p.message.clone()
            } else {
                format!("{}: {}", p.place, p.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Parses a duration such as `500ms`, `5s`, `1m`, `2h`, `1d`.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (write e.g. 500ms, 5s, 1m, 2h, 1d)"))?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("'{text}' has no known unit (ms, s, m, h, d)")),
    };
    value
        .checked_mul(factor)
        .ok_or_else(|| format!("'{text}' is too long"))
}

/// What a field of the reader schema can be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldUse {
    /// Strings, enums, longs: group, filter, count distinct, top-k.
    Scalar,
    /// Also sum, min, max, avg, percentiles.
    Numeric,
    /// Maps and records: none of the above.
    Composite,
}

fn field_uses(reader: &Schema) -> BTreeMap<String, FieldUse> {
    fn classify(schema: &Schema) -> FieldUse {
        match schema {
            Schema::Int
            | Schema::Long
            | Schema::Float
            | Schema::Double
            | Schema::TimestampMillis
            | Schema::TimestampMicros => FieldUse::Numeric,
            Schema::String | Schema::Enum(_) | Schema::Boolean | Schema::Uuid(_) => {
                FieldUse::Scalar
            }
            Schema::Union(union) => {
                let branches: Vec<FieldUse> = union
                    .variants()
                    .iter()
                    .filter(|s| **s != Schema::Null)
                    .map(classify)
                    .collect();
                match branches.as_slice() {
                    [one] => *one,
                    _ => FieldUse::Composite,
                }
            }
            _ => FieldUse::Composite,
        }
    }
    let mut out = BTreeMap::new();
    if let Schema::Record(RecordSchema { fields, .. }) = reader {
        for field in fields {
            out.insert(field.name.clone(), classify(&field.schema));
            if let Schema::Record(RecordSchema { fields: inner, .. }) = &field.schema {
                for nested in inner {
                    out.insert(
                        format!("{}.{}", field.name, nested.name),
                        classify(&nested.schema),
                    );
                }
            }
        }
    }
    out
}

fn reader_version(text: &str) -> Option<InteractionVersion> {
    let stem = text.trim().trim_end_matches(".avsc");
    let number = stem.strip_prefix("interaction/v")?.parse().ok()?;
    InteractionVersion::from_number(number)
}

/// Loads and checks one pipeline file.
pub fn load_pipeline(path: &Path) -> Result<Pipeline, PipelineError> {
    let fail = |problems| PipelineError {
        file: path.to_owned(),
        problems,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(vec![Problem {
            place: String::new(),
            message: format!("cannot read the file: {e}"),
        }])
    })?;
    parse_pipeline(path, &text)
}

/// Parses and checks pipeline YAML (`path` names it in errors).
pub fn parse_pipeline(path: &Path, text: &str) -> Result<Pipeline, PipelineError> {
    let file: PipelineFile = yaml_serde::from_str(text).map_err(|e| PipelineError {
        file: path.to_owned(),
        problems: vec![Problem {
            place: String::new(),
            message: e.to_string(),
        }],
    })?;
    let mut problems = Vec::new();
    let mut problem = |place: String, message: String| problems.push(Problem { place, message });
    let identifier = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if !identifier(&file.name) {
        problem(
            "name".into(),
            format!("'{}' must be lowercase letters, digits and _", file.name),
        );
    }
    if file.source.topic.trim().is_empty() {
        problem("source.topic".into(), "must not be empty".into());
    }
    let version = reader_version(&file.source.reader_schema);
    if version.is_none() {
        let known: Vec<String> = InteractionVersion::ALL
            .iter()
            .map(|v| format!("interaction/v{}.avsc", v.number()))
            .collect();
        problem(
            "source.reader_schema".into(),
            format!(
                "'{}' is not a contract in schemas/ (known: {})",
                file.source.reader_schema,
                known.join(", ")
            ),
        );
    }
    let reader = version.and_then(|v| interaction_schema(v).ok());
    let fields = reader.as_ref().map(field_uses).unwrap_or_default();
    let field_list = fields.keys().cloned().collect::<Vec<_>>().join(", ");
    let check_field =
        |place: String, field: &str, needs: FieldUse, problem: &mut dyn FnMut(String, String)| {
            if reader.is_none() {
                return;
            }
            match fields.get(field) {
                None => problem(
                    place,
                    format!("'{field}' is not a field of the reader schema (fields: {field_list})"),
                ),
                Some(FieldUse::Composite) => problem(
                    place,
                    format!("'{field}' is a map or record; use one of its scalar fields"),
                ),
                Some(FieldUse::Scalar) if needs == FieldUse::Numeric => {
                    problem(place, format!("'{field}' is not numeric"))
                }
                Some(_) => {}
            }
        };
    check_field(
        "event_time.field".into(),
        &file.event_time.field,
        FieldUse::Numeric,
        &mut problem,
    );
    let duration =
        |place: &str, text: &str, problem: &mut dyn FnMut(String, String)| match parse_duration_ms(
            text,
        ) {
            Ok(ms) => ms,
            Err(message) => {
                problem(place.to_owned(), message);
                0
            }
        };
    let watermark_delay_ms = duration(
        "event_time.watermark_delay",
        &file.event_time.watermark_delay,
        &mut problem,
    );
    let grace_ms = duration("event_time.grace", &file.event_time.grace, &mut problem);
    let idle_after_ms = duration(
        "event_time.idle_after",
        &file.event_time.idle_after,
        &mut problem,
    );
    let max_ahead_ms = duration(
        "event_time.max_ahead",
        &file.event_time.max_ahead,
        &mut problem,
    );
    let mut names = BTreeSet::new();
    let mut aggregates = Vec::new();
    for (index, aggregate) in file.aggregates.iter().enumerate() {
        let at = format!("aggregates[{index}] ({})", aggregate.name);
        if !identifier(&aggregate.name) {
            problem(
                format!("{at}.name"),
                "must be lowercase letters, digits and _".into(),
            );
        }
        if !names.insert(aggregate.name.clone()) {
            problem(format!("{at}.name"), "is used twice".into());
        }
        let window = match (
            &aggregate.window.tumbling,
            &aggregate.window.hopping,
            &aggregate.window.session,
        ) {
            (Some(size), None, None) => WindowSpec::Tumbling {
                size_ms: duration(&format!("{at}.window.tumbling"), size, &mut problem),
            },
            (None, Some(hopping), None) => WindowSpec::Hopping {
                size_ms: duration(
                    &format!("{at}.window.hopping.size"),
                    &hopping.size,
                    &mut problem,
                ),
                hop_ms: duration(
                    &format!("{at}.window.hopping.hop"),
                    &hopping.hop,
                    &mut problem,
                ),
            },
            (None, None, Some(session)) => WindowSpec::Session {
                gap_ms: duration(
                    &format!("{at}.window.session.gap"),
                    &session.gap,
                    &mut problem,
                ),
            },
            _ => {
                problem(
                    format!("{at}.window"),
                    "give exactly one of tumbling, hopping or session".into(),
                );
                WindowSpec::Tumbling { size_ms: 1 }
            }
        };
        for error in window.problems() {
            problem(format!("{at}.window"), error.to_string());
        }
        let kind: Option<AggregateKind> = aggregate.aggregate.parse().ok();
        if kind.is_none() {
            problem(format!("{at}.aggregate"), format!("'{}' is not an aggregate (count, sum, min, max, avg, count_distinct, top_k, percentiles)", aggregate.aggregate));
        }
        let needs = match kind {
            Some(AggregateKind::Count) | None => None,
            Some(AggregateKind::CountDistinct | AggregateKind::TopK) => Some(FieldUse::Scalar),
            Some(_) => Some(FieldUse::Numeric),
        };
        match (&aggregate.field, needs) {
            (Some(_), None) if kind.is_some() => {
                problem(format!("{at}.field"), "count takes no field".into())
            }
            (None, Some(_)) => problem(
                format!("{at}.field"),
                format!("{} needs a field", aggregate.aggregate),
            ),
            (Some(field), Some(needs)) => {
                check_field(format!("{at}.field"), field, needs, &mut problem)
            }
            _ => {}
        }
        for (i, group) in aggregate.group_by.iter().enumerate() {
            check_field(
                format!("{at}.group_by[{i}]"),
                group,
                FieldUse::Scalar,
                &mut problem,
            );
        }
        for key in aggregate.filter.keys() {
            check_field(
                format!("{at}.filter.{key}"),
                key,
                FieldUse::Scalar,
                &mut problem,
            );
        }
        if aggregate.k.is_some() && kind != Some(AggregateKind::TopK) {
            problem(format!("{at}.k"), "only top_k takes k".into());
        }
        if aggregate.quantiles.is_some() && kind != Some(AggregateKind::Percentiles) {
            problem(
                format!("{at}.quantiles"),
                "only percentiles takes quantiles".into(),
            );
        }
        let mut params = AggregateParams::default();
        if let Some(k) = aggregate.k {
            params.k = k;
            params.capacity = params.capacity.max(k.saturating_mul(10));
        }
        if let Some(quantiles) = &aggregate.quantiles {
            params.quantiles = quantiles.clone();
        }
        for error in params.problems() {
            problem(at.clone(), error.to_string());
        }
        if let Some(kind) = kind {
            aggregates.push(AggregateSpec {
                name: aggregate.name.clone(),
                window,
                kind,
                field: aggregate.field.clone(),
                group_by: aggregate.group_by.clone(),
                filter: aggregate.filter.clone(),
                params,
            });
        }
    }
    let mut projections = Vec::new();
    for (index, projection) in file.projections.iter().enumerate() {
        if !identifier(&projection.name) || !names.insert(projection.name.clone()) {
            problem(
                format!("projections[{index}] ({}).name", projection.name),
                "must be unique lowercase letters, digits and _".into(),
            );
        }
        projections.push(ProjectionSpec {
            name: projection.name.clone(),
            kind: projection.kind,
        });
    }
    match (problems.is_empty(), version, reader) {
        (true, Some(reader_version), Some(reader)) => Ok(Pipeline {
            late_topic: file
                .late_topic
                .unwrap_or_else(|| format!("{}-late", file.source.topic)),
            name: file.name,
            file: path.to_owned(),
            topic: file.source.topic,
            reader_version,
            reader,
            event_time_field: file.event_time.field,
            watermark_delay_ms,
            grace_ms,
            idle_after_ms,
            max_ahead_ms,
            aggregates,
            projections,
        }),
        _ => Err(PipelineError {
            file: path.to_owned(),
            problems,
        }),
    }
}

/// Loads every `*.yaml` pipeline of a folder (sorted by name); all errors, not the first.
pub fn load_pipelines(folder: &Path) -> Result<Vec<Pipeline>, Vec<PipelineError>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(folder) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect(),
        Err(e) => {
            return Err(vec![PipelineError {
                file: folder.to_owned(),
                problems: vec![Problem {
                    place: String::new(),
                    message: format!("cannot read the folder: {e}"),
                }],
            }])
        }
    };
    files.sort();
    let (mut pipelines, mut errors) = (Vec::new(), Vec::new());
    for file in files {
        match load_pipeline(&file) {
            Ok(pipeline) => pipelines.push(pipeline),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(pipelines)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pipeline, PipelineError> {
        parse_pipeline(Path::new("pipelines/test.yaml"), text)
    }

    const BASE: &str = "name: p\nsource: {topic: interactions, reader_schema: interaction/v2.avsc}\nevent_time: {field: occurred_at, watermark_delay: 5s, grace: 30s}\n";

    #[test]
    fn the_shipped_pipeline_loads() {
        let pipeline = load_pipeline(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/pipelines/interactions.yaml"
        )))
        .unwrap();
        assert_eq!(pipeline.topic, "interactions");
        assert_eq!(pipeline.reader_version, InteractionVersion::V2);
        assert_eq!(
            (pipeline.watermark_delay_ms, pipeline.grace_ms),
            (5_000, 30_000)
        );
        assert!(pipeline.aggregates.len() >= 6);
        assert_eq!(pipeline.projections.len(), 3);
        assert_eq!(pipeline.late_topic, "interactions-late");
    }

    #[test]
    fn durations_parse_and_refuse() {
        for (text, ms) in [
            ("500ms", 500),
            ("5s", 5_000),
            ("1m", 60_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
            ("0s", 0),
        ] {
            assert_eq!(parse_duration_ms(text), Ok(ms), "{text}");
        }
        for bad in [
            "",
            "5",
            "s",
            "1.5s",
            "5 sec",
            "-1s",
            "99999999999999999999d",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let text = format!(
            "{BASE}aggregates:\n  - {{name: a, window: {{tumbling: 1x}}, aggregate: count}}\n  - {{name: a, window: {{hopping: {{size: 1m, hop: 5m}}}}, aggregate: median, field: value}}\n  - {{name: b, window: {{tumbling: 1m}}, aggregate: sum, field: user_id}}\n  - {{name: c, window: {{tumbling: 1m}}, aggregate: top_k, field: itme_id, group_by: [properties], k: 0}}\n  - {{name: d, window: {{tumbling: 1m}}, aggregate: count, field: value, quantiles: [2.0]}}\n"
        );
        let error = parse(&text).unwrap_err();
        let places: Vec<&str> = error.problems.iter().map(|p| p.place.as_str()).collect();
        for expected in [
            "aggregates[0] (a).window.tumbling",
            "aggregates[1] (a).name",
            "aggregates[1] (a).window",
            "aggregates[1] (a).aggregate",
            "aggregates[2] (b).field",
            "aggregates[3] (c).field",
            "aggregates[3] (c).group_by[0]",
            "aggregates[3] (c)",
            "aggregates[4] (d).field",
            "aggregates[4] (d).quantiles",
        ] {
            assert!(places.contains(&expected), "missing {expected}: {error}");
        }
        let message = error.to_string();
        assert!(message.starts_with("pipelines/test.yaml: "), "{message}");
        assert!(
            message.contains("'itme_id' is not a field of the reader schema"),
            "{message}"
        );
        assert!(message.contains("'user_id' is not numeric"), "{message}");
    }

    /// Found while writing the `pipeline_file` fuzz target: the top-k capacity is 10 × k,
    /// which overflowed (a panic with overflow checks, a wrapped capacity without).
    #[test]
    fn a_k_too_large_for_its_capacity_is_a_problem_not_an_overflow() {
        let error = parse(&format!(
            "{BASE}aggregates:\n  - {{name: top, window: {{tumbling: 1m}}, aggregate: top_k, field: item_id, k: 1844674407370955162}}\n"
        ))
        .unwrap_err();
        assert_eq!(
            error.problems,
            vec![Problem {
                place: "aggregates[0] (top)".into(),
                message: "capacity must be between 1 and 100000, got 18446744073709551615".into(),
            }]
        );
    }

    #[test]
    fn syntax_and_unknown_fields_carry_line_and_column() {
        let unknown = parse(&format!("{BASE}aggregatez: []\n"))
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("unknown field `aggregatez`") && unknown.contains("line 4"),
            "{unknown}"
        );
        let wrong_type = parse("name: p\nsource: 5\n").unwrap_err().to_string();
        assert!(
            wrong_type.contains("source") && wrong_type.contains("line 2"),
            "{wrong_type}"
        );
        let bad_schema = parse("name: p\nsource: {topic: t, reader_schema: interaction/v9.avsc}\nevent_time: {field: app, watermark_delay: 1s, grace: 1s}\n").unwrap_err();
        let places: Vec<&str> = bad_schema
            .problems
            .iter()
            .map(|p| p.place.as_str())
            .collect();
        assert_eq!(places, vec!["source.reader_schema"]);
        let not_numeric = parse("name: p\nsource: {topic: t, reader_schema: interaction/v1.avsc}\nevent_time: {field: app, watermark_delay: 1s, grace: 1s}\n").unwrap_err();
        assert_eq!(not_numeric.problems[0].place, "event_time.field");
    }

    #[test]
    fn deeply_nested_files_are_refused_with_a_clear_error_and_no_stack_overflow() {
        let depth = 10_000;
        let sequences = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let mappings = format!("{}0{}", "{a: ".repeat(depth), "}".repeat(depth));
        for (place, deep) in [
            ("aggregates", &sequences),
            ("projections", &mappings),
            ("late_topic", &sequences),
        ] {
            let error = parse(&format!("{BASE}{place}: {deep}\n")).unwrap_err();
            assert_eq!(error.problems.len(), 1, "{error}");
            let message = error.to_string();
            assert!(
                message.starts_with("pipelines/test.yaml: ") && message.contains("line 4"),
                "{place}: {message}"
            );
            assert!(message.contains("invalid type"), "{place}: {message}");
        }
        // The whole document nested: refused at its first level.
        let whole = parse(&sequences).unwrap_err().to_string();
        assert!(whole.contains("invalid type: sequence"), "{whole}");
        // Where YAML is read as a generic value (the bench's pipeline copy), the parser's
        // recursion limit of 128 levels holds.
        let generic = yaml_serde::from_str::<yaml_serde::Value>(&sequences)
            .unwrap_err()
            .to_string();
        assert!(generic.starts_with("recursion limit exceeded"), "{generic}");
    }
}
