//! The task function (large upload completions) as an SQS-triggered Lambda function.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    shared::runtime::lambda::run_tasks().await
}
