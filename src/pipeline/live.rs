//! The live partials of one partition: every window and session an on-time event can still
//! change, held in memory by the partition's owner and folded event by event. After each
//! micro-batch the changed partials are handed to the store whole ([`PartialChange`]), so
//! the store writes them without reading; windows no on-time event can reach any more are
//! dropped from memory ([`LiveAggregates::evict`]). Loaded back from the store on
//! assignment ([`LiveAggregates::restore`]): rebalancing moves no state between workers.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use super::aggregates::Value;
use super::fold::{EventField, FoldError, FoldInput, Partial};
use super::spec::{AggregateSpec, Pipeline};
use super::{
    AggregateState, GridAssignment, SessionTracker, Window, WindowError, WindowGrid, WindowSpec,
};
use crate::contracts::{EventType, EventTypeSet};

/// What a batch did to one stored partial.
#[derive(Debug, Clone, PartialEq)]
pub enum PartialChange {
    /// Write this state (insert or replace).
    Upsert(Box<Partial>),
    /// A session merged into another one: remove its row.
    Delete {
        /// The aggregate's name.
        aggregate: String,
        /// The session that no longer exists.
        window: Window,
        /// Its group key.
        group: String,
    },
}

/// A partial, whether it changed since the last [`LiveAggregates::take_changes`], and
/// whether the store holds a row under its key (a session re-keyed away from a stored row
/// must delete it; one created and re-keyed within a batch never reached the store).
struct LiveState {
    state: AggregateState,
    changed: bool,
    stored: bool,
}

impl LiveState {
    fn stored(state: AggregateState) -> Self {
        LiveState {
            state,
            changed: false,
            stored: true,
        }
    }

    fn fresh(state: AggregateState) -> Self {
        LiveState {
            state,
            changed: false,
            stored: false,
        }
    }
}

/// The live windowed and session partials of one partition of one pipeline.
pub struct LiveAggregates {
    pipeline: Arc<Pipeline>,
    /// Per aggregate of the pipeline (same order), its live partials.
    aggregates: Vec<LiveAggregate>,
}

/// One aggregate's live partials in one partition: they change with no other aggregate's,
/// so the aggregates of a batch can fold on different threads ([`LiveAggregates::parts_mut`]).
struct LiveAggregate {
    /// Its fields resolved once.
    inputs: Inputs,
    /// How its events find their windows (an invalid spec's error: specs are checked when
    /// the pipeline is loaded, so it is never taken).
    windowing: Result<Windowing, WindowError>,
    /// Tumbling and hopping partials: window → group → state.
    windowed: HashMap<Window, HashMap<String, LiveState>>,
    /// A session aggregate's partials: per group, the state of each of its sessions (a
    /// few: those not final yet).
    session_states: HashMap<String, Vec<(Window, LiveState)>>,
    /// Sessions merged into others since the last [`LiveAggregates::take_changes`].
    removed: Vec<(Window, String)>,
    /// Reused to build group keys.
    group: String,
}

/// How an aggregate's events find their windows.
enum Windowing {
    /// Tumbling or hopping windows, on their grid (the last event's reused within its hop).
    Grid(GridAssignment),
    /// Sessions per group, closed by an inactivity gap.
    Sessions(SessionTracker<String>),
}

/// One aggregate of a partition, ready to fold events apart from the others.
pub struct LivePart<'a> {
    spec: &'a AggregateSpec,
    live: &'a mut LiveAggregate,
}

impl Pipeline {
    /// The event time at or below which no event can be on time any more in a partition
    /// whose highest event time is `max_event_ms`: an event at `ts` is late as soon as some
    /// windowed aggregate of size `s` has `ts + s + grace ≤ watermark`. Windows and sessions
    /// ending at or before it can never change again. `None`: any event may still be on
    /// time (nothing seen yet, or no tumbling or hopping aggregate decides lateness).
    pub fn earliest_on_time(&self, max_event_ms: Option<i64>) -> Option<i64> {
        let watermark = max_event_ms?.saturating_sub(self.watermark_delay_ms as i64);
        let smallest = self
            .aggregates
            .iter()
            .filter_map(|a| match a.window {
                WindowSpec::Tumbling { size_ms } | WindowSpec::Hopping { size_ms, .. } => {
                    Some(size_ms)
                }
                WindowSpec::Session { .. } => None,
            })
            .min()?;
        let bound = i128::from(watermark) - i128::from(self.grace_ms) - i128::from(smallest);
        Some(i64::try_from(bound).unwrap_or(i64::MIN))
    }
}

