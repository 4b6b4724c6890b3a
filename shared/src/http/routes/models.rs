//! The `models` group (one Lambda on AWS): models, versions, builds, build logs, deployments.
//! Predictions are the `inference` group.

use crate::domain::api_keys::Scope;
use crate::domain::deployments::{self, ActiveDeployment, DeployRequest};
use crate::domain::models::builds::{
    self, BuildSpec, NewModel, Ports, Requester, StartBuildError, StartedBuild,
};
use crate::domain::models::{
    self, Model, ModelPatch, ModelVersion, VersionRef, VersionStatus, deletion, jobs, logs,
    version_label,
};
use crate::domain::{DomainError, account_pk, decode};
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::{ApiJson, ApiQuery, Caller};
use crate::http::middleware::scope::Guard;
use crate::http::pagination::Pagination;
use crate::http::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn routes(guard: &Guard) -> Router<AppState> {
    Router::new()
        .route("/models", guard.scoped(Scope::Read, get(list_models)))
        .route(
            "/models/build-logs",
            guard.scoped(Scope::Read, get(build_logs)),
        )
        .route(
            "/models/{model_name}",
            guard
                .scoped(Scope::Read, get(get_model))
                .merge(guard.scoped(
                    Scope::Write,
                    post(create_model).patch(patch_model).delete(delete_model),
                )),
        )
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

fn ports(state: &AppState) -> Ports<'_> {
    Ports {
        store: state.store.as_ref(),
        blobs: state.blobs.as_ref(),
        queue: state.queue.as_ref(),
    }
}

fn requester<'a>(state: &'a AppState, caller: &'a Caller) -> Requester<'a> {
    Requester {
        account: &caller.account,
        key_id: &caller.key.key_id,
        limits: &state.config.limits,
    }
}

fn accepted(build: &StartedBuild) -> (StatusCode, Json<Value>) {
    (StatusCode::ACCEPTED, Json(build.to_json()))
}

/// Where to call a deployed version.
fn endpoint(model_name: &str, number: u32) -> String {
    format!("/v1/models/{model_name}/{}/infer", version_label(number))
}

/// A model as `GET /models/{name}` and the list show it: its newest version's status, its
/// newest READY version's metrics and schemas, and whether (and where) it is deployed.
fn model_json(model: &Model, versions: &[&ModelVersion], active: &[ActiveDeployment]) -> Value {
    let latest = versions.iter().max_by_key(|v| v.number);
    let ready = versions
        .iter()
        .filter(|v| v.status == VersionStatus::Ready)
        .max_by_key(|v| v.number);
    let trained = ready.and_then(|v| v.trained.as_ref());
    let serving = active
        .iter()
        .find(|a| a.environment == deployments::DEFAULT_ENVIRONMENT)
        .or_else(|| active.first());
    json!({
        "model_name": model.model_name,
        "name": model.name,
        "intent": model.intent,
        "description": model.description,
        "status": latest.map(|v| v.status.as_str()),
        "latest_version": latest.map(|v| v.label()),
        "ready_version": ready.map(|v| v.label()),
        "deployment_status": serving.map(|_| "DEPLOYED"),
        "endpoint": serving.map(|a| endpoint(&model.model_name, a.version_number)),
        "metrics": trained.map(|t| t.performance_metrics.clone()),
        "dataset_id": model.dataset_id,
        "input_schema": trained.map(|t| t.input_schema.clone()).or_else(|| model.input_schema.clone()),
        "output_schema": trained.map(|t| t.output_schema.clone()).or_else(|| model.output_schema.clone()),
        "tags": model.tags,
        "version_count": model.version_count,
        "created_at": model.created_at,
        "updated_at": model.updated_at,
        "created_by": model.created_by,
    })
}

#[derive(Debug, Deserialize)]
struct ListModelsQuery {
    status: Option<String>,
    sort_by: Option<String>,
    sort_dir: Option<String>,
}

