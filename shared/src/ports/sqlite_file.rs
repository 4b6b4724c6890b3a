//! The one SQLite file (`<data_dir>/plexe.db`) behind the embedded store and queue.
//!
//! `plexe serve` and `plexe admin` may open it from two processes at once, so every connection
//! uses WAL (readers never block the writer) and a busy timeout (a writer waits for the other
//! process's write instead of failing at once). Writes that read first use `BEGIN IMMEDIATE` so
//! the busy timeout applies to them too (a deferred read-then-write transaction fails with
//! `SQLITE_BUSY` without waiting).

use rusqlite::{Connection, ErrorCode};
use std::path::Path;
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

/// A connection shared by one adapter's calls, owned by a thread of its own that runs them one
/// after another, so SQLite's file I/O and busy waits never stall the async runtime. One
/// thread per connection, kept busy while calls queue: running each call on tokio's blocking
/// pool instead parked a thread per concurrent request on the connection's lock (a hundred
/// under load, each with its own allocator arena; the process's memory crept up with them),
/// and a lock taken before the hop made every call wait for a thread to wake. The queue holds
/// at most one call per caller awaiting its answer, so it is bounded by the server's connection
/// cap and its few background workers.
#[derive(Clone)]
pub struct SharedConnection {
    calls: std::sync::mpsc::Sender<Call>,
}

type Call = Box<dyn FnOnce(&mut Connection) + Send>;

/// Why a blocking SQLite call did not return a result.
#[derive(Debug)]
pub enum CallError {
    Sqlite(rusqlite::Error),
    /// The call panicked, or the connection's thread is gone.
    Broken(String),
}

impl From<rusqlite::Error> for CallError {
    fn from(err: rusqlite::Error) -> Self {
        CallError::Sqlite(err)
    }
}

impl SharedConnection {
    /// Moves `conn` to its own thread (named `sqlite`), which ends, closing the connection,
    /// when the last clone of this handle is dropped.
    pub fn new(mut conn: Connection) -> Self {
        let (calls, queue) = std::sync::mpsc::channel::<Call>();
        let spawned = std::thread::Builder::new()
            .name("sqlite".into())
            .spawn(move || {
                while let Ok(call) = queue.recv() {
                    // A panicking call loses its own answer (its caller sees `Broken`), not
                    // the connection.
                    let _ =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(&mut conn)));
                }
            });
        if let Err(e) = spawned {
            // Calls then fail with `Broken`, saying why, instead of the process aborting.
            tracing::error!(error = %e, "could not start the sqlite thread");
        }
        SharedConnection { calls }
    }

    /// Runs `f` with the connection on its thread, after the calls queued before it.
    pub async fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<CallError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let call: Call = Box::new(move |conn| {
            let _ = answer.send(f(conn));
        });
        if self.calls.send(call).is_err() {
            return Err(E::from(CallError::Broken(
                "the sqlite thread is not running".into(),
            )));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(E::from(CallError::Broken("a sqlite call panicked".into()))))
    }
}
