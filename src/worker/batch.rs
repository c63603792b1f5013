//! Micro-batches: the distinct events of one partition, in offset order, with the offset
//! range they cover, what happened to each record, and the partials and duplicate-detection
//! ids the store writes with them. Pure data: no IO (only the clock, read once when a batch
//! is cut).

use std::borrow::Cow;
use std::sync::Arc;

use super::ProjectionDeltas;
#[cfg(test)]
use crate::contracts::PropertiesView;
use crate::contracts::{EventType, EventTypeSet, InteractionView};
use crate::pipeline::aggregates::Value;
use crate::pipeline::{
    EventField, FoldError, FoldInput, LiveAggregates, LivePart, PartialChange, Pipeline,
};

/// What became of one record read from Kafka (invariant 7: these add up to what was read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Decoded and folded (or found to be a duplicate).
    Decoded,
    /// Sent to the dead-letter topic.
    DeadLettered,
}

/// A distinct decoded event of a batch and where it came from, whole: what the tests compare
/// a batch's kept events with.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq)]
struct FoldedEvent<'a> {
    offset: i64,
    event: InteractionView<'a>,
    ingested_at: Option<i64>,
    late: bool,
}

/// A batch's distinct decoded events, in offset order: one text buffer holds every string,
/// so keeping an event allocates nothing once the buffers have grown.
#[derive(Debug, Clone, Default)]
pub struct BatchEvents {
    text: String,
    kept: Vec<KeptEvent>,
}

/// A distinct decoded event of a batch, resolved to the reader schema, but its properties
/// (nothing folds them), and where it came from. Its strings lie one after the other in
/// [`BatchEvents::text`] from `start`: string `i` ends `ends[i]` bytes after `start` (an
/// absent optional one is empty and its bit in `present` clear).
#[derive(Debug, Clone)]
struct KeptEvent {
    offset: i64,
    occurred_at: i64,
    value: Option<f64>,
    ingested_at: Option<i64>,
    start: usize,
    ends: [u32; STRINGS],
    present: u8,
    event_type: EventType,
    late: bool,
}

/// The strings a batch keeps, in their order in the text: event_id, user_id, session_id,
/// item_id, app, platform, os_version, app_version.
const STRINGS: usize = 8;
const EVENT_ID: usize = 0;
const USER_ID: usize = 1;
const SESSION_ID: usize = 2;
const ITEM_ID: usize = 3;
const APP: usize = 4;
const PLATFORM: usize = 5;
const OS_VERSION: usize = 6;
const APP_VERSION: usize = 7;

impl BatchEvents {
    /// Keeps `event`, read at `offset`, but its properties.
    pub fn push(
        &mut self,
        offset: i64,
        event: &InteractionView<'_>,
        ingested_at: Option<i64>,
        late: bool,
    ) {
        let strings = [
            Some(event.event_id),
            Some(event.user_id),
            Some(event.session_id),
            event.item_id,
            Some(event.app),
            Some(event.platform),
            event.os_version,
            event.app_version,
        ];
        let start = self.text.len();
        let mut ends = [0u32; STRINGS];
        let mut present = 0u8;
        for (i, text) in strings.into_iter().enumerate() {
            if let Some(text) = text {
                self.text.push_str(text);
                present |= 1 << i;
            }
            // An event's strings fit a Kafka record, far below 4 GiB.
            ends[i] = u32::try_from(self.text.len() - start).unwrap_or(u32::MAX);
        }
        self.kept.push(KeptEvent {
            offset,
            occurred_at: event.occurred_at,
            value: event.value,
            ingested_at,
            start,
            ends,
            present,
            event_type: event.event_type,
            late,
        });
    }

    /// Makes room for `room` (events, string bytes) in these emptied buffers. A buffer too
    /// small is replaced, not grown: growing would copy its old room, garbage, first.
    fn make_room(&mut self, room: BatchRoom) {
        debug_assert!(self.is_empty(), "room is made in emptied buffers");
        if self.kept.capacity() < room.events {
            self.kept = Vec::with_capacity(room.events);
        }
        if self.text.capacity() < room.text {
            self.text = String::with_capacity(room.text);
        }
    }

    /// The room these events take.
    fn room(&self) -> BatchRoom {
        BatchRoom {
            events: self.kept.len(),
            text: self.text.len(),
        }
    }

    /// Empties the buffers, keeping their room, for the next batch.
    pub fn clear(&mut self) {
        self.text.clear();
        self.kept.clear();
    }

