//! The Lambda entry points: an HTTP endpoint group (API Gateway HTTP API → the group's router,
//! unchanged), and the SQS-triggered trainer and task function ([`queues`]).

use super::logging;
use crate::config::{BackendKind, Backends, Config, PortNeeds};
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
#[cfg(feature = "embedded-lambdas")]
const LOCAL_FUNCTION_URL: &str = "http://127.0.0.1:9000";

/// The configuration from the environment, logging installed, and the backends it names:
/// `aws` on Lambda (the template sets it), the ports `P` uses; or the embedded one in
/// `PLEXE_DATA_DIR` when the functions run locally under `cargo lambda watch` (several
/// functions may share one data dir: SQLite locks the file), in builds with the
/// `embedded-lambdas` feature.
async fn state_from_env<P: PortNeeds>() -> Result<AppState, BoxError> {
    let config = Config::from_env()?;
    logging::init(&config.logs);
    let backends = match config.backend {
        BackendKind::Aws => Backends::open_aws::<P>(&config).await?,
        BackendKind::Embedded => embedded(&config)?,
    };
    Ok(AppState::new(backends, config))
}

#[cfg(feature = "embedded-lambdas")]
fn embedded(config: &Config) -> Result<Backends, BoxError> {
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| LOCAL_FUNCTION_URL.into());
    Ok(Backends::embedded(&config.data_dir, &public_url)?)
}

/// Without the feature (functions/api built alone, as for Lambda) SQLite is not linked.
#[cfg(not(feature = "embedded-lambdas"))]
fn embedded(_config: &Config) -> Result<Backends, BoxError> {
    Err(
        "this build of the function runs on AWS only (PLEXE_BACKEND=aws); to run it on the \
         embedded backend, build it from the repo root (cargo lambda watch there does)"
            .into(),
    )
}

/// Serves one endpoint group as a Lambda function.
pub async fn serve_group<G: EndpointGroup>() -> Result<(), BoxError> {
    let state = state_from_env::<G>().await?;
    lambda_http::run(http::group_app::<G>(state)).await
}
