//! The read store on PostgreSQL, for several workers and query replicas: the same tables as
//! the embedded store, migrations applied on open (one transaction each, serialised by an
//! advisory lock), one transaction per commit call with every batch fenced on its
//! partition's stored offset under a per-partition advisory lock, so two workers never both
//! apply a batch from the same offset.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use futures::future::try_join_all;
use tokio_postgres::{IsolationLevel, NoTls};

use crate::contracts::EventType;
use crate::pipeline::{AggregateState, Partial, PartialChange, Pipeline, Window};
use crate::store::read::merge_partials;
use crate::store::{
    AggregateRow, ItemProfile, PartitionStatus, ReadStore, SessionProfile, StoreError, UserProfile,
};
use crate::worker::{
    decode_hashes, encode_hashes, CommitOutcome, FoldBatch, FoldStore, FoldStoreError,
    PartitionProgress, PartitionSnapshot, ProjectionDeltas,
};

/// Connections a store instance keeps open at most.
const POOL_SIZE: usize = 8;

/// The advisory lock key migrations hold (one bigint; fences use the two-int form).
const MIGRATION_LOCK: i64 = 0x6576_656e_7466_6f6c;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE partition_progress (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    last_offset BIGINT NOT NULL,
    read BIGINT NOT NULL DEFAULT 0,
    folded BIGINT NOT NULL DEFAULT 0,
    duplicates BIGINT NOT NULL DEFAULT 0,
    dead_lettered BIGINT NOT NULL DEFAULT 0,
    late BIGINT NOT NULL DEFAULT 0,
    max_event_ms BIGINT,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE seen_event_batches (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    last_offset BIGINT NOT NULL,
    ids BYTEA NOT NULL,
    PRIMARY KEY (topic, partition, last_offset)
);
CREATE TABLE user_event_counts (
    user_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (user_id, event_type)
);
CREATE TABLE aggregate_partials (
    pipeline TEXT NOT NULL,
    aggregate TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end BIGINT NOT NULL,
    group_key TEXT NOT NULL,
    partition INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (pipeline, aggregate, window_start, window_end, group_key, partition)
);
CREATE INDEX aggregate_partials_by_end ON aggregate_partials (pipeline, partition, window_end);
CREATE TABLE user_profiles (
    pipeline TEXT NOT NULL,
    user_id TEXT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    events BIGINT NOT NULL,
    total_value DOUBLE PRECISION NOT NULL,
    current_session TEXT NOT NULL,
    PRIMARY KEY (pipeline, user_id)
);
CREATE TABLE item_profiles (
    pipeline TEXT NOT NULL,
    item_id TEXT NOT NULL,
    views BIGINT NOT NULL,
    clicks BIGINT NOT NULL,
    add_to_carts BIGINT NOT NULL,
    purchases BIGINT NOT NULL,
    PRIMARY KEY (pipeline, item_id)
);
CREATE TABLE session_profiles (
    pipeline TEXT NOT NULL,
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    events BIGINT NOT NULL,
    converted BOOLEAN NOT NULL,
    PRIMARY KEY (pipeline, session_id)
);
"#,
    r#"
ALTER TABLE partition_progress ADD COLUMN updated_at_ms BIGINT;
"#,
];

/// Why an operation failed, before the store names itself.
enum Failure {
    Postgres(tokio_postgres::Error),
    Pool(deadpool_postgres::PoolError),
    Corrupt(String),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Self {
        Failure::Postgres(error)
    }
}

impl From<deadpool_postgres::PoolError> for Failure {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Failure::Pool(error)
    }
}

fn corrupt(error: impl std::fmt::Display) -> Failure {
    Failure::Corrupt(error.to_string())
}

/// The PostgreSQL read store (cheap to clone: a connection pool).
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    label: Arc<str>,
}

