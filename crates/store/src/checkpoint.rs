//! Write-ahead log checkpoints of a SQLite file on a thread of their own.
//!
//! SQLite copies the write-ahead log back into the database file
//! (a checkpoint) on the thread of whichever commit pushes the log past
//! `wal_autocheckpoint` pages, so a bulk writer stops writing while it
//! copies. This thread runs a PASSIVE checkpoint (it never waits for, nor
//! blocks, readers or writers) every [`INTERVAL`], so the log is mostly
//! copied back before a commit would have to; the writers' own automatic
//! checkpoint stays as the backstop should this thread fall behind. The
//! thread stops when the store's last clone is dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Time between two checkpoints.
const INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database file at `path`; `None` if the
    /// thread cannot be started (the writers then checkpoint, as always).
    pub(crate) fn start(path: PathBuf) -> Option<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || run(&path, &flag))
            .map_err(|error| tracing::warn!(%error, "no checkpoint thread; writers checkpoint"))
            .ok()?;
        Some(Self { stop, thread: Some(thread) })
    }
}

fn run(path: &Path, stop: &AtomicBool) {
    let connection = match Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) {
        Ok(connection) => connection,
        Err(error) => {
            tracing::warn!(%error, "checkpoint thread cannot open the database; writers checkpoint");
            return;
        }
    };
    while !stop.load(Ordering::Acquire) {
        std::thread::park_timeout(INTERVAL);
        if stop.load(Ordering::Acquire) {
            break;
        }
        // (busy, frames in the log, frames copied back)
        if let Err(error) =
            connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get::<_, i64>(0))
        {
            tracing::debug!(%error, "checkpoint skipped");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
