//! The Lambda entry points: an HTTP endpoint group (API Gateway HTTP API → the group's router,
//! unchanged), and the SQS-triggered trainer and task function ([`queues`]).

use super::logging;
use crate::config::{Backends, Config};
use crate::http::{self, AppState, EndpointGroup};

/// The SQS-triggered functions (trainer, tasks): they run models, so only builds with the
/// model runtime have them.
#[cfg(feature = "serving")]
mod queues;
#[cfg(feature = "serving")]
pub use queues::{RETRY_DELAY, handle_sqs_batch, handle_task_batch, run_tasks, run_trainer};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
pub async fn serve_group<G: EndpointGroup>() -> Result<(), BoxError> {
    let state = state_from_env().await?;
    lambda_http::run(http::group_app::<G>(state)).await
}
