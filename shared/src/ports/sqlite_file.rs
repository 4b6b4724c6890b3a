//! The one SQLite file (`<data_dir>/plexe.db`) behind the embedded store and queue.
//!
//! `plexe serve` and `plexe admin` may open it from two processes at once, so every connection
//! uses WAL (readers never block the writer) and a busy timeout (a writer waits for the other
//! process's write instead of failing at once). Writes that read first use `BEGIN IMMEDIATE` so
//! the busy timeout applies to them too (a deferred read-then-write transaction fails with
//! `SQLITE_BUSY` without waiting).

use rusqlite::{Connection, ErrorCode};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a writer waits for another connection's write before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if needed) the SQLite file with the settings above.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // journal_mode returns a row, so it is queried rather than executed.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    // NORMAL is durable across process crashes in WAL mode (only an OS crash may lose the
    // last transactions), and much faster than FULL.
    conn.execute_batch("PRAGMA synchronous = NORMAL;")?;
    Ok(conn)
}

/// Whether the error means "another writer holds the file" (retryable, not a bug).
pub fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// A connection shared by one adapter's calls. Calls run on tokio's blocking pool so SQLite's
/// file I/O and busy waits never stall the async runtime.
#[derive(Clone)]
pub struct SharedConnection {
    conn: Arc<Mutex<Connection>>,
}

/// Why a blocking SQLite call did not return a result.
#[derive(Debug)]
pub enum CallError {
    Sqlite(rusqlite::Error),
    /// The blocking task panicked or the lock was poisoned by an earlier panic.
    Broken(String),
}

impl From<rusqlite::Error> for CallError {
    fn from(err: rusqlite::Error) -> Self {
        CallError::Sqlite(err)
    }
}

impl SharedConnection {
    pub fn new(conn: Connection) -> Self {
        SharedConnection {
            conn: Arc::new(Mutex::new(conn)),
        }
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<CallError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let joined = tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| {
                E::from(CallError::Broken("sqlite connection lock poisoned".into()))
            })?;
            f(&mut guard)
        })
        .await;
        match joined {
            Ok(result) => result,
            Err(join) => Err(E::from(CallError::Broken(format!(
                "sqlite task failed: {join}"
            )))),
        }
    }
}
