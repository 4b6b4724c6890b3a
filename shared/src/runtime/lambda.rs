//! The Lambda entry points: an HTTP endpoint group (API Gateway HTTP API → the group's router,
//! unchanged) and the SQS-triggered trainer (partial batch failures, so one bad message is
//! retried and eventually dead-lettered without failing the others).

use super::logging;
use crate::config::{Backends, Config};
use crate::http::{self, AppState, Group};
use crate::trainer::{Trainer, TrainerError};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where `cargo lambda watch` serves function URLs, for upload URLs when the functions run
/// locally on the embedded backend without `PLEXE_PUBLIC_URL`.
const LOCAL_FUNCTION_URL: &str = "http://127.0.0.1:9000";

/// The configuration from the environment, logging installed, and the backends it names:
/// `aws` on Lambda (the template sets it), or the embedded one in `PLEXE_DATA_DIR` when the
/// functions run locally under `cargo lambda watch` (several functions may share one data dir:
/// SQLite locks the file).
async fn state_from_env() -> Result<AppState, BoxError> {
    let config = Config::from_env()?;
    logging::init(&config.logs);
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| LOCAL_FUNCTION_URL.into());
    let backends = Backends::open(&config, &public_url).await?;
    Ok(AppState::new(backends, config))
}

/// Serves one endpoint group as a Lambda function.
pub async fn serve_group(group: Group) -> Result<(), BoxError> {
    let state = state_from_env().await?;
    lambda_http::run(http::group_app(group, state)).await
}

/// One SQS batch: each message is processed by the [`Trainer`]; every message that is not done
/// (its attempt failed, or another worker holds its job) is reported back, so only it is
/// redelivered and, after the queue's maximum receives, dead-lettered.
pub async fn handle_sqs_batch(trainer: &Trainer, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let outcome = match record.body.as_deref() {
            Some(body) => trainer.process(body).await,
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
        if outcome.is_err() {
            response.add_failure(id);
        }
    }
    response
}

/// Runs the trainer as an SQS-triggered Lambda function.
pub async fn run_trainer() -> Result<(), BoxError> {
    let state = state_from_env().await?;
    let trainer = Trainer::new(state.store.clone(), state.blobs.clone());
    let trainer = &trainer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, BoxError>(handle_sqs_batch(trainer, event.payload).await)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

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