    /// Events kept.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Keeps no event.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// The events, in offset order, read in place.
    pub fn iter(&self) -> impl Iterator<Item = KeptView<'_>> + '_ {
        self.kept.iter().map(|kept| self.view(kept))
    }

    /// The on-time events of these types, in offset order, read in place (the others are
    /// never read).
    pub fn on_time_of(&self, types: EventTypeSet) -> impl Iterator<Item = KeptView<'_>> + '_ {
        self.kept
            .iter()
            .filter(move |e| !e.late && types.contains(e.event_type))
            .map(|kept| self.view(kept))
    }

    fn view<'s>(&'s self, kept: &'s KeptEvent) -> KeptView<'s> {
        KeptView {
            text: &self.text,
            kept,
        }
    }
}

/// A kept event, read in place: as a [`FoldInput`] it slices only the strings an aggregate
/// asks for, so each of a batch's aggregates reads what it folds, not the whole event.
#[derive(Debug, Clone, Copy)]
pub struct KeptView<'a> {
    text: &'a str,
    kept: &'a KeptEvent,
}

impl<'a> KeptView<'a> {
    /// The event, whole, with where it came from.
    #[cfg(test)]
    fn folded(self) -> FoldedEvent<'a> {
        let e = self.kept;
        FoldedEvent {
            offset: e.offset,
            event: InteractionView {
                event_id: self.text(EVENT_ID),
                event_type: e.event_type,
                user_id: self.text(USER_ID),
                session_id: self.text(SESSION_ID),
                item_id: self.optional(ITEM_ID),
                occurred_at: e.occurred_at,
                app: self.text(APP),
                properties: PropertiesView::NotKept,
                value: e.value,
                platform: self.text(PLATFORM),
                os_version: self.optional(OS_VERSION),
                app_version: self.optional(APP_VERSION),
            },
            ingested_at: e.ingested_at,
            late: e.late,
        }
    }

    /// Kafka offset.
    pub fn offset(self) -> i64 {
        self.kept.offset
    }

    /// The record's Kafka timestamp (ms), if it has one.
    pub fn ingested_at(self) -> Option<i64> {
        self.kept.ingested_at
    }

    /// Late for the pipeline's windows (decided by the worker against the partition's
    /// watermark as the event arrived); copied to the late topic already.
    pub fn late(self) -> bool {
        self.kept.late
    }

    /// The event's user.
    pub fn user_id(self) -> &'a str {
        self.text(USER_ID)
    }

    /// The event's session.
    pub fn session_id(self) -> &'a str {
        self.text(SESSION_ID)
    }

    /// The event's item, if it has one.
    pub fn item_id(self) -> Option<&'a str> {
        self.optional(ITEM_ID)
    }

    /// The event's value, if it has one.
    pub fn value(self) -> Option<f64> {
        self.kept.value
    }

    /// String `i` (see [`STRINGS`]).
    fn text(self, i: usize) -> &'a str {
        let e = self.kept;
        let from = if i == 0 { 0 } else { e.ends[i - 1] as usize };
        self.text
            .get(e.start + from..e.start + e.ends[i] as usize)
            .unwrap_or_default()
    }

    /// Optional string `i`.
    fn optional(self, i: usize) -> Option<&'a str> {
        (self.kept.present & (1 << i) != 0).then(|| self.text(i))
    }
}

impl FoldInput for KeptView<'_> {
    fn occurred_at(&self) -> i64 {
        self.kept.occurred_at
    }

    fn event_type(&self) -> EventType {
        self.kept.event_type
    }

    fn field(&self, field: EventField) -> Option<Value<'_>> {
        Some(match field {
            EventField::EventId => Value::Text(self.text(EVENT_ID)),
            EventField::EventType => Value::Text(self.kept.event_type.as_str()),
            EventField::UserId => Value::Text(self.text(USER_ID)),
            EventField::SessionId => Value::Text(self.text(SESSION_ID)),
            EventField::ItemId => Value::Text(self.optional(ITEM_ID)?),
            EventField::OccurredAt => Value::Number(self.kept.occurred_at as f64),
            EventField::App => Value::Text(self.text(APP)),
            EventField::Value => Value::Number(self.kept.value?),
            EventField::DevicePlatform => Value::Text(self.text(PLATFORM)),
            EventField::DeviceOsVersion => Value::Text(self.optional(OS_VERSION)?),
            EventField::DeviceAppVersion => Value::Text(self.optional(APP_VERSION)?),
        })
    }
}

