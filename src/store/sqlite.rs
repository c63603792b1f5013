//! The embedded read store on SQLite (WAL mode). Every call runs on the blocking pool; a
//! worker's batches are applied in one transaction, each fenced on its partition's stored
//! offset, with duplicate `event_id`s (within the configured horizon) counted once.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::contracts::EventType;
use crate::pipeline::{AggregateState, Partial, PartialChange, Pipeline, Window};
use crate::store::checkpoint::Checkpoints;
use crate::store::read::merge_partials;
use crate::store::{
    AggregateRow, ItemProfile, PartitionStatus, ReadStore, SessionProfile, StoreError, UserProfile,
};
use crate::worker::{
    decode_hashes, encode_hashes, event_id_hash, CommitOutcome, FoldBatch, FoldStore,
    FoldStoreError, PartitionProgress, PartitionSnapshot, ProjectionDeltas,
};

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE IF NOT EXISTS partition_progress (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    last_offset INTEGER NOT NULL,
    read INTEGER NOT NULL DEFAULT 0,
    folded INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS seen_events (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, event_id)
);
CREATE INDEX IF NOT EXISTS seen_events_by_offset ON seen_events (topic, partition, offset);
CREATE TABLE IF NOT EXISTS user_event_counts (
    user_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (user_id, event_type)
);
"#,
    r#"
ALTER TABLE partition_progress ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
ALTER TABLE partition_progress ADD COLUMN max_event_ms INTEGER;
CREATE TABLE IF NOT EXISTS aggregate_partials (
    pipeline TEXT NOT NULL,
    aggregate TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    group_key TEXT NOT NULL,
    partition INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (pipeline, aggregate, window_start, window_end, group_key, partition)
);
"#,
    r#"
CREATE TABLE IF NOT EXISTS user_profiles (
    pipeline TEXT NOT NULL,
    user_id TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    events INTEGER NOT NULL,
    total_value REAL NOT NULL,
    current_session TEXT NOT NULL,
    PRIMARY KEY (pipeline, user_id)
);
CREATE TABLE IF NOT EXISTS item_profiles (
    pipeline TEXT NOT NULL,
    item_id TEXT NOT NULL,
    views INTEGER NOT NULL,
    clicks INTEGER NOT NULL,
    add_to_carts INTEGER NOT NULL,
    purchases INTEGER NOT NULL,
    PRIMARY KEY (pipeline, item_id)
);
CREATE TABLE IF NOT EXISTS session_profiles (
    pipeline TEXT NOT NULL,
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    events INTEGER NOT NULL,
    converted INTEGER NOT NULL,
    PRIMARY KEY (pipeline, session_id)
);
"#,
    r#"
CREATE INDEX IF NOT EXISTS aggregate_sessions
    ON aggregate_partials (pipeline, aggregate, partition, group_key, window_start);
"#,
    r#"
CREATE TABLE IF NOT EXISTS seen_event_batches (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    last_offset INTEGER NOT NULL,
    ids BLOB NOT NULL,
    PRIMARY KEY (topic, partition, last_offset)
);
CREATE INDEX IF NOT EXISTS aggregate_partials_by_end
    ON aggregate_partials (pipeline, partition, window_end);
"#,
    r#"
ALTER TABLE partition_progress ADD COLUMN updated_at_ms INTEGER;
"#,
    // The projection tables keyed by their primary key alone (one b-tree instead of a rowid
    // table plus a key index): each batch upserts thousands of their small rows.
    r#"
CREATE TABLE user_event_counts_by_key (
    user_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (user_id, event_type)
) WITHOUT ROWID;
INSERT INTO user_event_counts_by_key SELECT user_id, event_type, count FROM user_event_counts;
DROP TABLE user_event_counts;
ALTER TABLE user_event_counts_by_key RENAME TO user_event_counts;
CREATE TABLE user_profiles_by_key (
    pipeline TEXT NOT NULL,
    user_id TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    events INTEGER NOT NULL,
    total_value REAL NOT NULL,
    current_session TEXT NOT NULL,
    PRIMARY KEY (pipeline, user_id)
) WITHOUT ROWID;
INSERT INTO user_profiles_by_key
    SELECT pipeline, user_id, first_seen_ms, last_seen_ms, events, total_value, current_session
    FROM user_profiles;
