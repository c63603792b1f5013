//! Duplicate detection for one partition: the `event_id`s of its most recent records, held
//! in memory by the partition's owner as 128-bit hashes (XXH3, stable across versions and
//! machines) and stored with each batch, so a new owner loads them back. Apps retry into
//! the same partition (same user key), so a per-partition horizon is enough (invariant 3).

use std::collections::VecDeque;

use rustc_hash::FxHashSet as HashSet;

/// The stable hash of an `event_id` (its UTF-8 bytes) that duplicate detection keeps.
pub fn event_id_hash(event_id: impl AsRef<[u8]>) -> u128 {
    xxhash_rust::xxh3::xxh3_128(event_id.as_ref())
}

/// The `event_id` hashes of one batch, as stored: 16 bytes each, big-endian.
pub fn encode_hashes(hashes: &[u128]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.to_be_bytes()).collect()
}

/// Reads back [`encode_hashes`]; a trailing partial hash (a corrupt row) is ignored.
pub fn decode_hashes(bytes: &[u8]) -> Vec<u128> {
    bytes
        .chunks_exact(16)
        .map(|chunk| {
            let mut raw = [0u8; 16];
            raw.copy_from_slice(chunk);
            u128::from_be_bytes(raw)
        })
        .collect()
}

/// The ids of a partition's records within the horizon, by batch.
#[derive(Debug, Default)]
pub struct DedupWindow {
    seen: HashSet<u128>,
    /// Per stored batch, oldest first: its last offset and its ids.
    batches: VecDeque<(i64, Vec<u128>)>,
    /// The ids added since the last [`DedupWindow::take_batch`].
    pending: Vec<u128>,
}

impl DedupWindow {
    /// Ids loaded from the store: `(last offset of the batch, ids)`, oldest first.
    pub fn restore(batches: Vec<(i64, Vec<u128>)>) -> Self {
        let mut window = DedupWindow::default();
        for (last_offset, ids) in batches {
            window.seen.extend(ids.iter().copied());
            window.batches.push_back((last_offset, ids));
        }
        window
    }

    /// Whether an `event_id` with this hash was seen within the horizon (a duplicate).
    #[cfg(test)]
    fn contains(&self, hash: u128) -> bool {
        self.seen.contains(&hash)
    }

    /// Claims an `event_id` hash for a record about to join the batch: `false` when it was
    /// seen within the horizon, or claimed and not released (a duplicate). One probe of the
    /// set, the fold loop's cache miss: claims of records already fetched are made together,
    /// so the misses overlap. A claim is then kept ([`DedupWindow::keep`]) or released
    /// ([`DedupWindow::release`]).
    pub fn claim(&mut self, hash: u128) -> bool {
        self.seen.insert(hash)
    }

    /// Keeps a claimed hash: its record joined the batch being built.
    pub fn keep(&mut self, hash: u128) {
        self.pending.push(hash);
    }

    /// Releases a claimed hash whose record did not join the batch (dead-lettered, redelivered,
    /// read before a seek, or not copied to the late topic before shutdown): it is new again.
    pub fn release(&mut self, hash: u128) {
        self.seen.remove(&hash);
    }

    /// Claims and keeps `event_id`; `false` when it was seen within the horizon (a duplicate).
    #[cfg(test)]
    fn first_time(&mut self, event_id: &str) -> bool {
        let hash = event_id_hash(event_id);
        let first = self.claim(hash);
        if first {
            self.keep(hash);
        }
        first
    }

    /// The ids added since the last call, for the batch ending at `last_offset`; forgets
    /// the batches that ended `horizon` or more offsets before it.
    pub fn take_batch(&mut self, last_offset: i64, horizon: i64) -> Vec<u128> {
        // The next batch's ids get room for as many: no regrowing from empty per batch.
        let room = Vec::with_capacity(self.pending.len());
        let ids = std::mem::replace(&mut self.pending, room);
        self.batches.push_back((last_offset, ids.clone()));
        while let Some((end, _)) = self.batches.front() {
            if *end > last_offset.saturating_sub(horizon) {
                break;
            }
            if let Some((_, old)) = self.batches.pop_front() {
                for id in old {
                    self.seen.remove(&id);
                }
            }
        }
        ids
    }

    /// Distinct ids held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Holds no id.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_batch_of_ids_has_room_for_as_many_as_the_last() {
        let mut window = DedupWindow::default();
        for id in 0..300u128 {
            assert!(window.claim(id));
            window.keep(id);
        }
        assert_eq!(window.take_batch(299, 1_000).len(), 300);
        assert!(window.pending.is_empty());
        assert!(window.pending.capacity() >= 300);
        assert!(!window.claim(7), "still within the horizon");
    }

    #[test]
    fn the_hash_is_stable() {
        // Stored hashes must mean the same thing in every build.
        assert_eq!(
            event_id_hash("7d1c0a4e-0000-4000-8000-000000000001"),
            event_id_hash(String::from("7d1c0a4e-0000-4000-8000-000000000001"))
        );
        assert_eq!(event_id_hash(""), 0x99aa06d3014798d86001c324468d497f);
    }

    #[test]
    fn duplicates_count_once_within_the_horizon_and_again_after_it() {
        let mut window = DedupWindow::default();
        assert!(window.first_time("a"));
        assert!(!window.first_time("a"));
        assert!(window.first_time("b"));
        assert_eq!(window.take_batch(9, 20).len(), 2);
        assert!(
            !window.first_time("a"),
            "batch 0..=9 is within 20 offsets of 19"
        );
        assert_eq!(window.take_batch(19, 20), Vec::<u128>::new());
        assert!(window.first_time("c"));
        assert_eq!(window.take_batch(29, 20).len(), 1);
        assert!(
            window.first_time("a"),
            "the batch ending at 9 left the horizon"
        );
        assert_eq!(window.len(), 2);
    }

    #[test]
    fn restored_ids_are_duplicates_and_hashes_round_trip() {
        let ids = vec![event_id_hash("x"), event_id_hash("y")];
        assert_eq!(decode_hashes(&encode_hashes(&ids)), ids);
        assert_eq!(encode_hashes(&ids).len(), 32);
        let mut window = DedupWindow::restore(vec![(5, ids)]);
        assert!(!window.first_time("y"));
        assert!(window.first_time("z"));
    }

    #[test]
    fn a_released_claim_is_new_again_and_only_kept_claims_join_the_batch() {
        let mut window = DedupWindow::default();
        let (a, b, c) = (event_id_hash("a"), event_id_hash("b"), event_id_hash("c"));
        // Claims made together, ahead of the records they are for.
        assert!(window.claim(a));
        assert!(window.claim(b));
        assert!(!window.claim(a), "claimed and not released: a duplicate");
        assert!(window.claim(c));
        window.keep(a);
        window.release(b);
        window.keep(c);
        assert!(window.contains(a) && window.contains(c));
        assert!(!window.contains(b));
        assert_eq!(window.take_batch(2, 10), vec![a, c]);
        assert!(window.first_time("b"));
        assert!(!window.first_time("a"));
    }
}
