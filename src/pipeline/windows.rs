//! Event-time windows: which windows an event belongs to, how a key's sessions grow and
//! merge, and when a window is final. Pure code over millisecond timestamps: no clock, no
//! IO — the caller passes event times and, for idleness, the processing time.
//!
//! Upholds invariant 5 (event time). Tumbling and hopping windows are aligned to the Unix
//! epoch and assigned with floor division, so negative timestamps are windowed like any
//! other. A [`Watermark`] is kept per partition; a window is final for that partition once
//! its watermark reaches `end + grace`. The watermark that decides lateness depends on
//! event times only, so replaying a partition makes the same late/on-time decisions as the
//! live run (invariant 1); processing time only enters through the idle rule, which feeds
//! [`combined`] (the cross-partition view) and never a partition's own lateness.
//! Nothing here decides what happens to a late event (invariant 7 is the worker's job).

use std::collections::BTreeMap;
use std::hash::Hash;

use rustc_hash::FxHashMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The largest number of windows one event may fall into (`ceil(size_ms / hop_ms)` for
/// hopping windows); a spec above it is refused so one event cannot fan out unboundedly.
pub const MAX_WINDOWS_PER_EVENT: u64 = 1024;

/// The longest duration a spec may name, in milliseconds (`i64::MAX`): every window bound
/// then fits the timestamp type.
pub const MAX_DURATION_MS: u64 = i64::MAX as u64;

/// How events are grouped in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowSpec {
    /// Back-to-back windows `[k·size, (k+1)·size)`; every event is in exactly one.
    Tumbling {
        /// Window length in milliseconds.
        size_ms: u64,
    },
    /// Windows of `size_ms` starting every `hop_ms` (at multiples of `hop_ms`); an event is
    /// in `floor(size/hop)` or `ceil(size/hop)` of them. `hop_ms` need not divide `size_ms`.
    Hopping {
        /// Window length in milliseconds.
        size_ms: u64,
        /// Distance between window starts in milliseconds (at most `size_ms`).
        hop_ms: u64,
    },
    /// Per-key sessions that close after `gap_ms` without events (see [`SessionTracker`]).
    Session {
        /// Inactivity gap in milliseconds.
        gap_ms: u64,
    },
}

/// A problem with a [`WindowSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WindowSpecError {
    /// A window of no length.
    #[error("window size_ms must be greater than 0")]
    ZeroSize,
    /// Hopping windows that never move on.
    #[error("hop_ms must be greater than 0")]
    ZeroHop,
    /// Hops longer than windows would leave events in no window.
    #[error("hop_ms ({hop_ms}) must not exceed size_ms ({size_ms})")]
    HopExceedsSize {
        /// The window length.
        size_ms: u64,
        /// The hop.
        hop_ms: u64,
    },
    /// Too many overlapping windows per event.
    #[error(
        "size_ms ({size_ms}) / hop_ms ({hop_ms}) puts each event in up to {windows} windows, \
         more than the limit of {max}"
    )]
    TooManyWindows {
        /// The window length.
        size_ms: u64,
        /// The hop.
        hop_ms: u64,
        /// `ceil(size_ms / hop_ms)`.
        windows: u64,
        /// [`MAX_WINDOWS_PER_EVENT`].
        max: u64,
    },
    /// A session that closes before it opens.
    #[error("session gap_ms must be greater than 0")]
    ZeroGap,
    /// A duration beyond [`MAX_DURATION_MS`].
    #[error("{field} ({value} ms) exceeds the longest duration, {max} ms")]
    TooLong {
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: u64,
        /// [`MAX_DURATION_MS`].
        max: u64,
    },
}

/// Why an event could not be windowed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WindowError {
    /// The spec is invalid (validate specs when building the pipeline).
    #[error("invalid window spec: {0}")]
    Spec(#[from] WindowSpecError),
    /// [`assign`] was given a session spec; sessions depend on the key's other events.
    #[error("session windows are assigned by a SessionTracker, not by assign")]
    SessionSpec,
    /// The event's windows would end beyond the timestamp range (an absurd event time:
    /// dead-letter the event with this reason).
    #[error(
        "event time {ts_ms} ms is too close to the ends of the timestamp range to be windowed"
    )]
    OutOfRange {
        /// The event time.
        ts_ms: i64,
    },
}

impl WindowSpec {
    /// Every problem with this spec, empty when it is valid (for config validation that
    /// reports everything at once).
    pub fn problems(&self) -> Vec<WindowSpecError> {
        let mut problems = Vec::new();
        self.each_problem(|problem| problems.push(problem));
        problems
    }

    /// Reports every problem with this spec to `report`, allocating nothing (it runs for
    /// every event a window is assigned to).
    fn each_problem(&self, mut report: impl FnMut(WindowSpecError)) {
        let too_long = |field: &'static str, value: u64| {
            (value > MAX_DURATION_MS).then_some(WindowSpecError::TooLong {
                field,
                value,
                max: MAX_DURATION_MS,
            })
        };
        match *self {
            WindowSpec::Tumbling { size_ms } => {
                too_long("size_ms", size_ms).map(&mut report);
                if size_ms == 0 {
                    report(WindowSpecError::ZeroSize);
                }
            }
            WindowSpec::Hopping { size_ms, hop_ms } => {
                too_long("size_ms", size_ms).map(&mut report);
                too_long("hop_ms", hop_ms).map(&mut report);
                if size_ms == 0 {
                    report(WindowSpecError::ZeroSize);
                }
                if hop_ms == 0 {
                    report(WindowSpecError::ZeroHop);
                } else if hop_ms > size_ms {
                    report(WindowSpecError::HopExceedsSize { size_ms, hop_ms });
                } else {
                    let windows = size_ms.div_ceil(hop_ms);
                    if windows > MAX_WINDOWS_PER_EVENT {
                        report(WindowSpecError::TooManyWindows {
                            size_ms,
                            hop_ms,
                            windows,
                            max: MAX_WINDOWS_PER_EVENT,
                        });
                    }
                }
            }
            WindowSpec::Session { gap_ms } => {
                too_long("gap_ms", gap_ms).map(&mut report);
                if gap_ms == 0 {
                    report(WindowSpecError::ZeroGap);
                }
            }
        }
    }

    /// How far from an event's time the windows holding it can reach: the size for
    /// tumbling and hopping windows, the gap for sessions (before merging).
    pub fn reach_ms(&self) -> u64 {
        match *self {
            WindowSpec::Tumbling { size_ms } | WindowSpec::Hopping { size_ms, .. } => size_ms,
            WindowSpec::Session { gap_ms } => gap_ms,
        }
    }

    /// Checks the spec, returning its first problem (see [`WindowSpec::problems`] for all).
    pub fn validate(&self) -> Result<(), WindowSpecError> {
        let mut first = None;
        self.each_problem(|problem| {
            first.get_or_insert(problem);
        });
        first.map_or(Ok(()), Err)
    }
}