impl PostgresStore {
    /// Connects to `url` (a `postgres://` URL), creates `schema` if given (and uses it for
    /// every table), and applies the migrations.
    pub async fn open(url: &str, schema: Option<&str>) -> Result<PostgresStore, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Settings(format!("store.url is not a PostgreSQL URL: {e}")))?;
        if let Some(schema) = schema {
            if schema.is_empty()
                || !schema
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(StoreError::Settings(format!(
                    "store.schema '{schema}' must be lower-case letters, digits and '_'"
                )));
            }
            config.options(format!("-c search_path={schema}"));
        }
        let label: Arc<str> = describe(&config, schema).into();
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Settings(format!("PostgreSQL pool for {label}: {e}")))?;
        let store = PostgresStore { pool, label };
        store
            .migrate(schema)
            .await
            .map_err(store.fail("applying migrations"))?;
        Ok(store)
    }

    fn fail(&self, doing: &'static str) -> impl Fn(Failure) -> StoreError + '_ {
        move |failure| match failure {
            Failure::Postgres(source) => StoreError::Postgres {
                url: self.label.to_string(),
                doing,
                source,
            },
            Failure::Pool(source) => StoreError::Pool {
                url: self.label.to_string(),
                source,
            },
            Failure::Corrupt(message) => StoreError::Corrupt(message),
        }
    }

    async fn migrate(&self, schema: Option<&str>) -> Result<(), Failure> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        if let Some(schema) = schema {
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
        }
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .await?;
        tx.commit().await?;
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            let version = index as i64 + 1;
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            let applied = tx
                .query_opt(
                    "SELECT 1 FROM schema_migrations WHERE version = $1",
                    &[&version],
                )
                .await?
                .is_some();
            if !applied {
                tx.batch_execute(migration).await?;
                tx.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[&version],
                )
                .await?;
                tracing::info!(store = %self.label, version, "Store migration applied.");
            }
            tx.commit().await?;
        }
        Ok(())
    }
}

/// The server, database and schema of `config`, without the password.
fn describe(config: &tokio_postgres::Config, schema: Option<&str>) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!(
        "postgres://{}@{}/{} (schema {})",
        config.get_user().unwrap_or(""),
        hosts.join(","),
        config.get_dbname().unwrap_or(""),
        schema.unwrap_or("public")
    )
}

async fn stored_progress(
    tx: &Transaction<'_>,
    topic: &str,
    partition: i32,
) -> Result<PartitionProgress, Failure> {
    let statement = tx
        .prepare_cached(
            "SELECT last_offset, max_event_ms FROM partition_progress WHERE topic = $1 AND partition = $2",
        )
        .await?;
    Ok(tx
        .query_opt(&statement, &[&topic, &partition])
        .await?
        .map(|row| PartitionProgress {
            last_offset: row.get(0),
            max_event_ms: row.get(1),
        })
        .unwrap_or_default())
}

