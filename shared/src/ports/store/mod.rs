//! The key-value store port, shaped like DynamoDB single-table access patterns.
//!
//! Every item has a partition key `pk`, a sort key `sk`, a JSON document `data`, a revision
//! counter `rev` (bumped on every put, used for optimistic concurrency such as `claim_job`) and an
//! optional `expires_at` (epoch seconds, the TTL attribute). Expired items are invisible to every
//! read even before the backend deletes them (DynamoDB's TTL sweep is lazy).

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::Value;

mod dynamo;
mod sqlite;

pub use dynamo::DynamoStore;
pub use sqlite::SqliteStore;

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    pub data: Value,
    /// Revision: 0 for an item never written; each successful put stores `rev + 1`.
    pub rev: u64,
    /// TTL attribute, epoch seconds. `None` never expires.
    pub expires_at: Option<i64>,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, data: Value) -> Self {
        Item {
            pk: pk.into(),
            sk: sk.into(),
            data,
            rev: 0,
            expires_at: None,
        }
    }
    pub fn with_ttl(mut self, expires_at: i64) -> Self {
        self.expires_at = Some(expires_at);
        self
    }
}

/// The precondition of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Write unconditionally.
    None,
    /// The item must not exist (an expired item counts as absent).
    Absent,
    /// The item must exist.
    Exists,
    /// The item must exist with exactly this revision (compare-and-set).
    Revision(u64),
}

/// One write inside a transaction.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Store `item` (its `rev` is ignored; the stored revision becomes previous + 1).
    Put { item: Item, condition: Condition },
    Delete {
        pk: String,
        sk: String,
        condition: Condition,
    },
    /// Only check a condition, write nothing.
    Check {
        pk: String,
        sk: String,
        condition: Condition,
    },
}

/// One page of a query, in sort-key order.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Opaque; pass back to get the next page. `None` when there is no more.
    pub cursor: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("condition failed")]
    ConditionFailed,
    /// Worth retrying later (busy, throttled, timed out, unreachable).
    #[error("store unavailable: {0}")]
    Unavailable(#[source] super::Cause),
    #[error("store error: {0}")]
    Other(#[source] super::Cause),
}

impl StoreError {
    pub fn unavailable(cause: impl Into<super::Cause>) -> Self {
        StoreError::Unavailable(cause.into())
    }

    pub fn other(cause: impl Into<super::Cause>) -> Self {
        StoreError::Other(cause.into())
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is, for `/health` (`"sqlite"`, `"dynamodb"`).
    fn backend(&self) -> &'static str;

    /// Whether the store answers (for `/health`).
    async fn ping(&self) -> Result<(), StoreError>;

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;

    /// Writes `item` if `condition` holds; returns the stored revision.
    async fn put(&self, item: Item, condition: Condition) -> Result<u64, StoreError>;

    /// Deletes the item if `condition` holds. Deleting an absent item with `Condition::None`
    /// succeeds.
    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError>;

    /// Items of partition `pk` whose sort key starts with `sk_prefix`, in sort-key order
    /// (`ascending` or not), at most `limit` (1..=1000) per page, continuing from `cursor`.
    async fn query(
        &self,
        pk: &str,
        sk_prefix: &str,
        ascending: bool,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError>;

    /// Atomically adds `delta` to the numeric counter `(pk, sk)` (created at 0 if absent or
    /// expired, with TTL `expires_at`) and returns the new value. Safe under concurrency across
    /// processes: this is what rate limits count with.
    async fn increment(
        &self,
        pk: &str,
        sk: &str,
        delta: i64,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError>;

    /// All of `ops` or none (at most 25, DynamoDB's limit). Fails with `ConditionFailed` when any
    /// condition does not hold.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
}

/// Whether an item with this TTL is still visible at `now` (epoch seconds). An item expires at
/// the second its `expires_at` is reached, on every backend.
pub(crate) fn is_live(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_none_or(|at| at > now)
}

/// The page cursor: the last returned sort key, base64url so it is opaque and URL-safe.
pub(crate) fn encode_cursor(last_sk: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last_sk.as_bytes())
}

/// Decodes a cursor of a query over `sk_prefix`; a cursor from another query is refused.
pub(crate) fn decode_cursor(cursor: &str, sk_prefix: &str) -> Result<String, StoreError> {
    let invalid = || StoreError::other("invalid cursor");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| invalid())?;
    let sk = String::from_utf8(bytes).map_err(|_| invalid())?;
    if !sk.starts_with(sk_prefix) {
        return Err(invalid());
    }
    Ok(sk)
}

/// Validates the query page size against the documented bound.
pub(crate) fn check_limit(limit: usize) -> Result<(), StoreError> {
    if (1..=1000).contains(&limit) {
        Ok(())
    } else {
        Err(StoreError::other(format!(
            "query limit {limit} outside 1..=1000"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_is_bound_to_its_prefix() {
        let c = encode_cursor("model#01/ä");
        assert_eq!(decode_cursor(&c, "model#").unwrap(), "model#01/ä");
        assert!(decode_cursor(&c, "job#").is_err());
        assert!(decode_cursor("not base64!", "").is_err());
    }

    #[test]
    fn ttl_boundary_is_exclusive() {
        assert!(is_live(None, 100));
        assert!(is_live(Some(101), 100));
        assert!(!is_live(Some(100), 100));
    }
}