#[utoipa::path(
    get,
    path = "/models",
    tag = "models",
    summary = "List models",
    params(("status" = Option<String>, Query, description = "PENDING, BUILDING, READY or ERROR"), ("sort_by" = Option<String>, Query, description = "created_at (default) or name"), ("sort_dir" = Option<String>, Query, description = "asc or desc"), ("limit" = Option<u32>, Query, description = "1-100, default 20"), ("offset" = Option<u32>, Query, description = "default 0")),
    responses((status = 200, description = "{models, pagination}"), (status = 400, description = "Bad query parameter"))
)]
async fn list_models(
    State(state): State<AppState>,
    caller: Caller,
    page: Pagination,
    ApiQuery(query): ApiQuery<ListModelsQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(VersionStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_request(format!(
                "status must be PENDING, BUILDING, READY or ERROR (got {s:?})"
            ))
            .with_details(json!({"field": "status"}))
        })?),
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
    let account_id = &caller.account.account_id;
    let store = state.store.as_ref();
    let mut all = models::list_models(store, account_id).await?;
    let versions = models::list_all_versions(store, account_id).await?;
    let mut by_model: HashMap<&str, Vec<&ModelVersion>> = HashMap::new();
    for v in &versions {
        by_model.entry(v.model_name.as_str()).or_default().push(v);
    }
    let active: Vec<ActiveDeployment> =
        models::query_all(store, &account_pk(account_id), "DEPENV#", true)
            .await?
            .iter()
            .map(decode)
            .collect::<Result<_, DomainError>>()?;
    let status_of = |m: &Model| {
        by_model
            .get(m.model_name.as_str())
            .and_then(|vs| vs.iter().max_by_key(|v| v.number).map(|v| v.status))
    };
    if let Some(wanted) = status {
        all.retain(|m| status_of(m) == Some(wanted));
    }
    if by_name {
        all.sort_by(|a, b| a.model_name.cmp(&b.model_name));
    } else {
        all.sort_by(|a, b| {
            (a.created_at.as_str(), a.model_name.as_str())
                .cmp(&(b.created_at.as_str(), b.model_name.as_str()))
        });
    }
    if !ascending {
        all.reverse();
    }
    let total = all.len();
    let items = all
        .iter()
        .skip(page.offset)
        .take(page.limit)
        .map(|m| {
            let vs = by_model
                .get(m.model_name.as_str())
                .cloned()
                .unwrap_or_default();
            let act: Vec<ActiveDeployment> = active
                .iter()
                .filter(|a| a.model_name == m.model_name)
                .cloned()
                .collect();
            model_json(m, &vs, &act)
        })
        .collect();
    Ok(Json(page.page_body("models", items, total)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateModelBody {
    intent: String,
    dataset_id: Option<String>,
    upload_id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    input_schema: Option<Value>,
    output_schema: Option<Value>,
    metric: Option<String>,
    #[serde(default)]
    tags: Value,
    target: Option<String>,
    time_budget_s: Option<f64>,
    max_iterations: Option<usize>,
}

#[utoipa::path(
    post,
    path = "/models/{model_name}",
    tag = "models",
    summary = "Start a build of a new model",
    params(("model_name" = String, Path, description = "The model's name")),
    request_body(content_type = "application/json", description = "intent (required), dataset_id or upload_id (required), name, description, input_schema, output_schema, metric, tags, target, time_budget_s (default 60), max_iterations"),
    responses((status = 202, description = "{job_id, status: PENDING, model_name, model_version: v1.0, created_at}"), (status = 404, description = "No such dataset"), (status = 409, description = "The name exists"), (status = 422, description = "The dataset or target cannot work (details name the candidate columns)"), (status = 429, description = "concurrency_limit_exceeded or rate_limit_exceeded"))
)]
async fn create_model(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
    ApiJson(body): ApiJson<CreateModelBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let spec = BuildSpec {
        intent: Some(body.intent),
        dataset_id: body.dataset_id,
        upload_id: body.upload_id,
        target: body.target,
        metric: body.metric,
        time_budget_s: body.time_budget_s,
        max_iterations: body.max_iterations,
        input_schema: body.input_schema,
        output_schema: body.output_schema,
    };
    let new = NewModel {
        name: body.name,
        description: body.description,
        tags: body.tags,
    };
    let build = builds::start_model(
        ports(&state),
        requester(&state, &caller),
        &model_name,
        new,
        spec,
    )
    .await?;
    Ok(accepted(&build))
}

