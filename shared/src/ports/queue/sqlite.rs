//! The embedded queue: two tables in the SQLite file, so jobs survive a restart. Same semantics
//! as SQS with a redrive policy: a receive hides the message for the visibility timeout and hands
//! out a fresh receipt; a message that would be received more than `max_receives` times goes to
//! the dead-letter table instead.

use super::{Queue, QueueError, QueueMessage, check_receive_batch};
use crate::ports::sqlite_file::{self, CallError, SharedConnection};
use async_trait::async_trait;
use rusqlite::{Connection, TransactionBehavior, params};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queue_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    visible_at_ms INTEGER NOT NULL,
    receipt TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS queue_messages_visible ON queue_messages (visible_at_ms);
CREATE TABLE IF NOT EXISTS queue_dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    dead_at_ms INTEGER NOT NULL
);
";

/// How often a waiting receive looks again for messages sent by another process (sends from
/// this process wake it at once).
const POLL_INTERVAL: Duration = Duration::from_millis(200);

pub struct SqliteQueue {
    conn: SharedConnection,
    max_receives: u32,
    sent: Arc<Notify>,
}

impl SqliteQueue {
    /// Receives per message before it is dead-lettered, as in the SAM template's redrive policy.
    pub const DEFAULT_MAX_RECEIVES: u32 = 3;

    /// Opens (creating if needed) the queue in the SQLite file at `path`.
    pub fn open(path: &Path, max_receives: u32) -> Result<Self, QueueError> {
        let conn = sqlite_file::open(path)?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteQueue {
            conn: SharedConnection::new(conn),
            max_receives: max_receives.max(1),
            sent: Arc::new(Notify::new()),
        })
    }

    /// Makes every hidden (in-flight) message visible now and returns how many there were.
    /// Called at server start: a job that was running when the process died is picked up again
    /// at once rather than after its visibility timeout.
    pub async fn recover_in_flight(&self) -> Result<u64, QueueError> {
        let recovered = self
            .conn
            .call(|conn| {
                let n = conn.execute(
                    "UPDATE queue_messages SET visible_at_ms = 0 WHERE visible_at_ms > ?1",
                    params![now_ms()],
                )?;
                Ok::<_, QueueError>(n as u64)
            })
            .await?;
        if recovered > 0 {
            self.sent.notify_waiters();
        }
        Ok(recovered)
    }
}

impl From<rusqlite::Error> for QueueError {
    fn from(err: rusqlite::Error) -> Self {
        if sqlite_file::is_busy(&err) {
            QueueError::unavailable(super::super::failed("sqlite busy", err))
        } else {
            QueueError::other(super::super::failed("sqlite", err))
        }
    }
}

impl From<CallError> for QueueError {
    fn from(err: CallError) -> Self {
        match err {
            CallError::Sqlite(e) => e.into(),
            CallError::Broken(msg) => QueueError::other(msg),
        }
    }
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn new_receipt(id: &str) -> String {
    use rand::RngExt as _;
    let nonce: u128 = rand::rng().random();
    format!("{id}.{nonce:032x}")
}

/// Claims up to `max` visible messages in one write transaction, dead-lettering those that have
/// used up their receives.
fn claim(
    conn: &mut Connection,
    max: usize,
    visibility: Duration,
    max_receives: u32,
) -> Result<Vec<QueueMessage>, QueueError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_ms();
    let hidden_until = now.saturating_add(duration_ms(visibility));
    let mut out = Vec::new();
    loop {
        let want = i64::try_from(max - out.len()).unwrap_or(i64::MAX);
        let rows = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, body, receive_count FROM queue_messages
                 WHERE visible_at_ms <= ?1 ORDER BY seq LIMIT ?2",
            )?;
            stmt.query_map(params![now, want], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        if rows.is_empty() {
            break;
        }
        for (id, body, count) in rows {
            let count = u32::try_from(count).unwrap_or(u32::MAX).saturating_add(1);
            if count > max_receives {
                tx.execute(
                    "INSERT INTO queue_dead_letters (id, body, receive_count, dead_at_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![id, body, count - 1, now],
                )?;
                tx.execute("DELETE FROM queue_messages WHERE id = ?1", params![id])?;
                continue;
            }
            let receipt = new_receipt(&id);
            tx.execute(
                "UPDATE queue_messages SET receive_count = ?2, visible_at_ms = ?3, receipt = ?4 WHERE id = ?1",
                params![id, count, hidden_until, receipt],
            )?;
            out.push(QueueMessage {
                id,
                receipt,
                body,
                receive_count: count,
            });
        }
        if out.len() >= max {
            break;
        }
    }
    tx.commit()?;
    Ok(out)
}

#[async_trait]
impl Queue for SqliteQueue {
    #[tracing::instrument(name = "queue.send", level = "debug", skip_all)]
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        let id = crate::ids::new_id("msg");
        let (row_id, body) = (id.clone(), body.to_owned());
        self.conn
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO queue_messages (id, body, visible_at_ms) VALUES (?1, ?2, 0)",
                    params![row_id, body],
                )?;
                Ok::<_, QueueError>(())
            })
            .await?;
        self.sent.notify_waiters();
        Ok(id)
    }

    #[tracing::instrument(name = "queue.receive", level = "debug", skip(self))]
    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<QueueMessage>, QueueError> {
        check_receive_batch(max)?;
        let deadline = Instant::now() + wait;
        let max_receives = self.max_receives;
        loop {
            // Registered before looking, so a send in between still wakes this receive.
            let sent = self.sent.notified();
            let got = self
                .conn
                .call(move |conn| claim(conn, max, visibility, max_receives))
                .await?;
            let now = Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            let nap = POLL_INTERVAL.min(deadline - now);
            tokio::select! {
                _ = sent => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    #[tracing::instrument(name = "queue.ack", level = "debug", skip_all)]
    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        // A stale receipt (the message was received again since) deletes nothing, as the newer
        // receiver now owns the message.
        let receipt = receipt.to_owned();
        self.conn
            .call(move |conn| {
                conn.execute(
                    "DELETE FROM queue_messages WHERE receipt = ?1",
                    params![receipt],
                )?;
                Ok(())
            })
            .await
    }

    #[tracing::instrument(name = "queue.hand_back", level = "debug", skip(self, receipt))]
    async fn hand_back(&self, receipt: &str, after: Duration) -> Result<(), QueueError> {
        let receipt = receipt.to_owned();
        self.conn
            .call(move |conn| {
                conn.execute(
                    "UPDATE queue_messages SET visible_at_ms = ?2 WHERE receipt = ?1",
                    params![receipt, now_ms().saturating_add(duration_ms(after))],
                )?;
                Ok::<_, QueueError>(())
            })
            .await?;
        self.sent.notify_waiters();
        Ok(())
    }

    #[tracing::instrument(name = "queue.dead_letters", level = "debug", skip(self))]
    async fn dead_letters(&self, max: usize) -> Result<Vec<QueueMessage>, QueueError> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        self.conn
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT id, body, receive_count FROM queue_dead_letters ORDER BY seq LIMIT ?1",
                )?;
                let rows = stmt
                    .query_map(params![limit], |r| {
                        let id: String = r.get(0)?;
                        Ok(QueueMessage {
                            receipt: id.clone(),
                            id,
                            body: r.get(1)?,
                            receive_count: u32::try_from(r.get::<_, i64>(2)?).unwrap_or(u32::MAX),
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
    }
}
