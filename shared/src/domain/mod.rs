//! The domain: accounts, API keys, datasets, models, versions, jobs, deployments. One module per
//! entity, each written once against the [`crate::ports`] traits.
//!
//! The storage layout (every table key and blob key, and the typed names that go into them) is
//! [`layout`]'s alone.

pub mod accounts;
pub mod api_keys;
pub mod datasets;
pub mod deployments;
pub mod housekeeping;
pub mod layout;
pub mod models;
pub mod prediction_jobs;
pub mod tasks;
pub mod uploads;

use crate::ports::{BlobError, QueueError, StoreError};

/// Why a domain operation failed, in terms the HTTP surface and the CLI can both report.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{message}")]
    NotFound { message: String },
    #[error("{message}")]
    Conflict { message: String },
    #[error("{message}")]
    Validation { message: String, field: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A stored record does not decode: a bug or a manual edit, never the caller's fault.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl DomainError {
    /// What a user may read of this error: the domain's own message, or a plain phrase for
    /// failures of the infrastructure (whose text, from a store or AWS, stays in the logs).
    pub fn public_reason(&self) -> String {
        match self {
            DomainError::NotFound { message }
            | DomainError::Conflict { message }
            | DomainError::Validation { message, .. } => message.clone(),
            DomainError::Store(_) | DomainError::Blobs(_) | DomainError::Queue(_) => {
                "storage was unavailable".into()
            }
            DomainError::Corrupt(_) => "a stored record could not be read".into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        DomainError::NotFound {
            message: message.into(),
        }
    }
    pub fn validation(message: impl Into<String>, field: &str) -> Self {
        DomainError::Validation {
            message: message.into(),
            field: field.to_string(),
        }
    }
}

pub use layout::account_pk;

/// Reads a listing makes at once: the newest version of each model on a page, or each
/// dataset's profile kept in a blob.
pub(crate) const CONCURRENT_READS: usize = 8;

/// Decodes a stored JSON document.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    item: &crate::ports::Item,
) -> Result<T, DomainError> {
    serde_json::from_value(item.data.clone())
        .map_err(|e| DomainError::Corrupt(format!("{}/{}: {e}", item.pk, item.sk)))
}

/// What a soft cap's count makes of one record (see [`count_records`]).
pub(crate) enum Tally {
    Counts,
    Skips,
    /// This record and every one after it are past what the cap counts.
    Ends,
}

/// How many of the account's records under `prefix` (newest first or oldest first) `tally`
/// counts, up to `cap`. The check of a soft cap: two writes at the same instant may both pass.
pub(crate) async fn count_records<T: serde::de::DeserializeOwned>(
    store: &dyn crate::ports::Store,
    account_id: &str,
    prefix: &str,
    newest_first: bool,
    cap: usize,
    mut tally: impl FnMut(T) -> Tally,
) -> Result<usize, DomainError> {
    let pk = account_pk(account_id);
    let mut counted = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .query(&pk, prefix, !newest_first, 1000, cursor.as_deref())
            .await?;
        for item in &page.items {
            match tally(decode(item)?) {
                Tally::Counts => counted += 1,
                Tally::Skips => {}
                Tally::Ends => return Ok(counted),
            }
            if counted >= cap {
                return Ok(counted);
            }
        }
        cursor = page.cursor;
        if cursor.is_none() {
            return Ok(counted);
        }
    }
}

/// Encodes a record as a stored JSON document.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, DomainError> {
    serde_json::to_value(value).map_err(|e| DomainError::Corrupt(format!("encode: {e}")))
}
