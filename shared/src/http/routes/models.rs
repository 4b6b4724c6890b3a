//! The `models` group (one Lambda on AWS), models themselves: list, build a new model, get,
//! patch, delete, and the build logs. A model's versions are [`super::versions`], its
//! deployments [`super::deployments`]; predictions are the `inference` group.

use crate::api::models::{
    BuildAccepted, BuildPlanView, CreateModelRequest, DeletedModel, LogLineView, LogList,
    ModelList, ModelView, PatchModelRequest,
};
use crate::api::{ErrorEnvelope, non_null};
use crate::domain::api_keys::Scope;
use crate::domain::layout::ModelName;
use crate::domain::models::builds::{self, Ports, Requester, StartBuildError, StartedBuild};
use crate::domain::models::{
    self, ModelListing, ModelPatch, VersionStatus, deletion, jobs, logs, summaries,
};
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::{ApiJson, ApiQuery, Caller};
use crate::http::middleware::scope::Guard;
use crate::http::pagination::{PageQuery, Pagination};
use crate::http::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub fn routes(guard: &Guard) -> Router<AppState> {
    Router::new()
        .route("/models", guard.scoped(Scope::Read, get(list_models)))
        .route(
            "/models/build-logs",
            guard.scoped(Scope::Read, get(build_logs)),
        )
        .route(
            "/models/{model_name}/plan",
            guard.scoped(Scope::Write, axum::routing::post(plan_model)),
        )
        .route(
            "/models/{model_name}",
            guard.scoped(Scope::Read, get(get_model)).merge(
                guard.scoped(
                    Scope::Write,
                    axum::routing::post(create_model)
                        .patch(patch_model)
                        .delete(delete_model),
                ),
            ),
        )
}

/// This part of the group's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_models,
    build_logs,
    create_model,
    plan_model,
    get_model,
    patch_model,
    delete_model
))]
pub struct ModelsApi;

impl From<StartBuildError> for ApiError {
    fn from(e: StartBuildError) -> Self {
        match e {
            StartBuildError::Domain(e) => e.into(),
            StartBuildError::Upload(e) => e.into(),
            StartBuildError::Unusable {
                message,
                field,
                candidates,
            } => ApiError::new(ErrorCode::ValidationError, message)
                .with_details(json!({ "field": field, "candidates": candidates })),
            StartBuildError::ConcurrencyLimit { limit } => ApiError::new(
                ErrorCode::ConcurrencyLimitExceeded,
                format!(
                    "This account already has {limit} builds in flight, its tier's limit. Wait \
                     for one to finish (GET /models/{{model_name}}/{{version}}/status) and retry."
                ),
            )
            .with_details(json!({ "limit": limit }))
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("30")),
            StartBuildError::BuildRate { limit, retry_after } => ApiError::new(
                ErrorCode::RateLimitExceeded,
                format!(
                    "This account started {limit} builds this minute, its limit. Retry in \
                     {retry_after} s."
                ),
            )
            .with_details(json!({ "limit": limit }))
            .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after)),
        }
    }
}

/// What a build start writes to.
pub(super) fn ports(state: &AppState) -> Ports<'_> {
    Ports {
        store: state.store.as_ref(),
        blobs: state.blobs.as_ref(),
        queue: state.queue.as_ref(),
        tasks: state.completion_queue(),
    }
}

/// Who starts a build, under this deployment's limits.
pub(super) fn requester<'a>(state: &'a AppState, caller: &'a Caller) -> Requester<'a> {
    Requester {
        account: &caller.account,
        key_id: &caller.key.key_id,
        limits: &state.config.limits,
    }
}

