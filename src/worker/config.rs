//! Settings of the worker stage (section `[worker]`).

use serde::{Deserialize, Serialize};

/// How `eventfold work` consumes and folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// The topic of interaction events.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// The consumer group; every worker of one deployment shares it.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Where records that cannot be decoded go, with headers saying why.
    #[serde(default = "default_dead_letter_topic")]
    pub dead_letter_topic: String,
    /// A pipeline file whose windowed aggregates this worker folds too (its topic must be
    /// `topic`; its reader schema replaces `reader_version`). Without one, only the
    /// per-user projection is kept.
    #[serde(default)]
    pub pipeline: Option<std::path::PathBuf>,
    /// The contract version this worker reads with (events of other versions are resolved to it).
    #[serde(default = "default_reader_version")]
    pub reader_version: u32,
    /// The most events a micro-batch holds: a full batch is committed as soon as the
    /// previous commit is done, and the fold loop waits for that commit meanwhile.
    #[serde(default = "default_batch_max_events")]
    pub batch_max_events: usize,
    /// A micro-batch is committed once its oldest event waited this long, the previous
    /// commit is done and the fold loop has read every record fetched so far (so under load
    /// the store paces the batches: each is what arrived while the one before was written;
    /// in a backlog every batch holds `batch_max_events`).
    #[serde(default = "default_batch_linger_ms")]
    pub batch_linger_ms: u64,
    /// How many of a partition's most recent offsets keep their `event_id`s for duplicate
    /// detection. A retried event counts once if it lands within this many records of the
    /// first copy in the same partition (the same user key gives the same partition).
    #[serde(default = "default_dedup_horizon_events")]
    pub dedup_horizon_events: i64,
}

fn default_topic() -> String {
    "interactions".to_owned()
}

fn default_group_id() -> String {
    "eventfold-workers".to_owned()
}

fn default_dead_letter_topic() -> String {
    "interactions-dead-letter".to_owned()
}

const fn default_reader_version() -> u32 {
    2
}

const fn default_batch_max_events() -> usize {
    100_000
}

const fn default_batch_linger_ms() -> u64 {
    50
}

const fn default_dedup_horizon_events() -> i64 {
    1_000_000
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            topic: default_topic(),
            group_id: default_group_id(),
            dead_letter_topic: default_dead_letter_topic(),
            pipeline: None,
            reader_version: default_reader_version(),
            batch_max_events: default_batch_max_events(),
            batch_linger_ms: default_batch_linger_ms(),
            dedup_horizon_events: default_dedup_horizon_events(),
        }
    }
}

impl WorkerConfig {
    /// Problems with the values, all of them (empty = valid).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, value) in [
            ("worker.topic", &self.topic),
            ("worker.group_id", &self.group_id),
            ("worker.dead_letter_topic", &self.dead_letter_topic),
        ] {
            if value.trim().is_empty() {
                problems.push(format!("{key}: must not be empty"));
            }
        }
        if self.topic == self.dead_letter_topic {
            problems.push("worker.dead_letter_topic: must differ from worker.topic".to_owned());
        }
        if crate::contracts::InteractionVersion::from_number(self.reader_version).is_none() {
            problems.push(format!(
                "worker.reader_version: no contract version {} in schemas/interaction/",
                self.reader_version
            ));
        }
        if self.batch_max_events == 0 {
            problems.push("worker.batch_max_events: must be at least 1".to_owned());
        }
        if self.dedup_horizon_events < 1 {
            problems.push("worker.dedup_horizon_events: must be at least 1".to_owned());
        }
        problems
    }
}
