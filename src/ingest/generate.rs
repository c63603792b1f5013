//! A seeded generator of plausible interactions (users with sessions browsing, clicking and
//! buying items), deterministic for a seed so tests and demos can be replayed exactly.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::contracts::{EventType, Interaction};

/// Generates interactions.
pub struct EventGenerator {
    rng: StdRng,
    users: u32,
    items: u32,
    clock_ms: i64,
    seed: u64,
}

const TYPES: [(EventType, u32); 8] = [
    (EventType::PageView, 40),
    (EventType::Click, 25),
    (EventType::Search, 10),
    (EventType::Play, 8),
    (EventType::Pause, 4),
    (EventType::Skip, 3),
    (EventType::AddToCart, 7),
    (EventType::Purchase, 3),
];

impl EventGenerator {
    /// A generator over `users` users and `items` items, starting at `start_ms`.
    pub fn new(seed: u64, users: u32, items: u32, start_ms: i64) -> Self {
        EventGenerator {
            rng: StdRng::seed_from_u64(seed),
            users: users.max(1),
            items: items.max(1),
            clock_ms: start_ms,
            seed,
        }
    }

    /// The next event.
    pub fn next_event(&mut self) -> Interaction {
        self.clock_ms += self.rng.random_range(1..50);
        let user = self.rng.random_range(0..self.users);
        let total: u32 = TYPES.iter().map(|(_, w)| w).sum();
        let mut pick = self.rng.random_range(0..total);
        let mut event_type = EventType::PageView;
        for (kind, weight) in TYPES {
            if pick < weight {
                event_type = kind;
                break;
            }
            pick -= weight;
        }
        let item = self.rng.random_range(0..self.items);
        let value = match event_type {
            EventType::AddToCart | EventType::Purchase => {
                Some(f64::from(self.rng.random_range(100..20_000u32)) / 100.0)
            }
            _ => None,
        };
        Interaction {
            event_id: uuid::Builder::from_random_bytes(self.rng.random())
                .into_uuid()
                .to_string(),
            event_type,
            user_id: format!("user-{user}"),
            session_id: format!("session-{user}-{}", self.seed),
            item_id: (event_type != EventType::Search).then(|| format!("item-{item}")),
            occurred_at: self.clock_ms,
            app: "web".to_owned(),
            properties: BTreeMap::new(),
            value,
            device: Default::default(),
        }
    }
}

impl Iterator for EventGenerator {
    type Item = Interaction;

    fn next(&mut self) -> Option<Interaction> {
        Some(self.next_event())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let a: Vec<_> = EventGenerator::new(7, 10, 5, 0).take(50).collect();
        let b: Vec<_> = EventGenerator::new(7, 10, 5, 0).take(50).collect();
        assert_eq!(a, b);
        let c: Vec<_> = EventGenerator::new(8, 10, 5, 0).take(50).collect();
        assert_ne!(a, c);
        assert!(a.windows(2).all(|w| w[0].occurred_at < w[1].occurred_at));
    }
}