impl LiveAggregates {
    /// No live partial yet.
    pub fn new(pipeline: Arc<Pipeline>) -> Self {
        let aggregates = pipeline.aggregates.iter().map(LiveAggregate::new).collect();
        LiveAggregates {
            pipeline,
            aggregates,
        }
    }

    /// Takes back partials read from the store (those of aggregates the pipeline no longer
    /// has are ignored). Restored partials are not changes.
    pub fn restore(&mut self, stored: Vec<Partial>) {
        for partial in stored {
            let Some(index) = self
                .pipeline
                .aggregates
                .iter()
                .position(|a| a.name == partial.aggregate)
            else {
                continue;
            };
            self.aggregates[index].restore(partial);
        }
    }

    /// Folds one on-time, distinct event into every aggregate.
    pub fn add(&mut self, event: &impl FoldInput) -> Result<(), FoldError> {
        self.parts_mut().try_for_each(|mut part| part.add(event))
    }

    /// Each aggregate's live partials, to fold apart: folding an event into every part, in
    /// any order, is [`LiveAggregates::add`].
    pub fn parts_mut(&mut self) -> impl Iterator<Item = LivePart<'_>> + '_ {
        self.pipeline
            .aggregates
            .iter()
            .zip(self.aggregates.iter_mut())
            .map(|(spec, live)| LivePart { spec, live })
    }

    /// Every partial changed since the last call, as the store must write it.
    pub fn take_changes(&mut self) -> Vec<PartialChange> {
        let specs = &self.pipeline.aggregates;
        // Deletes first: a session may be replaced by one with the same bounds.
        let mut changes: Vec<PartialChange> = specs
            .iter()
            .zip(&mut self.aggregates)
            .flat_map(|(spec, live)| {
                live.removed
                    .drain(..)
                    .map(|(window, group)| PartialChange::Delete {
                        aggregate: spec.name.clone(),
                        window,
                        group,
                    })
            })
            .collect();
        for (spec, live) in specs.iter().zip(&mut self.aggregates) {
            live.take_upserts(&spec.name, &mut changes);
        }
        changes
    }

    /// Drops from memory every window and session no on-time event can change any more
    /// (ending at or before [`Pipeline::earliest_on_time`]); they stay in the store.
    pub fn evict(&mut self, max_event_ms: Option<i64>) {
        let Some(bound) = self.pipeline.earliest_on_time(max_event_ms) else {
            return;
        };
        for live in &mut self.aggregates {
            live.evict(bound);
        }
    }

    /// Partials held in memory.
    pub fn len(&self) -> usize {
        self.aggregates.iter().map(LiveAggregate::len).sum()
    }

    /// Holds no partial.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LivePart<'_> {
    /// The event types this aggregate's filter lets through: an event of another type
    /// changes nothing here ([`LivePart::add`] skips it), so a caller may skip it first.
    pub fn event_types(&self) -> EventTypeSet {
        self.live.inputs.types
    }