DROP TABLE user_profiles;
ALTER TABLE user_profiles_by_key RENAME TO user_profiles;
CREATE TABLE item_profiles_by_key (
    pipeline TEXT NOT NULL,
    item_id TEXT NOT NULL,
    views INTEGER NOT NULL,
    clicks INTEGER NOT NULL,
    add_to_carts INTEGER NOT NULL,
    purchases INTEGER NOT NULL,
    PRIMARY KEY (pipeline, item_id)
) WITHOUT ROWID;
INSERT INTO item_profiles_by_key
    SELECT pipeline, item_id, views, clicks, add_to_carts, purchases FROM item_profiles;
DROP TABLE item_profiles;
ALTER TABLE item_profiles_by_key RENAME TO item_profiles;
CREATE TABLE session_profiles_by_key (
    pipeline TEXT NOT NULL,
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    events INTEGER NOT NULL,
    converted INTEGER NOT NULL,
    PRIMARY KEY (pipeline, session_id)
) WITHOUT ROWID;
INSERT INTO session_profiles_by_key
    SELECT pipeline, session_id, user_id, start_ms, end_ms, events, converted
    FROM session_profiles;
DROP TABLE session_profiles;
ALTER TABLE session_profiles_by_key RENAME TO session_profiles;
"#,
    // A user's event counts in one row, a column per type (`EventType::ALL`, in its order):
    // a batch upserts a row per user instead of one per user and type. A symbol this build
    // does not know was read as `unknown`, and is counted there.
    r#"
CREATE TABLE user_type_counts (
    user_id TEXT NOT NULL PRIMARY KEY,
    unknown INTEGER NOT NULL DEFAULT 0,
    page_view INTEGER NOT NULL DEFAULT 0,
    click INTEGER NOT NULL DEFAULT 0,
    play INTEGER NOT NULL DEFAULT 0,
    pause INTEGER NOT NULL DEFAULT 0,
    skip INTEGER NOT NULL DEFAULT 0,
    search INTEGER NOT NULL DEFAULT 0,
    add_to_cart INTEGER NOT NULL DEFAULT 0,
    purchase INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO user_type_counts
    SELECT user_id,
        sum(CASE WHEN event_type IN ('page_view', 'click', 'play', 'pause', 'skip', 'search',
            'add_to_cart', 'purchase') THEN 0 ELSE count END),
        sum(CASE event_type WHEN 'page_view' THEN count ELSE 0 END),
        sum(CASE event_type WHEN 'click' THEN count ELSE 0 END),
        sum(CASE event_type WHEN 'play' THEN count ELSE 0 END),
        sum(CASE event_type WHEN 'pause' THEN count ELSE 0 END),
        sum(CASE event_type WHEN 'skip' THEN count ELSE 0 END),
        sum(CASE event_type WHEN 'search' THEN count ELSE 0 END),
        sum(CASE event_type WHEN 'add_to_cart' THEN count ELSE 0 END),
        sum(CASE event_type WHEN 'purchase' THEN count ELSE 0 END)
    FROM user_event_counts GROUP BY user_id;
DROP TABLE user_event_counts;
ALTER TABLE user_type_counts RENAME TO user_event_counts;
"#,
];

/// The statements on `user_event_counts`, built once from [`EventType::ALL`]: a column per
/// type, named by its symbol, in its order.
struct EventCountSql {
    /// Adds a user's counts (`?1` the user, then one per type).
    upsert: String,
    /// A user's counts.
    of_user: String,
    /// Every user with its counts.
    all: String,
}

