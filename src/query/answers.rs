//! Recent aggregate answers (their windows, rendered), reused while the store has not changed: an answer is kept with
//! the store's identity and every partition's folded offset at the time it was read, and
//! served again only while both are the same (then the store holds exactly the same
//! partials). Dashboards ask for minute-aligned ranges, so many viewers share an entry.
//! Bounded: the least recently used entry goes first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::store::PartitionStatus;

/// What an answer was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreVersion {
    identity: String,
    offsets: Vec<(String, i32, i64)>,
}

impl StoreVersion {
    /// The version of a store with this identity and these partitions.
    pub fn new(identity: String, partitions: &[PartitionStatus]) -> Self {
        StoreVersion {
            identity,
            offsets: partitions
                .iter()
                .map(|p| (p.topic.clone(), p.partition, p.last_offset))
                .collect(),
        }
    }
}

/// Which rows: pipeline, aggregate, from, to.
type Key = (String, String, i64, i64);

struct Entry {
    version: StoreVersion,
    windows: Arc<Value>,
    used: u64,
}

/// Recent aggregate answers (see the module docs).
pub struct AnswerCache {
    entries: Mutex<(u64, HashMap<Key, Entry>)>,
    capacity: usize,
}

impl AnswerCache {
    /// Keeps at most `capacity` answers.
    pub fn new(capacity: usize) -> Self {
        AnswerCache {
            entries: Mutex::new((0, HashMap::new())),
            capacity,
        }
    }

    /// The answer's windows read for these at `version`, if they are held.
    pub fn get(
        &self,
        pipeline: &str,
        aggregate: &str,
        range: (i64, i64),
        version: &StoreVersion,
    ) -> Option<Arc<Value>> {
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (clock, entries) = &mut *guard;
        let key = (pipeline.to_owned(), aggregate.to_owned(), range.0, range.1);
        let entry = entries.get_mut(&key).filter(|e| e.version == *version)?;
        *clock += 1;
        entry.used = *clock;
        Some(entry.windows.clone())
    }

    /// Keeps `windows` as the answer for these at `version`.
    pub fn put(
        &self,
        pipeline: &str,
        aggregate: &str,
        range: (i64, i64),
        version: StoreVersion,
        windows: Arc<Value>,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (clock, entries) = &mut *guard;
        let key = (pipeline.to_owned(), aggregate.to_owned(), range.0, range.1);
        if !entries.contains_key(&key) && entries.len() >= self.capacity {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        *clock += 1;
        let used = *clock;
        entries.insert(
            key,
            Entry {
                version,
                windows,
                used,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(partition: i32, last_offset: i64) -> PartitionStatus {
        PartitionStatus {
            topic: "t".into(),
            partition,
            last_offset,
            read: 0,
            folded: 0,
            duplicates: 0,
            dead_lettered: 0,
            late: 0,
            max_event_ms: None,
            updated_at_ms: None,
        }
    }

    #[test]
    fn answers_only_for_the_same_store_and_offsets() {
        let cache = AnswerCache::new(2);
        let v1 = StoreVersion::new("a".into(), &[partition(0, 5), partition(1, 7)]);
        let rows = Arc::new(Value::Null);
        cache.put("p", "x", (0, 10), v1.clone(), rows.clone());
        assert!(cache.get("p", "x", (0, 10), &v1).is_some());
        assert!(cache.get("p", "x", (0, 11), &v1).is_none(), "another range");
        assert!(
            cache.get("p", "y", (0, 10), &v1).is_none(),
            "another aggregate"
        );
        let advanced = StoreVersion::new("a".into(), &[partition(0, 6), partition(1, 7)]);
        assert!(
            cache.get("p", "x", (0, 10), &advanced).is_none(),
            "folded more"
        );
        let switched = StoreVersion::new("b".into(), &[partition(0, 5), partition(1, 7)]);
        assert!(
            cache.get("p", "x", (0, 10), &switched).is_none(),
            "another database"
        );
    }

    #[test]
    fn the_least_recently_used_answer_goes_first() {
        let cache = AnswerCache::new(2);
        let v = StoreVersion::new("a".into(), &[partition(0, 1)]);
        let rows = Arc::new(Value::Null);
        cache.put("p", "x", (0, 1), v.clone(), rows.clone());
        cache.put("p", "y", (0, 1), v.clone(), rows.clone());
        assert!(cache.get("p", "x", (0, 1), &v).is_some());
        cache.put("p", "z", (0, 1), v.clone(), rows.clone());
        assert!(cache.get("p", "x", (0, 1), &v).is_some());
        assert!(
            cache.get("p", "y", (0, 1), &v).is_none(),
            "y was used least recently"
        );
        assert!(cache.get("p", "z", (0, 1), &v).is_some());
    }
}