    /// Folds one on-time, distinct event into this aggregate.
    pub fn add(&mut self, event: &impl FoldInput) -> Result<(), FoldError> {
        let LivePart { spec, live } = self;
        let aggregate = *spec;
        let LiveAggregate {
            inputs,
            windowing,
            windowed,
            session_states,
            removed,
            group,
        } = &mut **live;
        let Some(value) = inputs.contribution(event, group) else {
            return Ok(());
        };
        let failed = |source| FoldError::Aggregate {
            aggregate: aggregate.name.clone(),
            source,
        };
        let windowing = windowing.as_mut().map_err(|error| FoldError::Window {
            aggregate: aggregate.name.clone(),
            source: error.clone(),
        })?;
        match windowing {
            Windowing::Sessions(tracker) => {
                let change = tracker
                    .insert_borrowed(group.as_str(), event.occurred_at())
                    .map_err(|source| FoldError::Window {
                        aggregate: aggregate.name.clone(),
                        source,
                    })?;
                let window = change.window();
                let held = match session_states.get_mut(group.as_str()) {
                    Some(held) => held,
                    None => session_states.entry(group.clone()).or_default(),
                };
                // The common case, an event joining or extending one held session: its
                // state is updated where it lies (the general path below is equivalent).
                if let [old] = change.replaced() {
                    if let Some((held_window, live)) = held.iter_mut().find(|(w, _)| w == old) {
                        if *old != window {
                            if live.stored {
                                removed.push((*old, group.clone()));
                            }
                            live.stored = false;
                            *held_window = window;
                        }
                        live.state.add(value).map_err(failed)?;
                        live.changed = true;
                        return Ok(());
                    }
                }
                let mut merged: Option<AggregateState> = None;
                let mut stored = false;
                for old in change.replaced() {
                    // A session known to the tracker but not held is taken as stored.
                    let (state, old_stored) = match held.iter().position(|(w, _)| w == old) {
                        Some(at) => {
                            let (_, previous) = held.swap_remove(at);
                            (Some(previous.state), previous.stored)
                        }
                        None => (None, true),
                    };
                    if let Some(state) = state {
                        match &mut merged {
                            Some(into) => into.merge(&state).map_err(failed)?,
                            None => merged = Some(state),
                        }
                    }
                    if *old == window {
                        stored |= old_stored;
                    } else if old_stored {
                        removed.push((*old, group.clone()));
                    }
                }
                let mut state = match merged {
                    Some(state) => state,
                    None => {
                        AggregateState::new(aggregate.kind, &aggregate.params).map_err(failed)?
                    }
                };
                state.add(value).map_err(failed)?;
                held.push((
                    window,
                    LiveState {
                        state,
                        changed: true,
                        stored,
                    },
                ));
            }
            Windowing::Grid(assignment) => {
                let windows = assignment.windows(event.occurred_at()).map_err(|source| {
                    FoldError::Window {
                        aggregate: aggregate.name.clone(),
                        source,
                    }
                })?;
                for window in windows {
                    let groups = windowed.entry(*window).or_default();
                    let live = match groups.get_mut(group.as_str()) {
                        Some(live) => live,
                        None => groups.entry(group.clone()).or_insert(LiveState::fresh(
                            AggregateState::new(aggregate.kind, &aggregate.params)
                                .map_err(failed)?,
                        )),
                    };
                    live.state.add(value).map_err(failed)?;
                    live.changed = true;
                }
            }
        }
        Ok(())
    }
}

impl LiveAggregate {
    fn new(spec: &AggregateSpec) -> Self {
        let windowing = match spec.window {
            WindowSpec::Session { gap_ms } => SessionTracker::new(gap_ms)
                .map(Windowing::Sessions)
                .map_err(WindowError::from),
            _ => {
                WindowGrid::of(&spec.window).map(|grid| Windowing::Grid(GridAssignment::new(grid)))
            }
        };
        LiveAggregate {
            inputs: Inputs::new(spec),
            windowing,
            windowed: HashMap::default(),
            session_states: HashMap::default(),
            removed: Vec::new(),
            group: String::new(),
        }
    }

    fn restore(&mut self, partial: Partial) {
        match &mut self.windowing {
            Ok(Windowing::Sessions(tracker)) => {
                tracker.restore(partial.group.clone(), partial.window);
                let held = self.session_states.entry(partial.group).or_default();
                held.retain(|(window, _)| *window != partial.window);
                held.push((partial.window, LiveState::stored(partial.state)));
            }
            Ok(Windowing::Grid(_)) | Err(_) => {
                self.windowed
                    .entry(partial.window)
                    .or_default()
                    .insert(partial.group, LiveState::stored(partial.state));
            }
        }
    }