fn event_count_sql() -> &'static EventCountSql {
    static SQL: std::sync::LazyLock<EventCountSql> = std::sync::LazyLock::new(|| {
        let columns: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        let list = columns.join(", ");
        let values: Vec<String> = (2..=columns.len() + 1).map(|i| format!("?{i}")).collect();
        let sums: Vec<String> = columns
            .iter()
            .map(|c| format!("{c} = {c} + excluded.{c}"))
            .collect();
        EventCountSql {
            upsert: format!(
                "INSERT INTO user_event_counts (user_id, {list}) VALUES (?1, {})
                 ON CONFLICT (user_id) DO UPDATE SET {}",
                values.join(", "),
                sums.join(", ")
            ),
            of_user: format!("SELECT {list} FROM user_event_counts WHERE user_id = ?1"),
            all: format!("SELECT user_id, {list} FROM user_event_counts"),
        }
    });
    &SQL
}

/// The non-zero counts of a `user_event_counts` row whose type columns start at `first`.
fn counts_of_row(
    row: &rusqlite::Row<'_>,
    first: usize,
) -> rusqlite::Result<BTreeMap<EventType, u64>> {
    let mut counts = BTreeMap::new();
    for (i, kind) in EventType::ALL.into_iter().enumerate() {
        let count: i64 = row.get(first + i)?;
        if count > 0 {
            counts.insert(kind, count as u64);
        }
    }
    Ok(counts)
}

/// The migration that keeps duplicate-detection ids as hashes per batch; the ids of the
/// older per-event table are carried over (hashed) as one batch per partition.
const SEEN_BATCHES_MIGRATION: usize = 5;

/// The SQLite read store.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    checkpoints: Arc<Checkpoints>,
    path: String,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and applies the migrations.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let label = path.display().to_string();
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|source| StoreError::Folder {
                path: label.clone(),
                source,
            })?;
        }
        let sqlite = |source| StoreError::Sqlite {
            path: label.clone(),
            source,
        };
        // Both connections open the file itself, not a link to it: a replay may point the
        // link at another database before the first commit starts the checkpoint connection.
        let file = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let mut connection = Connection::open(&file).map_err(sqlite)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite)?;
        // The worker's commit rewrites the same users', items', sessions' and windows' rows
        // batch after batch: a page cache of 64 MiB (SQLite's default is 2 MiB) keeps their
        // b-tree pages in memory instead of reading them back from the file each commit.
        connection
            .pragma_update(None, "cache_size", -64 * 1024)
            .map_err(sqlite)?;
        // Checkpoints copy the log's latest page versions into the file. A thread of the
        // store's own does it after commits, at most once a second (a page that batch after
        // batch rewrites is copied once for all of them), so a commit never waits for one;
        // the writer checkpoints itself only past 100,000 pages (~400 MiB of log), should
        // the thread fall behind or fail to start.
        connection
            .pragma_update(None, "wal_autocheckpoint", 100_000)
            .map_err(sqlite)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sqlite)?;
        migrate(&mut connection).map_err(sqlite)?;
        Ok(SqliteStore {
            connection: Arc::new(Mutex::new(connection)),
            checkpoints: Arc::new(Checkpoints::new(&file)),
            path: label,
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self.connection.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut connection).map_err(|source| StoreError::Sqlite { path, source })
        })
        .await?
    }

    /// How often `user_id` did each event type.
    pub async fn user_event_counts(
        &self,
        user_id: &str,
    ) -> Result<BTreeMap<EventType, u64>, StoreError> {
        let user_id = user_id.to_owned();
        self.with(move |c| {
            let counts = c
                .prepare_cached(&event_count_sql().of_user)?
                .query_row([user_id], |row| counts_of_row(row, 0))
                .optional()?;
            Ok(counts.unwrap_or_default())
        })
        .await
    }

    /// Every user's counts (user → type → count), for listings and tests.
    pub async fn all_user_event_counts(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<EventType, u64>>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare_cached(&event_count_sql().all)?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, counts_of_row(row, 1)?))
            })?;
            rows.collect()
        })
        .await
    }

    /// Every partition's progress and accounting.
    pub async fn partitions(&self) -> Result<Vec<PartitionStatus>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT topic, partition, last_offset, read, folded, duplicates, dead_lettered, late, max_event_ms, updated_at_ms
                 FROM partition_progress ORDER BY topic, partition",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(PartitionStatus {
                    topic: row.get(0)?,
                    partition: row.get(1)?,
                    last_offset: row.get(2)?,
                    read: row.get::<_, i64>(3)? as u64,
                    folded: row.get::<_, i64>(4)? as u64,
                    duplicates: row.get::<_, i64>(5)? as u64,
                    dead_lettered: row.get::<_, i64>(6)? as u64,
                    late: row.get::<_, i64>(7)? as u64,
                    max_event_ms: row.get(8)?,
                    updated_at_ms: row.get(9)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}

