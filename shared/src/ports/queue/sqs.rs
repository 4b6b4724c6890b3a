//! The AWS queue: an SQS queue whose redrive policy moves a message to the dead-letter queue
//! after `maxReceiveCount` receives. The trainer Lambda normally consumes through the event
//! source mapping; this adapter sends, and receives for local workers, tests and operators.

use super::{MAX_RECEIVE_BATCH, Queue, QueueError, QueueMessage, check_receive_batch};
use crate::ports::aws_error::{AwsFailure, cause, classify};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use std::collections::HashSet;
use std::time::Duration;

/// SQS's longest long poll.
const MAX_WAIT_SECONDS: u64 = 20;

pub struct SqsQueue {
    client: Client,
    queue_url: String,
    dlq_url: String,
}

fn sdk_err<E>(err: SdkError<E, HttpResponse>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match classify(&err) {
        AwsFailure::Transient(_) => QueueError::unavailable(cause(err)),
        _ => QueueError::other(cause(err)),
    }
}

/// Whole seconds, rounding up so a short but non-zero duration is not turned into "none".
fn seconds_ceil(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn to_i32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn message_from(m: &Message) -> QueueMessage {
    let receive_count = m
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    QueueMessage {
        id: m.message_id().unwrap_or_default().to_owned(),
        receipt: m.receipt_handle().unwrap_or_default().to_owned(),
        body: m.body().unwrap_or_default().to_owned(),
        receive_count,
    }
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>, dlq_url: impl Into<String>) -> Self {
        SqsQueue {
            client,
            queue_url: queue_url.into(),
            dlq_url: dlq_url.into(),
        }
    }

    /// Creates `{name}-dlq` and `{name}` with a redrive policy of `max_receives`, returning
    /// (queue URL, dead-letter queue URL). For tests and local setups; SAM creates the
    /// production queues.
    pub async fn create_queues(
        client: &Client,
        name: &str,
        max_receives: u32,
    ) -> Result<(String, String), QueueError> {
        let dlq = client
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .map_err(sdk_err)?;
        let dlq_url = dlq.queue_url().unwrap_or_default().to_owned();
        let attrs = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(sdk_err)?;
        let dlq_arn = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .ok_or_else(|| QueueError::other("dead-letter queue has no ARN"))?;
        let policy = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": max_receives.to_string(),
        });
        let queue = client
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
            .send()
            .await
            .map_err(sdk_err)?;
        Ok((queue.queue_url().unwrap_or_default().to_owned(), dlq_url))
    }
}

#[async_trait]
impl Queue for SqsQueue {
    #[tracing::instrument(name = "queue.send", level = "debug", skip_all)]
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        let out = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }

    #[tracing::instrument(name = "queue.receive", level = "debug", skip(self))]
    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<QueueMessage>, QueueError> {
        check_receive_batch(max)?;
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(to_i32(max as u64))
            .visibility_timeout(to_i32(seconds_ceil(visibility)))
            .wait_time_seconds(to_i32(seconds_ceil(wait).min(MAX_WAIT_SECONDS)))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(out.messages().iter().map(message_from).collect())
    }

    #[tracing::instrument(name = "queue.ack", level = "debug", skip_all)]
    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }

    #[tracing::instrument(name = "queue.hand_back", level = "debug", skip(self, receipt))]
    async fn hand_back(&self, receipt: &str, after: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(to_i32(seconds_ceil(after)))
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }

    #[tracing::instrument(name = "queue.dead_letters", level = "debug", skip(self))]
    async fn dead_letters(&self, max: usize) -> Result<Vec<QueueMessage>, QueueError> {
        // SQS has no peek: receive with a visibility timeout (so repeated receives return new
        // messages), then make everything visible again so the listing changes nothing.
        let mut seen = HashSet::new();
        let mut out: Vec<QueueMessage> = Vec::new();
        while out.len() < max {
            let batch = self
                .client
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(to_i32(
                    max.saturating_sub(out.len()).min(MAX_RECEIVE_BATCH) as u64,
                ))
                .visibility_timeout(30)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .map_err(sdk_err)?;
            let fresh: Vec<QueueMessage> = batch
                .messages()
                .iter()
                .map(message_from)
                .filter(|m| seen.insert(m.id.clone()))
                .collect();
            if fresh.is_empty() {
                break;
            }
            out.extend(fresh);
        }
        for chunk in out.chunks(MAX_RECEIVE_BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, m) in chunk.iter().enumerate() {
                let entry = ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&m.receipt)
                    .visibility_timeout(0)
                    .build()
                    .map_err(|e| QueueError::other(format!("building a visibility change: {e}")))?;
                entries.push(entry);
            }
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.dlq_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sdk_err)?;
        }
        Ok(out)
    }
}
