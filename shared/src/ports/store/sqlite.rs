//! The embedded store: one `items` table in the SQLite file, conditions checked against the
//! `rev` column inside `BEGIN IMMEDIATE` transactions.

use super::{
    Condition, Item, Page, Store, StoreError, WriteOp, check_limit, decode_cursor, encode_cursor,
    is_live,
};
use crate::ports::sqlite_file::{self, CallError, SharedConnection};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    data TEXT NOT NULL,
    rev INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_by_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;
";

/// Expired items deleted per statement by [`SqliteStore::purge_expired`] (keeps each write
/// transaction short while a server runs).
const PURGE_BATCH: usize = 5_000;

/// Transactions are capped like DynamoDB's so code tested locally also runs on AWS.
const MAX_TRANSACTION_OPS: usize = 25;

pub struct SqliteStore {
    conn: SharedConnection,
}

impl SqliteStore {
    /// Deletes the items whose TTL has passed (DynamoDB's TTL does this on AWS; reads already
    /// skip them): `plexe serve`'s periodic sweep. Returns how many went.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = crate::ids::now_epoch();
        let mut purged = 0u64;
        loop {
            let n = self
                .conn
                .call(move |conn| {
                    Ok::<_, StoreError>(
                        conn.prepare_cached(
                            "DELETE FROM items WHERE (pk, sk) IN (SELECT pk, sk FROM items \
                         WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT ?2)",
                        )?
                        .execute(params![now, PURGE_BATCH as i64])?,
                    )
                })
                .await?;
            purged += n as u64;
            if n < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }

    /// Opens (creating if needed) the store in the SQLite file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = sqlite_file::open(path)?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStore {
            conn: SharedConnection::new(conn),
        })
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        if sqlite_file::is_busy(&err) {
            StoreError::unavailable(super::super::failed("sqlite busy", err))
        } else {
            StoreError::other(super::super::failed("sqlite", err))
        }
    }
}

impl From<CallError> for StoreError {
    fn from(err: CallError) -> Self {
        match err {
            CallError::Sqlite(e) => e.into(),
            CallError::Broken(msg) => StoreError::other(msg),
        }
    }
}

fn now() -> i64 {
    crate::ids::now_epoch()
}

fn to_rev(raw: i64) -> u64 {
    u64::try_from(raw).unwrap_or(0)
}

fn parse_data(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::other(super::super::failed("stored item is not JSON", e)))
}

/// The stored row's `(rev, expires_at)`, expired or not.
fn stored_row(
    conn: &Connection,
    pk: &str,
    sk: &str,
) -> Result<Option<(u64, Option<i64>)>, StoreError> {
    let row = conn
        .prepare_cached("SELECT rev, expires_at FROM items WHERE pk = ?1 AND sk = ?2")?
        .query_row(params![pk, sk], |r| {
            Ok((to_rev(r.get::<_, i64>(0)?), r.get::<_, Option<i64>>(1)?))
        })
        .optional()?;
    Ok(row)
}

fn holds(condition: Condition, row: Option<(u64, Option<i64>)>, now: i64) -> bool {
    let live_rev = row
        .filter(|(_, exp)| is_live(*exp, now))
        .map(|(rev, _)| rev);
    match condition {
        Condition::None => true,
        Condition::Absent => live_rev.is_none(),
        Condition::Exists => live_rev.is_some(),
        Condition::Revision(expected) => live_rev == Some(expected),
    }
}

fn check_in(
    conn: &Connection,
    pk: &str,
    sk: &str,
    condition: Condition,
    now: i64,
) -> Result<Option<(u64, Option<i64>)>, StoreError> {
    let row = stored_row(conn, pk, sk)?;
    if holds(condition, row, now) {
        Ok(row)
    } else {
        Err(StoreError::ConditionFailed)
    }
}

/// Writes `item` if `condition` holds. The new revision continues from the stored row even when
/// it had expired, so a revision is never reused for the same key.
fn put_in(
    conn: &Connection,
    item: &Item,
    condition: Condition,
    now: i64,
) -> Result<u64, StoreError> {
    let row = check_in(conn, &item.pk, &item.sk, condition, now)?;
    let rev = row.map_or(0, |(rev, _)| rev) + 1;
    let data = serde_json::to_string(&item.data)
        .map_err(|e| StoreError::other(super::super::failed("item data not serializable", e)))?;
    conn.prepare_cached(
        "INSERT INTO items (pk, sk, data, rev, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (pk, sk) DO UPDATE SET data = excluded.data, rev = excluded.rev,
             expires_at = excluded.expires_at",
    )?
    .execute(params![
        item.pk,
        item.sk,
        data,
        i64::try_from(rev).unwrap_or(i64::MAX),
        item.expires_at
    ])?;
    Ok(rev)
}