impl SqliteStore {
    /// Like [`ReadStore::aggregate_rows`]; with `sessions`, overlapping windows of one group
    /// from different partitions are one session and merge into one row.
    pub async fn aggregate_rows_merging(
        &self,
        pipeline: &str,
        aggregate: &str,
        from_ms: i64,
        to_ms: i64,
        sessions: bool,
    ) -> Result<Vec<AggregateRow>, StoreError> {
        let (pipeline, aggregate) = (pipeline.to_owned(), aggregate.to_owned());
        self.with(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT window_start, window_end, group_key, state FROM aggregate_partials
                 WHERE pipeline = ?1 AND aggregate = ?2 AND window_end > ?3 AND window_start < ?4
                 ORDER BY window_start, group_key",
            )?;
            let rows =
                statement.query_map(params![pipeline, aggregate, from_ms, to_ms], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                })?;
            let mut partials = Vec::new();
            for row in rows {
                let (start_ms, end_ms, group, state) = row?;
                let state: AggregateState = serde_json::from_str(&state).map_err(corrupt)?;
                partials.push((start_ms, end_ms, group, state));
            }
            merge_partials(partials, sessions).map_err(corrupt)
        })
        .await
    }
}

impl SqliteStore {
    /// A user's profile in `pipeline`, if the user was seen.
    pub async fn user_profile(
        &self,
        pipeline: &str,
        user_id: &str,
    ) -> Result<Option<UserProfile>, StoreError> {
        let counts = self.user_event_counts(user_id).await?;
        let (pipeline, user_id) = (pipeline.to_owned(), user_id.to_owned());
        self.with(move |c| {
            c.query_row(
                "SELECT first_seen_ms, last_seen_ms, events, total_value, current_session FROM user_profiles WHERE pipeline = ?1 AND user_id = ?2",
                params![pipeline, user_id],
                |row| {
                    Ok(UserProfile {
                        user_id: user_id.clone(),
                        first_seen_ms: row.get(0)?,
                        last_seen_ms: row.get(1)?,
                        events: row.get::<_, i64>(2)? as u64,
                        total_value: row.get(3)?,
                        current_session: row.get(4)?,
                        counts,
                    })
                },
            )
            .optional()
        })
        .await
    }

