//! `POST /v0/models/{name}/{version}/infer` (the `inference` group): one row, flat answer; a
//! READY version is deployed to [`LEGACY_ENVIRONMENT`] by its first infer.

use super::LEGACY_ENVIRONMENT;
use crate::api::ErrorEnvelope;
use crate::api::legacy::LegacyPrediction;
use crate::domain::DomainError;
use crate::domain::api_keys::Scope;
use crate::domain::deployments::{self, DeployRequest};
use crate::domain::layout::ModelName;
use crate::domain::models::{self, VersionRef, VersionStatus};
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::Caller;
use crate::http::middleware::scope::Guard;
use crate::http::routes::inference;
use crate::http::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

/// `POST /v0/models/{name}/{version}/infer` (the `inference` group).
pub fn inference_routes(guard: &Guard) -> Router<AppState> {
    Router::new().route(
        "/v0/models/{model_name}/{model_version}/infer",
        guard.scoped(Scope::Predict, post(infer)),
    )
}

/// Deploys the version a path names to the `legacy` environment unless it is deployed
/// already (a version not READY is left to the prediction's own 409).
async fn deploy_if_needed(
    state: &AppState,
    caller: &Caller,
    model_name: &ModelName,
    model_version: &str,
) -> Result<(), ApiError> {
    let store = state.store.as_ref();
    let account_id = &caller.account.account_id;
    let reference = VersionRef::parse(model_version)?;
    let version = models::resolve_version(store, account_id, model_name, &reference).await?;
    if version.status != VersionStatus::Ready
        || deployments::is_deployed(store, account_id, model_name, version.number).await?
    {
        return Ok(());
    }
    let request = DeployRequest {
        environment: Some(LEGACY_ENVIRONMENT.into()),
        replicas: None,
        auto_scale: None,
        model_version: Some(version.label()),
    };
    let deployed = deployments::deploy(store, account_id, model_name, request).await;
    state.lookups.forget_model(account_id, model_name);
    match deployed {
        Ok(deployment) => {
            tracing::info!(deployment_id = %deployment.deployment_id, model_name = %model_name, version = %version.label(), "deployed for a legacy infer");
            Ok(())
        }
        // Concurrent first calls (the client's batch_infer): one of them deployed it.
        Err(DomainError::Conflict { .. })
            if deployments::is_deployed(store, account_id, model_name, version.number).await? =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(
    post,
    path = "/v0/models/{model_name}/{model_version}/infer",
    tag = "legacy",
    summary = "Predict one row; a completed version needs no deploy here",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest")),
    request_body(content = Object, description = "One object of input fields (null = missing)"),
    responses(
        (status = 200, description = "`prediction` and the output fields", body = LegacyPrediction),
        (status = 404, description = "No such model or version in this account", body = ErrorEnvelope),
        (status = 409, description = "Not completed", body = ErrorEnvelope),
        (status = 422, description = "Invalid fields (details.errors name each)", body = ErrorEnvelope)
    )
)]
pub(super) async fn infer(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<LegacyPrediction>, ApiError> {
    let row = inference::parse_json(&body)?;
    if !row.is_object() {
        return Err(ApiError::new(
            ErrorCode::ValidationError,
            "infer takes one JSON object of input fields.",
        ));
    }
    let model_name = ModelName::existing(&model_name)?;
    deploy_if_needed(&state, &caller, &model_name, &model_version).await?;
    let (_, model, output) =
        inference::predict_one(&state, &caller, &model_name, &model_version, &row).await?;
    let outputs = model.output_fields(&output, 0);
    let (field, _) = model.output_field_names();
    let prediction = outputs.get(&field).cloned().unwrap_or(Value::Null);
    Ok(Json(LegacyPrediction {
        prediction,
        outputs,
    }))
}
