//! The `models` group (one Lambda on AWS), a model's versions: list, start the next one
//! (`versions`, `retrain`), get one, its build status, its description and its ONNX file.

use super::models::{accepted, ports, requester};
use crate::api::models::{
    BuildAccepted, CreateVersionRequest, DescribeView, RetrainRequest, VersionList,
    VersionStatusView, VersionView,
};
use crate::api::{ErrorEnvelope, FileBytes, non_null};
use crate::domain::api_keys::Scope;
use crate::domain::deployments;
use crate::domain::layout::ModelName;
use crate::domain::models::builds::{self, BuildSpec};
use crate::domain::models::{self, ModelVersion, VersionRef, VersionStatus, jobs};
use crate::http::error::{ApiError, LAMBDA_BODY_LIMIT};
use crate::http::extract::Caller;
use crate::http::middleware::scope::Guard;
use crate::http::pagination::{PageQuery, Pagination};
use crate::http::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

/// The largest artifact an API function answers with itself: base64-encoded, it still fits
/// Lambda's 6 MB response. A larger one on S3 is a redirect to a presigned URL.
const INLINE_ARTIFACT_MAX: usize = LAMBDA_BODY_LIMIT;
/// How long the presigned URL of an artifact download works.
const ARTIFACT_LINK_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

pub fn routes(guard: &Guard) -> Router<AppState> {
    Router::new()
        .route(
            "/models/{model_name}/versions",
            guard
                .scoped(Scope::Read, get(list_versions))
                .merge(guard.scoped(Scope::Write, post(create_version))),
        )
        .route(
            "/models/{model_name}/retrain",
            guard.scoped(Scope::Write, post(retrain)),
        )
        .route(
            "/models/{model_name}/{model_version}",
            guard.scoped(Scope::Read, get(get_version)),
        )
        .route(
            "/models/{model_name}/{model_version}/status",
            guard.scoped(Scope::Read, get(version_status)),
        )
        .route(
            "/models/{model_name}/{model_version}/describe",
            guard.scoped(Scope::Read, get(describe)),
        )
        .route(
            "/models/{model_name}/{model_version}/artifact",
            guard.scoped(Scope::Read, get(artifact)),
        )
}

/// This part of the group's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_versions,
    create_version,
    retrain,
    get_version,
    version_status,
    describe,
    artifact
))]
pub struct VersionsApi;

#[utoipa::path(
    get,
    path = "/models/{model_name}/versions",
    tag = "models",
    summary = "List a model's versions (newest first)",
    params(("model_name" = String, Path, description = "The model's name"), PageQuery),
    responses(
        (status = 200, description = "The versions", body = VersionList),
        (status = 404, description = "No such model in this account", body = ErrorEnvelope)
    )
)]
async fn list_versions(
    State(state): State<AppState>,
    caller: Caller,
    page: Pagination,
    Path(model_name): Path<String>,
) -> Result<Json<VersionList>, ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let account_id = &caller.account.account_id;
    let store = state.store.as_ref();
    models::require_model(store, account_id, &model_name).await?;
    let mut versions = models::list_versions(store, account_id, &model_name).await?;
    // Newest first, like every listing.
    versions.reverse();
    let active = deployments::active_deployments(store, account_id, &model_name).await?;
    let deployed = |v: &ModelVersion| active.iter().any(|a| a.version_number == v.number);
    let mut views = Vec::new();
    for version in page.slice(&versions) {
        let version = models::with_build_detail(state.blobs.as_ref(), version.clone()).await?;
        views.push(VersionView::new(&version, deployed(&version)));
    }
    Ok(Json(VersionList {
        versions: views,
        pagination: page.info(versions.len()),
    }))
}

#[utoipa::path(
    post,
    path = "/models/{model_name}/versions",
    tag = "models",
    summary = "Start a build of the next version",
    params(("model_name" = String, Path, description = "The model's name")),
    request_body = CreateVersionRequest,
    responses(
        (status = 202, description = "Queued", body = BuildAccepted),
        (status = 404, description = "No such model, dataset or upload in this account", body = ErrorEnvelope),
        (status = 409, description = "Another version was started at the same time", body = ErrorEnvelope),
        (status = 422, description = "The dataset or target cannot work", body = ErrorEnvelope),
        (status = 429, description = "Build limits", body = ErrorEnvelope)
    )
)]
async fn create_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
    crate::http::extract::ApiJson(body): crate::http::extract::ApiJson<CreateVersionRequest>,
) -> Result<(StatusCode, Json<BuildAccepted>), ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let spec = BuildSpec {
        intent: body.intent,
        dataset_id: body.dataset_id,
        upload_id: body.upload_id,
        target: body.target,
        metric: body.metric,
        time_budget_s: body.time_budget_s,
        max_iterations: body.max_iterations.map(|n| n as usize),
        input_schema: non_null(body.input_schema),
        output_schema: non_null(body.output_schema),
    };
    let build =
        builds::start_version(ports(&state), requester(&state, &caller), &model_name, spec).await?;
    Ok(accepted(&build))
}

/// A JSON body whose fields are all optional: an empty body is the default.
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    crate::http::extract::parse_json_body(body)
}