    /// Appends an upsert of every partial changed since the last call to `changes`.
    fn take_upserts(&mut self, name: &str, changes: &mut Vec<PartialChange>) {
        let upsert = |window: Window, group: &str, live: &mut LiveState| {
            live.changed = false;
            live.stored = true;
            PartialChange::Upsert(Box::new(Partial {
                aggregate: name.to_owned(),
                window,
                group: group.to_owned(),
                state: live.state.clone(),
            }))
        };
        for (&window, groups) in &mut self.windowed {
            for (group, live) in groups.iter_mut().filter(|(_, live)| live.changed) {
                changes.push(upsert(window, group, live));
            }
        }
        for (group, held) in &mut self.session_states {
            for (window, live) in held.iter_mut().filter(|(_, live)| live.changed) {
                changes.push(upsert(*window, group, live));
            }
        }
    }

    fn evict(&mut self, bound: i64) {
        self.windowed.retain(|window, _| window.end_ms > bound);
        if let Ok(Windowing::Sessions(tracker)) = &mut self.windowing {
            tracker.close_final(Some(bound), 0);
        }
        self.session_states.retain(|_, held| {
            held.retain(|(window, _)| window.end_ms > bound);
            !held.is_empty()
        });
    }

    fn len(&self) -> usize {
        self.windowed.values().map(HashMap::len).sum::<usize>()
            + self.session_states.values().map(Vec::len).sum::<usize>()
    }
}

/// An aggregate's filter, aggregated field and group fields, resolved once (`None`: a
/// field no event has, which matches nothing, aggregates nothing, groups as `null`).
struct Inputs {
    filter: Vec<(Option<EventField>, String)>,
    /// The event types the filter lets through (every type when it has no `event_type`).
    types: EventTypeSet,
    field: Option<Option<EventField>>,
    group_by: Vec<Option<EventField>>,
}

impl Inputs {
    fn new(aggregate: &AggregateSpec) -> Self {
        let filter: Vec<(Option<EventField>, String)> = aggregate
            .filter
            .iter()
            .map(|(field, wanted)| (EventField::parse(field), wanted.clone()))
            .collect();
        let types = EventTypeSet::of(EventType::ALL.into_iter().filter(|t| {
            filter
                .iter()
                .filter(|(field, _)| *field == Some(EventField::EventType))
                .all(|(_, wanted)| t.as_str() == wanted)
        }));
        let group_by: Vec<Option<EventField>> = aggregate
            .group_by
            .iter()
            .map(|f| EventField::parse(f))
            .collect();
        Inputs {
            filter,
            types,
            field: aggregate.field.as_deref().map(EventField::parse),
            group_by,
        }
    }

    /// What `event` contributes: `None` when the filter excludes it or it lacks the
    /// aggregated field; else its value, with its group key (a JSON array of the `group_by`
    /// values) written into `group`.
    fn contribution<'e>(
        &self,
        event: &'e impl FoldInput,
        group: &mut String,
    ) -> Option<Option<Value<'e>>> {
        let value_of = |field: Option<EventField>| field.and_then(|f| event.field(f));
        let passes = self
            .filter
            .iter()
            .all(|(field, wanted)| equals_text(value_of(*field), wanted));
        if !passes {
            return None;
        }
        let value = match self.field {
            Some(field) => Some(value_of(field)?),
            None => None,
        };
        group.clear();
        group.push('[');
        for (i, field) in self.group_by.iter().enumerate() {
            if i > 0 {
                group.push(',');
            }
            if *field == Some(EventField::EventType) {
                // An Avro enum symbol ([A-Za-z_][A-Za-z0-9_]*): nothing to escape.
                group.push('"');
                group.push_str(event.event_type().as_str());
                group.push('"');
                continue;
            }
            match value_of(*field) {
                None => group.push_str("null"),
                Some(Value::Text(text)) => push_json_string(group, text),
                Some(Value::Number(n)) => push_json_string(group, &n.to_string()),
            }
        }
        group.push(']');
        Some(value)
    }
}

fn equals_text(value: Option<Value<'_>>, wanted: &str) -> bool {
    match value {
        None => false,
        Some(Value::Text(text)) => text == wanted,
        Some(Value::Number(n)) => n.to_string() == wanted,
    }
}

