//! Live progress over Server-Sent Events: `GET /v1/stream` (every partition in the store)
//! and `GET /v1/pipelines/{pipeline}/stream` (the partitions of the pipeline's topic). Each
//! client's stream reads the store's partition progress every 200 ms and sends a `progress`
//! event (the same `partitions` and `as_of` as `/v1/freshness`) when the applied offsets
//! moved — the first one at once — with keep-alive comments in between. The connection pulls
//! the stream: a slow client holds its own last snapshot, never a queue of events. The
//! streams end when the state's shutdown token fires.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde_json::json;
use tokio::time::{Interval, MissedTickBehavior};

use super::api::{as_of, pipeline, QueryError, QueryState};
use crate::store::{PartitionStatus, StoreError};

/// How often each stream reads the store's progress.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long a quiet stream waits before a keep-alive comment.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// `GET /v1/stream`: progress of every partition in the store.
pub(super) async fn all_progress(
    State(state): State<QueryState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    progress(state, None)
}

/// `GET /v1/pipelines/{pipeline}/stream`: progress of the pipeline's topic; 404 for a
/// pipeline the API does not serve.
pub(super) async fn pipeline_progress(
    State(state): State<QueryState>,
    Path(name): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, QueryError> {
    let topic = pipeline(&state, &name)?.topic.clone();
    Ok(progress(state, Some(Scope { name, topic })))
}

/// The pipeline a stream is limited to.
struct Scope {
    name: String,
    topic: String,
}

/// One client's view: what it was sent last.
struct Watch {
    state: QueryState,
    scope: Option<Scope>,
    ticks: Interval,
    /// Topic, partition and last applied offset of every partition, as last sent.
    sent: Option<Vec<(String, i32, i64)>>,
    /// The last read failed and the client was told.
    failing: bool,
}

fn progress(
    state: QueryState,
    scope: Option<Scope>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut ticks = tokio::time::interval(POLL_INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let watch = Watch {
        state,
        scope,
        ticks,
        sent: None,
        failing: false,
    };
    let events = futures::stream::unfold(watch, next_event).map(Ok);
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE_INTERVAL))
}

/// Waits until the progress differs from what the client was sent (or a read fails for
/// the first time); `None` once the server shuts down.
async fn next_event(mut watch: Watch) -> Option<(Event, Watch)> {
    loop {
        tokio::select! {
            () = watch.state.shutdown.cancelled() => return None,
            _ = watch.ticks.tick() => {}
        }
        match watch.read().await {
            Ok(partitions) => {
                let offsets: Vec<(String, i32, i64)> = partitions
                    .iter()
                    .map(|p| (p.topic.clone(), p.partition, p.last_offset))
                    .collect();
                if watch.failing || watch.sent.as_ref() != Some(&offsets) {
                    watch.failing = false;
                    watch.sent = Some(offsets);
                    let event = progress_event(watch.scope.as_ref(), &partitions);
                    return Some((event, watch));
                }
            }
            Err(error) if !watch.failing => {
                tracing::warn!(%error, "Progress stream cannot read the store.");
                watch.failing = true;
                let body = json!({"error": "store_unavailable", "message": "the read store could not be read"});
                return Some((
                    Event::default().event("error").data(body.to_string()),
                    watch,
                ));
            }
            Err(_) => {}
        }
    }
}

impl Watch {
    async fn read(&self) -> Result<Vec<PartitionStatus>, StoreError> {
        let mut partitions = self.state.store.partitions().await?;
        if let Some(scope) = &self.scope {
            partitions.retain(|p| p.topic == scope.topic);
        }
        Ok(partitions)
    }
}

fn progress_event(scope: Option<&Scope>, partitions: &[PartitionStatus]) -> Event {
    let body = json!({
        "pipeline": scope.map(|s| &s.name),
        "partitions": partitions,
        "folded": partitions.iter().map(|p| p.folded).sum::<u64>(),
        "as_of": as_of(partitions),
    });
    Event::default().event("progress").data(body.to_string())
}
