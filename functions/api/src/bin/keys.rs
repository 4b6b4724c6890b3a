//! The `keys` endpoint group as a Lambda function (API Gateway HTTP API).

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    shared::runtime::lambda::serve_group::<shared::http::KeysGroup>().await
}
