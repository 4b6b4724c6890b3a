//! A queue-polling worker: `plexe serve`'s in-process trainer (on the embedded queue, whose
//! messages are durable rows in the SQLite file), and a stand-in for the Lambda event source in
//! tests against SQS.

use super::{Processed, Trainer, TrainerError};
use crate::ports::{Queue, QueueMessage};
use std::sync::Arc;
use std::time::Duration;

/// What happens to a message whose attempt failed (and may be retried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Leave it unacknowledged: it comes back after its visibility timeout and, after the
    /// queue's maximum receives, goes to the dead-letter queue (SQS semantics).
    Redeliver,
    /// Acknowledge it and send it again after `retry_delay` (the embedded queue, where a long
    /// visibility timeout protects long builds, so waiting for it would stall retries). The job
    /// counts its own attempts, so retries still end.
    Resend,
}

#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// How long a received message stays hidden: longer than any build.
    pub visibility: Duration,
    pub on_failure: OnFailure,
    pub retry_delay: Duration,
}

impl WorkerOptions {
    /// For `plexe serve`: hidden for an hour (a crash is recovered at the next start, which
    /// makes in-flight messages visible at once), failed attempts re-sent after 2 s.
    pub fn embedded() -> WorkerOptions {
        WorkerOptions {
            visibility: Duration::from_secs(3600),
            on_failure: OnFailure::Resend,
            retry_delay: Duration::from_secs(2),
        }
    }
}

/// Handles one received message; returns whether it was acknowledged.
pub async fn handle(
    trainer: &Trainer,
    queue: &dyn Queue,
    message: &QueueMessage,
    options: &WorkerOptions,
) -> bool {
    let outcome = trainer.process(&message.body).await;
    let ack = match &outcome {
        Ok(processed) => {
            tracing::info!(message_id = %message.id, ?processed, "job message done");
            true
        }
        Err(TrainerError::BadMessage(reason)) => {
            tracing::error!(message_id = %message.id, reason, "dropping a message that is not a job");
            true
        }
        Err(TrainerError::Busy { .. }) => false,
        Err(
            TrainerError::Attempt { final_attempt, .. } | TrainerError::OutOfTime { final_attempt },
        ) => match options.on_failure {
            OnFailure::Redeliver => false,
            // The version is ERROR already: nothing left to retry.
            OnFailure::Resend if *final_attempt => true,
            OnFailure::Resend => resend(queue, message, options.retry_delay).await,
        },
        Err(TrainerError::Domain(e)) => {
            tracing::warn!(message_id = %message.id, error = %e, "job message failed");
            match options.on_failure {
                OnFailure::Redeliver => false,
                OnFailure::Resend => resend(queue, message, options.retry_delay).await,
            }
        }
    };
    if ack && let Err(e) = queue.ack(&message.receipt).await {
        tracing::warn!(message_id = %message.id, error = %e, "could not acknowledge a job message");
    }
    ack
}

/// Sends the message again after `delay`; true when the copy is queued (then the original may
/// be acknowledged).
async fn resend(queue: &dyn Queue, message: &QueueMessage, delay: Duration) -> bool {
    tokio::time::sleep(delay).await;
    match queue.send(&message.body).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(message_id = %message.id, error = %e, "could not re-queue a failed job");
            false
        }
    }
}

/// Polls `queue` forever, one message at a time.
pub async fn run(trainer: Trainer, queue: Arc<dyn Queue>, options: WorkerOptions) {
    loop {
        let received = queue
            .receive(1, options.visibility, Duration::from_secs(20))
            .await;
        match received {
            Ok(messages) => {
                for message in &messages {
                    handle(&trainer, queue.as_ref(), message, &options).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "job queue receive failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Starts `count` workers on the runtime.
pub fn spawn(
    trainer: Trainer,
    queue: Arc<dyn Queue>,
    options: WorkerOptions,
    count: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..count.max(1))
        .map(|_| tokio::spawn(run(trainer.clone(), queue.clone(), options)))
        .collect()
}

/// Whether an outcome is final for the message (used by the Lambda handler too).
pub fn is_done(outcome: &Result<Processed, TrainerError>) -> bool {
    matches!(outcome, Ok(_) | Err(TrainerError::BadMessage(_)))
}