    /// Every item's profile in `pipeline`, by item id.
    pub async fn item_profiles(&self, pipeline: &str) -> Result<Vec<ItemProfile>, StoreError> {
        let pipeline = pipeline.to_owned();
        self.with(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT item_id, views, clicks, add_to_carts, purchases FROM item_profiles WHERE pipeline = ?1 ORDER BY item_id",
            )?;
            let rows = statement.query_map([pipeline], |row| {
                let views = row.get::<_, i64>(1)? as u64;
                let purchases = row.get::<_, i64>(4)? as u64;
                Ok(ItemProfile {
                    item_id: row.get(0)?,
                    views,
                    clicks: row.get::<_, i64>(2)? as u64,
                    add_to_carts: row.get::<_, i64>(3)? as u64,
                    purchases,
                    conversion_rate: (views > 0).then(|| purchases as f64 / views as f64),
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Every session's profile in `pipeline`, by session id.
    pub async fn session_profiles(
        &self,
        pipeline: &str,
    ) -> Result<Vec<SessionProfile>, StoreError> {
        let pipeline = pipeline.to_owned();
        self.with(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT session_id, user_id, start_ms, end_ms, events, converted FROM session_profiles WHERE pipeline = ?1 ORDER BY session_id",
            )?;
            let rows = statement.query_map([pipeline], |row| {
                let (start_ms, end_ms): (i64, i64) = (row.get(2)?, row.get(3)?);
                Ok(SessionProfile {
                    session_id: row.get(0)?,
                    user_id: row.get(1)?,
                    start_ms,
                    end_ms,
                    length_ms: end_ms - start_ms,
                    events: row.get::<_, i64>(4)? as u64,
                    converted: row.get::<_, i64>(5)? != 0,
                })
            })?;
            rows.collect()
        })
        .await
    }
}

fn corrupt(error: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(error))
}

fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let tx = connection.transaction()?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(migration)?;
        if index + 1 == SEEN_BATCHES_MIGRATION {
            carry_over_seen_events(&tx)?;
        }
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
    }
    tx.commit()
}

/// Moves the per-event duplicate-detection rows into one hashed batch per partition.
fn carry_over_seen_events(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut by_partition: BTreeMap<(String, i32), (i64, Vec<u128>)> = BTreeMap::new();
    {
        let mut rows = tx.prepare("SELECT topic, partition, event_id, offset FROM seen_events")?;
        let rows = rows.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i32>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (topic, partition, event_id, offset) = row?;
            let entry = by_partition.entry((topic, partition)).or_default();
            entry.0 = entry.0.max(offset);
            entry.1.push(event_id_hash(&event_id));
        }
    }
    for ((topic, partition), (last_offset, ids)) in by_partition {
        tx.execute(
            "INSERT OR REPLACE INTO seen_event_batches (topic, partition, last_offset, ids) VALUES (?1, ?2, ?3, ?4)",
            params![topic, partition, last_offset, encode_hashes(&ids)],
        )?;
    }
    tx.execute_batch("DROP TABLE seen_events;")
}

fn stored_progress(
    tx: &Transaction<'_>,
    topic: &str,
    partition: i32,
) -> rusqlite::Result<PartitionProgress> {
    Ok(tx
        .query_row(
            "SELECT last_offset, max_event_ms FROM partition_progress WHERE topic = ?1 AND partition = ?2",
            params![topic, partition],
            |row| {
                Ok(PartitionProgress {
                    last_offset: row.get(0)?,
                    max_event_ms: row.get(1)?,
                })
            },
        )
        .optional()?
        .unwrap_or_default())
}

