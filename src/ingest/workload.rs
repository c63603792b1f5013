//! A realistic, seeded workload: users with sessions (a new session after an inactivity
//! gap), Zipf-distributed item popularity, a browse → click → add_to_cart → purchase funnel
//! with drop-off, and configurable fractions of out-of-order events (shifted back less than
//! a watermark delay), late events (shifted back far beyond any window's grace) and exact
//! duplicates (the same event sent again a few events later, as app retries do).
//! Deterministic for a seed. Pure code: no IO.

use std::collections::{BTreeMap, HashMap, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::contracts::{Device, EventType, Interaction};

/// The shape of a workload.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// The seed: the same seed gives the same events.
    pub seed: u64,
    /// Distinct users.
    pub users: u32,
    /// Distinct items.
    pub items: u32,
    /// Event time of the first event (ms).
    pub start_ms: i64,
    /// Mean event-time gap between consecutive events (ms).
    pub mean_gap_ms: i64,
    /// A user's inactivity after which the next event starts a new session (ms).
    pub session_gap_ms: i64,
    /// Zipf exponent of item popularity.
    pub zipf_exponent: f64,
    /// Fraction of events shifted back by up to `out_of_order_ms`.
    pub out_of_order_fraction: f64,
    /// Largest out-of-order shift (keep it below the pipelines' watermark delay).
    pub out_of_order_ms: i64,
    /// Fraction of events shifted back by `late_by_ms` (only once the clock is past it twice).
    pub late_fraction: f64,
    /// How far back a late event is (keep it above window size + delay + grace).
    pub late_by_ms: i64,
    /// Fraction of events sent twice.
    pub duplicate_fraction: f64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            seed: 1,
            users: 1000,
            items: 500,
            start_ms: 1_764_000_000_000,
            mean_gap_ms: 10,
            session_gap_ms: 30 * 60 * 1000,
            zipf_exponent: 1.1,
            out_of_order_fraction: 0.0,
            out_of_order_ms: 3_000,
            late_fraction: 0.0,
            late_by_ms: 5 * 60 * 1000,
            duplicate_fraction: 0.0,
        }
    }
}

/// Why an event is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Planned {
    /// In event-time order.
    InOrder,
    /// Shifted back less than a watermark delay.
    OutOfOrder,
    /// Shifted back far beyond any window's grace: pipelines count it as late.
    Late,
    /// A second copy of an earlier event.
    Duplicate,
}

#[derive(Debug, Clone)]
struct UserState {
    session: u32,
    last_ms: i64,
    last: Option<EventType>,
    item: u32,
}

/// The workload's event stream.
pub struct Workload {
    config: WorkloadConfig,
    rng: StdRng,
    clock_ms: i64,
    users: HashMap<u32, UserState>,
    item_cdf: Vec<f64>,
    pending_duplicates: VecDeque<(u64, Interaction)>,
    emitted: u64,
}

fn next_type(rng: &mut StdRng, last: Option<EventType>) -> EventType {
    use EventType::*;
    let table: &[(EventType, u32)] = match last {
        None => &[(PageView, 70), (Search, 20), (Play, 10)],
        Some(PageView) => &[
            (Click, 40),
            (PageView, 25),
            (Search, 15),
            (Play, 10),
            (AddToCart, 10),
        ],
        Some(Click) => &[(AddToCart, 30), (PageView, 45), (Play, 15), (Click, 10)],
        Some(AddToCart) => &[(Purchase, 35), (PageView, 45), (AddToCart, 20)],
        Some(Purchase) => &[(PageView, 80), (Search, 20)],
        Some(Search) => &[(PageView, 60), (Click, 30), (Search, 10)],
        Some(Play) => &[(Pause, 35), (Skip, 25), (Play, 20), (PageView, 20)],
        Some(Pause) | Some(Skip) => &[(Play, 60), (PageView, 40)],
        Some(Unknown) => &[(PageView, 100)],
    };
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    for (kind, weight) in table {
        if pick < *weight {
            return *kind;
        }
        pick -= weight;
    }
    PageView
}

impl Workload {
    /// A workload with these settings.
    pub fn new(config: WorkloadConfig) -> Self {
        let items = config.items.max(1);
        let mut cdf = Vec::with_capacity(items as usize);
        let mut total = 0.0;
        for rank in 1..=items {
            total += 1.0 / f64::from(rank).powf(config.zipf_exponent);
            cdf.push(total);
        }
        for value in &mut cdf {
            *value /= total;
        }
        Workload {
            rng: StdRng::seed_from_u64(config.seed),
            clock_ms: config.start_ms,
            users: HashMap::new(),
            item_cdf: cdf,
            pending_duplicates: VecDeque::new(),
            emitted: 0,
            config,
        }
    }

    fn zipf_item(&mut self) -> u32 {
        let u: f64 = self.rng.random();
        self.item_cdf.partition_point(|c| *c < u) as u32
    }