/// The 202 of a build start.
pub(super) fn accepted(build: &StartedBuild) -> (StatusCode, Json<BuildAccepted>) {
    (StatusCode::ACCEPTED, Json(BuildAccepted::from(build)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListModelsQuery {
    /// Only models whose newest version has this status: PENDING, BUILDING, READY or ERROR (in
    /// any case; empty: all).
    #[param(pattern = "^(?i:pending|building|ready|error)?$")]
    status: Option<String>,
    /// `created_at` (default) or `name` (empty: the default).
    #[param(pattern = "^(created_at|name|model_name)?$")]
    sort_by: Option<String>,
    /// `asc` or `desc` (default: `desc` by time, `asc` by name).
    #[param(pattern = "^(asc|desc)?$")]
    sort_dir: Option<String>,
}

#[utoipa::path(
    get,
    path = "/models",
    tag = "models",
    summary = "List models",
    params(ListModelsQuery, PageQuery),
    responses((status = 200, description = "The account's models", body = ModelList))
)]
async fn list_models(
    State(state): State<AppState>,
    caller: Caller,
    page: Pagination,
    ApiQuery(query): ApiQuery<ListModelsQuery>,
) -> Result<Json<ModelList>, ApiError> {
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            VersionStatus::parse(s)
                .filter(|_| s.trim() == s)
                .ok_or_else(|| {
                    ApiError::invalid_request(format!(
                        "status must be PENDING, BUILDING, READY or ERROR (got {s:?})"
                    ))
                    .with_details(json!({"field": "status"}))
                })?,
        ),
    };
    let by_name = match query.sort_by.as_deref() {
        None | Some("") | Some("created_at") => false,
        Some("name") | Some("model_name") => true,
        Some(other) => {
            return Err(ApiError::invalid_request(format!(
                "sort_by must be created_at or name (got {other:?})"
            ))
            .with_details(json!({"field": "sort_by"})));
        }
    };
    let ascending = match query.sort_dir.as_deref() {
        None | Some("") => by_name,
        Some("asc") => true,
        Some("desc") => false,
        Some(other) => {
            return Err(ApiError::invalid_request(format!(
                "sort_dir must be asc or desc (got {other:?})"
            ))
            .with_details(json!({"field": "sort_dir"})));
        }
    };
    let (models, total) = summaries::list_summaries(
        state.store.as_ref(),
        state.blobs.as_ref(),
        &caller.account.account_id,
        ModelListing {
            status,
            by_name,
            ascending,
            limit: page.limit,
            offset: page.offset,
        },
    )
    .await?;
    Ok(Json(ModelList {
        models: models.iter().map(ModelView::from).collect(),
        pagination: page.info(total),
    }))
}

#[utoipa::path(
    post,
    path = "/models/{model_name}",
    tag = "models",
    summary = "Start a build of a new model",
    params(("model_name" = String, Path, description = "The new model's name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    request_body = CreateModelRequest,
    responses(
        (status = 202, description = "Queued: poll the version's status", body = BuildAccepted),
        (status = 404, description = "No such dataset or upload", body = ErrorEnvelope),
        (status = 409, description = "The name exists", body = ErrorEnvelope),
        (status = 422, description = "The dataset or target cannot work (details name the candidate columns)", body = ErrorEnvelope),
        (status = 429, description = "concurrency_limit_exceeded or rate_limit_exceeded", body = ErrorEnvelope)
    )
)]
async fn create_model(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
    ApiJson(body): ApiJson<CreateModelRequest>,
) -> Result<(StatusCode, Json<BuildAccepted>), ApiError> {
    let model_name = ModelName::new(&model_name)?;
    let build = builds::start_model(
        ports(&state),
        requester(&state, &caller),
        &model_name,
        body.new_model(),
        body.spec(),
    )
    .await?;
    Ok(accepted(&build))
}

#[utoipa::path(
    post,
    path = "/models/{model_name}/plan",
    tag = "models",
    summary = "What a build would do: the target, task and metric the request resolves to, checked as a build is, with nothing started",
    params(("model_name" = String, Path, description = "The model's name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    request_body = CreateModelRequest,
    responses(
        (status = 200, description = "The plan", body = BuildPlanView),
        (status = 404, description = "No such dataset or upload", body = ErrorEnvelope),
        (status = 409, description = "The upload session is not completed yet", body = ErrorEnvelope),
        (status = 422, description = "The dataset or target cannot work (details name the candidate columns)", body = ErrorEnvelope)
    )
)]
async fn plan_model(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
    ApiJson(body): ApiJson<CreateModelRequest>,
) -> Result<Json<BuildPlanView>, ApiError> {
    let model_name = ModelName::new(&model_name)?;
    let planned =
        builds::plan_model(ports(&state), requester(&state, &caller), body.spec()).await?;
    Ok(Json(BuildPlanView::new(model_name.as_str(), &planned)))
}

