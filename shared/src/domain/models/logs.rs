//! Build log lines: what a build did, step by step (data profiled, candidates and scores, the
//! choice, metrics, the artifact), as `GET /models/build-logs` shows them.

use crate::domain::layout::{ModelName, account_pk, log_prefix, log_sk};
use crate::domain::{DomainError, decode, encode};
use crate::ports::{Condition, Item, Store};
use serde::{Deserialize, Serialize};

/// Log sequence numbers of attempt `n` start at `n * ATTEMPT_STRIDE`, so a retry appends.
pub const ATTEMPT_STRIDE: u64 = 100_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub job_id: String,
    pub model_name: ModelName,
    pub timestamp: String,
    /// `info`, `warn` or `error`.
    pub level: String,
    pub message: String,
}

/// Longest message a log line keeps, in characters (the rest is cut with an ellipsis): a line
/// is one item, and items have a size limit.
pub const MAX_MESSAGE_CHARS: usize = 4096;

pub async fn append(
    store: &dyn Store,
    account_id: &str,
    seq: u64,
    line: &LogLine,
) -> Result<(), DomainError> {
    let data = if line.message.chars().count() > MAX_MESSAGE_CHARS {
        let mut cut = line.clone();
        cut.message = line.message.chars().take(MAX_MESSAGE_CHARS - 1).collect();
        cut.message.push('…');
        encode(&cut)?
    } else {
        encode(line)?
    };
    store
        .put(
            Item::new(account_pk(account_id), log_sk(&line.job_id, seq), data),
            Condition::None,
        )
        .await?;
    Ok(())
}

/// The account's log lines (of one job when `job_id` is given), oldest first.
pub async fn list(
    store: &dyn Store,
    account_id: &str,
    job_id: Option<&str>,
) -> Result<Vec<LogLine>, DomainError> {
    super::query_all(store, &account_pk(account_id), &log_prefix(job_id), true)
        .await?
        .iter()
        .map(decode)
        .collect()
}

/// Deletes the log lines of `job_id`.
pub async fn delete_job_logs(
    store: &dyn Store,
    account_id: &str,
    job_id: &str,
) -> Result<(), DomainError> {
    let pk = account_pk(account_id);
    for item in super::query_all(store, &pk, &log_prefix(Some(job_id)), true).await? {
        store.delete(&pk, &item.sk, Condition::None).await?;
    }
    Ok(())
}