/// A half-open interval of event time, `[start_ms, end_ms)`, in milliseconds since the
/// Unix epoch. Ordered by start, then end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    /// First millisecond in the window.
    pub start_ms: i64,
    /// First millisecond after the window (exclusive).
    pub end_ms: i64,
}

impl Window {
    /// Whether `ts_ms` lies in `[start_ms, end_ms)`.
    pub fn contains(&self, ts_ms: i64) -> bool {
        self.start_ms <= ts_ms && ts_ms < self.end_ms
    }

    /// Whether the two windows share at least one millisecond.
    pub fn overlaps(&self, other: &Window) -> bool {
        self.start_ms < other.end_ms && other.start_ms < self.end_ms
    }

    /// The window's length in milliseconds (0 for an empty or inverted window).
    pub fn len_ms(&self) -> u64 {
        u64::try_from(i128::from(self.end_ms) - i128::from(self.start_ms)).unwrap_or(0)
    }
}

/// The tumbling or hopping windows containing `ts_ms`, ordered by start.
///
/// Windows start at multiples of the hop (of the size for tumbling windows) counted from
/// the epoch, using floor division, so `-1` is in the tumbling window `[-size, 0)`.
///
/// # Errors
/// [`WindowError::Spec`] for an invalid spec, [`WindowError::SessionSpec`] for a session
/// spec, [`WindowError::OutOfRange`] when a window would end outside the `i64` range.
pub fn assign(spec: &WindowSpec, ts_ms: i64) -> Result<Vec<Window>, WindowError> {
    let mut windows = Vec::new();
    assign_into(spec, ts_ms, &mut windows)?;
    Ok(windows)
}

/// [`assign`] into a buffer the caller reuses (cleared first; left empty on error).
///
/// # Errors
/// As [`assign`].
pub fn assign_into(
    spec: &WindowSpec,
    ts_ms: i64,
    windows: &mut Vec<Window>,
) -> Result<(), WindowError> {
    windows.clear();
    WindowGrid::of(spec)?.assign_into(ts_ms, windows)
}

/// A valid tumbling or hopping spec's grid of windows, checked once, for a caller that
/// assigns many events to the same spec's windows (a live aggregate, per event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowGrid {
    size_ms: i64,
    hop_ms: i64,
}

impl WindowGrid {
    /// The grid of a tumbling or hopping spec.
    ///
    /// # Errors
    /// [`WindowError::Spec`] for an invalid spec, [`WindowError::SessionSpec`] for a
    /// session spec.
    pub fn of(spec: &WindowSpec) -> Result<Self, WindowError> {
        let (size, hop) = size_and_hop(spec)?;
        // A valid spec's durations are at most `MAX_DURATION_MS`, which is `i64::MAX`.
        Ok(WindowGrid {
            size_ms: i64::try_from(size).unwrap_or(i64::MAX),
            hop_ms: i64::try_from(hop).unwrap_or(i64::MAX),
        })
    }

    /// As [`assign_into`]: the windows holding `ts_ms`, earliest first, into `windows`
    /// (cleared first; left empty on error).
    ///
    /// # Errors
    /// [`WindowError::OutOfRange`] when a window would end beyond the timestamp range.
    pub fn assign_into(&self, ts_ms: i64, windows: &mut Vec<Window>) -> Result<(), WindowError> {
        windows.clear();
        let WindowGrid { size_ms, hop_ms } = *self;
        // In i64 when the earliest start and the latest end fit it, as they do for any
        // real event time; else in i128, which tells which bound is out of range.
        // `last` lies in (ts − hop, ts] and hop ≤ size, so it fits when ts − size does.
        if let Some(earliest) = ts_ms.checked_sub(size_ms) {
            let last = ts_ms.div_euclid(hop_ms) * hop_ms;
            if last.checked_add(size_ms).is_some() {
                let mut start = Some(last);
                while let Some(at) = start.filter(|at| *at > earliest) {
                    windows.push(Window {
                        start_ms: at,
                        end_ms: at + size_ms,
                    });
                    start = at.checked_sub(hop_ms);
                }
                windows.reverse();
                return Ok(());
            }
        }
        let (size, hop, ts) = (i128::from(size_ms), i128::from(hop_ms), i128::from(ts_ms));
        let mut start = ts.div_euclid(hop) * hop;
        while start > ts - size {
            match window_in_range(start, start + size, ts_ms) {
                Ok(window) => windows.push(window),
                Err(error) => {
                    windows.clear();
                    return Err(error);
                }
            }
            start -= hop;
        }
        windows.reverse();
        Ok(())
    }

    /// The event times `[from, to)` whose windows are exactly `windows` (an assignment,
    /// earliest first): those in every one of them (from the last's start to the first's
    /// end) and in no other, neither the one after the last nor the one before the first.
    /// `None` for no windows, or bounds beyond the timestamp range.
    fn times_of(&self, windows: &[Window]) -> Option<(i64, i64)> {
        let (first, last) = (windows.first()?, windows.last()?);
        let (size, hop) = (i128::from(self.size_ms), i128::from(self.hop_ms));
        let from = i128::from(last.start_ms).max(i128::from(first.start_ms) - hop + size);
        let to = (i128::from(last.start_ms) + hop).min(i128::from(first.end_ms));
        Some((i64::try_from(from).ok()?, i64::try_from(to).ok()?))
    }
}

/// A grid's assignments for a caller that assigns a stream's events one by one: it keeps the
/// windows of the last event time with the event times they are exactly the windows of, and
/// a stream's consecutive events mostly fall in the same hop, so most assignments reuse the
/// windows of the one before instead of dividing again.
#[derive(Debug, Clone)]
pub struct GridAssignment {
    grid: WindowGrid,
    windows: Vec<Window>,
    /// `[from, to)`: the event times whose windows are `windows`.
    holds: Option<(i64, i64)>,
}

impl GridAssignment {
    /// Assignments on `grid`, none made yet.
    pub fn new(grid: WindowGrid) -> Self {
        GridAssignment {
            grid,
            windows: Vec::new(),
            holds: None,
        }
    }

