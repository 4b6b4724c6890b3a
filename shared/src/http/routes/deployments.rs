//! The `models` group (one Lambda on AWS), a model's deployments: deploy, list, undeploy.

use crate::api::ErrorEnvelope;
use crate::api::deployments::{DeployRequest, DeploymentList, DeploymentView};
use crate::domain::api_keys::Scope;
use crate::domain::deployments;
use crate::domain::layout::ModelName;
use crate::http::error::ApiError;
use crate::http::extract::Caller;
use crate::http::middleware::scope::Guard;
use crate::http::pagination::{PageQuery, Pagination};
use crate::http::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};

pub fn routes(guard: &Guard) -> Router<AppState> {
    Router::new()
        .route(
            "/models/{model_name}/deploy",
            guard.scoped(Scope::Write, post(deploy)),
        )
        .route(
            "/models/{model_name}/deployments",
            guard.scoped(Scope::Read, get(list_deployments)),
        )
        .route(
            "/models/{model_name}/deployments/{deployment_id}",
            guard.scoped(Scope::Write, delete(undeploy)),
        )
}

/// This part of the group's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(deploy, list_deployments, undeploy))]
pub struct DeploymentsApi;

#[utoipa::path(
    post,
    path = "/models/{model_name}/deploy",
    tag = "deployments",
    summary = "Deploy a READY version (replaces the environment's active deployment)",
    params(("model_name" = String, Path, description = "The model's name")),
    request_body(content = DeployRequest, description = "Every field optional; an empty body deploys the newest READY version to production"),
    responses(
        (status = 201, description = "The deployment", body = DeploymentView),
        (status = 404, description = "No such model or version in this account", body = ErrorEnvelope),
        (status = 409, description = "The version is not READY", body = ErrorEnvelope),
        (status = 422, description = "A bad environment, replicas or version", body = ErrorEnvelope)
    )
)]
async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let body: DeployRequest = if body.iter().all(u8::is_ascii_whitespace) {
        DeployRequest::default()
    } else {
        crate::http::extract::parse_json_body(&body)?
    };
    let deployment = deployments::deploy(
        state.store.as_ref(),
        &caller.account.account_id,
        &model_name,
        deployments::DeployRequest {
            environment: body.environment,
            replicas: body.replicas,
            auto_scale: body.auto_scale,
            model_version: body.model_version,
        },
    )
    .await;
    // A deploy replaces the environment's active version: paths cached for the model are read
    // afresh.
    state
        .lookups
        .forget_model(&caller.account.account_id, &model_name);
    let deployment = deployment?;
    tracing::info!(deployment_id = %deployment.deployment_id, %model_name, "deployed");
    Ok((StatusCode::CREATED, Json(DeploymentView::from(&deployment))))
}

#[utoipa::path(
    get,
    path = "/models/{model_name}/deployments",
    tag = "deployments",
    summary = "List a model's deployments",
    params(("model_name" = String, Path, description = "The model's name"), PageQuery),
    responses(
        (status = 200, description = "The deployments", body = DeploymentList),
        (status = 404, description = "No such model in this account", body = ErrorEnvelope)
    )
)]
async fn list_deployments(
    State(state): State<AppState>,
    caller: Caller,
    page: Pagination,
    Path(model_name): Path<String>,
) -> Result<Json<DeploymentList>, ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let all = deployments::list_deployments(
        state.store.as_ref(),
        &caller.account.account_id,
        &model_name,
    )
    .await?;
    Ok(Json(DeploymentList {
        deployments: page.slice(&all).map(DeploymentView::from).collect(),
        pagination: page.info(all.len()),
    }))
}

#[utoipa::path(
    delete,
    path = "/models/{model_name}/deployments/{deployment_id}",
    tag = "deployments",
    summary = "Undeploy",
    params(("model_name" = String, Path, description = "The model's name"), ("deployment_id" = String, Path, description = "dep_…")),
    responses(
        (status = 200, description = "The deployment, status UNDEPLOYED", body = DeploymentView),
        (status = 404, description = "No such model or deployment in this account", body = ErrorEnvelope)
    )
)]
async fn undeploy(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, deployment_id)): Path<(String, String)>,
) -> Result<Json<DeploymentView>, ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let deployment = deployments::undeploy(
        state.store.as_ref(),
        &caller.account.account_id,
        &model_name,
        &deployment_id,
    )
    .await;
    state
        .lookups
        .forget_model(&caller.account.account_id, &model_name);
    let deployment = deployment?;
    Ok(Json(DeploymentView::from(&deployment)))
}