fn apply_batch(tx: &Transaction<'_>, batch: &FoldBatch) -> rusqlite::Result<CommitOutcome> {
    let stored = stored_progress(tx, &batch.topic, batch.partition)?;
    if stored.last_offset != batch.previous_offset {
        return Ok(CommitOutcome::Fenced { stored });
    }
    if !batch.seen.is_empty() {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO seen_event_batches (topic, partition, last_offset, ids) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            batch.topic,
            batch.partition,
            batch.last_offset,
            encode_hashes(&batch.seen)
        ])?;
    }
    let late = batch.events.iter().filter(|e| e.late()).count() as i64;
    let folded = batch.events.len() as i64 - late;
    let mut count = tx.prepare_cached(&event_count_sql().upsert)?;
    let projections = batch.projections();
    for (user, by_type) in &projections.event_counts {
        count.raw_bind_parameter(1, user)?;
        for (i, n) in by_type.iter().enumerate() {
            count.raw_bind_parameter(i + 2, n)?;
        }
        count.raw_execute()?;
    }
    if let Some(pipeline) = &batch.pipeline {
        write_partials(tx, &pipeline.name, batch.partition, &batch.partials)?;
        project(tx, &pipeline.name, &projections)?;
    }
    let read = batch.records() as i64;
    let duplicates = batch.duplicates as i64;
    tx.execute(
        "INSERT INTO partition_progress (topic, partition, last_offset, read, folded, duplicates, dead_lettered, late, max_event_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (topic, partition) DO UPDATE SET
           last_offset = excluded.last_offset,
           read = read + excluded.read,
           folded = folded + excluded.folded,
           duplicates = duplicates + excluded.duplicates,
           dead_lettered = dead_lettered + excluded.dead_lettered,
           late = late + excluded.late,
           max_event_ms = excluded.max_event_ms,
           updated_at_ms = excluded.updated_at_ms",
        params![batch.topic, batch.partition, batch.last_offset, read, folded, duplicates, batch.dead_lettered as i64, late, batch.max_event_ms, batch.cut_at_ms],
    )?;
    tx.prepare_cached(
        "DELETE FROM seen_event_batches WHERE topic = ?1 AND partition = ?2 AND last_offset <= ?3",
    )?
    .execute(params![
        batch.topic,
        batch.partition,
        batch.last_offset.saturating_sub(batch.dedup_horizon_events)
    ])?;
    Ok(CommitOutcome::Applied {
        folded: folded as u64,
        duplicates: duplicates as u64,
        late: late as u64,
    })
}

/// Writes a batch's changed partials whole: the worker merged them already.
fn write_partials(
    tx: &Transaction<'_>,
    pipeline: &str,
    partition: i32,
    changes: &[PartialChange],
) -> rusqlite::Result<()> {
    let mut delete = tx.prepare_cached(
        "DELETE FROM aggregate_partials WHERE pipeline = ?1 AND aggregate = ?2 AND window_start = ?3
         AND window_end = ?4 AND group_key = ?5 AND partition = ?6",
    )?;
    let mut write = tx.prepare_cached(
        // An upsert rewrites the row's state in place; `OR REPLACE` would delete and insert
        // the row in the table and each of its three indexes.
        "INSERT INTO aggregate_partials (pipeline, aggregate, window_start, window_end, group_key, partition, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (pipeline, aggregate, window_start, window_end, group_key, partition) DO UPDATE SET state = excluded.state",
    )?;
    for change in changes {
        match change {
            PartialChange::Delete {
                aggregate,
                window,
                group,
            } => {
                delete.execute(params![
                    pipeline,
                    aggregate,
                    window.start_ms,
                    window.end_ms,
                    group,
                    partition
                ])?;
            }
            PartialChange::Upsert(partial) => {
                let json = serde_json::to_string(&partial.state).map_err(corrupt)?;
                write.execute(params![
                    pipeline,
                    partial.aggregate,
                    partial.window.start_ms,
                    partial.window.end_ms,
                    partial.group,
                    partition,
                    json
                ])?;
            }
        }
    }
    Ok(())
}

/// What a partition's new owner reads back (see [`FoldStore::snapshot`]).
fn partition_snapshot(
    tx: &Transaction<'_>,
    topic: &str,
    partition: i32,
    horizon: i64,
    pipeline: Option<&Pipeline>,
) -> rusqlite::Result<PartitionSnapshot> {
    let progress = stored_progress(tx, topic, partition)?;
    let mut seen = Vec::new();
    if let Some(last) = progress.last_offset {
        let mut rows = tx.prepare_cached(
            "SELECT last_offset, ids FROM seen_event_batches WHERE topic = ?1 AND partition = ?2 AND last_offset > ?3
             ORDER BY last_offset",
        )?;
        let rows = rows.query_map(
            params![topic, partition, last.saturating_sub(horizon)],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    decode_hashes(&row.get::<_, Vec<u8>>(1)?),
                ))
            },
        )?;
        for row in rows {
            seen.push(row?);
        }
    }
    let mut partials = Vec::new();
    if let Some(pipeline) = pipeline {
        let after = pipeline
            .earliest_on_time(progress.max_event_ms)
            .unwrap_or(i64::MIN);
        let mut rows = tx.prepare_cached(
            "SELECT aggregate, window_start, window_end, group_key, state FROM aggregate_partials
             WHERE pipeline = ?1 AND partition = ?2 AND window_end > ?3",
        )?;
        let rows = rows.query_map(params![pipeline.name, partition, after], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (aggregate, start_ms, end_ms, group, state) = row?;
            partials.push(Partial {
                aggregate,
                window: Window { start_ms, end_ms },
                group,
                state: serde_json::from_str(&state).map_err(corrupt)?,
            });
        }
    }
    Ok(PartitionSnapshot {
        progress,
        seen,
        partials,
    })
}

