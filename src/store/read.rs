//! The read side of a store, as the query stage sees it: partition progress and accounting,
//! merged aggregate rows and the projections. Every store kind implements [`ReadStore`].

use std::collections::BTreeMap;

use crate::contracts::EventType;
use crate::pipeline::{AggregateError, AggregateState, Window};

use super::StoreError;

/// Progress and accounting of one partition (invariant 7: folded + duplicates +
/// dead_lettered = read).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionStatus {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Last applied offset.
    pub last_offset: i64,
    /// Records read and accounted for.
    pub read: u64,
    /// Events folded into the projections.
    pub folded: u64,
    /// Events recognised as duplicates (same `event_id`), counted once.
    pub duplicates: u64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Distinct events too late for the pipeline's windows (copied to the late topic).
    pub late: u64,
    /// The highest event time folded (watermark = this − the pipeline's delay).
    pub max_event_ms: Option<i64>,
    /// When the worker last committed a batch of this partition (its clock, ms since the
    /// epoch; `None` before the first commit that recorded it): the idle rule reads it.
    pub updated_at_ms: Option<i64>,
}

/// One window and group of an aggregate, merged over every partition.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateRow {
    /// The window.
    pub window: Window,
    /// The group key (a JSON array of the group-by values).
    pub group: String,
    /// The merged partial.
    pub state: AggregateState,
}

/// A user's read model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UserProfile {
    /// The user.
    pub user_id: String,
    /// Earliest event time.
    pub first_seen_ms: i64,
    /// Latest event time.
    pub last_seen_ms: i64,
    /// Distinct events.
    pub events: u64,
    /// Sum of `value` over every event.
    pub total_value: f64,
    /// The session of the latest event.
    pub current_session: String,
    /// Events by type.
    pub counts: BTreeMap<EventType, u64>,
}

/// An item's read model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ItemProfile {
    /// The item.
    pub item_id: String,
    /// page_view events.
    pub views: u64,
    /// click events.
    pub clicks: u64,
    /// add_to_cart events.
    pub add_to_carts: u64,
    /// purchase events.
    pub purchases: u64,
    /// purchases / views (`None` without views).
    pub conversion_rate: Option<f64>,
}

/// A session's read model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionProfile {
    /// The session.
    pub session_id: String,
    /// Its user.
    pub user_id: String,
    /// First event time.
    pub start_ms: i64,
    /// Last event time.
    pub end_ms: i64,
    /// end − start.
    pub length_ms: i64,
    /// Distinct events.
    pub events: u64,
    /// Whether it holds a purchase.
    pub converted: bool,
}

/// What the query stage reads from a store.
#[async_trait::async_trait]
pub trait ReadStore: Send + Sync + 'static {
    /// Which database answers now (it changes when a blue/green switch moves readers), so a
    /// reader can tell two answers with the same offsets apart.
    fn identity(&self) -> Result<String, StoreError>;

    /// Every partition's progress and accounting, by topic and partition.
    async fn partitions(&self) -> Result<Vec<PartitionStatus>, StoreError>;

    /// How often `user_id` did each event type.
    async fn user_event_counts(
        &self,
        user_id: &str,
    ) -> Result<BTreeMap<EventType, u64>, StoreError>;

    /// Every user's counts (user → type → count).
    async fn all_user_event_counts(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<EventType, u64>>, StoreError>;

    /// Every window and group of `aggregate` whose window overlaps `[from_ms, to_ms)`, with
    /// the partitions' partials merged (invariant 4).
    async fn aggregate_rows(
        &self,
        pipeline: &str,
        aggregate: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<AggregateRow>, StoreError> {
        self.aggregate_rows_merging(pipeline, aggregate, from_ms, to_ms, false)
            .await
    }

    /// Like [`ReadStore::aggregate_rows`]; with `sessions`, overlapping windows
    /// of one group from different partitions are one session and merge into one row.
    async fn aggregate_rows_merging(
        &self,
        pipeline: &str,
        aggregate: &str,
        from_ms: i64,
        to_ms: i64,
        sessions: bool,
    ) -> Result<Vec<AggregateRow>, StoreError>;

    /// A user's profile in `pipeline`, if the user was seen.
    async fn user_profile(
        &self,
        pipeline: &str,
        user_id: &str,
    ) -> Result<Option<UserProfile>, StoreError>;

    /// Every item's profile in `pipeline`, by item id.
    async fn item_profiles(&self, pipeline: &str) -> Result<Vec<ItemProfile>, StoreError>;

    /// Every session's profile in `pipeline`, by session id.
    async fn session_profiles(&self, pipeline: &str) -> Result<Vec<SessionProfile>, StoreError>;
}

/// Merges stored partials `(window start, window end, group, state)` of every partition into
/// one row per window and group, ordered by window start and group; with `sessions`, also
/// merges overlapping windows of one group.
pub(crate) fn merge_partials(
    partials: impl IntoIterator<Item = (i64, i64, String, AggregateState)>,
    sessions: bool,
) -> Result<Vec<AggregateRow>, AggregateError> {
    let mut merged: BTreeMap<(i64, i64, String), AggregateState> = BTreeMap::new();
    for (start_ms, end_ms, group, state) in partials {
        match merged.entry((start_ms, end_ms, group)) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(state);
            }
            std::collections::btree_map::Entry::Occupied(mut slot) => {
                slot.get_mut().merge(&state)?
            }
        }
    }
    let rows: Vec<AggregateRow> = merged
        .into_iter()
        .map(|((start_ms, end_ms, group), state)| AggregateRow {
            window: Window { start_ms, end_ms },
            group,
            state,
        })
        .collect();
    if sessions {
        merge_overlapping(rows)
    } else {
        Ok(rows)
    }
}

/// Merges rows of one group whose windows overlap (sessions split over partitions).
fn merge_overlapping(mut rows: Vec<AggregateRow>) -> Result<Vec<AggregateRow>, AggregateError> {
    rows.sort_by(|a, b| (&a.group, a.window.start_ms).cmp(&(&b.group, b.window.start_ms)));
    let mut out: Vec<AggregateRow> = Vec::with_capacity(rows.len());
    for row in rows {
        match out.last_mut() {
            Some(last) if last.group == row.group && row.window.start_ms < last.window.end_ms => {
                last.window.end_ms = last.window.end_ms.max(row.window.end_ms);
                last.state.merge(&row.state)?;
            }
            _ => out.push(row),
        }
    }
    out.sort_by(|a, b| (a.window.start_ms, &a.group).cmp(&(b.window.start_ms, &b.group)));
    Ok(out)
}
