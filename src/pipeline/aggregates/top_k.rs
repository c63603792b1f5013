//! [`TopK`]: the most frequent keys (`top_k`), as a Space-Saving summary (Metwally et al.)
//! with `capacity` counters, made mergeable as in Agarwal et al., *Mergeable Summaries*
//! (and the parallel Space-Saving merge of Cafaro et al.), so per-partition partials merge
//! at query time (invariant 4).
//!
//! Each monitored key has a `count` and an `error`. For a stream (or merged streams) of `N`
//! events, with `f(x)` the true frequency of key `x`, every summary guarantees:
//! 1. a monitored key has `count − error ≤ f(x) ≤ count`;
//! 2. a key that is not monitored has `f(x) ≤ floor`, where `floor` is the smallest count
//!    when all counters are in use and 0 otherwise (then every key is monitored, exactly);
//! 3. `error ≤ floor ≤ N / capacity`, and the counts add up to at most `N`.
//!
//! **Add** (Space-Saving): a monitored key's count grows by one; a new key takes a free
//! counter, or evicts the key with the smallest count (the smallest key among ties, so
//! replays evict the same key) and inherits `count = min + 1`, `error = min`.
//!
//! **Merge**: for every key of either summary, add its counts, standing in each summary's
//! `floor` (the most the key can have had there) for a missing key — in both count and
//! error — then keep the `capacity` largest counts (ties by key). Guarantee 1 holds term by
//! term; every candidate's count is at least `floor₁ + floor₂`, so the smallest kept count
//! bounds the dropped and the never-seen keys (2); and because each summary keeps at least
//! as many keys as the merged one, the kept counts add up to at most `N₁ + N₂` (3). The
//! guarantees survive any sequence of adds and merges. Merging summaries of different
//! capacities keeps the smaller capacity. Merging is commutative; it is not associative
//! bit for bit, but every merge tree keeps the guarantees.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap as HashMap;

use serde::{Deserialize, Serialize};

use super::AggregateError;

/// The default number of counters.
pub const DEFAULT_CAPACITY: usize = 100;
/// The largest capacity accepted.
pub const MAX_CAPACITY: usize = 100_000;

/// A monitored key in a [`TopK`] answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopEntry {
    /// The key.
    pub key: String,
    /// An upper bound on its frequency.
    pub count: u64,
    /// How much `count` may overestimate: the frequency is at least `count − error`.
    pub error: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counter {
    count: u64,
    error: u64,
}

/// A mergeable Space-Saving summary of key frequencies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "TopKRepr", into = "TopKRepr")]
pub struct TopK {
    capacity: usize,
    total: u64,
    /// Every monitored key's counter (hashed: most adds only increment one).
    counters: HashMap<String, Counter>,
    /// One entry per monitored key: a count the key had, and the key. An increment only
    /// touches `counters`, so an entry's count may be stale (smaller); an eviction
    /// refreshes stale entries until the least one is current, and that one is the
    /// smallest count, then the smallest key (every other key's count is at least its
    /// entry's).
    by_count: BinaryHeap<Reverse<Listed>>,
}

/// An entry of [`TopK`]'s heap: a count a key had, and the key, ordered by count, then key.
/// `lead` is the key's first eight bytes (zero-padded) as a big-endian number: it orders two
/// keys as their bytes do wherever they differ there, and ties when they do not, so most ties
/// at a count are settled by comparing two numbers instead of two strings, and the order
/// is exactly (count, key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Listed {
    count: u64,
    lead: u64,
    key: String,
}

impl Listed {
    fn new(count: u64, key: String) -> Self {
        let mut lead = [0u8; 8];
        let n = key.len().min(lead.len());
        lead[..n].copy_from_slice(&key.as_bytes()[..n]);
        Listed {
            count,
            lead: u64::from_be_bytes(lead),
            key,
        }
    }
}

/// Summaries are equal when they monitor the same keys with the same counters.
impl PartialEq for TopK {
    fn eq(&self, other: &Self) -> bool {
        self.capacity == other.capacity
            && self.total == other.total
            && self.counters == other.counters
    }
}

impl Eq for TopK {}

