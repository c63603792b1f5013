//! What folding an event into a pipeline needs besides the live partials: lateness against
//! a partition's watermark, an event's fields as aggregate inputs, the partial a window and
//! group hold, and why an event cannot be folded (invariants 4 and 5).

use super::aggregates::Value;
use super::spec::{AggregateSpec, Pipeline};
use super::{
    last_window, window_is_final, AggregateError, AggregateState, Window, WindowError, WindowSpec,
};
use crate::contracts::{EventType, Interaction, InteractionView};

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

/// An event as an aggregate reads it: its time and type, and a field when asked for. A
/// decoded event answers from its view; a worker's batch answers from its text buffer,
/// slicing only the fields an aggregate reads.
pub trait FoldInput {
    /// `occurred_at` (ms).
    fn occurred_at(&self) -> i64;
    /// `event_type`.
    fn event_type(&self) -> EventType;
    /// This field (`None` when the event lacks it).
    fn field(&self, field: EventField) -> Option<Value<'_>>;
}

impl FoldInput for InteractionView<'_> {
    fn occurred_at(&self) -> i64 {
        self.occurred_at
    }

    fn event_type(&self) -> EventType {
        self.event_type
    }

    fn field(&self, field: EventField) -> Option<Value<'_>> {
        field.value(self)
    }
}

/// A field of an event as an aggregate input (`None` when absent or unknown).
pub fn field_value<'a>(event: &'a Interaction, field: &str) -> Option<Value<'a>> {
    EventField::parse(field)?.value(&event.view())
}

/// A field of an interaction an aggregate can filter, group or aggregate on, resolved from
/// its name once so that folding matches no names per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventField {
    /// `event_id`.
    EventId,
    /// `event_type`.
    EventType,
    /// `user_id`.
    UserId,
    /// `session_id`.
    SessionId,
    /// `item_id`.
    ItemId,
    /// `occurred_at`.
    OccurredAt,
    /// `app`.
    App,
    /// `value`.
    Value,
    /// `device.platform`.
    DevicePlatform,
    /// `device.os_version`.
    DeviceOsVersion,
    /// `device.app_version`.
    DeviceAppVersion,
}

impl EventField {
    /// The field of this name, `None` for an unknown one.
    pub fn parse(name: &str) -> Option<EventField> {
        Some(match name {
            "event_id" => EventField::EventId,
            "event_type" => EventField::EventType,
            "user_id" => EventField::UserId,
            "session_id" => EventField::SessionId,
            "item_id" => EventField::ItemId,
            "occurred_at" => EventField::OccurredAt,
            "app" => EventField::App,
            "value" => EventField::Value,
            "device.platform" => EventField::DevicePlatform,
            "device.os_version" => EventField::DeviceOsVersion,
            "device.app_version" => EventField::DeviceAppVersion,
            _ => return None,
        })
    }