#[utoipa::path(
    post,
    path = "/models/{model_name}/retrain",
    tag = "models",
    summary = "Retrain: the next version, on new data if given",
    params(("model_name" = String, Path, description = "The model's name")),
    request_body(content = RetrainRequest, description = "Every field optional; an empty body retrains as before"),
    responses(
        (status = 202, description = "Queued", body = BuildAccepted),
        (status = 404, description = "No such model, dataset or upload in this account", body = ErrorEnvelope),
        (status = 409, description = "Another version was started at the same time", body = ErrorEnvelope),
        (status = 422, description = "The dataset or target cannot work", body = ErrorEnvelope),
        (status = 429, description = "Build limits", body = ErrorEnvelope)
    )
)]
async fn retrain(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<BuildAccepted>), ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let body: RetrainRequest = optional_body(&body)?;
    let spec = BuildSpec {
        intent: body.goal,
        dataset_id: body.dataset_id,
        upload_id: body.upload_id,
        metric: body.metric,
        max_iterations: body.max_iterations.map(|n| n as usize),
        time_budget_s: body.time_budget_s,
        ..BuildSpec::default()
    };
    let build =
        builds::start_version(ports(&state), requester(&state, &caller), &model_name, spec).await?;
    Ok(accepted(&build))
}

/// The version a path names, after checking the model exists (so an unknown model is a 404
/// about the model, not the version).
pub(super) async fn path_version(
    state: &AppState,
    caller: &Caller,
    model_name: &ModelName,
    model_version: &str,
) -> Result<ModelVersion, ApiError> {
    let account_id = &caller.account.account_id;
    models::require_model(state.store.as_ref(), account_id, model_name).await?;
    let reference = VersionRef::parse(model_version)?;
    let version =
        models::resolve_version(state.store.as_ref(), account_id, model_name, &reference).await?;
    let version = jobs::fail_if_abandoned(state.store.as_ref(), account_id, version).await?;
    Ok(models::with_build_detail(state.blobs.as_ref(), version).await?)
}

/// The version a path names and whether it is deployed.
async fn path_version_deployed(
    state: &AppState,
    caller: &Caller,
    model_name: &str,
    model_version: &str,
) -> Result<(ModelVersion, bool), ApiError> {
    let model_name = ModelName::existing(model_name)?;
    let version = path_version(state, caller, &model_name, model_version).await?;
    let deployed = deployments::is_deployed(
        state.store.as_ref(),
        &caller.account.account_id,
        &version.model_name,
        version.number,
    )
    .await?;
    Ok((version, deployed))
}

#[utoipa::path(
    get,
    path = "/models/{model_name}/{model_version}",
    tag = "models",
    summary = "A version",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest (the newest READY version)")),
    responses(
        (status = 200, description = "The version", body = VersionView),
        (status = 404, description = "No such model or version in this account", body = ErrorEnvelope)
    )
)]
async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
) -> Result<Json<VersionView>, ApiError> {
    let (version, deployed) =
        path_version_deployed(&state, &caller, &model_name, &model_version).await?;
    Ok(Json(VersionView::new(&version, deployed)))
}

#[utoipa::path(
    get,
    path = "/models/{model_name}/{model_version}/status",
    tag = "models",
    summary = "A version's build status",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest (the newest READY version)")),
    responses(
        (status = 200, description = "The build status", body = VersionStatusView),
        (status = 404, description = "No such model or version in this account", body = ErrorEnvelope)
    )
)]
async fn version_status(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
) -> Result<Json<VersionStatusView>, ApiError> {
    let (version, deployed) =
        path_version_deployed(&state, &caller, &model_name, &model_version).await?;
    Ok(Json(VersionStatusView::new(&version, deployed)))
}

fn not_ready(version: &ModelVersion, what: &str) -> ApiError {
    ApiError::conflict(format!(
        "Version {} of {:?} is {}; its {what} exists once it is READY. Poll GET \
         /models/{}/{}/status.",
        version.label(),
        version.model_name.as_str(),
        version.status.as_str(),
        version.model_name,
        version.label()
    ))
}

#[utoipa::path(
    get,
    path = "/models/{model_name}/{model_version}/describe",
    tag = "models",
    summary = "What the model is and how it was built",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest (the newest READY version)")),
    responses(
        (status = 200, description = "The description", body = DescribeView),
        (status = 404, description = "No such model or version in this account", body = ErrorEnvelope),
        (status = 409, description = "Not READY", body = ErrorEnvelope)
    )
)]
async fn describe(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
) -> Result<Json<DescribeView>, ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let version = path_version(&state, &caller, &model_name, &model_version).await?;
    DescribeView::new(&version)
        .map(Json)
        .ok_or_else(|| not_ready(&version, "description"))
}

#[utoipa::path(
    get,
    path = "/models/{model_name}/{model_version}/artifact",
    tag = "models",
    summary = "The ONNX file",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest (the newest READY version)")),
    responses(
        (status = 200, description = "The ONNX model, runnable in any ONNX runtime", content_type = "application/octet-stream", body = inline(FileBytes)),
        (status = 307, description = "On AWS, an artifact over 4 MiB (more than an API function can answer): `Location` is a presigned S3 URL of the file, valid 15 minutes", headers(("Location" = String, description = "The presigned URL"))),
        (status = 404, description = "No such model or version in this account", body = ErrorEnvelope),
        (status = 409, description = "Not READY", body = ErrorEnvelope)
    )
)]
async fn artifact(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let version = path_version(&state, &caller, &model_name, &model_version).await?;
    let trained = match (&version.status, &version.trained) {
        (VersionStatus::Ready, Some(t)) => t,
        _ => return Err(not_ready(&version, "artifact")),
    };
    let file_name = format!("{model_name}-{}.onnx", version.label());
    let size = state.blobs.size(&trained.artifact_key).await?;
    if size.is_some_and(|size| size > INLINE_ARTIFACT_MAX as u64)
        && let Some(url) = state
            .blobs
            .presign_get(&trained.artifact_key, ARTIFACT_LINK_TTL, &file_name)
            .await?
    {
        return Ok(super::redirect_to_presigned(&url));
    }
    let bytes = state.blobs.get(&trained.artifact_key).await?;
    let disposition = format!("attachment; filename=\"{file_name}\"");
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