impl TopK {
    /// An empty summary with `capacity` counters.
    ///
    /// # Errors
    /// [`AggregateError::InvalidCapacity`] for 0 or more than [`MAX_CAPACITY`].
    pub fn new(capacity: usize) -> Result<Self, AggregateError> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(AggregateError::InvalidCapacity { capacity });
        }
        Ok(TopK {
            capacity,
            total: 0,
            counters: HashMap::default(),
            by_count: BinaryHeap::new(),
        })
    }

    /// The number of counters.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of events summarised, `N`.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The most a key that is not monitored can have occurred: the smallest count when all
    /// counters are in use, else 0.
    pub fn floor(&self) -> u64 {
        if self.counters.len() < self.capacity {
            return 0;
        }
        self.counters.values().map(|c| c.count).min().unwrap_or(0)
    }

    /// Counts one occurrence of `key`.
    pub fn add(&mut self, key: &str) {
        self.total = self.total.saturating_add(1);
        if let Some(counter) = self.counters.get_mut(key) {
            counter.count = counter.count.saturating_add(1);
            return;
        }
        // A new key: a free counter, or the evicted key's (its `String`s are reused).
        let full = self.counters.len() >= self.capacity;
        let (floor, mut listed, mut owned) = match full.then(|| self.pop_smallest()).flatten() {
            Some((count, evicted)) => {
                let owned = self
                    .counters
                    .remove_entry(&evicted)
                    .map_or_else(String::new, |(owned, _)| owned);
                (count, evicted, owned)
            }
            None => (0, String::new(), String::new()),
        };
        listed.clear();
        listed.push_str(key);
        owned.clear();
        owned.push_str(key);
        let counter = Counter {
            count: floor.saturating_add(1),
            error: floor,
        };
        self.by_count
            .push(Reverse(Listed::new(counter.count, listed)));
        self.counters.insert(owned, counter);
    }

    /// Takes out the entry of the key to evict: the smallest count, then the smallest key.
    fn pop_smallest(&mut self) -> Option<(u64, String)> {
        loop {
            let Reverse(listed) = self.by_count.pop()?;
            match self.counters.get(&listed.key) {
                Some(counter) if counter.count == listed.count => {
                    return Some((listed.count, listed.key))
                }
                // Stale: listed again under its current count (larger, so this ends).
                Some(counter) => self.by_count.push(Reverse(Listed {
                    count: counter.count,
                    ..listed
                })),
                // Every entry is a monitored key's; an other one has nothing to evict.
                None => {}
            }
        }
    }

    /// Merges another summary into this one (see the module docs); the result keeps the
    /// smaller of the two capacities.
    pub fn merge(&mut self, other: &TopK) {
        let (floor_mine, floor_theirs) = (self.floor(), other.floor());
        let mut candidates: Vec<(String, Counter)> = Vec::new();
        for (key, mine) in &self.counters {
            let theirs = other.counters.get(key).copied().unwrap_or(Counter {
                count: floor_theirs,
                error: floor_theirs,
            });
            candidates.push((key.clone(), combine(*mine, theirs)));
        }
        for (key, theirs) in &other.counters {
            if !self.counters.contains_key(key) {
                let mine = Counter {
                    count: floor_mine,
                    error: floor_mine,
                };
                candidates.push((key.clone(), combine(mine, *theirs)));
            }
        }
        candidates.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
        let capacity = self.capacity.min(other.capacity);
        candidates.truncate(capacity);
        self.capacity = capacity;
        self.total = self.total.saturating_add(other.total);
        self.by_count = candidates
            .iter()
            .map(|(key, counter)| Reverse(Listed::new(counter.count, key.clone())))
            .collect();
        self.counters = candidates.into_iter().collect();
    }

    /// The `k` keys with the largest counts, by count descending, then key ascending.
    pub fn top(&self, k: usize) -> Vec<TopEntry> {
        let mut entries: Vec<TopEntry> = self
            .counters
            .iter()
            .map(|(key, counter)| TopEntry {
                key: key.clone(),
                count: counter.count,
                error: counter.error,
            })
            .collect();
        entries.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        entries.truncate(k);
        entries
    }

    /// Every monitored key, ordered as [`TopK::top`].
    pub fn result(&self) -> Vec<TopEntry> {
        self.top(self.capacity)
    }
}

fn combine(a: Counter, b: Counter) -> Counter {
    Counter {
        count: a.count.saturating_add(b.count),
        error: a.error.saturating_add(b.error),
    }
}

/// The stored form: entries ordered by key.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopKRepr {
    capacity: usize,
    total: u64,
    entries: Vec<TopEntry>,
}

