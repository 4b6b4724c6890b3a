//! The SQS-triggered Lambda entry points: the trainer and the task function (partial batch
//! failures, so one bad message is retried and eventually dead-lettered without failing the
//! others).

use super::{BoxError, state_from_env};
use crate::config::EveryPort;
use crate::domain::tasks::{self, TaskError};
use crate::http::AppState;
use crate::ports::Queue;
use crate::trainer::{Trainer, TrainerError};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// How soon a message whose attempt failed is delivered again. Without a hand-back SQS keeps
/// it hidden for the queue's whole visibility timeout (90 minutes in the templates, six times
/// the function's timeout as AWS advises).
pub const RETRY_DELAY: Duration = Duration::from_secs(30);
/// The longest hand-back delay of a message that failed for a reason of our own.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(15 * 60);

/// When a message that is not done should be delivered again (`receive_count` is how many
/// times SQS has delivered it); `None` leaves it to the visibility timeout.
fn retry_after(error: &TrainerError, receive_count: u32) -> Option<Duration> {
    match error {
        // Not a job: redelivering cannot help; it reaches the dead-letter queue.
        TrainerError::BadMessage(_) => None,
        // Another worker is building it: that worker acknowledges the message when done, and
        // a quick return would only use up this copy's receives.
        TrainerError::Busy { .. } => None,
        // A fresh invocation has its whole timeout: at once.
        TrainerError::OutOfTime { .. } => Some(Duration::ZERO),
        // The job counts its own attempts (at most MAX_ATTEMPTS).
        TrainerError::Attempt { .. } => Some(RETRY_DELAY),
        // The store failed before an attempt was counted: back off (30 s, 1, 2, 4 minutes...)
        // so a short outage does not use up the queue's maximum receives.
        TrainerError::Domain(_) => {
            let doublings = receive_count.saturating_sub(1).min(5);
            Some((RETRY_DELAY * 2u32.pow(doublings)).min(MAX_RETRY_DELAY))
        }
    }
}

/// Whether the message is done with although its attempt failed: the attempt was the job's
/// last, so the version is ERROR and a redelivery would find nothing to do.
fn is_final(error: &TrainerError) -> bool {
    matches!(
        error,
        TrainerError::Attempt {
            final_attempt: true,
            ..
        } | TrainerError::OutOfTime {
            final_attempt: true
        }
    )
}

/// The invocation's deadline (the Runtime API's epoch milliseconds) on the monotonic clock.
fn invocation_deadline(deadline_ms: u64) -> Option<Instant> {
    let now_ms = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_millis(),
    )
    .ok()?;
    (deadline_ms > 0)
        .then(|| Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
}

/// One SQS batch within an invocation that ends at `deadline`: each message is processed by the
/// [`Trainer`]; every message that is not done (its attempt failed or ran out of the
/// invocation's time, or another worker holds its job) is handed back to `queue` to be
/// delivered again soon ([`retry_after`]) and reported back, so only it is redelivered and,
/// after the queue's maximum receives, dead-lettered.
pub async fn handle_sqs_batch(
    trainer: &Trainer,
    queue: &dyn Queue,
    event: SqsEvent,
    deadline: Option<Instant>,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let outcome = match record.body.as_deref() {
            Some(body) => trainer.process_before(body, deadline).await,
            None => Err(TrainerError::BadMessage("message has no body".into())),
        };
        match &outcome {
            Ok(processed) => tracing::info!(message_id = %id, ?processed, "job message processed"),
            Err(TrainerError::BadMessage(reason)) => {
                // Redelivering cannot fix it: report it failed so it lands in the DLQ for a look.
                tracing::error!(message_id = %id, reason, "not a job message");
            }
            Err(e) => tracing::warn!(message_id = %id, error = %e, "job message not done"),
        }
        let Err(error) = &outcome else { continue };
        if is_final(error) {
            continue;
        }
        let receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        if let (Some(after), Some(receipt)) = (
            retry_after(error, receive_count),
            record.receipt_handle.as_deref(),
        ) && let Err(e) = queue.hand_back(receipt, after).await
        {
            // It still comes back, after the visibility timeout.
            tracing::warn!(message_id = %id, error = %e, "could not hand a job message back");
        }
        response.add_failure(id);
    }
    response
}