#[utoipa::path(
    get,
    path = "/models/{model_name}",
    tag = "models",
    summary = "A model",
    params(("model_name" = String, Path, description = "The model's name")),
    responses((status = 200, description = "The model: status, deployment_status, endpoint, metrics, schemas, tags, …"), (status = 404, description = "No such model or version in this account"))
)]
async fn get_model(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let account_id = &caller.account.account_id;
    let store = state.store.as_ref();
    let (model, _) = models::require_model(store, account_id, &model_name).await?;
    let mut versions = models::list_versions(store, account_id, &model_name).await?;
    // The model's status is its newest version's: make sure that one is not an abandoned build.
    if let Some(latest) = versions.pop() {
        versions.push(jobs::fail_if_abandoned(store, account_id, latest).await?);
    }
    let active = deployments::active_deployments(store, account_id, &model_name).await?;
    let refs: Vec<&ModelVersion> = versions.iter().collect();
    Ok(Json(model_json(&model, &refs, &active)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchModelBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
    tags: Option<Value>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D>(d: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(d).map(Some)
}

#[utoipa::path(
    patch,
    path = "/models/{model_name}",
    tag = "models",
    summary = "Change a model's name, description or tags",
    params(("model_name" = String, Path, description = "The model's name")),
    request_body(content_type = "application/json", description = "name, description, tags"),
    responses((status = 200, description = "The model"), (status = 404, description = "No such model or version in this account"))
)]
async fn patch_model(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
    ApiJson(body): ApiJson<PatchModelBody>,
) -> Result<Json<Value>, ApiError> {
    let account_id = &caller.account.account_id;
    let store = state.store.as_ref();
    let patch = ModelPatch {
        name: body.name,
        description: body.description,
        tags: body.tags,
    };
    let model = models::patch_model(store, account_id, &model_name, &patch).await?;
    let versions = models::list_versions(store, account_id, &model_name).await?;
    let active = deployments::active_deployments(store, account_id, &model_name).await?;
    let refs: Vec<&ModelVersion> = versions.iter().collect();
    Ok(Json(model_json(&model, &refs, &active)))
}

#[utoipa::path(
    delete,
    path = "/models/{model_name}",
    tag = "models",
    summary = "Delete a model with its versions, deployments and artifacts; cancels builds in flight",
    params(("model_name" = String, Path, description = "The model's name")),
    responses((status = 200, description = "Deleted"), (status = 404, description = "No such model or version in this account"))
)]
async fn delete_model(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    deletion::delete_model(
        state.store.as_ref(),
        state.blobs.as_ref(),
        &caller.account.account_id,
        &model_name,
    )
    .await?;
    Ok(Json(json!({ "model_name": model_name, "deleted": true })))
}