impl From<TopK> for TopKRepr {
    fn from(top: TopK) -> Self {
        TopKRepr {
            capacity: top.capacity,
            total: top.total,
            entries: {
                let mut entries: Vec<TopEntry> = top
                    .counters
                    .into_iter()
                    .map(|(key, c)| TopEntry {
                        key,
                        count: c.count,
                        error: c.error,
                    })
                    .collect();
                // Stored by key: the same summary always has the same bytes.
                entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
                entries
            },
        }
    }
}

impl TryFrom<TopKRepr> for TopK {
    type Error = AggregateError;

    fn try_from(repr: TopKRepr) -> Result<Self, Self::Error> {
        let mut top = TopK::new(repr.capacity)?;
        let invalid = |reason: String| AggregateError::InvalidPartial { reason };
        if repr.entries.len() > repr.capacity {
            return Err(invalid(format!(
                "a top-k summary of capacity {} has {} entries",
                repr.capacity,
                repr.entries.len()
            )));
        }
        top.total = repr.total;
        for entry in repr.entries {
            if entry.error > entry.count || entry.count == 0 {
                return Err(invalid(format!(
                    "top-k entry {:?} has count {} and error {}",
                    entry.key, entry.count, entry.error
                )));
            }
            let counter = Counter {
                count: entry.count,
                error: entry.error,
            };
            if top.counters.insert(entry.key.clone(), counter).is_some() {
                return Err(invalid(format!("top-k key {:?} appears twice", entry.key)));
            }
            top.by_count
                .push(Reverse(Listed::new(entry.count, entry.key)));
        }
        Ok(top)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn summary(capacity: usize, keys: &[&str]) -> TopK {
        let mut top = TopK::new(capacity).unwrap();
        keys.iter().for_each(|k| top.add(k));
        top
    }

    /// (key, count, error)
    type Row<'a> = (&'a str, u64, u64);