/// One partition's micro-batch.
#[derive(Debug, Clone)]
pub struct FoldBatch {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The stored offset this batch continues from (the fence).
    pub previous_offset: Option<i64>,
    /// The last offset the batch covers (decoded or dead-lettered).
    pub last_offset: i64,
    /// The distinct decoded events, in offset order.
    pub events: BatchEvents,
    /// Records of the range whose `event_id` was seen before (counted once, earlier).
    pub duplicates: u64,
    /// Records of the range sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// The `event_id` hashes of `events`, stored for duplicate detection.
    pub seen: Vec<u128>,
    /// Keep `event_id`s of this many most recent offsets for duplicate detection.
    pub dedup_horizon_events: i64,
    /// The pipeline's partials this batch changed, whole.
    pub partials: Vec<PartialChange>,
    /// What the batch's events change in the projections, when computed ahead (the worker
    /// does, on the fold's threads); see [`FoldBatch::projections`].
    pub projections: Option<ProjectionDeltas>,
    /// The highest event time seen in the partition after this batch, each event's time
    /// clamped by [`Pipeline::watermark_time`] (its watermark source).
    pub max_event_ms: Option<i64>,
    /// The pipeline whose aggregates the batch's on-time, distinct events fold into.
    pub pipeline: Option<Arc<Pipeline>>,
    /// When the batch's first record was read (fold latency).
    pub opened_at: Option<std::time::Instant>,
    /// Processing time (ms since the epoch) when the batch was cut: the partition's last
    /// activity, which the idle rule of the query side reads back.
    pub cut_at_ms: i64,
}

impl FoldBatch {
    /// Folds the batch's on-time events into its partition's live partials, aggregate by
    /// aggregate as the worker's commit threads do (each event in offset order), and keeps
    /// the partials they changed and its projection deltas to store with the batch; then
    /// drops from memory what no on-time event can change any more.
    pub fn fold_into(&mut self, live: &mut LiveAggregates) -> Result<(), FoldError> {
        for mut part in live.parts_mut() {
            self.fold_part(&mut part)?;
        }
        self.keep_changes(live);
        self.projections = Some(self.projection_deltas());
        Ok(())
    }

    /// What the batch's events change in the projections its pipeline keeps (event counts
    /// always).
    pub fn projection_deltas(&self) -> ProjectionDeltas {
        ProjectionDeltas::of(&self.events, self.pipeline.as_deref())
    }

    /// The batch's projection deltas, as the store writes them: those computed ahead, else
    /// computed now.
    pub fn projections(&self) -> Cow<'_, ProjectionDeltas> {
        match &self.projections {
            Some(deltas) => Cow::Borrowed(deltas),
            None => Cow::Owned(self.projection_deltas()),
        }
    }

    /// Folds the batch's on-time events into one aggregate of its partition, in offset
    /// order (only those of the types its filter lets through are read).
    pub fn fold_part(&self, part: &mut LivePart<'_>) -> Result<(), FoldError> {
        self.on_time_of(part.event_types())
            .try_for_each(|event| part.add(&event))
    }

    /// The batch's on-time events of these types, in offset order.
    pub fn on_time_of(&self, types: EventTypeSet) -> impl Iterator<Item = KeptView<'_>> + '_ {
        self.events.on_time_of(types)
    }

    /// Once every on-time event is folded into `live` (by [`FoldBatch::fold_into`], or
    /// aggregate by aggregate through [`LiveAggregates::parts_mut`]): keeps the partials
    /// they changed to store with the batch, then drops from memory what no on-time event
    /// can change any more.
    pub fn keep_changes(&mut self, live: &mut LiveAggregates) {
        self.partials = live.take_changes();
        live.evict(self.max_event_ms);
    }

    /// Records the batch covers.
    pub fn records(&self) -> u64 {
        self.events.len() as u64 + self.duplicates + self.dead_lettered
    }
}

/// How much a batch's event buffers hold: events, and bytes of their strings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct BatchRoom {
    events: usize,
    text: usize,
}

impl BatchRoom {
    /// Room for either.
    fn max(self, other: BatchRoom) -> BatchRoom {
        BatchRoom {
            events: self.events.max(other.events),
            text: self.text.max(other.text),
        }
    }
}

/// Accumulates one partition's records between two commits.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    batch: FoldBatch,
    /// A committed batch's event buffers, emptied, for the next batch.
    spare: Option<BatchEvents>,
    /// The room of the partition's largest batch so far: every new batch starts with it.
    largest: BatchRoom,
}