async fn apply_batch(tx: &Transaction<'_>, batch: &FoldBatch) -> Result<CommitOutcome, Failure> {
    let stored = stored_progress(tx, &batch.topic, batch.partition).await?;
    if stored.last_offset != batch.previous_offset {
        return Ok(CommitOutcome::Fenced { stored });
    }
    if !batch.seen.is_empty() {
        let statement = tx
            .prepare_cached(
                "INSERT INTO seen_event_batches (topic, partition, last_offset, ids) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (topic, partition, last_offset) DO UPDATE SET ids = excluded.ids",
            )
            .await?;
        tx.execute(
            &statement,
            &[
                &batch.topic,
                &batch.partition,
                &batch.last_offset,
                &encode_hashes(&batch.seen),
            ],
        )
        .await?;
    }
    let count = tx
        .prepare_cached(
            "INSERT INTO user_event_counts (user_id, event_type, count) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, event_type) DO UPDATE SET count = user_event_counts.count + excluded.count",
        )
        .await?;
    let projections = batch.projections();
    let rows = projections.event_counts.iter().flat_map(|(user, by_type)| {
        EventType::ALL
            .into_iter()
            .zip(by_type)
            .filter(|(_, n)| **n > 0)
            .map(move |(kind, n)| (user, kind.as_str(), n))
    });
    try_join_all(rows.map(|(user, kind, n)| {
        let count = &count;
        async move { tx.execute(count, &[user, &kind, n]).await }
    }))
    .await?;
    if let Some(pipeline) = &batch.pipeline {
        write_partials(tx, &pipeline.name, batch.partition, &batch.partials).await?;
        project(tx, &pipeline.name, &projections).await?;
    }
    let late = batch.events.iter().filter(|e| e.late()).count() as i64;
    let folded = batch.events.len() as i64 - late;
    let read = batch.records() as i64;
    let duplicates = batch.duplicates as i64;
    let dead_lettered = batch.dead_lettered as i64;
    let progress = tx
        .prepare_cached(
            "INSERT INTO partition_progress AS p (topic, partition, last_offset, read, folded, duplicates, dead_lettered, late, max_event_ms, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (topic, partition) DO UPDATE SET
               last_offset = excluded.last_offset,
               read = p.read + excluded.read,
               folded = p.folded + excluded.folded,
               duplicates = p.duplicates + excluded.duplicates,
               dead_lettered = p.dead_lettered + excluded.dead_lettered,
               late = p.late + excluded.late,
               max_event_ms = excluded.max_event_ms,
               updated_at_ms = excluded.updated_at_ms",
        )
        .await?;
    tx.execute(
        &progress,
        &[
            &batch.topic,
            &batch.partition,
            &batch.last_offset,
            &read,
            &folded,
            &duplicates,
            &dead_lettered,
            &late,
            &batch.max_event_ms,
            &batch.cut_at_ms,
        ],
    )
    .await?;
    let forget = tx
        .prepare_cached(
            "DELETE FROM seen_event_batches WHERE topic = $1 AND partition = $2 AND last_offset <= $3",
        )
        .await?;
    tx.execute(
        &forget,
        &[
            &batch.topic,
            &batch.partition,
            &batch.last_offset.saturating_sub(batch.dedup_horizon_events),
        ],
    )
    .await?;
    Ok(CommitOutcome::Applied {
        folded: folded as u64,
        duplicates: duplicates as u64,
        late: late as u64,
    })
}

