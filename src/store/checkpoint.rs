//! Checkpoints an SQLite store's write-ahead log on a connection and thread of its own, so a
//! worker's commit never waits for a checkpoint: copying the log's pages into the database
//! file and syncing it took a commit from ~60 ms to ~300 ms every few batches.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::OnceLock;
use std::time::Duration;

use rusqlite::Connection;

/// At most one checkpoint per this long: each copies every page the commits since the last
/// one wrote, once, however often they rewrote it.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// A store's checkpoints: the thread and its connection start with the first commit, so a
/// store opened only to read starts neither. The thread ends once every clone of its store
/// is dropped.
#[derive(Debug)]
pub struct Checkpoints {
    path: PathBuf,
    /// Wakes the thread; `None` when it could not be started (the writer's own
    /// auto-checkpoint then keeps the log bounded).
    wake: OnceLock<Option<SyncSender<()>>>,
}

impl Checkpoints {
    /// Checkpoints for the database at `path`, started by the first [`Checkpoints::after_commit`].
    pub fn new(path: &Path) -> Checkpoints {
        Checkpoints {
            path: path.to_owned(),
            wake: OnceLock::new(),
        }
    }

    /// Asks for a checkpoint after a commit (within [`CHECKPOINT_EVERY`]); never waits for
    /// one. The first call opens the thread's connection (call it off the async runtime);
    /// if that fails it warns once and is not tried again.
    pub fn after_commit(&self) {
        let wake = self.wake.get_or_init(|| {
            start(&self.path)
                .inspect_err(|error| {
                    tracing::warn!(path = %self.path.display(), %error, "SQLite checkpoints run inside commits instead, only past 100,000 pages of log.");
                })
                .ok()
        });
        if let Some(wake) = wake {
            // Full: a checkpoint is asked for already and will cover this commit too.
            let _ = wake.try_send(());
        }
    }
}

/// Opens a connection to `path` and starts the thread that checkpoints through it.
fn start(path: &Path) -> Result<SyncSender<()>, CheckpointStartError> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    let (wake, woken) = sync_channel(1);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || checkpoint_when_woken(&connection, &woken))
        .map_err(CheckpointStartError::Thread)?;
    Ok(wake)
}

/// The checkpoint thread could not be started.
#[derive(Debug, thiserror::Error)]
enum CheckpointStartError {
    /// Its connection could not be opened.
    #[error("cannot open the checkpoint connection: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The thread could not be spawned.
    #[error("cannot start the checkpoint thread: {0}")]
    Thread(std::io::Error),
}

fn checkpoint_when_woken(connection: &Connection, woken: &Receiver<()>) {
    while woken.recv().is_ok() {
        // Commits during the pause are covered by the checkpoint after it.
        std::thread::sleep(CHECKPOINT_EVERY);
        let closing = matches!(woken.try_recv(), Err(TryRecvError::Disconnected));
        // PASSIVE: copies what no reader still needs, never waits for readers or the writer.
        if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "SQLite checkpoint failed; the next commit asks again.");
        }
        if closing {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_copies_the_log_into_the_database_file_after_a_commit() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("store.db");
        let writer = Connection::open(&path).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer
            .execute_batch(
                "CREATE TABLE t (x TEXT);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
                 INSERT INTO t SELECT printf('%0100d', i) FROM n;",
            )
            .unwrap();
        // The rows are in the log only: nothing checkpoints them into the file.
        let file_size = || std::fs::metadata(&path).unwrap().len();
        let before = file_size();
        assert!(before < 200_000, "{before} bytes before any checkpoint");
        let checkpoints = Checkpoints::new(&path);
        assert!(checkpoints.wake.get().is_none(), "started before a commit");
        checkpoints.after_commit();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while file_size() <= before && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            file_size() > 200_000,
            "{} bytes after the checkpoint",
            file_size()
        );
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 2000);
    }

    #[test]
    fn a_thread_that_cannot_start_leaves_checkpoints_to_the_writer() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("no-such-folder").join("store.db");
        let checkpoints = Checkpoints::new(&path);
        checkpoints.after_commit();
        assert!(matches!(checkpoints.wake.get(), Some(None)));
        // Asked again, it neither retries nor fails.
        checkpoints.after_commit();
        assert!(!path.exists());
    }
}