impl BatchBuilder {
    /// An empty batch continuing from `previous_offset`.
    pub fn new(
        topic: &str,
        partition: i32,
        previous_offset: Option<i64>,
        dedup_horizon_events: i64,
        max_event_ms: Option<i64>,
        pipeline: Option<Arc<Pipeline>>,
    ) -> Self {
        BatchBuilder {
            spare: None,
            largest: BatchRoom::default(),
            batch: FoldBatch {
                topic: topic.to_owned(),
                partition,
                previous_offset,
                last_offset: previous_offset.unwrap_or(-1),
                events: BatchEvents::default(),
                duplicates: 0,
                dead_lettered: 0,
                seen: Vec::new(),
                dedup_horizon_events,
                partials: Vec::new(),
                projections: None,
                max_event_ms,
                pipeline,
                opened_at: None,
                cut_at_ms: 0,
            },
        }
    }

    /// The next offset this batch expects.
    pub fn next_offset(&self) -> i64 {
        self.batch.last_offset + 1
    }

    /// Adds a distinct decoded event read at `offset` (the next one), late or not, from a
    /// record stamped `ingested_at`. Its time moves the partition's watermark source at
    /// most to its record's timestamp plus the pipeline's `max_ahead`
    /// ([`Pipeline::watermark_time`]).
    pub fn push_event(
        &mut self,
        offset: i64,
        event: &InteractionView<'_>,
        ingested_at: Option<i64>,
        late: bool,
    ) {
        self.batch
            .opened_at
            .get_or_insert_with(std::time::Instant::now);
        self.batch.last_offset = offset;
        let at = match (&self.batch.pipeline, ingested_at) {
            (Some(pipeline), Some(record_ms)) => {
                pipeline.watermark_time(event.occurred_at, record_ms)
            }
            _ => event.occurred_at,
        };
        self.batch.max_event_ms = Some(self.batch.max_event_ms.map_or(at, |m| m.max(at)));
        self.batch.events.push(offset, event, ingested_at, late);
    }

    /// Adds a record whose `event_id` was seen before.
    pub fn push_duplicate(&mut self, offset: i64) {
        self.batch
            .opened_at
            .get_or_insert_with(std::time::Instant::now);
        self.batch.last_offset = offset;
        self.batch.duplicates += 1;
    }

    /// The highest event time seen in the partition so far.
    pub fn max_event_ms(&self) -> Option<i64> {
        self.batch.max_event_ms
    }

    /// Adds a record that went to the dead-letter topic.
    pub fn push_dead_letter(&mut self, offset: i64) {
        self.batch
            .opened_at
            .get_or_insert_with(std::time::Instant::now);
        self.batch.last_offset = offset;
        self.batch.dead_lettered += 1;
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.batch.records() as usize
    }

    /// Holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The last offset the batch covers.
    pub fn last_offset(&self) -> i64 {
        self.batch.last_offset
    }

    /// The duplicate-detection horizon, in offsets.
    pub fn dedup_horizon_events(&self) -> i64 {
        self.batch.dedup_horizon_events
    }

    /// Takes back a committed batch's event buffers, emptied, for a later batch.
    pub fn recycle(&mut self, mut events: BatchEvents) {
        events.clear();
        self.spare = Some(events);
    }