/// Writes a batch's changed partials whole: the worker merged them already.
async fn write_partials(
    tx: &Transaction<'_>,
    pipeline: &str,
    partition: i32,
    changes: &[PartialChange],
) -> Result<(), Failure> {
    let delete = tx
        .prepare_cached(
            "DELETE FROM aggregate_partials WHERE pipeline = $1 AND aggregate = $2 AND window_start = $3
             AND window_end = $4 AND group_key = $5 AND partition = $6",
        )
        .await?;
    let write = tx
        .prepare_cached(
            "INSERT INTO aggregate_partials (pipeline, aggregate, window_start, window_end, group_key, partition, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (pipeline, aggregate, window_start, window_end, group_key, partition)
             DO UPDATE SET state = excluded.state",
        )
        .await?;
    let states = changes
        .iter()
        .map(|change| match change {
            PartialChange::Delete { .. } => Ok(None),
            PartialChange::Upsert(partial) => serde_json::to_string(&partial.state).map(Some),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(corrupt)?;
    try_join_all(changes.iter().zip(&states).map(|(change, state)| {
        let (delete, write) = (&delete, &write);
        async move {
            match (change, state) {
                (
                    PartialChange::Delete {
                        aggregate,
                        window,
                        group,
                    },
                    _,
                ) => {
                    tx.execute(
                        delete,
                        &[
                            &pipeline,
                            aggregate,
                            &window.start_ms,
                            &window.end_ms,
                            group,
                            &partition,
                        ],
                    )
                    .await
                }
                (PartialChange::Upsert(partial), state) => {
                    tx.execute(
                        write,
                        &[
                            &pipeline,
                            &partial.aggregate,
                            &partial.window.start_ms,
                            &partial.window.end_ms,
                            &partial.group,
                            &partition,
                            state,
                        ],
                    )
                    .await
                }
            }
        }
    }))
    .await?;
    Ok(())
}

/// Merges a batch's projection deltas into pipeline `name`'s read models.
async fn project(
    tx: &Transaction<'_>,
    name: &str,
    deltas: &ProjectionDeltas,
) -> Result<(), Failure> {
    // The `ToSql` value is the `&str` itself: the parameters below borrow it.
    let name = &name;
    if !deltas.users.is_empty() {
        let user = tx
            .prepare_cached(
                "INSERT INTO user_profiles AS u (pipeline, user_id, first_seen_ms, last_seen_ms, events, total_value, current_session)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (pipeline, user_id) DO UPDATE SET
                   first_seen_ms = LEAST(u.first_seen_ms, excluded.first_seen_ms),
                   last_seen_ms = GREATEST(u.last_seen_ms, excluded.last_seen_ms),
                   events = u.events + excluded.events,
                   total_value = u.total_value + excluded.total_value,
                   current_session = CASE WHEN excluded.last_seen_ms >= u.last_seen_ms
                     THEN excluded.current_session ELSE u.current_session END",
            )
            .await?;
        try_join_all(deltas.users.iter().map(|(id, d)| {
            let user = &user;
            async move {
                tx.execute(
                    user,
                    &[
                        name,
                        id,
                        &d.first_ms,
                        &d.last_ms,
                        &d.events,
                        &d.value,
                        &d.session,
                    ],
                )
                .await
            }
        }))
        .await?;
    }
    if !deltas.items.is_empty() {
        let item = tx
            .prepare_cached(
                "INSERT INTO item_profiles AS i (pipeline, item_id, views, clicks, add_to_carts, purchases)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (pipeline, item_id) DO UPDATE SET
                   views = i.views + excluded.views, clicks = i.clicks + excluded.clicks,
                   add_to_carts = i.add_to_carts + excluded.add_to_carts,
                   purchases = i.purchases + excluded.purchases",
            )
            .await?;
        try_join_all(
            deltas
                .items
                .iter()
                .map(|(id, [views, clicks, carts, purchases])| {
                    let item = &item;
                    async move {
                        tx.execute(item, &[name, id, views, clicks, carts, purchases])
                            .await
                    }
                }),
        )
        .await?;
    }
    if !deltas.sessions.is_empty() {
        let session = tx
            .prepare_cached(
                "INSERT INTO session_profiles AS s (pipeline, session_id, user_id, start_ms, end_ms, events, converted)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (pipeline, session_id) DO UPDATE SET
                   start_ms = LEAST(s.start_ms, excluded.start_ms),
                   end_ms = GREATEST(s.end_ms, excluded.end_ms),
                   events = s.events + excluded.events,
                   converted = s.converted OR excluded.converted",
            )
            .await?;
        try_join_all(deltas.sessions.iter().map(|(id, d)| {
            let session = &session;
            async move {
                tx.execute(
                    session,
                    &[
                        name,
                        id,
                        &d.user,
                        &d.start_ms,
                        &d.end_ms,
                        &d.events,
                        &d.converted,
                    ],
                )
                .await
            }
        }))
        .await?;
    }
    Ok(())
}

/// What a partition's new owner reads back (see [`FoldStore::snapshot`]).
async fn partition_snapshot(
    tx: &Transaction<'_>,
    topic: &str,
    partition: i32,
    horizon: i64,
    pipeline: Option<&Pipeline>,
) -> Result<PartitionSnapshot, Failure> {
    let progress = stored_progress(tx, topic, partition).await?;
    let mut seen = Vec::new();
    if let Some(last) = progress.last_offset {
        let statement = tx
            .prepare_cached(
                "SELECT last_offset, ids FROM seen_event_batches WHERE topic = $1 AND partition = $2 AND last_offset > $3
                 ORDER BY last_offset",
            )
            .await?;
        for row in tx
            .query(
                &statement,
                &[&topic, &partition, &last.saturating_sub(horizon)],
            )
            .await?
        {
            seen.push((row.get::<_, i64>(0), decode_hashes(row.get::<_, &[u8]>(1))));
        }
    }
    let mut partials = Vec::new();
    if let Some(pipeline) = pipeline {
        let after = pipeline
            .earliest_on_time(progress.max_event_ms)
            .unwrap_or(i64::MIN);
        let statement = tx
            .prepare_cached(
                "SELECT aggregate, window_start, window_end, group_key, state FROM aggregate_partials
                 WHERE pipeline = $1 AND partition = $2 AND window_end > $3",
            )
            .await?;
        for row in tx
            .query(&statement, &[&pipeline.name, &partition, &after])
            .await?
        {
            partials.push(Partial {
                aggregate: row.get(0),
                window: Window {
                    start_ms: row.get(1),
                    end_ms: row.get(2),
                },
                group: row.get(3),
                state: serde_json::from_str(row.get::<_, &str>(4)).map_err(corrupt)?,
            });
        }
    }
    Ok(PartitionSnapshot {
        progress,
        seen,
        partials,
    })
}

fn fold_error(error: StoreError) -> FoldStoreError {
    FoldStoreError(Box::new(error))
}

#[async_trait::async_trait]
impl FoldStore for PostgresStore {
    async fn progress(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<PartitionProgress, FoldStoreError> {
        async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let progress = stored_progress(&tx, topic, partition).await?;
            tx.commit().await?;
            Ok(progress)
        }
        .await
        .map_err(self.fail("reading progress"))
        .map_err(fold_error)
    }

    async fn snapshot(
        &self,
        topic: &str,
        partition: i32,
        horizon: i64,
        pipeline: Option<Arc<Pipeline>>,
    ) -> Result<PartitionSnapshot, FoldStoreError> {
        async {
            let mut client = self.pool.get().await?;
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let snapshot =
                partition_snapshot(&tx, topic, partition, horizon, pipeline.as_deref()).await?;
            tx.commit().await?;
            Ok(snapshot)
        }
        .await
        .map_err(self.fail("reading a partition snapshot"))
        .map_err(fold_error)
    }

    async fn commit(
        &self,
        batches: Arc<Vec<FoldBatch>>,
    ) -> Result<Vec<CommitOutcome>, FoldStoreError> {
        async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            // One lock per partition, taken in order: commits of the same partition
            // serialise, and two commits never wait on each other crosswise.
            let mut partitions: Vec<(&str, i32)> = batches
                .iter()
                .map(|b| (b.topic.as_str(), b.partition))
                .collect();
            partitions.sort_unstable();
            partitions.dedup();
            let lock = tx
                .prepare_cached("SELECT pg_advisory_xact_lock(hashtext($1), $2)")
                .await?;
            for (topic, partition) in partitions {
                tx.execute(&lock, &[&topic, &partition]).await?;
            }
            let mut outcomes = Vec::with_capacity(batches.len());
            for batch in batches.iter() {
                outcomes.push(apply_batch(&tx, batch).await?);
            }
            tx.commit().await?;
            Ok(outcomes)
        }
        .await
        .map_err(self.fail("committing batches"))
        .map_err(fold_error)
    }
}

impl PostgresStore {
    async fn rows(
        &self,
        doing: &'static str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        async {
            let client = self.pool.get().await?;
            let statement = client.prepare_cached(sql).await?;
            Ok(client.query(&statement, params).await?)
        }
        .await
        .map_err(self.fail(doing))
    }
}

