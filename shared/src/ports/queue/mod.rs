//! The job queue port, with SQS semantics on both adapters: a received message is invisible for
//! the visibility timeout, reappears unless acknowledged, and after `max_receives` receives goes
//! to the dead-letter queue instead.

use async_trait::async_trait;
use std::time::Duration;

mod sqlite;
mod sqs;

pub use sqlite::SqliteQueue;
pub use sqs::SqsQueue;

/// SQS's limit on messages per receive; the embedded queue keeps it so local code runs on AWS.
pub const MAX_RECEIVE_BATCH: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub id: String,
    /// Handle to acknowledge this receive (changes on every receive).
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this time included (1 on first delivery).
    pub receive_count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Worth retrying later.
    #[error("queue unavailable: {0}")]
    Unavailable(#[source] super::Cause),
    #[error("queue error: {0}")]
    Other(#[source] super::Cause),
}

impl QueueError {
    pub fn unavailable(cause: impl Into<super::Cause>) -> Self {
        QueueError::Unavailable(cause.into())
    }

    pub fn other(cause: impl Into<super::Cause>) -> Self {
        QueueError::Other(cause.into())
    }
}

/// Refuses a receive of no message or more than [`MAX_RECEIVE_BATCH`] (SQS's own bounds, kept
/// on both adapters).
pub(crate) fn check_receive_batch(max: usize) -> Result<(), QueueError> {
    if (1..=MAX_RECEIVE_BATCH).contains(&max) {
        Ok(())
    } else {
        Err(QueueError::other(format!(
            "receive of {max} messages outside 1..={MAX_RECEIVE_BATCH}"
        )))
    }
}

#[async_trait]
pub trait Queue: Send + Sync + 'static {
    async fn send(&self, body: &str) -> Result<String, QueueError>;

    /// Up to `max` visible messages (waits at most `wait` for the first), each hidden for
    /// `visibility` afterwards.
    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<QueueMessage>, QueueError>;

    /// Acknowledges (deletes) a received message.
    async fn ack(&self, receipt: &str) -> Result<(), QueueError>;

    /// Gives a received message back unprocessed: it is visible again `after` from now instead
    /// of at the end of its visibility timeout (SQS `ChangeMessageVisibility`). Its receive still
    /// counts towards the dead-letter limit.
    async fn hand_back(&self, receipt: &str, after: Duration) -> Result<(), QueueError>;

    /// Messages moved to the dead-letter queue (for operators and tests), up to `max`.
    async fn dead_letters(&self, max: usize) -> Result<Vec<QueueMessage>, QueueError>;
}
