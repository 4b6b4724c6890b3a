//! Long work an API function hands to the task function (on AWS: its own queue, 900 s, 3 GB)
//! instead of doing it within its 29 s: today, completing a large upload session
//! ([`super::uploads::complete_or_queue`]). A message names the account and the work; the
//! work's own record (the upload session) says how it went, so the client polls that.

use super::uploads::{self, CompleteError};
use crate::ports::{Blobs, Store};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The body of a task queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum TaskMessage {
    CompleteUpload {
        account_id: String,
        upload_id: String,
    },
}

impl TaskMessage {
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why a task message is not done.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Unreadable: redelivering cannot help (it ends in the dead-letter queue).
    #[error("not a task message: {0}")]
    BadMessage(String),
    /// The store or blobs failed: a redelivery may succeed.
    #[error("task failed for now: {0}")]
    Transient(#[source] CompleteError),
}

/// Waits before each retry of a completion that failed for a reason of our own (the store or
/// blobs unavailable); after the last the session records the failure.
const RETRY_WAITS: [Duration; 2] = [Duration::from_secs(5), Duration::from_secs(30)];

/// Runs one task message. A completion that fails because of the file (a mismatch, bad data)
/// is done: the session records why, for the client polling it. One that fails for a reason
/// of our own is retried here ([`RETRY_WAITS`]), then recorded as failed too (the client can
/// complete again); only when even that cannot be written is the message redelivered.
pub async fn process_task(
    store: &dyn Store,
    blobs: &dyn Blobs,
    body: &str,
) -> Result<(), TaskError> {
    let message: TaskMessage =
        serde_json::from_str(body).map_err(|e| TaskError::BadMessage(e.to_string()))?;
    match message {
        TaskMessage::CompleteUpload {
            account_id,
            upload_id,
        } => {
            let mut waits = RETRY_WAITS.iter();
            loop {
                match uploads::complete_upload(store, blobs, &account_id, &upload_id).await {
                    Ok(dataset) => {
                        tracing::info!(%upload_id, dataset_id = %dataset.dataset_id, rows = dataset.row_count, "queued upload completed");
                        return Ok(());
                    }
                    Err(e) if e.is_transient() => {
                        tracing::warn!(%upload_id, error = %e, "queued upload completion failed for now");
                        if let Some(wait) = waits.next() {
                            tokio::time::sleep(*wait).await;
                            continue;
                        }
                        let reason = "storage was unavailable while completing the upload; \
                                      complete the session again";
                        return uploads::record_failure(store, &account_id, &upload_id, reason)
                            .await
                            .map_err(|_| TaskError::Transient(e));
                    }
                    Err(e) => {
                        tracing::info!(%upload_id, reason = %e.public_reason(), "queued upload refused");
                        return Ok(());
                    }
                }
            }
        }
    }
}