    /// Takes the records held as a batch, with the ids and partial changes to store with
    /// it, and starts an empty one after it.
    pub fn take(&mut self, seen: Vec<u128>, partials: Vec<PartialChange>) -> FoldBatch {
        // A committed batch's buffers, else new ones, with room for the partition's largest
        // batch so far: its batches vary in size (records come a fetch at a time, and a
        // backlog's batches ramp up), and a buffer that grows while it fills copies what it
        // holds into fresh memory, on the fold loop.
        let largest = self.largest.max(self.batch.events.room());
        let mut room = self.spare.take().unwrap_or_default();
        room.make_room(largest);
        let mut next = BatchBuilder::new(
            &self.batch.topic,
            self.batch.partition,
            Some(self.batch.last_offset),
            self.batch.dedup_horizon_events,
            self.batch.max_event_ms,
            self.batch.pipeline.clone(),
        );
        next.batch.events = room;
        next.largest = largest;
        let mut batch = std::mem::replace(self, next).batch;
        batch.seen = seen;
        batch.partials = partials;
        batch.cut_at_ms = crate::clock::now_ms();
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::Interaction;
    use crate::pipeline::parse_pipeline;

    fn event(offset: i64, occurred_at: i64) -> Interaction {
        Interaction {
            event_id: offset.to_string(),
            event_type: EventType::Click,
            user_id: "u".into(),
            session_id: "s".into(),
            item_id: None,
            occurred_at,
            app: "web".into(),
            properties: Default::default(),
            value: None,
            device: Default::default(),
        }
    }

    #[test]
    fn a_kept_event_read_in_place_has_every_field_of_its_event() {
        let mut full = event(7, 1_234);
        full.event_type = EventType::Purchase;
        full.user_id = "user-é\"".into();
        full.item_id = Some("item-9".into());
        full.value = Some(19.5);
        full.device.platform = "ios".into();
        full.device.os_version = Some("17.2".into());
        full.device.app_version = Some("3.1.0".into());
        let bare = event(8, 5_678);
        let mut events = BatchEvents::default();
        events.push(7, &full.view(), Some(99), false);
        events.push(8, &bare.view(), None, false);
        let fields = [
            "event_id",
            "event_type",
            "user_id",
            "session_id",
            "item_id",
            "occurred_at",
            "app",
            "value",
            "device.platform",
            "device.os_version",
            "device.app_version",
        ]
        .map(|name| EventField::parse(name).unwrap());
        let kept: Vec<KeptView> = events.on_time_of(EventTypeSet::ALL).collect();
        for (view, original) in kept.iter().zip([&full, &bare]) {
            assert_eq!(view.occurred_at(), original.occurred_at);
            assert_eq!(view.event_type(), original.event_type);
            for field in fields {
                assert_eq!(
                    view.field(field),
                    field.value(&original.view()),
                    "{field:?}"
                );
            }
        }
        assert_eq!(
            kept[0].field(EventField::ItemId),
            Some(Value::Text("item-9"))
        );
        assert_eq!(kept[1].field(EventField::DeviceOsVersion), None);
    }

    #[test]
    fn on_time_events_of_some_types_are_the_on_time_events_filtered_by_type() {
        let mut events = BatchEvents::default();
        let types = [
            EventType::Click,
            EventType::Purchase,
            EventType::PageView,
            EventType::Purchase,
            EventType::Play,
        ];
        for (offset, event_type) in types.into_iter().enumerate() {
            let mut kept = event(offset as i64, 1_000 * offset as i64);
            kept.event_type = event_type;
            events.push(offset as i64, &kept.view(), None, offset == 3);
        }
        let offsets = |set: EventTypeSet| {
            events
                .on_time_of(set)
                .map(KeptView::offset)
                .collect::<Vec<_>>()
        };
        assert_eq!(offsets(EventTypeSet::ALL), [0, 1, 2, 4]);
        assert_eq!(offsets(EventTypeSet::of([EventType::Purchase])), [1]);
        assert_eq!(
            offsets(EventTypeSet::of([EventType::Click, EventType::Play])),
            [0, 4]
        );
        assert_eq!(offsets(EventTypeSet::of([])), Vec::<i64>::new());
        let all: Vec<_> = events
            .iter()
            .filter(|e| !e.late())
            .map(KeptView::folded)
            .collect();
        let filtered: Vec<_> = events
            .on_time_of(EventTypeSet::ALL)
            .map(KeptView::folded)
            .collect();
        assert_eq!(all, filtered);
    }

    #[test]
    fn an_event_ahead_of_its_record_moves_the_watermark_source_only_to_the_record_time() {
        let pipeline = parse_pipeline(
            std::path::Path::new("t.yaml"),
            "name: t\nsource: {topic: t, reader_schema: interaction/v2.avsc}\nevent_time: {field: occurred_at, watermark_delay: 5s, grace: 30s, max_ahead: 1s}\naggregates:\n  - {name: n, window: {tumbling: 1m}, aggregate: count}\n",
        )
        .map(Arc::new)
        .unwrap();
        let mut batch = BatchBuilder::new("t", 0, None, 10, None, Some(pipeline));
        batch.push_event(0, &event(0, 50_000).view(), Some(60_000), false);
        assert_eq!(batch.max_event_ms(), Some(50_000));
        // The year 2100, in a record stamped at 70 s: counts as 70 s + max_ahead.
        batch.push_event(1, &event(1, 4_102_444_800_000).view(), Some(70_000), false);
        assert_eq!(batch.max_event_ms(), Some(71_000));
        let taken = batch.take(Vec::new(), Vec::new());
        assert_eq!((taken.max_event_ms, taken.records()), (Some(71_000), 2));
        assert!(taken.cut_at_ms > 0);
        // Without a record timestamp, or without a pipeline, the event's own time counts.
        batch.push_event(2, &event(2, 80_000).view(), None, false);
        assert_eq!(batch.max_event_ms(), Some(80_000));
        let mut plain = BatchBuilder::new("t", 0, None, 10, None, None);
        plain.push_event(0, &event(0, 4_102_444_800_000).view(), Some(70_000), false);
        assert_eq!(plain.max_event_ms(), Some(4_102_444_800_000));
    }

    #[test]
    fn a_batch_gives_back_every_field_it_keeps_and_reuses_its_buffers() {
        let full = Interaction {
            event_id: "e-1".into(),
            event_type: EventType::Purchase,
            user_id: "ü-7".into(),
            session_id: "s-7".into(),
            item_id: Some("item-3".into()),
            occurred_at: -5,
            app: "shop".into(),
            properties: [("k".to_owned(), "v".to_owned())].into(),
            value: Some(9.5),
            device: crate::contracts::Device {
                platform: "ios".into(),
                os_version: Some("17.1".into()),
                app_version: None,
            },
        };
        let sparse = Interaction {
            item_id: None,
            value: None,
            device: Default::default(),
            ..event(8, 1_000)
        };
        let mut batch = BatchBuilder::new("t", 0, None, 10, None, None);
        batch.push_event(7, &full.view(), Some(42), false);
        batch.push_duplicate(8);
        batch.push_event(9, &sparse.view(), None, true);
        let taken = batch.take(Vec::new(), Vec::new());
        let kept: Vec<FoldedEvent> = taken.events.iter().map(KeptView::folded).collect();
        fn expected(
            offset: i64,
            e: &Interaction,
            ingested_at: Option<i64>,
            late: bool,
        ) -> FoldedEvent<'_> {
            FoldedEvent {
                offset,
                event: InteractionView {
                    properties: PropertiesView::NotKept,
                    ..e.view()
                },
                ingested_at,
                late,
            }
        }
        assert_eq!(
            kept,
            vec![
                expected(7, &full, Some(42), false),
                expected(9, &sparse, None, true)
            ]
        );
        assert_eq!((taken.records(), taken.events.len()), (3, 2));

        // The batch being built has its own room; the one after it gets the buffers back.
        let room = taken.events.text.capacity();
        batch.recycle(taken.events);
        batch.push_event(10, &sparse.view(), None, false);
        batch.take(Vec::new(), Vec::new());
        batch.push_event(11, &sparse.view(), None, false);
        let after = batch.take(Vec::new(), Vec::new());
        assert_eq!(
            after.events.text.capacity(),
            room,
            "the buffers were reused"
        );
        assert_eq!(
            after
                .events
                .iter()
                .map(KeptView::folded)
                .collect::<Vec<_>>(),
            vec![expected(11, &sparse, None, false)]
        );
    }

