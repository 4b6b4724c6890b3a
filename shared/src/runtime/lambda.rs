//! The Lambda entry points: an HTTP endpoint group (API Gateway HTTP API → the group's router,
//! unchanged) and the SQS-triggered trainer (partial batch failures, so one bad message is
//! retried and eventually dead-lettered without failing the others).

use super::logging::{self, LogFormat};
use crate::config::Backends;
use crate::http::{self, AppState, Group};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn state_from_env() -> Result<AppState, BoxError> {
    let backends = Backends::aws_from_env().await?;
    Ok(AppState::from(backends))
}

/// Serves one endpoint group as a Lambda function.
pub async fn serve_group(group: Group) -> Result<(), BoxError> {
    logging::init(LogFormat::detect());
    let state = state_from_env().await?;
    lambda_http::run(http::group_app(group, state)).await
}

/// Why one queue message could not be processed (it will be redelivered, then dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum TrainerMessageError {
    #[error("message has no body")]
    EmptyBody,
    #[error("message body is not JSON: {0}")]
    NotJson(String),
}

/// Handles one job message. The message must be a JSON document; the build itself is run by the
/// trainer once jobs exist.
pub async fn process_job_message(
    _state: &AppState,
    body: Option<&str>,
) -> Result<(), TrainerMessageError> {
    let body = body.ok_or(TrainerMessageError::EmptyBody)?;
    serde_json::from_str::<serde_json::Value>(body)
        .map_err(|e| TrainerMessageError::NotJson(e.to_string()))?;
    Ok(())
}

/// One SQS batch: every message that fails is reported back so only it is redelivered.
pub async fn handle_sqs_batch(state: &AppState, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        match process_job_message(state, record.body.as_deref()).await {
            Ok(()) => tracing::info!(message_id = %id, "job message processed"),
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "job message failed");
                response.add_failure(id);
            }
        }
    }
    response
}

/// Runs the trainer as an SQS-triggered Lambda function.
pub async fn run_trainer() -> Result<(), BoxError> {
    logging::init(LogFormat::detect());
    let state = state_from_env().await?;
    let state = &state;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, BoxError>(handle_sqs_batch(state, event.payload).await)
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
