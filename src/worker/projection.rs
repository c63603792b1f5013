//! What one batch changes in the projections, computed once per batch for every store kind
//! (on the fold's threads, beside the aggregates, so the store commit only writes): per-user,
//! per-item and per-session deltas and per-user event-type counts, each merged into the
//! stored row by the store's upsert. Each comes sorted by key, so every writer takes row
//! locks in the same order.

use rustc_hash::FxHashMap as HashMap;

use super::BatchEvents;
use crate::contracts::EventType;
use crate::pipeline::{FoldInput, Pipeline, ProjectionKind};

/// A user's change: first and last event time, events, value, the session of the latest.
#[derive(Debug, Clone, PartialEq)]
pub struct UserDelta {
    /// Earliest event time of the batch.
    pub first_ms: i64,
    /// Latest event time of the batch.
    pub last_ms: i64,
    /// Events.
    pub events: i64,
    /// Sum of the events' values.
    pub value: f64,
    /// The session of the latest event.
    pub session: String,
}

/// A session's change: its user, first and last event time, events, whether it converted.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionDelta {
    /// The session's user.
    pub user: String,
    /// Earliest event time of the batch.
    pub start_ms: i64,
    /// Latest event time of the batch.
    pub end_ms: i64,
    /// Events.
    pub events: i64,
    /// Whether one of them was a purchase.
    pub converted: bool,
}

/// A batch's changes to the projections (late events included: read models are not
/// windowed), each list sorted by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectionDeltas {
    /// Per user, its events of each type (in [`EventType::ALL`]'s order), always kept.
    pub event_counts: Vec<(String, [i64; EventType::ALL.len()])>,
    /// Per user, when the pipeline keeps a user projection.
    pub users: Vec<(String, UserDelta)>,
    /// Per item: views, clicks, add-to-carts, purchases, when it keeps an item projection.
    pub items: Vec<(String, [i64; 4])>,
    /// Per session, when it keeps a session projection.
    pub sessions: Vec<(String, SessionDelta)>,
}

/// One user's running totals during the pass.
struct UserTotals<'a> {
    first_ms: i64,
    last_ms: i64,
    events: i64,
    value: f64,
    session: &'a str,
    by_type: [i64; EventType::ALL.len()],
}

impl ProjectionDeltas {
    /// The deltas of `events`, for the projections `pipeline` keeps (event counts always),
    /// in one pass over the events.
    pub fn of(events: &BatchEvents, pipeline: Option<&Pipeline>) -> Self {
        let keeps = |kind| pipeline.is_some_and(|p| p.projections.iter().any(|x| x.kind == kind));
        let (keep_items, keep_sessions) =
            (keeps(ProjectionKind::Item), keeps(ProjectionKind::Session));
        let mut users: HashMap<&str, UserTotals> = HashMap::default();
        let mut items: HashMap<&str, [i64; 4]> = HashMap::default();
        let mut sessions: HashMap<&str, (&str, i64, i64, i64, bool)> = HashMap::default();
        for e in events.iter() {
            let (user_id, session_id, occurred_at) = (e.user_id(), e.session_id(), e.occurred_at());
            let event_type = e.event_type();
            let u = users.entry(user_id).or_insert(UserTotals {
                first_ms: occurred_at,
                last_ms: occurred_at,
                events: 0,
                value: 0.0,
                session: session_id,
                by_type: [0; EventType::ALL.len()],
            });
            u.first_ms = u.first_ms.min(occurred_at);
            if occurred_at >= u.last_ms {
                u.last_ms = occurred_at;
                u.session = session_id;
            }
            u.events += 1;
            u.value += e.value().unwrap_or(0.0);
            u.by_type[event_type.index() as usize] += 1;
            if keep_items {
                let slot = match event_type {
                    EventType::PageView => Some(0),
                    EventType::Click => Some(1),
                    EventType::AddToCart => Some(2),
                    EventType::Purchase => Some(3),
                    _ => None,
                };
                if let (Some(item_id), Some(slot)) = (e.item_id(), slot) {
                    items.entry(item_id).or_default()[slot] += 1;
                }
            }
            if keep_sessions {
                let s = sessions.entry(session_id).or_insert((
                    user_id,
                    occurred_at,
                    occurred_at,
                    0,
                    false,
                ));
                s.1 = s.1.min(occurred_at);
                s.2 = s.2.max(occurred_at);
                s.3 += 1;
                s.4 |= event_type == EventType::Purchase;
            }
        }
        let event_counts = sorted(users.iter().map(|(user, totals)| (*user, totals.by_type)));
        let users = if keeps(ProjectionKind::User) {
            sorted(users.into_iter().map(|(user, u)| {
                (
                    user,
                    UserDelta {
                        first_ms: u.first_ms,
                        last_ms: u.last_ms,
                        events: u.events,
                        value: u.value,
                        session: u.session.to_owned(),
                    },
                )
            }))
        } else {
            Vec::new()
        };
        let items = sorted(items.into_iter());
        let sessions = sorted(sessions.into_iter().map(
            |(session, (user, start_ms, end_ms, events, converted))| {
                (
                    session,
                    SessionDelta {
                        user: user.to_owned(),
                        start_ms,
                        end_ms,
                        events,
                        converted,
                    },
                )
            },
        ));
        ProjectionDeltas {
            event_counts,
            users,
            items,
            sessions,
        }
    }
}

/// The entries, keys owned, sorted by key (hashing is cheaper than ordering string keys one
/// by one).
fn sorted<'a, V>(entries: impl Iterator<Item = (&'a str, V)>) -> Vec<(String, V)> {
    let mut entries: Vec<(String, V)> = entries.map(|(k, v)| (k.to_owned(), v)).collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    entries
}
