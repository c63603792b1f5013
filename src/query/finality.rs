//! Which windows of a merged answer are final (invariant 5): those whose end + grace the
//! pipeline's combined watermark has passed. The combined watermark is the smallest event
//! watermark of the pipeline's partitions that are not idle; a partition is idle once no
//! batch of it was committed for the pipeline's `idle_after` (processing time, as the store
//! recorded it), so a silent partition stops holding the others back ([`combined`]). A
//! partition that resumes folds its events by its own watermark: an event on time for it
//! still joins a window that was reported final while it was idle (lateness never depends
//! on processing time, so a replay decides alike), and the answer's `as_of` shows it.
//! Pure code: the clock is a parameter.

use serde::Serialize;

use crate::pipeline::{combined, window_is_final, Pipeline, Watermark};
use crate::store::PartitionStatus;

/// The combined watermark of a pipeline's partitions at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finality {
    /// The combined watermark (`None`: a partition that is not idle has no watermark yet).
    pub combined_ms: Option<i64>,
    /// The partitions left out because they are idle.
    pub idle_partitions: Vec<i32>,
    /// The pipeline's grace.
    #[serde(skip)]
    grace_ms: u64,
}

impl Finality {
    /// The finality of `pipeline`'s windows over the stored progress of `partitions` (those
    /// of other topics are ignored) at processing time `now_ms`.
    pub fn of(pipeline: &Pipeline, partitions: &[PartitionStatus], now_ms: i64) -> Self {
        let mut idle_partitions = Vec::new();
        let watermarks: Vec<Watermark> = partitions
            .iter()
            .filter(|p| p.topic == pipeline.topic)
            .map(|p| {
                let mut watermark = Watermark::from_progress(
                    pipeline.watermark_delay_ms,
                    p.max_event_ms,
                    p.updated_at_ms,
                );
                if watermark.advance_idle(now_ms, pipeline.idle_after_ms) {
                    idle_partitions.push(p.partition);
                }
                watermark
            })
            .collect();
        Finality {
            combined_ms: combined(&watermarks),
            idle_partitions,
            grace_ms: pipeline.grace_ms,
        }
    }

    /// Whether a window ending at `window_end_ms` is final.
    pub fn is_final(&self, window_end_ms: i64) -> bool {
        window_is_final(self.combined_ms, window_end_ms, self.grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse_pipeline;

    fn partition(partition: i32, max_event_ms: Option<i64>, updated_at_ms: i64) -> PartitionStatus {
        PartitionStatus {
            topic: "t".into(),
            partition,
            last_offset: 0,
            read: 1,
            folded: 1,
            duplicates: 0,
            dead_lettered: 0,
            late: 0,
            max_event_ms,
            updated_at_ms: Some(updated_at_ms),
        }
    }

    #[test]
    fn a_silent_partition_holds_the_others_back_until_it_is_idle() {
        // Watermark delay 5 s, grace 10 s, idle after 30 s.
        let pipeline = parse_pipeline(
            std::path::Path::new("t.yaml"),
            "name: t\nsource: {topic: t, reader_schema: interaction/v2.avsc}\nevent_time: {field: occurred_at, watermark_delay: 5s, grace: 10s, idle_after: 30s}\naggregates:\n  - {name: n, window: {tumbling: 1m}, aggregate: count}\n",
        )
        .unwrap();
        let now = 1_000_000;
        let mut partitions = vec![
            partition(0, Some(200_000), now - 1_000),
            partition(1, Some(190_000), now - 2_000),
            // Silent since 29.999 s: still active, and far behind.
            partition(2, Some(40_000), now - 29_999),
        ];
        let held = Finality::of(&pipeline, &partitions, now);
        assert_eq!(held.combined_ms, Some(35_000));
        assert!(held.idle_partitions.is_empty());
        assert!(held.is_final(25_000) && !held.is_final(25_001));

        // 30 s without a batch: idle, left out.
        partitions[2].updated_at_ms = Some(now - 30_000);
        let released = Finality::of(&pipeline, &partitions, now);
        assert_eq!(released.combined_ms, Some(185_000));
        assert_eq!(released.idle_partitions, vec![2]);
        assert!(released.is_final(175_000) && !released.is_final(175_001));

        // Every partition idle: processing time − delay.
        let all_idle: Vec<PartitionStatus> = partitions
            .iter()
            .map(|p| partition(p.partition, p.max_event_ms, now - 60_000))
            .collect();
        let idle = Finality::of(&pipeline, &all_idle, now);
        assert_eq!(idle.combined_ms, Some(now - 5_000));
        assert_eq!(idle.idle_partitions, vec![0, 1, 2]);

        // A partition of another topic, or with no watermark yet but active.
        let mut other = partitions.clone();
        other.push(PartitionStatus {
            topic: "other".into(),
            ..partition(9, Some(0), now)
        });
        assert_eq!(
            Finality::of(&pipeline, &other, now).combined_ms,
            Some(185_000)
        );
        other.push(partition(3, None, now));
        assert_eq!(Finality::of(&pipeline, &other, now).combined_ms, None);
        assert!(!Finality::of(&pipeline, &other, now).is_final(i64::MIN));
        // A row written before the store recorded commit times is never idle.
        partitions[2].updated_at_ms = None;
        assert_eq!(
            Finality::of(&pipeline, &partitions, now).combined_ms,
            Some(35_000)
        );
    }
}