#[utoipa::path(
    get,
    path = "/models/{model_name}",
    tag = "models",
    summary = "A model",
    params(("model_name" = String, Path, description = "The model's name")),
    responses(
        (status = 200, description = "The model", body = ModelView),
        (status = 404, description = "No such model in this account", body = ErrorEnvelope)
    )
)]
async fn get_model(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
) -> Result<Json<ModelView>, ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let summary = summaries::summary(
        state.store.as_ref(),
        state.blobs.as_ref(),
        &caller.account.account_id,
        &model_name,
    )
    .await?;
    Ok(Json(ModelView::from(&summary)))
}

#[utoipa::path(
    patch,
    path = "/models/{model_name}",
    tag = "models",
    summary = "Change a model's name, description or tags",
    params(("model_name" = String, Path, description = "The model's name")),
    request_body = PatchModelRequest,
    responses(
        (status = 200, description = "The model", body = ModelView),
        (status = 404, description = "No such model in this account", body = ErrorEnvelope),
        (status = 422, description = "A bad name, description or tags", body = ErrorEnvelope)
    )
)]
async fn patch_model(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
    ApiJson(body): ApiJson<PatchModelRequest>,
) -> Result<Json<ModelView>, ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let account_id = &caller.account.account_id;
    let store = state.store.as_ref();
    let patch = ModelPatch {
        name: body.name,
        description: body.description,
        tags: non_null(body.tags),
    };
    let model = models::patch_model(store, account_id, &model_name, &patch).await?;
    let summary = summaries::summary_of(store, state.blobs.as_ref(), account_id, model).await?;
    Ok(Json(ModelView::from(&summary)))
}

#[utoipa::path(
    delete,
    path = "/models/{model_name}",
    tag = "models",
    summary = "Delete a model with its versions, deployments and artifacts; cancels builds in flight",
    params(("model_name" = String, Path, description = "The model's name")),
    responses(
        (status = 200, description = "Deleted", body = DeletedModel),
        (status = 404, description = "No such model in this account", body = ErrorEnvelope)
    )
)]
async fn delete_model(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
) -> Result<Json<DeletedModel>, ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let deleted = deletion::delete_model(
        state.store.as_ref(),
        state.blobs.as_ref(),
        &caller.account.account_id,
        &model_name,
    )
    .await;
    state
        .lookups
        .forget_model(&caller.account.account_id, &model_name);
    deleted?;
    Ok(Json(DeletedModel {
        model_name: model_name.to_string(),
        deleted: true,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct BuildLogsQuery {
    /// Only this build job (`job_…`); without it, every build's lines, oldest first.
    job_id: Option<String>,
}

#[utoipa::path(
    get,
    path = "/models/build-logs",
    tag = "models",
    summary = "Build log lines",
    params(BuildLogsQuery, PageQuery),
    responses(
        (status = 200, description = "The lines, oldest first", body = LogList),
        (status = 404, description = "No such job in this account", body = ErrorEnvelope)
    )
)]
async fn build_logs(
    State(state): State<AppState>,
    caller: Caller,
    page: Pagination,
    ApiQuery(query): ApiQuery<BuildLogsQuery>,
) -> Result<Json<LogList>, ApiError> {
    let account_id = &caller.account.account_id;
    let store = state.store.as_ref();
    let job_id = query.job_id.as_deref().filter(|j| !j.is_empty());
    if let Some(job_id) = job_id
        && jobs::get_job(store, account_id, job_id).await?.is_none()
    {
        return Err(ApiError::not_found(format!(
            "No build job {job_id} in this account (POST /models/{{name}} returns the job_id)."
        )));
    }
    let lines = logs::list(store, account_id, job_id).await?;
    Ok(Json(LogList {
        logs: page.slice(&lines).map(LogLineView::from).collect(),
        pagination: page.info(lines.len()),
    }))
}
