//! Folding events into a pipeline's windowed aggregates: lateness against a partition's
//! watermark, window assignment, filters, group keys, and the partial states a batch adds.
//! Pure: the worker decides what is late as events arrive, the store merges the partials
//! into the stored ones in the batch's transaction (invariants 4 and 5).

use std::collections::BTreeMap;

use super::aggregates::Value;
use super::spec::{AggregateSpec, Pipeline};
use super::{
    assign, window_is_final, AggregateError, AggregateState, Window, WindowError, WindowSpec,
};
use crate::contracts::Interaction;

/// One aggregate's partial for one window and group, as a batch contributes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial {
    /// The aggregate's name.
    pub aggregate: String,
    /// The window.
    pub window: Window,
    /// The group key: a JSON array of the `group_by` values.
    pub group: String,
    /// The partial state.
    pub state: AggregateState,
}

/// An event that cannot be folded (a bug or an extreme timestamp; never silently dropped).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FoldError {
    /// The event's time has no window.
    #[error("aggregate '{aggregate}': {source}")]
    Window {
        /// The aggregate.
        aggregate: String,
        /// Why.
        #[source]
        source: WindowError,
    },
    /// The value does not fit the aggregate.
    #[error("aggregate '{aggregate}': {source}")]
    Aggregate {
        /// The aggregate.
        aggregate: String,
        /// Why.
        #[source]
        source: AggregateError,
    },
}

/// A field of an event as an aggregate input (`None` when absent).
pub fn field_value<'a>(event: &'a Interaction, field: &str) -> Option<Value<'a>> {
    Some(match field {
        "event_id" => Value::Text(&event.event_id),
        "event_type" => Value::Text(event.event_type.as_str()),
        "user_id" => Value::Text(&event.user_id),
        "session_id" => Value::Text(&event.session_id),
        "item_id" => Value::Text(event.item_id.as_deref()?),
        "occurred_at" => Value::Number(event.occurred_at as f64),
        "app" => Value::Text(&event.app),
        "value" => Value::Number(event.value?),
        "device.platform" => Value::Text(&event.device.platform),
        "device.os_version" => Value::Text(event.device.os_version.as_deref()?),
        "device.app_version" => Value::Text(event.device.app_version.as_deref()?),
        _ => return None,
    })
}

fn as_text(value: Option<Value<'_>>) -> Option<String> {
    match value? {
        Value::Text(text) => Some(text.to_owned()),
        Value::Number(n) => Some(n.to_string()),
    }
}

fn windowed(spec: &AggregateSpec) -> bool {
    !matches!(spec.window, WindowSpec::Session { .. })
}

impl Pipeline {
    /// Whether an event at `ts_ms` is late for this pipeline in a partition whose highest
    /// event time so far is `max_event_ms`: late when every window of some windowed
    /// aggregate that would hold it is already final (watermark ≥ end + grace). A late event
    /// goes into no window (it is counted and copied to the late topic), which keeps
    /// folded + late + dead-lettered = read exact. An extreme timestamp that some aggregate
    /// cannot window is an error: such an event is dead-lettered, never dropped.
    pub fn lateness(&self, max_event_ms: Option<i64>, ts_ms: i64) -> Result<bool, FoldError> {
        let watermark = max_event_ms.map(|m| m.saturating_sub(self.watermark_delay_ms as i64));
        let mut late = false;
        for aggregate in self.aggregates.iter().filter(|a| windowed(a)) {
            let windows = assign(&aggregate.window, ts_ms).map_err(|source| FoldError::Window {
                aggregate: aggregate.name.clone(),
                source,
            })?;
            late |= !windows.is_empty()
                && windows
                    .iter()
                    .all(|w| window_is_final(watermark, w.end_ms, self.grace_ms));
        }
        Ok(late)
    }

    /// [`Pipeline::lateness`] for an event time every aggregate can window.
    pub fn is_late(&self, max_event_ms: Option<i64>, ts_ms: i64) -> bool {
        matches!(self.lateness(max_event_ms, ts_ms), Ok(true))
    }