/// One SQS batch of the task queue: each message is run by
/// [`process_task`](crate::domain::tasks::process_task); a message whose task failed for now
/// (the store or blobs unavailable) or cannot be read is reported back, so only it is
/// redelivered and, after the queue's maximum receives, dead-lettered.
pub async fn handle_task_batch(state: &AppState, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let outcome = match record.body.as_deref() {
            Some(body) => {
                tasks::process_task(state.store.as_ref(), state.blobs.as_ref(), body).await
            }
            None => Err(TaskError::BadMessage("message has no body".into())),
        };
        match outcome {
            Ok(()) => tracing::info!(message_id = %id, "task message processed"),
            Err(e) => {
                tracing::warn!(message_id = %id, error = %e, "task message not done");
                response.add_failure(id);
            }
        }
    }
    response
}

/// Runs the task function (large upload completions) as an SQS-triggered Lambda function.
pub async fn run_tasks() -> Result<(), BoxError> {
    let state = state_from_env::<EveryPort>().await?;
    let state = &state;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, BoxError>(handle_task_batch(state, event.payload).await)
    }))
    .await
}

/// How long the trainer waits, after answering an invocation that left a build running, before
/// it ends its process (the runtime client posts the answer in well under this).
const EXIT_AFTER_ANSWER: Duration = Duration::from_millis(500);

/// Runs the trainer as an SQS-triggered Lambda function.
pub async fn run_trainer() -> Result<(), BoxError> {
    let state = state_from_env::<EveryPort>().await?;
    let trainer = Trainer::new(state.store.clone(), state.blobs.clone());
    let (trainer, queue) = (&trainer, state.queue.as_ref());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = invocation_deadline(event.context.deadline);
        let response = handle_sqs_batch(trainer, queue, event.payload, deadline).await;
        if trainer.left_a_build_running() {
            // Its engine thread cannot be stopped: end this environment once the answer is
            // out, so the next invocation starts clean rather than beside it.
            std::thread::spawn(|| {
                std::thread::sleep(EXIT_AFTER_ANSWER);
                std::process::exit(0);
            });
        }
        Ok::<_, BoxError>(response)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_messages_come_back_soon_and_store_failures_back_off() {
        let store_failed = TrainerError::Domain(crate::domain::DomainError::Corrupt("x".into()));
        let waits: Vec<u64> = (1..=7)
            .filter_map(|n| retry_after(&store_failed, n))
            .map(|d| d.as_secs())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 900, 900]);
        let out_of_time = TrainerError::OutOfTime {
            final_attempt: false,
        };
        assert_eq!(retry_after(&out_of_time, 3), Some(Duration::ZERO));
        let attempt = TrainerError::Attempt {
            reason: "x".into(),
            final_attempt: false,
        };
        assert_eq!(retry_after(&attempt, 4), Some(RETRY_DELAY));
        assert_eq!(retry_after(&TrainerError::Busy { lease_until: 0 }, 1), None);
        assert_eq!(retry_after(&TrainerError::BadMessage("x".into()), 1), None);
        assert!(is_final(&TrainerError::Attempt {
            reason: "x".into(),
            final_attempt: true
        }));
        assert!(!is_final(&attempt));
    }

    #[test]
    fn sqs_batches_decode_from_the_lambda_event_shape() {
        let event: SqsEvent = serde_json::from_str(
            r#"{"Records":[{"messageId":"m1","body":"{\"job_id\":\"job_1\"}"},{"messageId":"m2","body":"nope"}]}"#,
        )
        .expect("event");
        assert_eq!(event.records.len(), 2);
        assert_eq!(event.records[1].message_id.as_deref(), Some("m2"));
    }
}