    #[test]
    fn the_next_batch_has_room_for_the_largest_batch_of_its_partition() {
        let mut batch = BatchBuilder::new("t", 0, None, 1_000, None, None);
        let push = |batch: &mut BatchBuilder, from: i64, count: i64| {
            for offset in from..from + count {
                batch.push_event(offset, &event(offset, offset).view(), None, false);
            }
        };
        push(&mut batch, 0, 10);
        let small = batch.take(Vec::new(), Vec::new());
        push(&mut batch, 10, 500);
        let (events, text) = (batch.batch.events.len(), batch.batch.events.text.len());
        let assert_room = |batch: &BatchBuilder| {
            let room = &batch.batch.events;
            assert!(
                room.kept.capacity() >= events && room.text.capacity() >= text,
                "room for {} events and {} bytes, not {events} and {text}",
                room.kept.capacity(),
                room.text.capacity()
            );
        };
        // The buffers given back held 10 events; the batch being cut held 500.
        batch.recycle(small.events);
        let large = batch.take(Vec::new(), Vec::new());
        assert_eq!(large.events.len(), 500);
        assert_room(&batch);
        assert!(batch.batch.events.is_empty());
        // A small batch after it: the batch after that still starts with room for 500, in
        // the buffers the large one gives back and in new ones alike.
        push(&mut batch, 510, 10);
        batch.recycle(large.events);
        let small = batch.take(Vec::new(), Vec::new());
        assert_eq!(small.events.len(), 10);
        for _ in 0..2 {
            assert_room(&batch);
            batch.take(Vec::new(), Vec::new());
        }
    }
}