/// Merges a batch's projection deltas into pipeline `name`'s read models.
fn project(tx: &Transaction<'_>, name: &str, deltas: &ProjectionDeltas) -> rusqlite::Result<()> {
    if !deltas.users.is_empty() {
        let mut user = tx.prepare_cached(
            "INSERT INTO user_profiles (pipeline, user_id, first_seen_ms, last_seen_ms, events, total_value, current_session)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (pipeline, user_id) DO UPDATE SET
               first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),
               last_seen_ms = max(last_seen_ms, excluded.last_seen_ms),
               events = events + excluded.events,
               total_value = total_value + excluded.total_value,
               current_session = CASE WHEN excluded.last_seen_ms >= last_seen_ms THEN excluded.current_session ELSE current_session END",
        )?;
        for (id, u) in &deltas.users {
            user.execute(params![
                name, id, u.first_ms, u.last_ms, u.events, u.value, u.session
            ])?;
        }
    }
    if !deltas.items.is_empty() {
        let mut item = tx.prepare_cached(
            "INSERT INTO item_profiles (pipeline, item_id, views, clicks, add_to_carts, purchases)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (pipeline, item_id) DO UPDATE SET
               views = views + excluded.views, clicks = clicks + excluded.clicks,
               add_to_carts = add_to_carts + excluded.add_to_carts, purchases = purchases + excluded.purchases",
        )?;
        for (id, [views, clicks, carts, purchases]) in &deltas.items {
            item.execute(params![name, id, views, clicks, carts, purchases])?;
        }
    }
    if !deltas.sessions.is_empty() {
        let mut session = tx.prepare_cached(
            "INSERT INTO session_profiles (pipeline, session_id, user_id, start_ms, end_ms, events, converted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (pipeline, session_id) DO UPDATE SET
               start_ms = min(start_ms, excluded.start_ms), end_ms = max(end_ms, excluded.end_ms),
               events = events + excluded.events, converted = max(converted, excluded.converted)",
        )?;
        for (id, d) in &deltas.sessions {
            session.execute(params![
                name,
                id,
                d.user,
                d.start_ms,
                d.end_ms,
                d.events,
                i64::from(d.converted)
            ])?;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl FoldStore for SqliteStore {
    async fn progress(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<PartitionProgress, FoldStoreError> {
        let topic = topic.to_owned();
        self.with(move |c| {
            let tx = c.transaction()?;
            stored_progress(&tx, &topic, partition)
        })
        .await
        .map_err(|e| FoldStoreError(Box::new(e)))
    }

    async fn snapshot(
        &self,
        topic: &str,
        partition: i32,
        horizon: i64,
        pipeline: Option<Arc<Pipeline>>,
    ) -> Result<PartitionSnapshot, FoldStoreError> {
        let topic = topic.to_owned();
        self.with(move |c| {
            let tx = c.transaction()?;
            partition_snapshot(&tx, &topic, partition, horizon, pipeline.as_deref())
        })
        .await
        .map_err(|e| FoldStoreError(Box::new(e)))
    }

    async fn commit(
        &self,
        batches: Arc<Vec<FoldBatch>>,
    ) -> Result<Vec<CommitOutcome>, FoldStoreError> {
        let checkpoints = self.checkpoints.clone();
        self.with(move |c| {
            let tx = c.transaction()?;
            let outcomes = batches
                .iter()
                .map(|batch| apply_batch(&tx, batch))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.commit()?;
            checkpoints.after_commit();
            Ok(outcomes)
        })
        .await
        .map_err(|e| FoldStoreError(Box::new(e)))
    }
}

#[async_trait::async_trait]
impl ReadStore for SqliteStore {
    fn identity(&self) -> Result<String, StoreError> {
        Ok(format!("sqlite:{}", self.path))
    }

    async fn partitions(&self) -> Result<Vec<PartitionStatus>, StoreError> {
        SqliteStore::partitions(self).await
    }

    async fn user_event_counts(
        &self,
        user_id: &str,
    ) -> Result<BTreeMap<EventType, u64>, StoreError> {
        SqliteStore::user_event_counts(self, user_id).await
    }

    async fn all_user_event_counts(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<EventType, u64>>, StoreError> {
        SqliteStore::all_user_event_counts(self).await
    }

    async fn aggregate_rows_merging(
        &self,
        pipeline: &str,
        aggregate: &str,
        from_ms: i64,
        to_ms: i64,
        sessions: bool,
    ) -> Result<Vec<AggregateRow>, StoreError> {
        SqliteStore::aggregate_rows_merging(self, pipeline, aggregate, from_ms, to_ms, sessions)
            .await
    }

    async fn user_profile(
        &self,
        pipeline: &str,
        user_id: &str,
    ) -> Result<Option<UserProfile>, StoreError> {
        SqliteStore::user_profile(self, pipeline, user_id).await
    }

    async fn item_profiles(&self, pipeline: &str) -> Result<Vec<ItemProfile>, StoreError> {
        SqliteStore::item_profiles(self, pipeline).await
    }

    async fn session_profiles(&self, pipeline: &str) -> Result<Vec<SessionProfile>, StoreError> {
        SqliteStore::session_profiles(self, pipeline).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counts_table_has_a_column_per_event_type_in_its_order() {
        let folder = tempfile::tempdir().unwrap();
        let _store = SqliteStore::open(&folder.path().join("s.db")).unwrap();
        let connection = Connection::open(folder.path().join("s.db")).unwrap();
        let mut statement = connection
            .prepare("SELECT name FROM pragma_table_info('user_event_counts') ORDER BY cid")
            .unwrap();
        let columns: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut expected = vec!["user_id".to_owned()];
        expected.extend(EventType::ALL.iter().map(|t| t.as_str().to_owned()));
        assert_eq!(columns, expected);
    }

    #[tokio::test]
    async fn a_store_of_the_previous_version_keeps_its_event_counts() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("old.db");
        {
            let connection = Connection::open(&path).unwrap();
            let previous = MIGRATIONS.len() - 1;
            for migration in &MIGRATIONS[..previous] {
                connection.execute_batch(migration).unwrap();
            }
            connection
                .pragma_update(None, "user_version", previous as i64)
                .unwrap();
            connection
                .execute_batch(
                    "INSERT INTO user_event_counts (user_id, event_type, count) VALUES
                        ('u1', 'page_view', 3), ('u1', 'click', 2), ('u1', 'unknown', 1),
                        ('u1', 'a_later_type', 4), ('u2', 'purchase', 7);",
                )
                .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let u1 = BTreeMap::from([
            (EventType::Unknown, 5),
            (EventType::PageView, 3),
            (EventType::Click, 2),
        ]);
        let u2 = BTreeMap::from([(EventType::Purchase, 7)]);
        assert_eq!(store.user_event_counts("u1").await.unwrap(), u1);
        assert_eq!(
            store.user_event_counts("nobody").await.unwrap(),
            BTreeMap::new()
        );
        assert_eq!(
            store.all_user_event_counts().await.unwrap(),
            BTreeMap::from([("u1".to_owned(), u1), ("u2".to_owned(), u2)])
        );
    }
}