    /// What `event` contributes to `aggregate`: its group key and value, or `None` when the
    /// filter excludes it or it lacks the aggregated field.
    fn contribution<'e>(
        aggregate: &AggregateSpec,
        event: &'e Interaction,
    ) -> Option<(String, Option<Value<'e>>)> {
        let passes = aggregate.filter.iter().all(|(field, wanted)| {
            as_text(field_value(event, field)).as_deref() == Some(wanted.as_str())
        });
        if !passes {
            return None;
        }
        let group: Vec<Option<String>> = aggregate
            .group_by
            .iter()
            .map(|f| as_text(field_value(event, f)))
            .collect();
        let value = aggregate
            .field
            .as_deref()
            .and_then(|f| field_value(event, f));
        if aggregate.field.is_some() && value.is_none() {
            return None;
        }
        Some((serde_json::to_string(&group).unwrap_or_default(), value))
    }

    /// The one-event partials `event` adds to the session-window aggregates, each with the
    /// session window the event alone would open (`[ts, ts + gap)`); the store merges it
    /// with the partition's stored sessions it overlaps.
    pub fn session_partials(&self, event: &Interaction) -> Result<Vec<Partial>, FoldError> {
        let mut out = Vec::new();
        for aggregate in &self.aggregates {
            let WindowSpec::Session { gap_ms } = aggregate.window else {
                continue;
            };
            let Some((group, value)) = Self::contribution(aggregate, event) else {
                continue;
            };
            let failed = |source| FoldError::Aggregate {
                aggregate: aggregate.name.clone(),
                source,
            };
            let mut state =
                AggregateState::new(aggregate.kind, &aggregate.params).map_err(failed)?;
            state.add(value).map_err(failed)?;
            let start_ms = event.occurred_at;
            let end_ms = start_ms.saturating_add(gap_ms as i64);
            out.push(Partial {
                aggregate: aggregate.name.clone(),
                window: Window { start_ms, end_ms },
                group,
                state,
            });
        }
        Ok(out)
    }

    /// The partials the (on-time, distinct) `events` add, one per aggregate, window and group.
    pub fn fold(&self, events: &[&Interaction]) -> Result<Vec<Partial>, FoldError> {
        let mut partials: BTreeMap<(usize, i64, i64, String), AggregateState> = BTreeMap::new();
        for event in events {
            for (index, aggregate) in self
                .aggregates
                .iter()
                .enumerate()
                .filter(|(_, a)| windowed(a))
            {
                let Some((group, value)) = Self::contribution(aggregate, event) else {
                    continue;
                };
                let windows = assign(&aggregate.window, event.occurred_at).map_err(|source| {
                    FoldError::Window {
                        aggregate: aggregate.name.clone(),
                        source,
                    }
                })?;
                for window in windows {
                    let key = (index, window.start_ms, window.end_ms, group.clone());
                    let state = match partials.entry(key) {
                        std::collections::btree_map::Entry::Occupied(slot) => slot.into_mut(),
                        std::collections::btree_map::Entry::Vacant(slot) => slot.insert(
                            AggregateState::new(aggregate.kind, &aggregate.params).map_err(
                                |source| FoldError::Aggregate {
                                    aggregate: aggregate.name.clone(),
                                    source,
                                },
                            )?,
                        ),
                    };
                    state.add(value).map_err(|source| FoldError::Aggregate {
                        aggregate: aggregate.name.clone(),
                        source,
                    })?;
                }
            }
        }
        Ok(partials
            .into_iter()
            .map(|((index, start_ms, end_ms, group), state)| Partial {
                aggregate: self.aggregates[index].name.clone(),
                window: Window { start_ms, end_ms },
                group,
                state,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::EventType;
    use crate::pipeline::{parse_pipeline, AggregateResult};
    use std::path::Path;

    fn pipeline() -> Pipeline {
        parse_pipeline(
            Path::new("t.yaml"),
            "name: t\nsource: {topic: t, reader_schema: interaction/v2.avsc}\nevent_time: {field: occurred_at, watermark_delay: 5s, grace: 30s}\naggregates:\n  - {name: per_type, window: {tumbling: 1m}, group_by: [event_type], aggregate: count}\n  - {name: revenue, window: {tumbling: 1m}, filter: {event_type: purchase}, aggregate: sum, field: value}\n  - {name: users, window: {hopping: {size: 2m, hop: 1m}}, aggregate: count_distinct, field: user_id}\n",
        )
        .unwrap()
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

    #[test]
    fn folds_counts_sums_and_distincts_per_window_and_group() {
        let p = pipeline();
        let events = [
            event(EventType::Click, "a", 1_000, None),
            event(EventType::Click, "b", 2_000, None),
            event(EventType::Purchase, "a", 61_000, Some(9.5)),
            event(EventType::Purchase, "a", 62_000, Some(0.5)),
        ];
        let refs: Vec<&Interaction> = events.iter().collect();
        let partials = p.fold(&refs).unwrap();
        let find = |aggregate: &str, start: i64, group: &str| {
            partials
                .iter()
                .find(|x| {
                    x.aggregate == aggregate && x.window.start_ms == start && x.group == group
                })
                .map(|x| x.state.result(&Default::default()))
        };
        assert_eq!(
            find("per_type", 0, r#"["click"]"#),
            Some(AggregateResult::Count(2))
        );
        assert_eq!(
            find("per_type", 60_000, r#"["purchase"]"#),
            Some(AggregateResult::Count(2))
        );
        assert_eq!(
            find("revenue", 60_000, "[]"),
            Some(AggregateResult::Sum(10.0))
        );
        assert_eq!(
            find("revenue", 0, "[]"),
            None,
            "the filter keeps clicks out"
        );
        assert_eq!(
            find("users", -60_000, "[]"),
            Some(AggregateResult::CountDistinct(2))
        );
        assert_eq!(
            find("users", 0, "[]"),
            Some(AggregateResult::CountDistinct(2))
        );
        assert_eq!(
            find("users", 60_000, "[]"),
            Some(AggregateResult::CountDistinct(1))
        );
    }

    #[test]
    fn lateness_follows_the_watermark_and_grace() {
        let p = pipeline();
        assert!(!p.is_late(None, 0), "nothing seen yet: nothing is late");
        // Window [0, 60 s) is final once max − 5 s ≥ 60 s + 30 s.
        assert!(!p.is_late(Some(94_999), 59_000));
        assert!(p.is_late(Some(95_000), 59_000));
        assert!(
            !p.is_late(Some(95_000), 60_000),
            "the next window is still open"
        );
        assert!(
            !p.is_late(Some(95_000), 92_000),
            "slightly out of order is fine"
        );
    }
}
