//! Running task messages: the task function on AWS, the workers inside `plexe serve`.

use super::{TASK_VISIBILITY, TaskMessage};
use crate::domain::prediction_jobs::{self, JobRun};
use crate::domain::uploads::{self, CompleteError};
use crate::ports::{Blobs, Queue, Store};
use std::sync::Arc;
use std::time::Duration;

/// How soon a task that failed for a reason of our own is delivered again.
const TASK_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Why a task message is not done.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Unreadable: redelivering cannot help (it ends in the dead-letter queue).
    #[error("not a task message: {0}")]
    BadMessage(String),
    /// The store or blobs failed: a redelivery may succeed.
    #[error("task failed for now: {0}")]
    Transient(#[source] CompleteError),
    /// A prediction job's storage failed: a redelivery may succeed (the job counts attempts).
    #[error(transparent)]
    Job(#[from] prediction_jobs::JobRunError),
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
        TaskMessage::PredictBatch { account_id, job_id } => {
            match prediction_jobs::run_job(store, blobs, &account_id, &job_id).await? {
                JobRun::Finished(status) => {
                    tracing::info!(%job_id, status = status.as_str(), "prediction job finished");
                }
                JobRun::Nothing => tracing::info!(%job_id, "prediction job already finished"),
            }
            Ok(())
        }
    }
}

/// Works the task queue until the process stops: what the task function does on AWS, inside
/// `plexe serve`. A message that is done is acknowledged; one that failed for a reason of our
/// own comes back after [`TASK_RETRY_AFTER`]; an unreadable one at once, until the queue's
/// receive limit moves it to the dead letters.
pub async fn work_queue(queue: Arc<dyn Queue>, store: Arc<dyn Store>, blobs: Arc<dyn Blobs>) {
    loop {
        let messages = match queue
            .receive(1, TASK_VISIBILITY, Duration::from_secs(20))
            .await
        {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(error = %e, "receiving tasks failed; retrying shortly");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        for message in messages {
            let outcome = process_task(store.as_ref(), blobs.as_ref(), &message.body).await;
            let settled = match &outcome {
                Ok(()) => queue.ack(&message.receipt).await,
                Err(e) => {
                    tracing::warn!(message_id = %message.id, error = %e, "task not done");
                    let after = match e {
                        TaskError::BadMessage(_) => Duration::ZERO,
                        TaskError::Job(e) => e.retry_after(),
                        TaskError::Transient(_) => TASK_RETRY_AFTER,
                    };
                    queue.hand_back(&message.receipt, after).await
                }
            };
            if let Err(e) = settled {
                tracing::warn!(message_id = %message.id, error = %e, "settling a task message failed");
            }
        }
    }
}

/// Starts `count` [`work_queue`] loops.
pub fn spawn_workers(
    queue: Arc<dyn Queue>,
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
    count: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..count.max(1))
        .map(|_| tokio::spawn(work_queue(queue.clone(), store.clone(), blobs.clone())))
        .collect()
}