/// Appends `text` as a JSON string, escaped as serde_json writes it.
fn push_json_string(out: &mut String, text: &str) {
    if text
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b != 0x7f)
    {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::Value::from(text).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::{EventType, Interaction};
    use crate::pipeline::{parse_pipeline, AggregateResult};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn pipeline() -> Arc<Pipeline> {
        Arc::new(
            parse_pipeline(
                Path::new("t.yaml"),
                "name: t\nsource: {topic: t, reader_schema: interaction/v2.avsc}\nevent_time: {field: occurred_at, watermark_delay: 5s, grace: 30s}\naggregates:\n  - {name: per_type, window: {tumbling: 1m}, group_by: [event_type], aggregate: count}\n  - {name: revenue, window: {tumbling: 1m}, filter: {event_type: purchase}, aggregate: sum, field: value}\n  - {name: users, window: {hopping: {size: 2m, hop: 1m}}, aggregate: count_distinct, field: user_id}\n  - {name: per_session, window: {session: {gap: 10s}}, group_by: [user_id], aggregate: count}\n",
            )
            .unwrap(),
        )
    }

    fn event(kind: EventType, user: &str, at: i64, value: Option<f64>) -> Interaction {
        Interaction {
            event_id: format!("{user}-{at}"),
            event_type: kind,
            user_id: user.into(),
            session_id: "s".into(),
            item_id: None,
            occurred_at: at,
            app: "web".into(),
            properties: Default::default(),
            value,
            device: Default::default(),
        }
    }

    /// Every stored row after applying `changes` to `rows`, as the store does.
    fn apply(
        rows: &mut BTreeMap<(String, Window, String), AggregateState>,
        changes: Vec<PartialChange>,
    ) {
        for change in changes {
            match change {
                PartialChange::Upsert(p) => {
                    let p = *p;
                    rows.insert((p.aggregate, p.window, p.group), p.state);
                }
                PartialChange::Delete {
                    aggregate,
                    window,
                    group,
                } => {
                    rows.remove(&(aggregate, window, group));
                }
            }
        }
    }

    fn results(
        rows: &BTreeMap<(String, Window, String), AggregateState>,
    ) -> BTreeMap<(String, Window, String), AggregateResult> {
        rows.iter()
            .map(|(k, s)| (k.clone(), s.result(&Default::default())))
            .collect()
    }

    #[test]
    fn a_group_key_is_the_json_array_of_its_values() {
        let pipeline = parse_pipeline(
            Path::new("t.yaml"),
            "name: t\nsource: {topic: t, reader_schema: interaction/v2.avsc}\nevent_time: {field: occurred_at, watermark_delay: 5s, grace: 30s}\naggregates:\n  - {name: by_type, window: {tumbling: 1m}, group_by: [event_type], aggregate: count}\n  - {name: by_three, window: {tumbling: 1m}, group_by: [user_id, event_type, value], aggregate: count}\n",
        )
        .unwrap();
        let by_type = Inputs::new(&pipeline.aggregates[0]);
        let by_three = Inputs::new(&pipeline.aggregates[1]);
        for kind in EventType::ALL {
            let event = event(kind, "a\"\\é", 1_000, Some(2.5));
            let (mut one, mut three) = (String::new(), String::new());
            by_type.contribution(&event.view(), &mut one).unwrap();
            by_three.contribution(&event.view(), &mut three).unwrap();
            assert_eq!(one, serde_json::json!([kind.as_str()]).to_string());
            let expected = serde_json::json!(["a\"\\é", kind.as_str(), "2.5"]).to_string();
            assert_eq!(three, expected);
            let parsed: Vec<String> = serde_json::from_str(&three).unwrap();
            assert_eq!(parsed, ["a\"\\é", kind.as_str(), "2.5"]);
        }
    }

    #[test]
    fn an_aggregate_admits_the_event_types_its_filter_lets_through() {
        let pipeline = Arc::new(
            parse_pipeline(
                Path::new("t.yaml"),
                "name: t\nsource: {topic: t, reader_schema: interaction/v2.avsc}\nevent_time: {field: occurred_at, watermark_delay: 5s, grace: 30s}\naggregates:\n  - {name: all, window: {tumbling: 1m}, aggregate: count}\n  - {name: buys, window: {tumbling: 1m}, filter: {event_type: purchase}, aggregate: count}\n  - {name: web, window: {tumbling: 1m}, filter: {app: web}, aggregate: count}\n  - {name: none, window: {tumbling: 1m}, filter: {event_type: teleport}, aggregate: count}\n",
            )
            .unwrap(),
        );
        let mut live = LiveAggregates::new(pipeline);
        let types: Vec<EventTypeSet> = live.parts_mut().map(|p| p.event_types()).collect();
        assert_eq!(
            types,
            [
                EventTypeSet::ALL,
                EventTypeSet::of([EventType::Purchase]),
                EventTypeSet::ALL,
                EventTypeSet::of([]),
            ]
        );
        // An event of a type outside the set changes nothing when folded anyway.
        let mut parts: Vec<LivePart<'_>> = live.parts_mut().collect();
        let click = event(EventType::Click, "a", 1_000, None);
        parts[1].add(&click.view()).unwrap();
        parts[3].add(&click.view()).unwrap();
        drop(parts);
        assert!(live.take_changes().is_empty());
    }

    #[test]
    fn folds_counts_sums_distincts_and_sessions_per_window_and_group() {
        let mut live = LiveAggregates::new(pipeline());
        for e in [
            event(EventType::Click, "a", 1_000, None),
            event(EventType::Click, "b", 2_000, None),
            event(EventType::Purchase, "a", 61_000, Some(9.5)),
            event(EventType::Purchase, "a", 62_000, Some(0.5)),
            event(EventType::Click, "a", 8_000, None),
        ] {
            live.add(&e.view()).unwrap();
        }
        let mut rows = BTreeMap::new();
        apply(&mut rows, live.take_changes());
        let get = |aggregate: &str, start: i64, end: i64, group: &str| {
            results(&rows)
                .get(&(
                    aggregate.to_owned(),
                    Window {
                        start_ms: start,
                        end_ms: end,
                    },
                    group.to_owned(),
                ))
                .cloned()
        };
        assert_eq!(
            get("per_type", 0, 60_000, r#"["click"]"#),
            Some(AggregateResult::Count(3))
        );
        assert_eq!(
            get("revenue", 60_000, 120_000, "[]"),
            Some(AggregateResult::Sum(10.0))
        );
        assert_eq!(get("revenue", 0, 60_000, "[]"), None, "filtered out");
        assert_eq!(
            get("users", -60_000, 60_000, "[]"),
            Some(AggregateResult::CountDistinct(2))
        );
        assert_eq!(
            get("per_session", 1_000, 18_000, r#"["a"]"#),
            Some(AggregateResult::Count(2)),
            "1 s and 8 s are one session of a"
        );
        assert_eq!(
            get("per_session", 61_000, 72_000, r#"["a"]"#),
            Some(AggregateResult::Count(2))
        );
        assert_eq!(rows.len(), 9, "2 per_type, 1 revenue, 3 users, 3 sessions");
        assert!(live.take_changes().is_empty(), "changes are taken once");
    }

    #[test]
    fn a_bridging_event_merges_stored_sessions_and_deletes_the_old_rows() {
        let mut live = LiveAggregates::new(pipeline());
        let mut rows = BTreeMap::new();
        live.add(&event(EventType::Click, "a", 0, None).view())
            .unwrap();
        live.add(&event(EventType::Click, "a", 15_000, None).view())
            .unwrap();
        apply(&mut rows, live.take_changes());
        let sessions = |rows: &BTreeMap<(String, Window, String), AggregateState>| {
            results(rows)
                .into_iter()
                .filter(|(k, _)| k.0 == "per_session")
                .map(|(k, r)| (k.1.start_ms, k.1.end_ms, r))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            sessions(&rows),
            vec![
                (0, 10_000, AggregateResult::Count(1)),
                (15_000, 25_000, AggregateResult::Count(1))
            ]
        );
        live.add(&event(EventType::Click, "a", 7_000, None).view())
            .unwrap();
        apply(&mut rows, live.take_changes());
        assert_eq!(
            sessions(&rows),
            vec![(0, 25_000, AggregateResult::Count(3))]
        );
    }

    #[test]
    fn the_earliest_on_time_follows_the_smallest_window_and_grace() {
        let p = pipeline();
        assert_eq!(p.earliest_on_time(None), None);
        // watermark 95 s − 30 s grace − 60 s (the smallest window).
        assert_eq!(p.earliest_on_time(Some(100_000)), Some(5_000));
        assert!(p.is_late(Some(100_000), 5_000));
        assert!(!p.is_late(Some(100_000), 60_000));
    }

    fn arbitrary_events() -> impl Strategy<Value = Vec<Interaction>> {
        proptest::collection::vec(
            (
                0usize..9,
                0u8..4,
                0i64..400_000,
                proptest::option::of(0.0f64..100.0),
            ),
            0..120,
        )
        .prop_map(|events| {
            events
                .into_iter()
                .enumerate()
                .map(|(i, (kind, user, at, value))| {
                    let mut e = event(EventType::ALL[kind], &format!("u{user}"), at, value);
                    e.event_id = i.to_string();
                    e
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn nothing_at_or_before_the_earliest_on_time_is_on_time(
            max_event in -1_000_000i64..1_000_000,
            back in 0i64..1_000_000,
        ) {
            let p = pipeline();
            let bound = p.earliest_on_time(Some(max_event)).unwrap();
            prop_assert!(p.is_late(Some(max_event), bound - back));
        }

        /// Folding in batches, evicting and restoring from the stored rows in between (a
        /// rebalance), writes exactly the rows one pass over every event writes.
        #[test]
        fn batches_evictions_and_restores_equal_one_pass(
            events in arbitrary_events(),
            cuts in proptest::collection::vec(0usize..120, 0..6),
        ) {
            let p = pipeline();
            let mut one_pass = LiveAggregates::new(p.clone());
            let mut expected = BTreeMap::new();
            let mut max_event = None;
            for e in &events {
                if !p.is_late(max_event, e.occurred_at) {
                    one_pass.add(&e.view()).unwrap();
                }
                max_event = Some(max_event.map_or(e.occurred_at, |m: i64| m.max(e.occurred_at)));
            }
            apply(&mut expected, one_pass.take_changes());

            let mut rows = BTreeMap::new();
            let mut live = LiveAggregates::new(p.clone());
            let mut max_event = None;
            for (i, e) in events.iter().enumerate() {
                if !p.is_late(max_event, e.occurred_at) {
                    live.add(&e.view()).unwrap();
                }
                max_event = Some(max_event.map_or(e.occurred_at, |m: i64| m.max(e.occurred_at)));
                if cuts.contains(&i) {
                    apply(&mut rows, live.take_changes());
                    live.evict(max_event);
                    if i % 2 == 0 {
                        // A new owner: restore what can still change from the store.
                        let bound = p.earliest_on_time(max_event).unwrap_or(i64::MIN);
                        live = LiveAggregates::new(p.clone());
                        live.restore(
                            rows.iter()
                                .filter(|(k, _)| k.1.end_ms > bound)
                                .map(|((aggregate, window, group), state)| Partial {
                                    aggregate: aggregate.clone(),
                                    window: *window,
                                    group: group.clone(),
                                    state: state.clone(),
                                })
                                .collect(),
                        );
                    }
                }
            }
            apply(&mut rows, live.take_changes());
            prop_assert_eq!(results(&rows), results(&expected));
        }

        /// Folding every event into one aggregate after another (as the worker's threads
        /// do, in any order of aggregates) writes exactly the rows of folding event by event.
        #[test]
        fn aggregate_by_aggregate_equals_event_by_event(events in arbitrary_events()) {
            let p = pipeline();
            let mut by_event = LiveAggregates::new(p.clone());
            let mut by_aggregate = LiveAggregates::new(p.clone());
            for e in &events {
                by_event.add(&e.view()).unwrap();
            }
            let mut parts: Vec<LivePart<'_>> = by_aggregate.parts_mut().collect();
            prop_assert_eq!(parts.len(), p.aggregates.len());
            for part in parts.iter_mut().rev() {
                for e in &events {
                    part.add(&e.view()).unwrap();
                }
            }
            let (mut expected, mut rows) = (BTreeMap::new(), BTreeMap::new());
            apply(&mut expected, by_event.take_changes());
            apply(&mut rows, by_aggregate.take_changes());
            prop_assert_eq!(rows, expected);
            prop_assert_eq!(by_aggregate.len(), by_event.len());
        }
    }
}
