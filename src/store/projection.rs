//! What one batch changes in the projections, computed once for every store kind: per-user,
//! per-item and per-session deltas and per-user event-type counts, each merged into the
//! stored row by the store's upsert. Each comes sorted by key, so every writer takes row
//! locks in the same order.

use rustc_hash::FxHashMap as HashMap;

use crate::contracts::{EventType, InteractionView};
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
pub(crate) fn event_counts(batch: &FoldBatch) -> Vec<((&str, EventType), i64)> {
    let mut counts: HashMap<(&str, EventType), i64> = HashMap::default();
    for folded in batch.events.iter() {
        *counts
            .entry((folded.event.user_id, folded.event.event_type))
            .or_default() += 1;
    }
    sorted(counts)
}

/// The entries of `map`, by key (hashing is cheaper than ordering string keys one by one).
fn sorted<K: Ord, V>(map: HashMap<K, V>) -> Vec<(K, V)> {
    let mut entries: Vec<(K, V)> = map.into_iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// Per user in `events`.
pub(crate) fn user_deltas<'a>(events: &[InteractionView<'a>]) -> Vec<(&'a str, UserDelta<'a>)> {
    let mut users: HashMap<&str, UserDelta> = HashMap::default();
    for e in events {
        let u = users.entry(e.user_id).or_insert(UserDelta {
            first_ms: e.occurred_at,
            last_ms: e.occurred_at,
            events: 0,
            value: 0.0,
            session: e.session_id,
        });
        u.first_ms = u.first_ms.min(e.occurred_at);
        if e.occurred_at >= u.last_ms {
            u.last_ms = e.occurred_at;
            u.session = e.session_id;
        }
        u.events += 1;
        u.value += e.value.unwrap_or(0.0);
    }
    sorted(users)
}

/// Per item in `events`: views, clicks, add-to-carts, purchases.
pub(crate) fn item_deltas<'a>(events: &[InteractionView<'a>]) -> Vec<(&'a str, [i64; 4])> {
    let mut items: HashMap<&str, [i64; 4]> = HashMap::default();
    for e in events {
        let Some(item_id) = e.item_id else { continue };
        let slot = match e.event_type {
            EventType::PageView => 0,
            EventType::Click => 1,
            EventType::AddToCart => 2,
            EventType::Purchase => 3,
            _ => continue,
        };
        items.entry(item_id).or_default()[slot] += 1;
    }
    sorted(items)
}

/// Per session in `events`.
pub(crate) fn session_deltas<'a>(
    events: &[InteractionView<'a>],
) -> Vec<(&'a str, SessionDelta<'a>)> {
    let mut sessions: HashMap<&str, SessionDelta> = HashMap::default();
    for e in events {
        let s = sessions.entry(e.session_id).or_insert(SessionDelta {
            user: e.user_id,
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
    sorted(sessions)
}