fn delete_in(
    conn: &Connection,
    pk: &str,
    sk: &str,
    condition: Condition,
    now: i64,
) -> Result<(), StoreError> {
    check_in(conn, pk, sk, condition, now)?;
    conn.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")?
        .execute(params![pk, sk])?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    #[tracing::instrument(name = "store.ping", level = "debug", skip_all)]
    async fn ping(&self) -> Result<(), StoreError> {
        self.conn
            .call(|conn| {
                conn.prepare_cached("SELECT 1")?.query_row([], |_| Ok(()))?;
                Ok(())
            })
            .await
    }

    #[tracing::instrument(name = "store.get", level = "debug", skip(self))]
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let (pk, sk) = (pk.to_owned(), sk.to_owned());
        self.conn
            .call(move |conn| {
                let row = conn
                    .prepare_cached(
                        "SELECT data, rev, expires_at FROM items
                         WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
                    )?
                    .query_row(params![pk, sk, now()], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                        ))
                    })
                    .optional()?;
                row.map(|(data, rev, expires_at)| {
                    Ok(Item {
                        pk,
                        sk,
                        data: parse_data(&data)?,
                        rev: to_rev(rev),
                        expires_at,
                    })
                })
                .transpose()
            })
            .await
    }

    #[tracing::instrument(name = "store.put", level = "debug", skip_all, fields(pk = %item.pk, sk = %item.sk))]
    async fn put(&self, item: Item, condition: Condition) -> Result<u64, StoreError> {
        self.conn
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let rev = put_in(&tx, &item, condition, now())?;
                tx.commit()?;
                Ok(rev)
            })
            .await
    }

    #[tracing::instrument(name = "store.delete", level = "debug", skip(self))]
    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
        let (pk, sk) = (pk.to_owned(), sk.to_owned());
        self.conn
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                delete_in(&tx, &pk, &sk, condition, now())?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    #[tracing::instrument(name = "store.query", level = "debug", skip(self))]
    async fn query(
        &self,
        pk: &str,
        sk_prefix: &str,
        ascending: bool,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        check_limit(limit)?;
        let after = cursor.map(|c| decode_cursor(c, sk_prefix)).transpose()?;
        let (pk, prefix) = (pk.to_owned(), sk_prefix.to_owned());
        self.conn
            .call(move |conn| {
                // The range bound lets SQLite use the primary key; substr() does the prefix test
                // (both count characters, so it is exact for any UTF-8 prefix).
                let (bound, order) = match (&after, ascending) {
                    (Some(_), true) => ("sk > ?3", "ASC"),
                    (Some(_), false) => ("sk < ?3", "DESC"),
                    (None, true) => ("sk >= ?2 AND ?3 IS NULL", "ASC"),
                    (None, false) => ("?3 IS NULL", "DESC"),
                };
                let sql = format!(
                    "SELECT sk, data, rev, expires_at FROM items
                     WHERE pk = ?1 AND substr(sk, 1, length(?2)) = ?2 AND {bound}
                       AND (expires_at IS NULL OR expires_at > ?4)
                     ORDER BY sk {order} LIMIT ?5"
                );
                // Four shapes of this statement exist; each stays prepared in the connection's cache.
                let mut stmt = conn.prepare_cached(&sql)?;
                // One extra row tells whether another page exists.
                let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
                let rows = stmt
                    .query_map(params![pk, prefix, after, now(), fetch], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Option<i64>>(3)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let more = rows.len() > limit;
                let mut items = Vec::with_capacity(limit.min(rows.len()));
                for (sk, data, rev, expires_at) in rows.into_iter().take(limit) {
                    items.push(Item {
                        pk: pk.clone(),
                        sk,
                        data: parse_data(&data)?,
                        rev: to_rev(rev),
                        expires_at,
                    });
                }
                let cursor = if more {
                    items.last().map(|i| encode_cursor(&i.sk))
                } else {
                    None
                };
                Ok(Page { items, cursor })
            })
            .await
    }

    #[tracing::instrument(name = "store.increment", level = "debug", skip(self))]
    async fn increment(
        &self,
        pk: &str,
        sk: &str,
        delta: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError> {
        let (pk, sk) = (pk.to_owned(), sk.to_owned());
        self.conn
            .call(move |conn| {
                // One statement, so atomic across connections and processes. An expired counter
                // restarts from `delta` with the new TTL; a live one keeps its window's TTL. The
                // WHERE refuses to count on an item that holds something other than an integer.
                let value: Option<String> = conn.prepare_cached("INSERT INTO items (pk, sk, data, rev, expires_at)
                         VALUES (?1, ?2, CAST(?3 AS TEXT), 1, ?4)
                         ON CONFLICT (pk, sk) DO UPDATE SET
                           data = CASE WHEN items.expires_at IS NOT NULL AND items.expires_at <= ?5
                                  THEN CAST(?3 AS TEXT)
                                  ELSE CAST(CAST(items.data AS INTEGER) + ?3 AS TEXT) END,
                           expires_at = CASE WHEN items.expires_at IS NOT NULL AND items.expires_at <= ?5
                                  THEN excluded.expires_at ELSE items.expires_at END,
                           rev = items.rev + 1
                         WHERE (items.expires_at IS NOT NULL AND items.expires_at <= ?5)
                            OR json_type(items.data) = 'integer'
                         RETURNING data")?.query_row(params![pk, sk, delta, expires_at, now()],
                        |r| r.get(0),
                    )
                    .optional()?;
                let value = value.ok_or_else(|| StoreError::other(format!("item {pk}/{sk} is not a counter")))?;
                value
                    .parse::<i64>()
                    .map_err(|_| StoreError::other(format!("item {pk}/{sk} is not a counter")))
            })
            .await
    }

    #[tracing::instrument(name = "store.transact", level = "debug", skip_all, fields(ops = ops.len()))]
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        if ops.len() > MAX_TRANSACTION_OPS {
            return Err(StoreError::other(format!(
                "transaction of {} writes exceeds {MAX_TRANSACTION_OPS}",
                ops.len()
            )));
        }
        self.conn
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let now = now();
                for op in &ops {
                    match op {
                        WriteOp::Put { item, condition } => {
                            put_in(&tx, item, *condition, now)?;
                        }
                        WriteOp::Delete { pk, sk, condition } => {
                            delete_in(&tx, pk, sk, *condition, now)?
                        }
                        WriteOp::Check { pk, sk, condition } => {
                            check_in(&tx, pk, sk, *condition, now)?;
                        }
                    }
                }
                // Dropping `tx` on an error above rolls everything back.
                tx.commit()?;
                Ok(())
            })
            .await
    }
}
