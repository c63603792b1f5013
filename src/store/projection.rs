//! What one batch changes in the projections, computed once for every store kind: per-user,
//! per-item and per-session deltas and per-user event-type counts, each merged into the
//! stored row by the store's upsert.

use std::collections::BTreeMap;

use crate::contracts::{EventType, Interaction};
use crate::worker::FoldBatch;

/// A user's change: first and last event time, events, value, the session of the latest.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserDelta<'a> {
    pub first_ms: i64,
    pub last_ms: i64,
    pub events: i64,
    pub value: f64,
    pub session: &'a str,
}

/// A session's change: its user, first and last event time, events, whether it converted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionDelta<'a> {
    pub user: &'a str,
    pub start_ms: i64,
    pub end_ms: i64,
    pub events: i64,
    pub converted: bool,
}

/// Events per user and type in `batch` (late ones included).
pub(crate) fn event_counts(batch: &FoldBatch) -> BTreeMap<(&str, EventType), i64> {
    let mut counts = BTreeMap::new();
    for folded in &batch.events {
        *counts
            .entry((folded.event.user_id.as_str(), folded.event.event_type))
            .or_default() += 1;
    }
    counts
}

/// Per user in `events`.
pub(crate) fn user_deltas<'a>(events: &[&'a Interaction]) -> BTreeMap<&'a str, UserDelta<'a>> {
    let mut users: BTreeMap<&str, UserDelta> = BTreeMap::new();
    for e in events {
        let u = users.entry(e.user_id.as_str()).or_insert(UserDelta {
            first_ms: e.occurred_at,
            last_ms: e.occurred_at,
            events: 0,
            value: 0.0,
            session: e.session_id.as_str(),
        });
        u.first_ms = u.first_ms.min(e.occurred_at);
        if e.occurred_at >= u.last_ms {
            u.last_ms = e.occurred_at;
            u.session = e.session_id.as_str();
        }
        u.events += 1;
        u.value += e.value.unwrap_or(0.0);
    }
    users
}

/// Per item in `events`: views, clicks, add-to-carts, purchases.
pub(crate) fn item_deltas<'a>(events: &[&'a Interaction]) -> BTreeMap<&'a str, [i64; 4]> {
    let mut items: BTreeMap<&str, [i64; 4]> = BTreeMap::new();
    for e in events {
        let Some(item_id) = &e.item_id else { continue };
        let slot = match e.event_type {
            EventType::PageView => 0,
            EventType::Click => 1,
            EventType::AddToCart => 2,
            EventType::Purchase => 3,
            _ => continue,
        };
        items.entry(item_id.as_str()).or_default()[slot] += 1;
    }
    items
}

/// Per session in `events`.
pub(crate) fn session_deltas<'a>(
    events: &[&'a Interaction],
) -> BTreeMap<&'a str, SessionDelta<'a>> {
    let mut sessions: BTreeMap<&str, SessionDelta> = BTreeMap::new();
    for e in events {
        let s = sessions
            .entry(e.session_id.as_str())
            .or_insert(SessionDelta {
                user: e.user_id.as_str(),
                start_ms: e.occurred_at,
                end_ms: e.occurred_at,
                events: 0,
                converted: false,
            });
        s.start_ms = s.start_ms.min(e.occurred_at);
        s.end_ms = s.end_ms.max(e.occurred_at);
        s.events += 1;
        s.converted |= e.event_type == EventType::Purchase;
    }
    sessions
}