    fn fresh_event(&mut self) -> (Planned, Interaction) {
        self.clock_ms += self
            .rng
            .random_range(0..=2 * self.config.mean_gap_ms.max(0));
        let user = self.rng.random_range(0..self.config.users.max(1));
        let now = self.clock_ms;
        let item = self.zipf_item();
        let session_gap = self.config.session_gap_ms;
        let state = self.users.entry(user).or_insert(UserState {
            session: 0,
            last_ms: i64::MIN / 2,
            last: None,
            item,
        });
        if now - state.last_ms > session_gap {
            state.session += 1;
            state.last = None;
        }
        let kind = next_type(&mut self.rng, state.last);
        if matches!(kind, EventType::PageView | EventType::Search) {
            state.item = item;
        }
        state.last = Some(kind);
        state.last_ms = now;
        let (session, item) = (state.session, state.item);
        let mut occurred_at = now;
        let mut planned = Planned::InOrder;
        let roll: f64 = self.rng.random();
        if roll < self.config.late_fraction
            && now - self.config.start_ms > 2 * self.config.late_by_ms
        {
            occurred_at -= self.config.late_by_ms;
            planned = Planned::Late;
        } else if roll < self.config.late_fraction + self.config.out_of_order_fraction {
            occurred_at -= self
                .rng
                .random_range(1..=self.config.out_of_order_ms.max(1));
            planned = Planned::OutOfOrder;
        }
        let value = match kind {
            EventType::AddToCart | EventType::Purchase => Some(f64::from(5 + item % 200) + 0.99),
            EventType::Play | EventType::Pause | EventType::Skip => {
                Some(f64::from(self.rng.random_range(1..600u32)))
            }
            _ => None,
        };
        let event = Interaction {
            event_id: uuid::Builder::from_random_bytes(self.rng.random())
                .into_uuid()
                .to_string(),
            event_type: kind,
            user_id: format!("user-{user}"),
            session_id: format!("user-{user}-s{session}"),
            item_id: (kind != EventType::Search).then(|| format!("item-{item}")),
            occurred_at,
            app: if user % 3 == 0 { "ios" } else { "web" }.to_owned(),
            properties: if kind == EventType::Search {
                BTreeMap::from([("query".to_owned(), format!("q{}", item % 50))])
            } else {
                BTreeMap::new()
            },
            value,
            device: Device {
                platform: if user % 3 == 0 { "ios" } else { "web" }.to_owned(),
                os_version: None,
                app_version: Some("1.0".to_owned()),
            },
        };
        (planned, event)
    }

    /// The next event and why it is in the stream.
    pub fn next_planned(&mut self) -> (Planned, Interaction) {
        self.emitted += 1;
        if let Some((due, _)) = self.pending_duplicates.front() {
            if *due <= self.emitted {
                if let Some((_, event)) = self.pending_duplicates.pop_front() {
                    return (Planned::Duplicate, event);
                }
            }
        }
        let (planned, event) = self.fresh_event();
        if self.rng.random::<f64>() < self.config.duplicate_fraction {
            let due = self.emitted + self.rng.random_range(1..20u64);
            let at = self.pending_duplicates.partition_point(|(d, _)| *d <= due);
            self.pending_duplicates.insert(at, (due, event.clone()));
        }
        (planned, event)
    }
}

impl Iterator for Workload {
    type Item = (Planned, Interaction);

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_planned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn deterministic_for_a_seed() {
        let config = WorkloadConfig {
            duplicate_fraction: 0.05,
            out_of_order_fraction: 0.05,
            late_fraction: 0.01,
            late_by_ms: 1000,
            ..Default::default()
        };
        let a: Vec<_> = Workload::new(config.clone()).take(500).collect();
        let b: Vec<_> = Workload::new(config.clone()).take(500).collect();
        assert_eq!(a, b);
        let c: Vec<_> = Workload::new(WorkloadConfig { seed: 2, ..config })
            .take(500)
            .collect();
        assert_ne!(a, c);
    }

    #[test]
    fn fractions_and_shapes_are_as_configured() {
        let config = WorkloadConfig {
            users: 50,
            duplicate_fraction: 0.02,
            out_of_order_fraction: 0.05,
            late_fraction: 0.01,
            late_by_ms: 10_000,
            ..Default::default()
        };
        let events: Vec<_> = Workload::new(config).take(20_000).collect();
        let count = |p: Planned| events.iter().filter(|(q, _)| *q == p).count() as f64 / 20_000.0;
        assert!(
            (0.015..0.025).contains(&count(Planned::Duplicate)),
            "{}",
            count(Planned::Duplicate)
        );
        assert!((0.04..0.06).contains(&count(Planned::OutOfOrder)));
        assert!((0.005..0.015).contains(&count(Planned::Late)));
        let mut seen = HashSet::new();
        for (planned, event) in &events {
            let first = seen.insert(event.event_id.clone());
            assert_eq!(
                first,
                *planned != Planned::Duplicate,
                "a duplicate repeats an earlier id"
            );
        }
        // Funnel: purchases follow add_to_carts, which follow views or clicks.
        let kinds = |k: EventType| events.iter().filter(|(_, e)| e.event_type == k).count();
        assert!(kinds(EventType::PageView) > kinds(EventType::AddToCart));
        assert!(kinds(EventType::AddToCart) > kinds(EventType::Purchase));
        assert!(kinds(EventType::Purchase) > 0);
        // Zipf: the most popular item gets far more views than the median one.
        let views = |item: &str| {
            events
                .iter()
                .filter(|(_, e)| e.item_id.as_deref() == Some(item))
                .count()
        };
        assert!(views("item-0") > 10 * views("item-250").max(1));
    }
}