    /// This field of `event` (`None` when the event lacks it).
    pub fn value<'a>(self, event: &InteractionView<'a>) -> Option<Value<'a>> {
        Some(match self {
            EventField::EventId => Value::Text(event.event_id),
            EventField::EventType => Value::Text(event.event_type.as_str()),
            EventField::UserId => Value::Text(event.user_id),
            EventField::SessionId => Value::Text(event.session_id),
            EventField::ItemId => Value::Text(event.item_id?),
            EventField::OccurredAt => Value::Number(event.occurred_at as f64),
            EventField::App => Value::Text(event.app),
            EventField::Value => Value::Number(event.value?),
            EventField::DevicePlatform => Value::Text(event.platform),
            EventField::DeviceOsVersion => Value::Text(event.os_version?),
            EventField::DeviceAppVersion => Value::Text(event.app_version?),
        })
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
        // Every window an aggregate puts `ts_ms` in lies within `ts_ms ± reach`. When that
        // fits the i64 range no window can be out of range, and an event no older than
        // watermark − grace is on time: every window holding it ends after it.
        let reach = self.aggregates.iter().map(|a| a.window.reach_ms()).max();
        let in_range = reach.is_none_or(|reach| {
            i64::try_from(reach).is_ok_and(|reach| {
                ts_ms.checked_sub(reach).is_some() && ts_ms.checked_add(reach).is_some()
            })
        });
        let recent = watermark
            .is_none_or(|w| i128::from(ts_ms) + i128::from(self.grace_ms) >= i128::from(w));
        if in_range && recent {
            return Ok(false);
        }
        let mut late = false;
        for aggregate in &self.aggregates {
            if let WindowSpec::Session { gap_ms } = aggregate.window {
                if ts_ms.checked_add(gap_ms as i64).is_none() {
                    return Err(FoldError::Window {
                        aggregate: aggregate.name.clone(),
                        source: WindowError::OutOfRange { ts_ms },
                    });
                }
            }
        }
        for aggregate in self.aggregates.iter().filter(|a| windowed(a)) {
            // Window ends grow with their starts: all are final when the last one is.
            let last =
                last_window(&aggregate.window, ts_ms).map_err(|source| FoldError::Window {
                    aggregate: aggregate.name.clone(),
                    source,
                })?;
            late |= last.is_some_and(|w| window_is_final(watermark, w.end_ms, self.grace_ms));
        }
        Ok(late)
    }

    /// [`Pipeline::lateness`] for an event time every aggregate can window.
    pub fn is_late(&self, max_event_ms: Option<i64>, ts_ms: i64) -> bool {
        matches!(self.lateness(max_event_ms, ts_ms), Ok(true))
    }

    /// The time an event at `event_ms` in a Kafka record stamped `record_ms` contributes to
    /// its partition's watermark: its own time, but at most `max_ahead_ms` past the record's
    /// timestamp. So one event from a clock gone wrong (the year 2100) is still folded into
    /// its own windows but cannot push the watermark ahead and make every later on-time event
    /// late. The record timestamp is in the log, so a replay clamps exactly as the live run.
    pub fn watermark_time(&self, event_ms: i64, record_ms: i64) -> i64 {
        let bound = i128::from(record_ms) + i128::from(self.max_ahead_ms);
        i64::try_from(i128::from(event_ms).min(bound)).unwrap_or(event_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse_pipeline;
    use std::path::Path;

    fn pipeline() -> Pipeline {
        parse_pipeline(
            Path::new("t.yaml"),
            "name: t\nsource: {topic: t, reader_schema: interaction/v2.avsc}\nevent_time: {field: occurred_at, watermark_delay: 5s, grace: 30s}\naggregates:\n  - {name: per_type, window: {tumbling: 1m}, group_by: [event_type], aggregate: count}\n  - {name: revenue, window: {tumbling: 1m}, filter: {event_type: purchase}, aggregate: sum, field: value}\n  - {name: users, window: {hopping: {size: 2m, hop: 1m}}, aggregate: count_distinct, field: user_id}\n",
        )
        .unwrap()
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

    #[test]
    fn an_event_ahead_of_its_record_moves_the_watermark_only_to_record_time_plus_max_ahead() {
        let mut p = pipeline();
        assert_eq!(
            p.max_ahead_ms, 0,
            "by default not past the record's timestamp"
        );
        let record = 1_764_000_000_000;
        for max_ahead_ms in [0, 300_000] {
            p.max_ahead_ms = max_ahead_ms;
            let bound = record + max_ahead_ms as i64;
            let cases = [
                (record - 60_000, record - 60_000),
                (bound, bound),
                (bound + 1, bound),
                // 1 Jan 2100.
                (4_102_444_800_000, bound),
                (i64::MAX, bound),
                (i64::MIN, i64::MIN),
            ];
            for (event, expected) in cases {
                assert_eq!(p.watermark_time(event, record), expected, "{event}");
            }
        }
        assert_eq!(p.watermark_time(i64::MAX, i64::MAX), i64::MAX);
    }
}
