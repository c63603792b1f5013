//! Blue/green read models: the store path readers and workers are configured with can be a
//! symbolic link to the live database file. A replay builds a new database beside it and
//! then switches the link atomically (a new link renamed over the old one), so readers see
//! either the old version or the new, complete one — never a half-built one. SQLite only:
//! a PostgreSQL store has no blue/green switch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::contracts::EventType;

use super::{
    AggregateRow, ItemProfile, PartitionStatus, ReadStore, SessionProfile, SqliteStore, StoreError,
    UserProfile,
};

/// Points `link` at `target` atomically (POSIX rename of a fresh symlink over `link`).
pub fn switch_link(link: &Path, target: &Path) -> std::io::Result<()> {
    let target = std::fs::canonicalize(target)?;
    let name = link.file_name().and_then(|n| n.to_str()).unwrap_or("store");
    let temporary = link.with_file_name(format!(".{name}.{}", uuid::Uuid::new_v4().simple()));
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, &temporary)?;
    #[cfg(not(unix))]
    std::fs::copy(&target, &temporary).map(|_| ())?;
    std::fs::rename(&temporary, link)
}

/// A store opened through a path that may be switched to another database: every
/// [`FollowingStore::current`] checks where the path points and reopens if it moved.
#[derive(Clone)]
pub struct FollowingStore {
    path: PathBuf,
    open: Arc<RwLock<(PathBuf, SqliteStore)>>,
}

impl FollowingStore {
    /// Opens the database `path` points at.
    pub fn open(path: &Path) -> Result<FollowingStore, StoreError> {
        let store = SqliteStore::open(path)?;
        let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        Ok(FollowingStore {
            path: path.to_owned(),
            open: Arc::new(RwLock::new((target, store))),
        })
    }

    /// The store `path` points at now.
    pub fn current(&self) -> Result<SqliteStore, StoreError> {
        let target = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        {
            let open = self.open.read().unwrap_or_else(|e| e.into_inner());
            if open.0 == target {
                return Ok(open.1.clone());
            }
        }
        let store = SqliteStore::open(&target)?;
        tracing::info!(path = %self.path.display(), target = %target.display(), "Read store switched.");
        *self.open.write().unwrap_or_else(|e| e.into_inner()) = (target, store.clone());
        Ok(store)
    }
}

#[async_trait::async_trait]
impl ReadStore for FollowingStore {
    fn identity(&self) -> Result<String, StoreError> {
        self.current()?.identity()
    }

    async fn partitions(&self) -> Result<Vec<PartitionStatus>, StoreError> {
        self.current()?.partitions().await
    }

    async fn user_event_counts(
        &self,
        user_id: &str,
    ) -> Result<BTreeMap<EventType, u64>, StoreError> {
        self.current()?.user_event_counts(user_id).await
    }

    async fn all_user_event_counts(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<EventType, u64>>, StoreError> {
        self.current()?.all_user_event_counts().await
    }

    async fn aggregate_rows_merging(
        &self,
        pipeline: &str,
        aggregate: &str,
        from_ms: i64,
        to_ms: i64,
        sessions: bool,
    ) -> Result<Vec<AggregateRow>, StoreError> {
        self.current()?
            .aggregate_rows_merging(pipeline, aggregate, from_ms, to_ms, sessions)
            .await
    }

    async fn user_profile(
        &self,
        pipeline: &str,
        user_id: &str,
    ) -> Result<Option<UserProfile>, StoreError> {
        self.current()?.user_profile(pipeline, user_id).await
    }

    async fn item_profiles(&self, pipeline: &str) -> Result<Vec<ItemProfile>, StoreError> {
        self.current()?.item_profiles(pipeline).await
    }

    async fn session_profiles(&self, pipeline: &str) -> Result<Vec<SessionProfile>, StoreError> {
        self.current()?.session_profiles(pipeline).await
    }
}