#[utoipa::path(
    get,
    path = "/models/{model_name}/versions",
    tag = "models",
    summary = "List a model's versions (newest first)",
    params(("model_name" = String, Path, description = "The model's name"), ("limit" = Option<u32>, Query, description = "1-100, default 20"), ("offset" = Option<u32>, Query, description = "default 0")),
    responses((status = 200, description = "{versions, pagination}"), (status = 404, description = "No such model or version in this account"))
)]
async fn list_versions(
    State(state): State<AppState>,
    caller: Caller,
    page: Pagination,
    Path(model_name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let account_id = &caller.account.account_id;
    let store = state.store.as_ref();
    models::require_model(store, account_id, &model_name).await?;
    let mut versions = models::list_versions(store, account_id, &model_name).await?;
    // Newest first, like every listing.
    versions.reverse();
    let active = deployments::active_deployments(store, account_id, &model_name).await?;
    let total = versions.len();
    let items = versions
        .iter()
        .skip(page.offset)
        .take(page.limit)
        .map(|v| version_json(v, &active))
        .collect();
    Ok(Json(page.page_body("versions", items, total)))
}

fn version_json(version: &ModelVersion, active: &[ActiveDeployment]) -> Value {
    let mut body = version.to_json();
    let deployed = active.iter().any(|a| a.version_number == version.number);
    body["deployment_status"] = if deployed {
        json!("DEPLOYED")
    } else {
        Value::Null
    };
    body["endpoint"] = if deployed {
        json!(endpoint(&version.model_name, version.number))
    } else {
        Value::Null
    };
    body
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateVersionBody {
    dataset_id: Option<String>,
    upload_id: Option<String>,
    intent: Option<String>,
    target: Option<String>,
    metric: Option<String>,
    input_schema: Option<Value>,
    output_schema: Option<Value>,
    time_budget_s: Option<f64>,
    max_iterations: Option<usize>,
}

#[utoipa::path(
    post,
    path = "/models/{model_name}/versions",
    tag = "models",
    summary = "Start a build of the next version",
    params(("model_name" = String, Path, description = "The model's name")),
    request_body(content_type = "application/json", description = "dataset_id or upload_id, intent, target, metric, input_schema, output_schema, time_budget_s, max_iterations (unset: as before)"),
    responses((status = 202, description = "{job_id, status, model_name, model_version, created_at}"), (status = 404, description = "No such model or version in this account"), (status = 422, description = "The dataset or target cannot work"), (status = 429, description = "Build limits"))
)]
async fn create_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
    ApiJson(body): ApiJson<CreateVersionBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let spec = BuildSpec {
        intent: body.intent,
        dataset_id: body.dataset_id,
        upload_id: body.upload_id,
        target: body.target,
        metric: body.metric,
        time_budget_s: body.time_budget_s,
        max_iterations: body.max_iterations,
        input_schema: body.input_schema,
        output_schema: body.output_schema,
    };
    let build =
        builds::start_version(ports(&state), requester(&state, &caller), &model_name, spec).await?;
    Ok(accepted(&build))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetrainBody {
    upload_id: Option<String>,
    dataset_id: Option<String>,
    goal: Option<String>,
    metric: Option<String>,
    max_iterations: Option<usize>,
    time_budget_s: Option<f64>,
}

#[utoipa::path(
    post,
    path = "/models/{model_name}/retrain",
    tag = "models",
    summary = "Retrain: the next version, on new data if given",
    params(("model_name" = String, Path, description = "The model's name")),
    request_body(content_type = "application/json", description = "upload_id or dataset_id, goal, metric, max_iterations, time_budget_s (all optional)"),
    responses((status = 202, description = "{job_id, status, model_name, model_version, created_at}"), (status = 404, description = "No such model or version in this account"), (status = 422, description = "The dataset or target cannot work"), (status = 429, description = "Build limits"))
)]
async fn retrain(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Every field is optional, so an empty body means "retrain as before".
    let body: RetrainBody = if body.iter().all(u8::is_ascii_whitespace) {
        RetrainBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                ErrorCode::ValidationError,
                format!("The JSON body does not have the expected shape: {e}"),
            )
        })?
    };
    let spec = BuildSpec {
        intent: body.goal,
        dataset_id: body.dataset_id,
        upload_id: body.upload_id,
        metric: body.metric,
        max_iterations: body.max_iterations,
        time_budget_s: body.time_budget_s,
        ..BuildSpec::default()
    };
    let build =
        builds::start_version(ports(&state), requester(&state, &caller), &model_name, spec).await?;
    Ok(accepted(&build))
}

/// The version a path names, after checking the model exists (so an unknown model is a 404
/// about the model, not the version).
async fn path_version(
    state: &AppState,
    caller: &Caller,
    model_name: &str,
    model_version: &str,
) -> Result<ModelVersion, ApiError> {
    let account_id = &caller.account.account_id;
    models::require_model(state.store.as_ref(), account_id, model_name).await?;
    let reference = VersionRef::parse(model_version)?;
    let version =
        models::resolve_version(state.store.as_ref(), account_id, model_name, &reference).await?;
    Ok(jobs::fail_if_abandoned(state.store.as_ref(), account_id, version).await?)
}

#[utoipa::path(
    get,
    path = "/models/{model_name}/{model_version}",
    tag = "models",
    summary = "A version",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest (the newest READY version)")),
    responses((status = 200, description = "The version"), (status = 404, description = "No such model or version in this account"))
)]
async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let version = path_version(&state, &caller, &model_name, &model_version).await?;
    let active = deployments::active_deployments(
        state.store.as_ref(),
        &caller.account.account_id,
        &model_name,
    )
    .await?;
    Ok(Json(version_json(&version, &active)))
}

