//! The wall clock, in milliseconds since the Unix epoch: processing time, for the few places
//! that need it (the collector's timestamp sanity check, when a worker cut a batch, whether a
//! partition is idle). Event time never comes from here.

/// Now, in ms since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