fn event_type(symbol: &str) -> EventType {
    EventType::from_symbol(symbol).unwrap_or(EventType::Unknown)
}

#[async_trait::async_trait]
impl ReadStore for PostgresStore {
    fn identity(&self) -> Result<String, StoreError> {
        Ok(format!("postgres:{}", self.label))
    }

    async fn partitions(&self) -> Result<Vec<PartitionStatus>, StoreError> {
        let rows = self
            .rows(
                "listing partitions",
                "SELECT topic, partition, last_offset, read, folded, duplicates, dead_lettered, late, max_event_ms, updated_at_ms
                 FROM partition_progress ORDER BY topic, partition",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| PartitionStatus {
                topic: row.get(0),
                partition: row.get(1),
                last_offset: row.get(2),
                read: row.get::<_, i64>(3) as u64,
                folded: row.get::<_, i64>(4) as u64,
                duplicates: row.get::<_, i64>(5) as u64,
                dead_lettered: row.get::<_, i64>(6) as u64,
                late: row.get::<_, i64>(7) as u64,
                max_event_ms: row.get(8),
                updated_at_ms: row.get(9),
            })
            .collect())
    }

    async fn user_event_counts(
        &self,
        user_id: &str,
    ) -> Result<BTreeMap<EventType, u64>, StoreError> {
        let rows = self
            .rows(
                "reading event counts",
                "SELECT event_type, count FROM user_event_counts WHERE user_id = $1",
                &[&user_id],
            )
            .await?;
        let mut counts = BTreeMap::new();
        for row in rows {
            *counts.entry(event_type(row.get(0))).or_insert(0) += row.get::<_, i64>(1) as u64;
        }
        Ok(counts)
    }

    async fn all_user_event_counts(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<EventType, u64>>, StoreError> {
        let rows = self
            .rows(
                "reading event counts",
                "SELECT user_id, event_type, count FROM user_event_counts",
                &[],
            )
            .await?;
        let mut all: BTreeMap<String, BTreeMap<EventType, u64>> = BTreeMap::new();
        for row in rows {
            *all.entry(row.get(0))
                .or_default()
                .entry(event_type(row.get(1)))
                .or_insert(0) += row.get::<_, i64>(2) as u64;
        }
        Ok(all)
    }

    async fn aggregate_rows_merging(
        &self,
        pipeline: &str,
        aggregate: &str,
        from_ms: i64,
        to_ms: i64,
        sessions: bool,
    ) -> Result<Vec<AggregateRow>, StoreError> {
        let rows = self
            .rows(
                "reading aggregate partials",
                "SELECT window_start, window_end, group_key, state FROM aggregate_partials
                 WHERE pipeline = $1 AND aggregate = $2 AND window_end > $3 AND window_start < $4
                 ORDER BY window_start, group_key",
                &[&pipeline, &aggregate, &from_ms, &to_ms],
            )
            .await?;
        let partials = rows
            .iter()
            .map(|row| {
                serde_json::from_str::<AggregateState>(row.get(3))
                    .map(|state| (row.get(0), row.get(1), row.get(2), state))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        merge_partials(partials, sessions).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    async fn user_profile(
        &self,
        pipeline: &str,
        user_id: &str,
    ) -> Result<Option<UserProfile>, StoreError> {
        let counts = self.user_event_counts(user_id).await?;
        let rows = self
            .rows(
                "reading a user profile",
                "SELECT first_seen_ms, last_seen_ms, events, total_value, current_session FROM user_profiles
                 WHERE pipeline = $1 AND user_id = $2",
                &[&pipeline, &user_id],
            )
            .await?;
        Ok(rows.first().map(|row| UserProfile {
            user_id: user_id.to_owned(),
            first_seen_ms: row.get(0),
            last_seen_ms: row.get(1),
            events: row.get::<_, i64>(2) as u64,
            total_value: row.get(3),
            current_session: row.get(4),
            counts,
        }))
    }

    async fn item_profiles(&self, pipeline: &str) -> Result<Vec<ItemProfile>, StoreError> {
        let rows = self
            .rows(
                "listing item profiles",
                "SELECT item_id, views, clicks, add_to_carts, purchases FROM item_profiles
                 WHERE pipeline = $1 ORDER BY item_id",
                &[&pipeline],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let views = row.get::<_, i64>(1) as u64;
                let purchases = row.get::<_, i64>(4) as u64;
                ItemProfile {
                    item_id: row.get(0),
                    views,
                    clicks: row.get::<_, i64>(2) as u64,
                    add_to_carts: row.get::<_, i64>(3) as u64,
                    purchases,
                    conversion_rate: (views > 0).then(|| purchases as f64 / views as f64),
                }
            })
            .collect())
    }

    async fn session_profiles(&self, pipeline: &str) -> Result<Vec<SessionProfile>, StoreError> {
        let rows = self
            .rows(
                "listing session profiles",
                "SELECT session_id, user_id, start_ms, end_ms, events, converted FROM session_profiles
                 WHERE pipeline = $1 ORDER BY session_id",
                &[&pipeline],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let (start_ms, end_ms): (i64, i64) = (row.get(2), row.get(3));
                SessionProfile {
                    session_id: row.get(0),
                    user_id: row.get(1),
                    start_ms,
                    end_ms,
                    length_ms: end_ms - start_ms,
                    events: row.get::<_, i64>(4) as u64,
                    converted: row.get(5),
                }
            })
            .collect())
    }
}
