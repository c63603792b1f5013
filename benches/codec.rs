//! Per-event cost of the collector's CPU stages, side by side in one run: JSON parsing and
//! validation, and Avro encoding. Run with `cargo bench --bench codec`.

use std::hint::black_box;
use std::time::Instant;

use apache_avro::writer::datum::GenericDatumWriter;
use eventfold::contracts::latest_schema;
use eventfold::ingest::{validate_event, EventGenerator, EventLimits};

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this as a quick smoke test.
    let count = if std::env::args().any(|a| a == "--bench") {
        100_000
    } else {
        1_000
    };
    let now = 1_764_000_000_000;
    let events: Vec<_> = EventGenerator::new(3, 10_000, 1_000, now - count as i64 * 10)
        .take(count)
        .collect();
    let bodies: Vec<Vec<u8>> = events
        .chunks(100)
        .map(|c| serde_json::to_vec(c).unwrap())
        .collect();
    let limits = EventLimits::default();

    let started = Instant::now();
    for body in &bodies {
        let values: Vec<serde_json::Value> = serde_json::from_slice::<serde_json::Value>(body)
            .unwrap()
            .as_array()
            .unwrap()
            .clone();
        for (i, value) in values.iter().enumerate() {
            black_box(validate_event(i, value, &limits, now).unwrap());
        }
    }
    let parse = started.elapsed().as_secs_f64();

    let writer = GenericDatumWriter::builder(latest_schema())
        .validate(false)
        .build()
        .unwrap();
    let started = Instant::now();
    for event in &events {
        let mut out = Vec::with_capacity(128);
        writer.write_value_ref(&mut out, &event.to_avro()).unwrap();
        black_box(out);
    }
    let encode = started.elapsed().as_secs_f64();

    let started = Instant::now();
    for event in &events {
        let mut out = Vec::with_capacity(128);
        event.write_avro(&mut out);
        black_box(out);
    }
    let direct = started.elapsed().as_secs_f64();

    let per = |secs: f64| secs * 1e9 / count as f64;
    println!("codec: {count} events");
    println!(
        "  JSON parse + validate:        {:>7.0} ns/event",
        per(parse)
    );
    println!(
        "  Avro via apache-avro Value:   {:>7.0} ns/event",
        per(encode)
    );
    println!(
        "  Avro written directly:        {:>7.0} ns/event ({:.1}x faster)",
        per(direct),
        encode / direct
    );
}
