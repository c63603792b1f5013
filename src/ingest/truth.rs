//! The ground truth of a workload: the aggregates pipelines compute, computed directly from
//! what was sent (duplicates counted once; late events excluded from windows but counted in
//! the per-user and per-item read models, which are not windowed). Tests compare folded
//! state against it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use super::Planned;
use crate::contracts::{EventType, Interaction};

/// Counts by event type.
pub type TypeCounts = BTreeMap<EventType, u64>;

/// One tumbling window's truth.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowTruth {
    /// Events by type.
    pub per_type: TypeCounts,
    /// Distinct users.
    pub unique_users: u64,
    /// Sum of `value` over purchases.
    pub revenue: f64,
}

/// What a workload sent, aggregated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Size of the tumbling windows (ms).
    pub window_ms: i64,
    /// Records sent, duplicates included.
    pub events_sent: u64,
    /// Distinct `event_id`s sent.
    pub distinct_events: u64,
    /// Second copies sent.
    pub duplicates: u64,
    /// Distinct events sent far behind the clock (late for every window).
    pub late_events: u64,
    /// Distinct events sent slightly out of order.
    pub out_of_order_events: u64,
    /// Distinct events by type.
    pub per_type: TypeCounts,
    /// Distinct events by user and type.
    pub per_user: BTreeMap<String, TypeCounts>,
    /// Distinct events by item and type.
    pub per_item: BTreeMap<String, TypeCounts>,
    /// Windows (by start, ms) of the events that are not late.
    pub windows: BTreeMap<i64, WindowTruth>,
    #[serde(skip)]
    seen: HashSet<String>,
    #[serde(skip)]
    window_users: BTreeMap<i64, BTreeSet<String>>,
}

impl GroundTruth {
    /// An empty truth with windows of `window_ms`.
    pub fn new(window_ms: i64) -> Self {
        GroundTruth {
            window_ms: window_ms.max(1),
            ..Default::default()
        }
    }

    /// Accounts for one sent record.
    pub fn record(&mut self, planned: Planned, event: &Interaction) {
        self.events_sent += 1;
        if !self.seen.insert(event.event_id.clone()) {
            self.duplicates += 1;
            return;
        }
        self.distinct_events += 1;
        *self.per_type.entry(event.event_type).or_default() += 1;
        *self
            .per_user
            .entry(event.user_id.clone())
            .or_default()
            .entry(event.event_type)
            .or_default() += 1;
        if let Some(item) = &event.item_id {
            *self
                .per_item
                .entry(item.clone())
                .or_default()
                .entry(event.event_type)
                .or_default() += 1;
        }
        match planned {
            Planned::Late => {
                self.late_events += 1;
                return;
            }
            Planned::OutOfOrder => self.out_of_order_events += 1,
            Planned::InOrder | Planned::Duplicate => {}
        }
        let start = event.occurred_at.div_euclid(self.window_ms) * self.window_ms;
        let window = self.windows.entry(start).or_default();
        *window.per_type.entry(event.event_type).or_default() += 1;
        if event.event_type == EventType::Purchase {
            window.revenue += event.value.unwrap_or(0.0);
        }
        let users = self.window_users.entry(start).or_default();
        if users.insert(event.user_id.clone()) {
            window.unique_users = users.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Workload, WorkloadConfig};

    #[test]
    fn duplicates_count_once_and_late_events_stay_out_of_windows() {
        let config = WorkloadConfig {
            users: 20,
            duplicate_fraction: 0.05,
            late_fraction: 0.02,
            late_by_ms: 5_000,
            ..Default::default()
        };
        let mut truth = GroundTruth::new(60_000);
        let mut ids = HashSet::new();
        let mut late = 0;
        for (planned, event) in Workload::new(config).take(5000) {
            if ids.insert(event.event_id.clone()) && planned == Planned::Late {
                late += 1;
            }
            truth.record(planned, &event);
        }
        assert_eq!(truth.events_sent, 5000);
        assert_eq!(truth.distinct_events, ids.len() as u64);
        assert_eq!(truth.duplicates, 5000 - ids.len() as u64);
        assert_eq!(truth.late_events, late);
        let in_windows: u64 = truth
            .windows
            .values()
            .flat_map(|w| w.per_type.values())
            .sum();
        assert_eq!(in_windows, truth.distinct_events - truth.late_events);
        let per_user: u64 = truth.per_user.values().flat_map(|c| c.values()).sum();
        assert_eq!(per_user, truth.distinct_events);
        assert!(truth
            .windows
            .values()
            .all(|w| w.unique_users <= 20 && w.unique_users > 0));
    }
}