#[utoipa::path(
    get,
    path = "/models/{model_name}/{model_version}/status",
    tag = "models",
    summary = "A version's build status",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest (the newest READY version)")),
    responses((status = 200, description = "{status, deployment_status, build_progress, last_updated, result?, error?}"), (status = 404, description = "No such model or version in this account"))
)]
async fn version_status(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let version = path_version(&state, &caller, &model_name, &model_version).await?;
    let deployed = deployments::is_deployed(
        state.store.as_ref(),
        &caller.account.account_id,
        &model_name,
        version.number,
    )
    .await?;
    let mut body = json!({
        "model_name": model_name,
        "model_version": version.label(),
        "job_id": version.job_id,
        "status": version.status.as_str(),
        "deployment_status": if deployed { json!("DEPLOYED") } else { Value::Null },
        "build_progress": version.build_progress,
        "last_updated": version.updated_at,
    });
    if let Some(result) = version.result_json() {
        body["result"] = result;
    }
    if let Some(error) = &version.error {
        body["error"] = json!({ "code": error.code, "message": error.message });
    }
    Ok(Json(body))
}

fn require_ready(version: &ModelVersion, what: &str) -> Result<(), ApiError> {
    if version.status == VersionStatus::Ready && version.trained.is_some() {
        return Ok(());
    }
    Err(ApiError::conflict(format!(
        "Version {} of {:?} is {}; its {what} exists once it is READY. Poll GET \
         /models/{}/{}/status.",
        version.label(),
        version.model_name,
        version.status.as_str(),
        version.model_name,
        version.label()
    )))
}

#[utoipa::path(
    get,
    path = "/models/{model_name}/{model_version}/describe",
    tag = "models",
    summary = "What the model is and how it was built",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest (the newest READY version)")),
    responses((status = 200, description = "{description, input_schema, output_schema, performance_metrics, training_info: {dataset_size, training_time_minutes, algorithm, feature_importance, leaderboard}}"), (status = 404, description = "No such model or version in this account"), (status = 409, description = "Not READY"))
)]
async fn describe(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let version = path_version(&state, &caller, &model_name, &model_version).await?;
    require_ready(&version, "description")?;
    let Some(t) = &version.trained else {
        return Err(ApiError::internal("READY version without a build record"));
    };
    Ok(Json(json!({
        "model_name": model_name,
        "model_version": version.label(),
        "status": version.status.as_str(),
        "intent": version.intent,
        "description": t.description,
        "target": t.target,
        "task": t.task,
        "labels": t.labels,
        "positive_class": t.positive_class,
        "input_schema": t.input_schema,
        "output_schema": t.output_schema,
        "performance_metrics": t.performance_metrics,
        "training_info": {
            "dataset_id": version.dataset_id,
            "dataset_size": t.dataset_size,
            "train_rows": t.train_rows,
            "holdout_rows": t.holdout_rows,
            "training_time_minutes": t.training_seconds / 60.0,
            "algorithm": t.algorithm,
            "metric": t.metric_name,
            "validation_score": t.validation_score,
            "feature_importance": t.feature_importance,
            "leaderboard": t.leaderboard,
            "dropped_columns": t.dropped_columns,
        },
        "artifact": {
            "format": "onnx",
            "size_bytes": t.artifact_bytes,
            "download": format!("/v1/models/{model_name}/{}/artifact", version.label()),
        },
    })))
}