    /// The windows [`WindowGrid::assign_into`] gives `ts_ms`.
    ///
    /// # Errors
    /// As [`WindowGrid::assign_into`].
    pub fn windows(&mut self, ts_ms: i64) -> Result<&[Window], WindowError> {
        if let Some((from, to)) = self.holds {
            if from <= ts_ms && ts_ms < to {
                return Ok(&self.windows);
            }
        }
        self.holds = None;
        self.grid.assign_into(ts_ms, &mut self.windows)?;
        self.holds = self.grid.times_of(&self.windows);
        Ok(&self.windows)
    }
}

/// The latest-ending window [`assign`] gives for `ts_ms` (`None` when it gives none), with the
/// same errors, without building the others: what lateness needs, on the hot path.
///
/// # Errors
/// As [`assign`].
pub fn last_window(spec: &WindowSpec, ts_ms: i64) -> Result<Option<Window>, WindowError> {
    let (size, hop) = size_and_hop(spec)?;
    let ts = i128::from(ts_ms);
    let last = ts.div_euclid(hop) * hop;
    if last <= ts - size {
        return Ok(None);
    }
    // The earliest start above ts − size on the hop grid: every window between is in range
    // when the first and the last are.
    let first = last - (last - (ts - size) - 1).div_euclid(hop) * hop;
    window_in_range(first, first + size, ts_ms)?;
    window_in_range(last, last + size, ts_ms).map(Some)
}

/// A valid tumbling or hopping spec's size and hop, as i128: no window bound computed from
/// them and an `i64` timestamp can overflow, and the hop is positive.
fn size_and_hop(spec: &WindowSpec) -> Result<(i128, i128), WindowError> {
    spec.validate()?;
    let (size, hop) = match *spec {
        WindowSpec::Tumbling { size_ms } => (size_ms, size_ms),
        WindowSpec::Hopping { size_ms, hop_ms } => (size_ms, hop_ms),
        WindowSpec::Session { .. } => return Err(WindowError::SessionSpec),
    };
    Ok((i128::from(size), i128::from(hop)))
}

fn window_in_range(start: i128, end: i128, ts_ms: i64) -> Result<Window, WindowError> {
    match (i64::try_from(start), i64::try_from(end)) {
        (Ok(start_ms), Ok(end_ms)) => Ok(Window { start_ms, end_ms }),
        _ => Err(WindowError::OutOfRange { ts_ms }),
    }
}

/// Whether a window ending at `window_end_ms` is final under `watermark_ms`: the watermark
/// has reached `end + grace`. No watermark (nothing seen yet) finalises nothing.
pub fn window_is_final(watermark_ms: Option<i64>, window_end_ms: i64, grace_ms: u64) -> bool {
    match watermark_ms {
        Some(watermark) => {
            i128::from(watermark) >= i128::from(window_end_ms) + i128::from(grace_ms)
        }
        None => false,
    }
}

/// What inserting an event did to its key's sessions, so a session aggregate can follow:
/// the event's value goes into the partial of [`SessionChange::window`], which replaces the
/// partials of [`SessionChange::replaced`] (merged together first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionChange {
    /// A new session: start an empty partial.
    Created(Window),
    /// The event fell inside an existing session whose bounds did not change.
    Joined(Window),
    /// One session grew (earlier start and/or later end): re-key its partial.
    Extended {
        /// The session before the event.
        from: Window,
        /// The session after it.
        to: Window,
    },
    /// The event bridged two or more sessions: merge their partials into one.
    Merged {
        /// The sessions that were merged, ordered by start.
        from: Vec<Window>,
        /// The resulting session.
        to: Window,
    },
}

impl SessionChange {
    /// The session the event now belongs to.
    pub fn window(&self) -> Window {
        match self {
            SessionChange::Created(window) | SessionChange::Joined(window) => *window,
            SessionChange::Extended { to, .. } | SessionChange::Merged { to, .. } => *to,
        }
    }

    /// The sessions that existed before the event and are now part of
    /// [`SessionChange::window`] (including it, for [`SessionChange::Joined`]).
    pub fn replaced(&self) -> &[Window] {
        match self {
            SessionChange::Created(_) => &[],
            SessionChange::Joined(window) => std::slice::from_ref(window),
            SessionChange::Extended { from, .. } => std::slice::from_ref(from),
            SessionChange::Merged { from, .. } => from,
        }
    }
}

/// The open sessions of every key of one partition.
///
/// An event at `t` spans `[t, t + gap)`; a session is the union of overlapping event
/// spans, so it is `[first event, last event + gap)` and two consecutive events of a key
/// share a session exactly when they are less than `gap_ms` apart. Events may arrive in any
/// order: one that overlaps a session extends it (backwards too), one that overlaps several
/// merges them. The result depends only on the set of inserted events, not their order.
/// Serializable so a partition's open sessions can be stored with its offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Ord",
    deserialize = "K: Deserialize<'de> + Ord + Hash"
))]
pub struct SessionTracker<K: Eq + Hash> {
    gap_ms: u64,
    /// Per key: session start → session end, disjoint and non-touching. Hashed: every
    /// event looks its key up (a tree took a string comparison per level); written
    /// ordered by key.
    #[serde(serialize_with = "ordered_by_key")]
    keys: FxHashMap<K, BTreeMap<i64, i64>>,
}

/// Writes a map ordered by key, so the same tracker always has the same bytes.
fn ordered_by_key<K: Serialize + Ord, V: Serialize, S: serde::Serializer>(
    map: &FxHashMap<K, V>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(map.iter().collect::<BTreeMap<_, _>>())
}

impl<K: Ord + Clone + Hash> SessionTracker<K> {
    /// An empty tracker for sessions closing after `gap_ms` without events.
    ///
    /// # Errors
    /// [`WindowSpecError::ZeroGap`] or [`WindowSpecError::TooLong`].
    pub fn new(gap_ms: u64) -> Result<Self, WindowSpecError> {
        WindowSpec::Session { gap_ms }.validate()?;
        Ok(SessionTracker {
            gap_ms,
            keys: FxHashMap::default(),
        })
    }

    /// The inactivity gap.
    pub fn gap_ms(&self) -> u64 {
        self.gap_ms
    }

    /// Adds an event of `key` at `ts_ms`, merging sessions as needed.
    ///
    /// # Errors
    /// [`WindowError::OutOfRange`] when `ts_ms + gap_ms` does not fit an `i64` (the tracker
    /// is unchanged).
    pub fn insert(&mut self, key: K, ts_ms: i64) -> Result<SessionChange, WindowError> {
        let span = self.span(ts_ms)?;
        Ok(self.insert_window(key, span))
    }