    fn entries(top: &[TopEntry]) -> Vec<Row<'_>> {
        top.iter()
            .map(|e| (e.key.as_str(), e.count, e.error))
            .collect()
    }

    #[test]
    fn space_saving_table() {
        let cases: Vec<(usize, Vec<&str>, Vec<Row>)> = vec![
            (3, vec![], vec![]),
            (
                3,
                vec!["a", "b", "a", "c", "a", "b"],
                vec![("a", 3, 0), ("b", 2, 0), ("c", 1, 0)],
            ),
            // "c" evicts the smallest count, smallest key first: "b" (1) ...
            (2, vec!["a", "a", "b", "c"], vec![("a", 2, 0), ("c", 2, 1)]),
            // ... ties broken by key: "a" and "b" both 1, "a" goes.
            (2, vec!["b", "a", "c"], vec![("c", 2, 1), ("b", 1, 0)]),
            (1, vec!["x", "y", "z"], vec![("z", 3, 2)]),
        ];
        for (capacity, keys, expected) in cases {
            let top = summary(capacity, &keys);
            assert_eq!(entries(&top.result()), expected, "{keys:?}");
            assert_eq!(top.total(), keys.len() as u64);
        }
        assert_eq!(
            entries(&summary(3, &["b", "a", "c", "c"]).top(2)),
            vec![("c", 2, 0), ("a", 1, 0)]
        );
    }

    #[test]
    fn merge_table() {
        // Not full: exact union.
        let mut a = summary(4, &["a", "a", "b"]);
        a.merge(&summary(4, &["b", "c"]));
        assert_eq!(
            entries(&a.result()),
            vec![("a", 2, 0), ("b", 2, 0), ("c", 1, 0)]
        );
        // Full summaries stand their floor in for missing keys.
        let mut a = summary(2, &["a", "a", "a", "b"]); // a 3, b 1: floor 1
        let b = summary(2, &["c", "c", "d", "d"]); // c 2, d 2: floor 2
        a.merge(&b);
        // a 3+2, b 1+2, c 1+2, d 1+2 → keep a, then b (tie broken by key).
        assert_eq!(entries(&a.result()), vec![("a", 5, 2), ("b", 3, 2)]);
        assert_eq!(a.total(), 8);
        // Capacities differ: the smaller wins.
        let mut big = summary(5, &["a", "b", "c"]);
        big.merge(&summary(2, &["a"]));
        assert_eq!(big.capacity(), 2);
        assert_eq!(entries(&big.result()), vec![("a", 2, 0), ("b", 1, 0)]);
    }

    #[test]
    fn partials_round_trip_and_validate() {
        let top = summary(3, &["a", "b", "a", "c", "d"]);
        let json = serde_json::to_string(&top).unwrap();
        assert_eq!(serde_json::from_str::<TopK>(&json).unwrap(), top);
        assert!(TopK::new(0).is_err());
        for bad in [
            r#"{"capacity":0,"total":0,"entries":[]}"#,
            r#"{"capacity":1,"total":2,"entries":[{"key":"a","count":1,"error":0},{"key":"b","count":1,"error":0}]}"#,
            r#"{"capacity":2,"total":2,"entries":[{"key":"a","count":1,"error":2}]}"#,
            r#"{"capacity":2,"total":2,"entries":[{"key":"a","count":1,"error":0},{"key":"a","count":1,"error":0}]}"#,
        ] {
            assert!(serde_json::from_str::<TopK>(bad).is_err(), "{bad}");
        }
    }

    /// Draws from a Zipf(s) distribution over ranks 1..=n by inverting its CDF.
    fn zipf_stream(n: usize, s: f64, len: usize, seed: u64) -> Vec<String> {
        let weights: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-s)).collect();
        let total: f64 = weights.iter().sum();
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for w in weights {
            acc += w / total;
            cdf.push(acc);
        }
        let mut rng = StdRng::seed_from_u64(seed);
        (0..len)
            .map(|_| {
                let u: f64 = rng.random();
                let rank = cdf.partition_point(|&c| c < u).min(n - 1);
                format!("key-{rank:05}")
            })
            .collect()
    }

    fn true_counts(stream: &[String]) -> BTreeMap<&str, u64> {
        let mut counts = BTreeMap::new();
        for key in stream {
            *counts.entry(key.as_str()).or_insert(0) += 1;
        }
        counts
    }

    fn check_guarantees(top: &TopK, truth: &BTreeMap<&str, u64>, n: u64) {
        assert_eq!(top.total(), n);
        let floor = top.floor();
        assert!(
            floor as u128 * top.capacity() as u128 <= n as u128,
            "floor {floor}"
        );
        let mut sum = 0u64;
        for entry in top.result() {
            let f = truth.get(entry.key.as_str()).copied().unwrap_or(0);
            assert!(
                entry.count - entry.error <= f && f <= entry.count,
                "{entry:?} true {f}"
            );
            assert!(entry.error <= floor, "{entry:?} floor {floor}");
            sum += entry.count;
        }
        assert!(sum <= n);
        for (key, &f) in truth {
            if !top.counters.contains_key(*key) {
                assert!(f <= floor, "{key} true {f} floor {floor}");
            }
        }
    }

    /// A Zipf stream: the true top 10 come back in the right order, with their counts
    /// within the reported bounds, from one stream and from four merged partitions.
    #[test]
    fn zipf_top_ten() {
        let stream = zipf_stream(10_000, 1.1, 200_000, 7);
        let truth = true_counts(&stream);
        let mut expected: Vec<(&str, u64)> = truth.iter().map(|(k, v)| (*k, *v)).collect();
        expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        expected.truncate(10);

        let mut single = TopK::new(200).unwrap();
        let mut parts = vec![TopK::new(200).unwrap(); 4];
        for (i, key) in stream.iter().enumerate() {
            single.add(key);
            parts[i % 4].add(key);
        }
        let mut merged = parts[0].clone();
        for part in &parts[1..] {
            merged.merge(part);
        }
        for (name, top) in [("single", &single), ("merged", &merged)] {
            check_guarantees(top, &truth, stream.len() as u64);
            let reported = top.top(10);
            let keys: Vec<&str> = reported.iter().map(|e| e.key.as_str()).collect();
            let expected_keys: Vec<&str> = expected.iter().map(|e| e.0).collect();
            assert_eq!(keys, expected_keys, "{name}");
            let max_error = reported.iter().map(|e| e.error).max().unwrap_or(0);
            println!(
                "TopK {name}: top-10 max error bound {max_error}, floor {}",
                top.floor()
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// The heap's entries order exactly as (count, key) do: their `lead` never
        /// contradicts the keys' order (keys sharing, prefixing or differing within their
        /// first eight bytes, with zero bytes and multi-byte characters).
        #[test]
        fn listed_entries_order_as_count_then_key(
            counts in (0u64..3, 0u64..3),
            shared in "[ab]{0,10}",
            tails in ("[ab\\x00é]{0,4}", "[ab\\x00é]{0,4}"),
        ) {
            let (a, b) = (format!("{shared}{}", tails.0), format!("{shared}{}", tails.1));
            let expected = (counts.0, &a).cmp(&(counts.1, &b));
            let got = Listed::new(counts.0, a.clone()).cmp(&Listed::new(counts.1, b.clone()));
            prop_assert_eq!(got, expected);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Adds follow Space-Saving's rule exactly, checked against a scan of every
        /// counter: a monitored key counts one more; a new key takes a free counter, or
        /// the counter of the smallest count (smallest key among ties) with `count = min + 1`
        /// and `error = min`.
        #[test]
        fn adds_follow_the_rule_of_a_scanning_reference(
            keys in prop::collection::vec(0u8..40, 0..600),
            capacity in 1usize..12,
        ) {
            let mut top = TopK::new(capacity).unwrap();
            let mut reference: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            for key in keys {
                let key = format!("k{key}");
                top.add(&key);
                if let Some((count, _)) = reference.get_mut(&key) {
                    *count += 1;
                } else if reference.len() < capacity {
                    reference.insert(key, (1, 0));
                } else {
                    let (evicted, (floor, _)) = reference
                        .iter()
                        .map(|(k, c)| (k.clone(), *c))
                        .min_by(|a, b| a.1 .0.cmp(&b.1 .0).then_with(|| a.0.cmp(&b.0)))
                        .unwrap();
                    reference.remove(&evicted);
                    reference.insert(key, (floor + 1, floor));
                }
                let summary: BTreeMap<String, (u64, u64)> = top
                    .result()
                    .into_iter()
                    .map(|e| (e.key, (e.count, e.error)))
                    .collect();
                prop_assert_eq!(&summary, &reference);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// With at most `capacity` distinct keys the summary is exact, merged or not.
        #[test]
        fn exact_when_keys_fit(events in prop::collection::vec((0u8..3, 0u8..8), 0..200)) {
            let stream: Vec<String> = events.iter().map(|e| format!("k{}", e.1)).collect();
            let mut single = TopK::new(8).unwrap();
            let mut parts = vec![TopK::new(8).unwrap(); 3];
            for (e, key) in events.iter().zip(&stream) {
                single.add(key);
                parts[usize::from(e.0)].add(key);
            }
            let mut merged = TopK::new(8).unwrap();
            parts.iter().for_each(|p| merged.merge(p));
            let truth = true_counts(&stream);
            let mut expected: Vec<Row> =
                truth.iter().map(|(k, v)| (*k, *v, 0)).collect();
            expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let (single, merged) = (single.result(), merged.result());
            prop_assert_eq!(entries(&single), expected.clone());
            prop_assert_eq!(entries(&merged), expected);
        }

        /// The guarantees hold for any stream, split and merge order, on skewed keys with
        /// far more distinct keys than counters.
        #[test]
        fn guarantees_hold(
            events in prop::collection::vec((0u8..4, 0u32..64), 0..400),
            capacity in 1usize..12,
        ) {
            let stream: Vec<String> =
                events.iter().map(|e| format!("k{}", e.1 * e.1 / 64)).collect();
            let truth = true_counts(&stream);
            let mut single = TopK::new(capacity).unwrap();
            let mut parts = vec![TopK::new(capacity).unwrap(); 4];
            for (e, key) in events.iter().zip(&stream) {
                single.add(key);
                parts[usize::from(e.0)].add(key);
            }
            check_guarantees(&single, &truth, stream.len() as u64);
            // A merge tree ((0 ∪ 1) ∪ (2 ∪ 3)), then keep adding after the merge.
            let (mut left, mut right) = (parts[0].clone(), parts[2].clone());
            left.merge(&parts[1]);
            right.merge(&parts[3]);
            left.merge(&right);
            check_guarantees(&left, &truth, stream.len() as u64);
            let mut extended = stream.clone();
            for key in stream.iter().take(50) {
                left.add(key);
                extended.push(key.clone());
            }
            check_guarantees(&left, &true_counts(&extended), extended.len() as u64);
        }
    }
}
