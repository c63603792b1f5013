//! Arbitrary text as a pipeline file (`pipeline::parse_pipeline`, what `load_pipeline` does
//! after reading the file): it must give a pipeline or an error naming at least one problem,
//! never panic. A pipeline it accepts then folds a few events the way the worker does
//! (lateness, `LiveAggregates::add`, `take_changes`, `evict`), extreme event times included:
//! a file that loads must not make the worker panic either.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use eventfold::contracts::{Device, EventType, Interaction};
use eventfold::pipeline::{parse_pipeline, LiveAggregates};
use libfuzzer_sys::fuzz_target;

const TIMES_MS: [i64; 6] = [
    1_764_000_000_000,
    1_764_000_061_000,
    1_763_999_000_000,
    0,
    i64::MAX,
    i64::MIN,
];

fn event(index: usize, occurred_at: i64) -> Interaction {
    Interaction {
        event_id: format!("00000000-0000-4000-8000-{index:012}"),
        event_type: EventType::ALL[index % EventType::ALL.len()],
        user_id: format!("u{}", index % 2),
        session_id: format!("s{}", index % 3),
        item_id: index.is_multiple_of(2).then(|| format!("sku-{index}")),
        occurred_at,
        app: "web".to_owned(),
        properties: [("ref".to_owned(), "mail".to_owned())].into(),
        value: (index % 3 != 1).then_some(index as f64 * 9.5 - 10.0),
        device: Device {
            platform: "ios".to_owned(),
            os_version: Some("18".to_owned()),
            app_version: None,
        },
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let pipeline = match parse_pipeline(Path::new("fuzz.yaml"), text) {
        Ok(pipeline) => Arc::new(pipeline),
        Err(error) => {
            assert!(!error.problems.is_empty(), "refused without a problem");
            return;
        }
    };
    let mut live = LiveAggregates::new(pipeline.clone());
    let mut max_event_ms: Option<i64> = None;
    for (index, occurred_at) in TIMES_MS.into_iter().enumerate() {
        let Ok(late) = pipeline.lateness(max_event_ms, occurred_at) else {
            continue;
        };
        if !late && live.add(&event(index, occurred_at).view()).is_err() {
            continue;
        }
        max_event_ms = max_event_ms.max(Some(occurred_at));
    }
    let _ = live.take_changes();
    live.evict(max_event_ms);
});