    /// Re-adds a session read back from the store (for example after a rebalance), merging
    /// it with any overlapping session of the key. Empty windows are ignored (reported as
    /// `Joined`, with no effect).
    pub fn restore(&mut self, key: K, window: Window) -> SessionChange {
        if window.start_ms >= window.end_ms {
            return SessionChange::Joined(window);
        }
        self.insert_window(key, window)
    }

    /// The session an event of `key` at `ts_ms` would belong to, without inserting it. Use it
    /// to decide lateness before inserting: the event is late when this window is final.
    ///
    /// # Errors
    /// [`WindowError::OutOfRange`] as for [`SessionTracker::insert`].
    pub fn window_for(&self, key: &K, ts_ms: i64) -> Result<Window, WindowError> {
        let span = self.span(ts_ms)?;
        let Some(sessions) = self.keys.get(key) else {
            return Ok(span);
        };
        Ok(overlapping(sessions, span)
            .into_iter()
            .fold(span, |acc, w| Window {
                start_ms: acc.start_ms.min(w.start_ms),
                end_ms: acc.end_ms.max(w.end_ms),
            }))
    }

    /// The open sessions of `key`, ordered by start.
    pub fn sessions(&self, key: &K) -> Vec<Window> {
        self.keys
            .get(key)
            .map(|sessions| {
                sessions
                    .iter()
                    .map(|(&start_ms, &end_ms)| Window { start_ms, end_ms })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes and returns every session that is final under `watermark_ms` and `grace_ms`
    /// (see [`window_is_final`]), ordered by key, then start.
    pub fn close_final(&mut self, watermark_ms: Option<i64>, grace_ms: u64) -> Vec<(K, Window)> {
        let mut closed = Vec::new();
        if watermark_ms.is_none() {
            return closed;
        }
        self.keys.retain(|key, sessions| {
            sessions.retain(|&start_ms, &mut end_ms| {
                let final_ = window_is_final(watermark_ms, end_ms, grace_ms);
                if final_ {
                    closed.push((key.clone(), Window { start_ms, end_ms }));
                }
                !final_
            });
            !sessions.is_empty()
        });
        closed.sort_unstable();
        closed
    }

    /// How many sessions are open, over all keys.
    pub fn len(&self) -> usize {
        self.keys.values().map(BTreeMap::len).sum()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn span(&self, ts_ms: i64) -> Result<Window, WindowError> {
        window_in_range(
            i128::from(ts_ms),
            i128::from(ts_ms) + i128::from(self.gap_ms),
            ts_ms,
        )
    }

    /// [`SessionTracker::insert`] with the key by reference, cloned only for a new key.
    ///
    /// # Errors
    /// As [`SessionTracker::insert`].
    pub fn insert_borrowed<Q>(&mut self, key: &Q, ts_ms: i64) -> Result<SessionChange, WindowError>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + Hash + ToOwned<Owned = K> + ?Sized,
    {
        let span = self.span(ts_ms)?;
        if let Some(sessions) = self.keys.get_mut(key) {
            return Ok(merge_span(sessions, span));
        }
        Ok(merge_span(
            self.keys.entry(key.to_owned()).or_default(),
            span,
        ))
    }

    fn insert_window(&mut self, key: K, span: Window) -> SessionChange {
        merge_span(self.keys.entry(key).or_default(), span)
    }
}

/// Adds `span` to one key's sessions, merging every session it overlaps.
fn merge_span(sessions: &mut BTreeMap<i64, i64>, span: Window) -> SessionChange {
    // The common cases first, without collecting: the span overlaps no session, or one.
    let mut before_end = sessions.range_mut(..span.end_ms).rev();
    match before_end.next() {
        None => return created(sessions, span),
        Some((_, end_ms)) if *end_ms <= span.start_ms => return created(sessions, span),
        Some((&start_ms, end_ms)) => {
            let only_one = before_end
                .next()
                .is_none_or(|(_, end)| *end <= span.start_ms);
            if only_one && start_ms <= span.start_ms {
                // The session keeps its start (its key): extend its end in place.
                let from = Window {
                    start_ms,
                    end_ms: *end_ms,
                };
                *end_ms = (*end_ms).max(span.end_ms);
                let to = Window {
                    start_ms,
                    end_ms: *end_ms,
                };
                return if to == from {
                    SessionChange::Joined(to)
                } else {
                    SessionChange::Extended { from, to }
                };
            }
        }
    }
    let from = overlapping(sessions, span);
    let mut to = span;
    for w in &from {
        sessions.remove(&w.start_ms);
        to.start_ms = to.start_ms.min(w.start_ms);
        to.end_ms = to.end_ms.max(w.end_ms);
    }
    sessions.insert(to.start_ms, to.end_ms);
    match from.as_slice() {
        [] => SessionChange::Created(to),
        [only] if *only == to => SessionChange::Joined(to),
        [only] => SessionChange::Extended { from: *only, to },
        _ => SessionChange::Merged { from, to },
    }
}

/// Adds `span` as a session of its own (it overlaps none).
fn created(sessions: &mut BTreeMap<i64, i64>, span: Window) -> SessionChange {
    sessions.insert(span.start_ms, span.end_ms);
    SessionChange::Created(span)
}

/// The sessions overlapping `span`, ordered by start. Sessions are disjoint, so their ends
/// increase with their starts: walk back from the last one starting before `span` ends.
fn overlapping(sessions: &BTreeMap<i64, i64>, span: Window) -> Vec<Window> {
    let mut found: Vec<Window> = sessions
        .range(..span.end_ms)
        .rev()
        .take_while(|(_, &end_ms)| end_ms > span.start_ms)
        .map(|(&start_ms, &end_ms)| Window { start_ms, end_ms })
        .collect();
    found.reverse();
    found
}

/// The watermark of one partition.
///
/// **Event watermark** ([`Watermark::current`]): the largest event time observed minus
/// `delay_ms` (the allowed out-of-orderness). It only moves forward, depends on event times
/// only, and is the one to decide lateness for this partition, so a replay reproduces every
/// decision. Persist it with the partition's offset (it is serializable; the idle state is
/// not stored and restarts on load).
///
/// **Idle rule** ([`Watermark::advance_idle`]): a partition that has observed no event for
/// `idle_after_ms` of processing time (counted from its last event, or from the first
/// `advance_idle` call after creation or loading) is *idle*. While idle it has an idle
/// watermark, `max(event watermark, now − delay_ms)`, never decreasing, and [`combined`]
/// leaves it out so it does not hold the other partitions back. The next observed event
/// ends idleness. The idle watermark never finalises this partition's own windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    delay_ms: u64,
    max_event_ms: Option<i64>,
    /// Processing time of the last observed event (or when the idle clock started).
    #[serde(skip)]
    last_activity_ms: Option<i64>,
    /// Set while the partition is idle.
    #[serde(skip)]
    idle_watermark_ms: Option<i64>,
}

impl Watermark {
    /// A watermark that has seen nothing, allowing events up to `delay_ms` out of order.
    pub fn new(delay_ms: u64) -> Self {
        Watermark {
            delay_ms,
            max_event_ms: None,
            last_activity_ms: None,
            idle_watermark_ms: None,
        }
    }

    /// A partition's watermark as its stored progress tells it: the highest event time it
    /// folded and the processing time it last folded a record (`None`: unknown, then the
    /// idle clock starts on the first [`Watermark::advance_idle`]).
    pub fn from_progress(
        delay_ms: u64,
        max_event_ms: Option<i64>,
        last_activity_ms: Option<i64>,
    ) -> Self {
        Watermark {
            delay_ms,
            max_event_ms,
            last_activity_ms,
            idle_watermark_ms: None,
        }
    }

    /// The allowed out-of-orderness.
    pub fn delay_ms(&self) -> u64 {
        self.delay_ms
    }

    /// The largest event time observed.
    pub fn max_event_ms(&self) -> Option<i64> {
        self.max_event_ms
    }

    /// Folds in an event at `event_ms`, observed at processing time `now_ms`; ends idleness.
    /// Check lateness ([`Watermark::is_late`]) before observing.
    pub fn observe(&mut self, event_ms: i64, now_ms: i64) {
        self.max_event_ms = Some(self.max_event_ms.map_or(event_ms, |m| m.max(event_ms)));
        self.last_activity_ms = Some(now_ms);
        self.idle_watermark_ms = None;
    }

    /// The event watermark: largest event time − delay, saturating at `i64::MIN`. `None`
    /// before the first event.
    pub fn current(&self) -> Option<i64> {
        self.max_event_ms
            .map(|m| saturate(i128::from(m) - i128::from(self.delay_ms)))
    }

    /// Whether a window ending at `window_end_ms` is final for this partition: the event
    /// watermark has reached `end + grace`.
    pub fn is_window_final(&self, window_end_ms: i64, grace_ms: u64) -> bool {
        window_is_final(self.current(), window_end_ms, grace_ms)
    }

    /// Whether an event whose windows are `windows` is late: it has at least one window and
    /// all of them are final. (For sessions pass [`SessionTracker::window_for`].)
    pub fn is_late(&self, windows: &[Window], grace_ms: u64) -> bool {
        !windows.is_empty()
            && windows
                .iter()
                .all(|w| self.is_window_final(w.end_ms, grace_ms))
    }

    /// Applies the idle rule at processing time `now_ms` and reports whether the partition
    /// is idle. Call it on every tick.
    pub fn advance_idle(&mut self, now_ms: i64, idle_after_ms: u64) -> bool {
        let Some(last) = self.last_activity_ms else {
            self.last_activity_ms = Some(now_ms);
            return false;
        };
        if i128::from(now_ms) - i128::from(last) < i128::from(idle_after_ms) {
            return self.idle_watermark_ms.is_some();
        }
        let by_clock = saturate(i128::from(now_ms) - i128::from(self.delay_ms));
        let candidates = [self.idle_watermark_ms, self.current(), Some(by_clock)];
        self.idle_watermark_ms = candidates.into_iter().flatten().max();
        true
    }

    /// Whether the last [`Watermark::advance_idle`] found the partition idle (and no event
    /// came since).
    pub fn is_idle(&self) -> bool {
        self.idle_watermark_ms.is_some()
    }

    /// The idle watermark, while idle.
    pub fn idle_watermark(&self) -> Option<i64> {
        self.idle_watermark_ms
    }
}

fn saturate(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// The watermark over several partitions: the minimum event watermark of the partitions
/// that are not idle. A non-idle partition without a watermark yet holds everything back
/// (`None`). When every partition is idle it is the minimum of their idle watermarks; with
/// no partitions it is `None`.
///
/// It is a heuristic for "final everywhere" (a resuming partition can lower it again);
/// lateness is decided per partition with [`Watermark::current`].
pub fn combined<'a, I>(partitions: I) -> Option<i64>
where
    I: IntoIterator<Item = &'a Watermark>,
{
    let mut active: Option<Option<i64>> = None;
    let mut idle: Option<i64> = None;
    for partition in partitions {
        match partition.idle_watermark_ms {
            Some(idle_ms) => idle = Some(idle.map_or(idle_ms, |m| m.min(idle_ms))),
            None => {
                let current = partition.current();
                active = Some(match active {
                    None => current,
                    Some(so_far) => so_far.zip(current).map(|(a, b)| a.min(b)),
                });
            }
        }
    }
    match active {
        Some(min) => min,
        None => idle,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn w(start_ms: i64, end_ms: i64) -> Window {
        Window { start_ms, end_ms }
    }

    #[test]
    fn validate_table() {
        use WindowSpec::*;
        use WindowSpecError::*;
        let cases: Vec<(WindowSpec, Vec<WindowSpecError>)> = vec![
            (Tumbling { size_ms: 1000 }, vec![]),
            (Tumbling { size_ms: 0 }, vec![ZeroSize]),
            (
                Hopping {
                    size_ms: 10,
                    hop_ms: 3,
                },
                vec![],
            ),
            (
                Hopping {
                    size_ms: 10,
                    hop_ms: 10,
                },
                vec![],
            ),
            (
                Hopping {
                    size_ms: 10,
                    hop_ms: 0,
                },
                vec![ZeroHop],
            ),
            (
                Hopping {
                    size_ms: 0,
                    hop_ms: 5,
                },
                vec![
                    ZeroSize,
                    HopExceedsSize {
                        size_ms: 0,
                        hop_ms: 5,
                    },
                ],
            ),
            (
                Hopping {
                    size_ms: 5,
                    hop_ms: 10,
                },
                vec![HopExceedsSize {
                    size_ms: 5,
                    hop_ms: 10,
                }],
            ),
            (
                Hopping {
                    size_ms: 1025,
                    hop_ms: 1,
                },
                vec![TooManyWindows {
                    size_ms: 1025,
                    hop_ms: 1,
                    windows: 1025,
                    max: 1024,
                }],
            ),
            (
                Hopping {
                    size_ms: 1024,
                    hop_ms: 1,
                },
                vec![],
            ),
            (Session { gap_ms: 0 }, vec![ZeroGap]),
            (Session { gap_ms: 30_000 }, vec![]),
            (
                Session { gap_ms: u64::MAX },
                vec![TooLong {
                    field: "gap_ms",
                    value: u64::MAX,
                    max: MAX_DURATION_MS,
                }],
            ),
            (
                Tumbling { size_ms: u64::MAX },
                vec![TooLong {
                    field: "size_ms",
                    value: u64::MAX,
                    max: MAX_DURATION_MS,
                }],
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(spec.problems(), expected, "{spec:?}");
            assert_eq!(spec.validate().err(), expected.first().cloned(), "{spec:?}");
        }
    }

    #[test]
    fn spec_serde() {
        let spec: WindowSpec =
            serde_json::from_str(r#"{"type":"hopping","size_ms":60000,"hop_ms":10000}"#).unwrap();
        assert_eq!(
            spec,
            WindowSpec::Hopping {
                size_ms: 60_000,
                hop_ms: 10_000
            }
        );
        assert!(serde_json::from_str::<WindowSpec>(r#"{"type":"tumbling","size":1}"#).is_err());
        let back = serde_json::to_string(&WindowSpec::Session { gap_ms: 5 }).unwrap();
        assert_eq!(back, r#"{"type":"session","gap_ms":5}"#);
    }

    #[test]
    fn assign_table() {
        let tumbling = WindowSpec::Tumbling { size_ms: 10 };
        let hopping = WindowSpec::Hopping {
            size_ms: 10,
            hop_ms: 5,
        };
        let ragged = WindowSpec::Hopping {
            size_ms: 10,
            hop_ms: 4,
        };
        let cases: Vec<(WindowSpec, i64, Vec<Window>)> = vec![
            (tumbling, 0, vec![w(0, 10)]),
            (tumbling, 9, vec![w(0, 10)]),
            (tumbling, 10, vec![w(10, 20)]),
            (tumbling, -1, vec![w(-10, 0)]),
            (tumbling, -10, vec![w(-10, 0)]),
            (tumbling, -11, vec![w(-20, -10)]),
            (hopping, 0, vec![w(-5, 5), w(0, 10)]),
            (hopping, 7, vec![w(0, 10), w(5, 15)]),
            (hopping, -1, vec![w(-10, 0), w(-5, 5)]),
            (ragged, 0, vec![w(-8, 2), w(-4, 6), w(0, 10)]),
            (ragged, 1, vec![w(-8, 2), w(-4, 6), w(0, 10)]),
            (ragged, 2, vec![w(-4, 6), w(0, 10)]),
            (ragged, 3, vec![w(-4, 6), w(0, 10)]),
            (ragged, 4, vec![w(-4, 6), w(0, 10), w(4, 14)]),
        ];
        for (spec, ts, expected) in cases {
            assert_eq!(assign(&spec, ts), Ok(expected), "{spec:?} at {ts}");
        }
    }

    #[test]
    fn assign_errors() {
        assert_eq!(
            assign(&WindowSpec::Session { gap_ms: 5 }, 0),
            Err(WindowError::SessionSpec)
        );
        assert_eq!(
            assign(&WindowSpec::Tumbling { size_ms: 0 }, 0),
            Err(WindowError::Spec(WindowSpecError::ZeroSize))
        );
        // i64::MIN is a multiple of 8, so its window starts there and fits ...
        assert_eq!(
            assign(&WindowSpec::Tumbling { size_ms: 8 }, i64::MIN),
            Ok(vec![w(i64::MIN, i64::MIN + 8)])
        );
        // ... but a window of 10 would start below it, and one at the top would end above.
        for ts in [i64::MIN, i64::MAX] {
            assert_eq!(
                assign(&WindowSpec::Tumbling { size_ms: 10 }, ts),
                Err(WindowError::OutOfRange { ts_ms: ts })
            );
        }
    }

    fn brute_force_windows(size: i64, hop: i64, ts: i64) -> Vec<Window> {
        // Every window start k·hop in a generous range around ts, kept when it contains ts.
        let k0 = ts.div_euclid(hop) - size / hop - 2;
        (k0..k0 + size / hop + 4)
            .map(|k| w(k * hop, k * hop + size))
            .filter(|win| win.contains(ts))
            .collect()
    }

    /// The windows of `ts`, computed wholly in i128 (the grid's reference).
    fn windows_in_i128(size: i64, hop: i64, ts: i64) -> Result<Vec<Window>, WindowError> {
        let (size, hop, ts128) = (i128::from(size), i128::from(hop), i128::from(ts));
        let first = (ts128 - size).div_euclid(hop) * hop + hop;
        let mut windows = Vec::new();
        let mut start = first;
        while start <= ts128 {
            match (i64::try_from(start), i64::try_from(start + size)) {
                (Ok(start_ms), Ok(end_ms)) => windows.push(w(start_ms, end_ms)),
                _ => return Err(WindowError::OutOfRange { ts_ms: ts }),
            }
            start += hop;
        }
        Ok(windows)
    }

    /// Timestamps anywhere, and many near the ends of the range.
    fn any_time() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            i64::MIN..i64::MIN + 100_000,
            i64::MAX - 100_000..=i64::MAX,
            -100_000i64..100_000,
        ]
    }

    /// A hopping grid (its size and hop, and the grid), small or huge, with one to eight
    /// windows per event and sizes that are not a multiple of the hop.
    fn any_grid() -> impl Strategy<Value = (i64, i64, WindowGrid)> {
        (prop_oneof![1i64..100, 1i64..=i64::MAX], 1i64..=8, 0i64..100).prop_map(
            |(hop, windows, extra)| {
                let size = hop.saturating_mul(windows).saturating_add(extra).max(hop);
                let spec = WindowSpec::Hopping {
                    size_ms: size as u64,
                    hop_ms: hop as u64,
                };
                (size, hop, WindowGrid::of(&spec).unwrap())
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn the_grid_assigns_as_i128_arithmetic(
            (size, hop, grid) in any_grid(),
            ts in any_time(),
        ) {
            let mut got = vec![w(1, 2)];
            let result = grid.assign_into(ts, &mut got);
            match windows_in_i128(size, hop, ts) {
                Ok(expected) => {
                    prop_assert_eq!(result, Ok(()));
                    prop_assert_eq!(got, expected);
                }
                Err(error) => {
                    prop_assert_eq!(result, Err(error));
                    prop_assert!(got.is_empty());
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Reusing the last assignment gives exactly what assigning afresh gives, windows
        /// and errors, for event times near one another, across hops, and at the range's ends.
        #[test]
        fn a_reused_assignment_is_a_fresh_one(
            (_, _, grid) in any_grid(),
            start in any_time(),
            steps in proptest::collection::vec(-250i64..250, 1..40),
        ) {
            let mut reused = GridAssignment::new(grid);
            let mut ts = start;
            for step in steps {
                ts = ts.saturating_add(step);
                let mut fresh = Vec::new();
                let expected = grid.assign_into(ts, &mut fresh).map(|()| fresh);
                let got = reused.windows(ts).map(<[Window]>::to_vec);
                prop_assert_eq!(got, expected, "at {}", ts);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn assign_matches_brute_force(
            hop in 1i64..50,
            extra in 0i64..200,
            ts in -1_000_000i64..1_000_000,
        ) {
            let size = hop + extra;
            let spec = WindowSpec::Hopping { size_ms: size as u64, hop_ms: hop as u64 };
            let got = assign(&spec, ts).unwrap();
            for win in &got {
                prop_assert!(win.contains(ts));
                prop_assert_eq!(win.len_ms(), size as u64);
                prop_assert_eq!(win.start_ms.rem_euclid(hop), 0);
            }
            prop_assert_eq!(got, brute_force_windows(size, hop, ts));
        }

        #[test]
        fn last_window_is_the_last_assigned(
            hop in 1u64..5_000,
            extra in 0u64..20_000,
            ts in any::<i64>(),
            tumbling in any::<bool>(),
        ) {
            let spec = if tumbling {
                WindowSpec::Tumbling { size_ms: hop }
            } else {
                WindowSpec::Hopping { size_ms: hop + extra, hop_ms: hop }
            };
            match assign(&spec, ts) {
                Ok(windows) => prop_assert_eq!(last_window(&spec, ts), Ok(windows.last().copied())),
                Err(error) => prop_assert_eq!(last_window(&spec, ts), Err(error)),
            }
        }

        #[test]
        fn tumbling_is_one_window(size in 1i64..10_000, ts in any::<i32>()) {
            let ts = i64::from(ts);
            let got = assign(&WindowSpec::Tumbling { size_ms: size as u64 }, ts).unwrap();
            prop_assert_eq!(got, brute_force_windows(size, size, ts));
        }
    }

    #[test]
    fn sessions_table() {
        let mut tracker = SessionTracker::new(10).unwrap();
        let steps: Vec<(&str, i64, SessionChange)> = vec![
            ("a", 100, SessionChange::Created(w(100, 110))),
            (
                "a",
                105,
                SessionChange::Extended {
                    from: w(100, 110),
                    to: w(100, 115),
                },
            ),
            ("a", 103, SessionChange::Joined(w(100, 115))),
            (
                "a",
                95,
                SessionChange::Extended {
                    from: w(100, 115),
                    to: w(95, 115),
                },
            ),
            ("a", 125, SessionChange::Created(w(125, 135))),
            // 115 is exactly one gap after 105 (touching spans do not merge), 135 too.
            ("a", 115, SessionChange::Created(w(115, 125))),
            ("b", 100, SessionChange::Created(w(100, 110))),
            (
                "a",
                114,
                SessionChange::Merged {
                    from: vec![w(95, 115), w(115, 125)],
                    to: w(95, 125),
                },
            ),
            (
                "a",
                120,
                SessionChange::Merged {
                    from: vec![w(95, 125), w(125, 135)],
                    to: w(95, 135),
                },
            ),
        ];
        for (key, ts, expected) in steps {
            let preview = tracker.window_for(&key, ts).unwrap();
            let change = tracker.insert(key, ts).unwrap();
            assert_eq!(change, expected, "{key} at {ts}");
            assert_eq!(preview, change.window());
        }
        assert_eq!(tracker.sessions(&"a"), vec![w(95, 135)]);
        assert_eq!(tracker.sessions(&"b"), vec![w(100, 110)]);
        assert_eq!(tracker.len(), 2);

        assert!(tracker.close_final(None, 0).is_empty());
        assert_eq!(tracker.close_final(Some(115), 5), vec![("b", w(100, 110))]);
        assert_eq!(tracker.close_final(Some(139), 5), vec![]);
        assert_eq!(tracker.close_final(Some(140), 5), vec![("a", w(95, 135))]);
        assert!(tracker.is_empty());
    }

    #[test]
    fn sessions_restore_and_errors() {
        let mut tracker = SessionTracker::new(10).unwrap();
        assert_eq!(
            tracker.restore("k", w(0, 30)),
            SessionChange::Created(w(0, 30))
        );
        assert_eq!(
            tracker.insert("k", 25).unwrap(),
            SessionChange::Extended {
                from: w(0, 30),
                to: w(0, 35)
            }
        );
        assert_eq!(
            tracker.restore("k", w(5, 5)),
            SessionChange::Joined(w(5, 5))
        );
        assert_eq!(
            tracker.insert("k", i64::MAX),
            Err(WindowError::OutOfRange { ts_ms: i64::MAX })
        );
        assert_eq!(tracker.sessions(&"k"), vec![w(0, 35)]);
        assert_eq!(SessionTracker::<u8>::new(0), Err(WindowSpecError::ZeroGap));
        let json = serde_json::to_string(&tracker).unwrap();
        let back: SessionTracker<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.sessions(&"k".to_string()), vec![w(0, 35)]);
    }

    #[test]
    fn a_tracker_is_written_and_closes_sessions_ordered_by_key() {
        let mut tracker = SessionTracker::new(10).unwrap();
        for (key, at) in [("c", 0), ("a", 5), ("b", 1), ("a", 100)] {
            tracker.insert(key, at).unwrap();
        }
        assert_eq!(
            serde_json::to_string(&tracker).unwrap(),
            r#"{"gap_ms":10,"keys":{"a":{"5":15,"100":110},"b":{"1":11},"c":{"0":10}}}"#
        );
        assert_eq!(
            tracker.close_final(Some(200), 0),
            vec![
                ("a", w(5, 15)),
                ("a", w(100, 110)),
                ("b", w(1, 11)),
                ("c", w(0, 10))
            ]
        );
        assert!(tracker.is_empty());
    }

    /// Sort a key's timestamps and cut where consecutive events are `gap` or more apart.
    fn brute_force_sessions(mut times: Vec<i64>, gap: i64) -> Vec<(Window, usize)> {
        times.sort_unstable();
        let mut sessions: Vec<(Window, usize)> = Vec::new();
        for t in times {
            match sessions.last_mut() {
                Some((win, n)) if t - (win.end_ms - gap) < gap => {
                    win.end_ms = t + gap;
                    *n += 1;
                }
                _ => sessions.push((w(t, t + gap), 1)),
            }
        }
        sessions
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Inserting in any order gives the brute-force sessions, and following the
        /// reported changes (a count partial per session) gives each session's event count.
        #[test]
        fn sessions_match_brute_force(
            gap in 1i64..20,
            events in prop::collection::vec((0u8..3, -200i64..200), 0..60),
        ) {
            let mut tracker = SessionTracker::new(gap as u64).unwrap();
            let mut partials: BTreeMap<(u8, Window), usize> = BTreeMap::new();
            for &(key, ts) in &events {
                let change = tracker.insert(key, ts).unwrap();
                let mut merged = 1;
                for old in change.replaced() {
                    merged += partials.remove(&(key, *old)).unwrap_or_default();
                }
                partials.insert((key, change.window()), merged);
            }
            for key in 0u8..3 {
                let times: Vec<i64> =
                    events.iter().filter(|e| e.0 == key).map(|e| e.1).collect();
                let expected = brute_force_sessions(times, gap);
                let windows: Vec<Window> = expected.iter().map(|e| e.0).collect();
                prop_assert_eq!(tracker.sessions(&key), windows);
                let counts: Vec<(Window, usize)> = partials
                    .iter()
                    .filter(|((k, _), _)| *k == key)
                    .map(|((_, win), n)| (*win, *n))
                    .collect();
                prop_assert_eq!(counts, expected);
            }
        }
    }

    #[test]
    fn watermark_lateness() {
        let mut wm = Watermark::new(5);
        assert_eq!(wm.current(), None);
        assert!(!wm.is_window_final(i64::MIN, 0));
        wm.observe(100, 0);
        wm.observe(90, 1);
        assert_eq!(wm.current(), Some(95));
        assert_eq!(wm.max_event_ms(), Some(100));
        let cases: Vec<(Vec<Window>, u64, bool)> = vec![
            (vec![w(80, 90)], 0, true),
            (vec![w(80, 95)], 0, true),
            (vec![w(80, 96)], 0, false),
            (vec![w(80, 90)], 5, true),
            (vec![w(80, 90)], 6, false),
            (vec![w(80, 90), w(85, 95)], 0, true),
            (vec![w(80, 90), w(90, 100)], 0, false),
            (vec![], 0, false),
        ];
        for (windows, grace, late) in cases {
            assert_eq!(
                wm.is_late(&windows, grace),
                late,
                "{windows:?} grace {grace}"
            );
        }
        let mut extreme = Watermark::new(u64::MAX);
        extreme.observe(0, 0);
        assert_eq!(extreme.current(), Some(i64::MIN));
        assert!(!extreme.is_window_final(i64::MIN, 1));
        assert!(window_is_final(Some(i64::MAX), i64::MAX, 0));
        assert!(!window_is_final(Some(i64::MAX), i64::MAX, 1));
    }

    #[test]
    fn watermark_idle_and_combined() {
        let mut a = Watermark::new(10);
        let mut b = Watermark::new(10);
        let fresh = Watermark::new(10);
        a.observe(1_000, 5_000);
        b.observe(500, 5_000);
        assert_eq!(combined([&a, &b]), Some(490));
        assert_eq!(combined([&a, &b, &fresh]), None);
        assert_eq!(combined(std::iter::empty::<&Watermark>()), None);

        // b goes quiet: not idle before idle_after_ms has passed ...
        assert!(!a.advance_idle(5_500, 1_000));
        assert!(!b.advance_idle(5_999, 1_000));
        assert_eq!(combined([&a, &b]), Some(490));
        // ... then idle, and no longer holds a back.
        a.observe(2_000, 6_000);
        assert!(b.advance_idle(6_000, 1_000));
        assert_eq!(b.idle_watermark(), Some(5_990));
        assert_eq!(combined([&a, &b]), Some(1_990));
        // Its own lateness still follows its event watermark.
        assert_eq!(b.current(), Some(490));
        assert!(!b.is_window_final(1_000, 0));
        // All idle: the smallest idle watermark.
        assert!(a.advance_idle(7_000, 1_000));
        assert!(b.advance_idle(7_000, 1_000));
        assert_eq!(combined([&a, &b]), Some(6_990));
        // An event ends idleness.
        b.observe(600, 7_001);
        assert!(!b.is_idle());
        assert_eq!(combined([&a, &b]), Some(590));
        // A loaded watermark starts its idle clock on the first tick.
        let mut loaded: Watermark =
            serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        assert_eq!(loaded.current(), Some(590));
        assert!(!loaded.advance_idle(100_000, 1_000));
        assert!(loaded.advance_idle(101_000, 1_000));
        // The idle watermark never goes back, even if the clock does.
        assert_eq!(loaded.idle_watermark(), Some(100_990));
        assert!(loaded.advance_idle(101_500, 0));
        loaded.last_activity_ms = Some(0);
        assert!(loaded.advance_idle(50_000, 1_000));
        assert_eq!(loaded.idle_watermark(), Some(101_490));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// The event watermark is max − delay and monotone; an event is late exactly when
        /// its last window ends at or before that watermark − grace.
        #[test]
        fn watermark_properties(
            delay in 0u64..50,
            grace in 0u64..50,
            events in prop::collection::vec(-1_000i64..1_000, 1..50),
        ) {
            let spec = WindowSpec::Hopping { size_ms: 20, hop_ms: 10 };
            let mut wm = Watermark::new(delay);
            let mut last = None;
            let mut max_seen = i64::MIN;
            for (i, &ts) in events.iter().enumerate() {
                let windows = assign(&spec, ts).unwrap();
                let late = wm.is_late(&windows, grace);
                // Late iff the event's last window ends at or before max - delay - grace.
                let last_end = windows.iter().map(|w| w.end_ms).max().unwrap();
                let expected = i > 0
                    && max_seen - delay as i64 >= last_end + grace as i64;
                prop_assert_eq!(late, expected);
                wm.observe(ts, i as i64);
                max_seen = max_seen.max(ts);
                prop_assert!(wm.current() >= last);
                last = wm.current();
                prop_assert_eq!(wm.current(), Some(max_seen - delay as i64));
            }
        }
    }
}