#[utoipa::path(
    get,
    path = "/models/{model_name}/{model_version}/artifact",
    tag = "models",
    summary = "The ONNX file",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest (the newest READY version)")),
    responses((status = 200, description = "application/octet-stream: the ONNX model"), (status = 404, description = "No such model or version in this account"), (status = 409, description = "Not READY"))
)]
async fn artifact(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let version = path_version(&state, &caller, &model_name, &model_version).await?;
    require_ready(&version, "artifact")?;
    let Some(t) = &version.trained else {
        return Err(ApiError::internal("READY version without a build record"));
    };
    let bytes = state.blobs.get(&t.artifact_key).await?;
    let disposition = format!(
        "attachment; filename=\"{model_name}-{}.onnx\"",
        version.label()
    );
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

#[derive(Debug, Deserialize)]
struct BuildLogsQuery {
    job_id: Option<String>,
}

#[utoipa::path(
    get,
    path = "/models/build-logs",
    tag = "models",
    summary = "Build log lines",
    params(("job_id" = Option<String>, Query, description = "Only this build job"), ("limit" = Option<u32>, Query, description = "1-100, default 20"), ("offset" = Option<u32>, Query, description = "default 0")),
    responses((status = 200, description = "{logs: [{job_id, model_name, timestamp, level, message}], pagination}"), (status = 404, description = "No such job"))
)]
async fn build_logs(
    State(state): State<AppState>,
    caller: Caller,
    page: Pagination,
    ApiQuery(query): ApiQuery<BuildLogsQuery>,
) -> Result<Json<Value>, ApiError> {
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
    let total = lines.len();
    let items = lines
        .iter()
        .skip(page.offset)
        .take(page.limit)
        .map(|l| json!(l))
        .collect();
    Ok(Json(page.page_body("logs", items, total)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    environment: Option<String>,
    replicas: Option<u32>,
    auto_scale: Option<bool>,
    model_version: Option<String>,
}

#[utoipa::path(
    post,
    path = "/models/{model_name}/deploy",
    tag = "models",
    summary = "Deploy a READY version (replaces the environment's active deployment)",
    params(("model_name" = String, Path, description = "The model's name")),
    request_body(content_type = "application/json", description = "environment (default production), replicas, auto_scale, model_version (default: latest READY)"),
    responses((status = 201, description = "{deployment_id, model_name, model_version, status: ACTIVE, endpoint, environment, replicas, auto_scale, created_at}"), (status = 404, description = "No such model or version in this account"), (status = 409, description = "The version is not READY"))
)]
async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: DeployBody = if body.iter().all(u8::is_ascii_whitespace) {
        DeployBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                ErrorCode::ValidationError,
                format!("The JSON body does not have the expected shape: {e}"),
            )
        })?
    };
    let deployment = deployments::deploy(
        state.store.as_ref(),
        &caller.account.account_id,
        &model_name,
        DeployRequest {
            environment: body.environment,
            replicas: body.replicas,
            auto_scale: body.auto_scale,
            model_version: body.model_version,
        },
    )
    .await?;
    tracing::info!(deployment_id = %deployment.deployment_id, model_name, "deployed");
    Ok((StatusCode::CREATED, Json(deployment.to_json())))
}

#[utoipa::path(
    get,
    path = "/models/{model_name}/deployments",
    tag = "models",
    summary = "List a model's deployments",
    params(("model_name" = String, Path, description = "The model's name"), ("limit" = Option<u32>, Query, description = "1-100, default 20"), ("offset" = Option<u32>, Query, description = "default 0")),
    responses((status = 200, description = "{deployments, pagination}"), (status = 404, description = "No such model or version in this account"))
)]
async fn list_deployments(
    State(state): State<AppState>,
    caller: Caller,
    page: Pagination,
    Path(model_name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let all = deployments::list_deployments(
        state.store.as_ref(),
        &caller.account.account_id,
        &model_name,
    )
    .await?;
    let total = all.len();
    let items = all
        .iter()
        .skip(page.offset)
        .take(page.limit)
        .map(|d| d.to_json())
        .collect();
    Ok(Json(page.page_body("deployments", items, total)))
}

#[utoipa::path(
    delete,
    path = "/models/{model_name}/deployments/{deployment_id}",
    tag = "models",
    summary = "Undeploy",
    params(("model_name" = String, Path, description = "The model's name"), ("deployment_id" = String, Path, description = "dep_…")),
    responses((status = 200, description = "The deployment, status UNDEPLOYED"), (status = 404, description = "No such model or version in this account"))
)]
async fn undeploy(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, deployment_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let deployment = deployments::undeploy(
        state.store.as_ref(),
        &caller.account.account_id,
        &model_name,
        &deployment_id,
    )
    .await?;
    Ok(Json(deployment.to_json()))
}

/// This group's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_models,
    build_logs,
    create_model,
    get_model,
    patch_model,
    delete_model,
    list_versions,
    create_version,
    retrain,
    deploy,
    list_deployments,
    undeploy,
    get_version,
    version_status,
    describe,
    artifact
))]
pub struct ModelsApi;
