//! The legacy `/v0` surface (SPEC §8) for the published Plexe Python client: a thin
//! translation onto the same domain calls as the current API, behind the same layers
//! (authentication, rate limit, body cap, per-route scope, idempotency). Its routes belong to
//! three endpoint groups, as on AWS: `/v0/uploads*` to `datasets`, `/v0/models*` to `models`,
//! `POST /v0/models/{name}/{version}/infer` to `inference`. They are served at `/v0/...` only
//! (not at the bare path nor under `/v1`).
//!
//! What it translates: an upload's dataset id is its `upload_id`; `goal` is the intent and
//! `eval` the description (and the metric, when it names one); statuses are lowercase
//! (`pending`, `processing`, `completed`, `failed`); an infer answer is flat, with
//! `prediction`; a READY version is deployed to the `legacy` environment by its first infer.

use super::models::{ports, requester};
use super::versions;

/// `POST /v0/models/{name}/{version}/infer`: the inference group's part, which runs models.
#[cfg(feature = "serving")]
mod infer;
use crate::api::ErrorEnvelope;
use crate::api::legacy::{
    LegacyBuildAccepted, LegacyCreateRequest, LegacyDeletedUpload, LegacyDescribe, LegacyModel,
    LegacyModelDetail, LegacySeedCreateRequest, LegacyStatusView, LegacyUpload,
};
use crate::automl::Metric;
use crate::domain::api_keys::Scope;
use crate::domain::datasets::{self, DirectUpload, MAX_FILES_PER_UPLOAD};
use crate::domain::layout::ModelName;
use crate::domain::models::builds::{self, BuildSpec, NewModel};
use crate::domain::models::{ModelListing, summaries};
use crate::domain::uploads::UPLOAD_ID_PREFIX;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, Caller};
use crate::http::middleware::scope::Guard;
use crate::http::pagination::{MAX_LIMIT, Pagination};
use crate::http::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
#[cfg(feature = "serving")]
pub use infer::inference_routes;
use serde::Deserialize;
use serde_json::{Value, json};

/// The environment a legacy infer deploys a READY version to (the old API had no deploy).
pub const LEGACY_ENVIRONMENT: &str = "legacy";

/// `/v0/uploads*` (the `datasets` group).
pub fn datasets_routes(guard: &Guard) -> Router<AppState> {
    Router::new()
        .route("/v0/uploads", guard.scoped(Scope::Write, post(upload)))
        .route(
            "/v0/uploads/{upload_id}",
            guard.scoped(Scope::Write, delete(delete_upload)),
        )
}

/// `/v0/models*` but infer (the `models` group).
pub fn models_routes(guard: &Guard) -> Router<AppState> {
    Router::new()
        .route("/v0/models", guard.scoped(Scope::Read, get(list_models)))
        .route(
            "/v0/models/{model_name}",
            guard.scoped(Scope::Write, post(create_seed)),
        )
        .route(
            "/v0/models/{model_name}/create",
            guard.scoped(Scope::Write, post(create)),
        )
        .route(
            "/v0/models/{model_name}/{model_version}",
            guard.scoped(Scope::Read, get(get_version)),
        )
        .route(
            "/v0/models/{model_name}/{model_version}/status",
            guard.scoped(Scope::Read, get(status)),
        )
        .route(
            "/v0/models/{model_name}/{model_version}/describe",
            guard.scoped(Scope::Read, get(describe)),
        )
}

#[cfg(feature = "serving")]
/// This surface's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    upload,
    delete_upload,
    list_models,
    create_seed,
    create,
    get_version,
    status,
    describe,
    infer::infer
))]
pub struct LegacyApi;

#[utoipa::path(
    post,
    path = "/v0/uploads",
    tag = "legacy",
    summary = "Upload one or more files (multipart parts named `files`) as one dataset",
    description = "Several CSV (or Parquet) files with the same columns become one dataset, \
                   their rows in order; files whose columns differ are a 422. The dataset id is \
                   the upload id. At most 6 MB in all.",
    request_body(content = String, content_type = "multipart/form-data", description = "Parts named `files` (CSV or Parquet)"),
    responses(
        (status = 201, description = "The dataset made of the files", body = LegacyUpload),
        (status = 413, description = "Over 6 MB in all", body = ErrorEnvelope),
        (status = 415, description = "Not CSV or Parquet", body = ErrorEnvelope),
        (status = 422, description = "A file is unusable, or the files' columns differ", body = ErrorEnvelope)
    )
)]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> Result<(StatusCode, Json<LegacyUpload>), ApiError> {
    let mut multipart = Multipart::from_request(req, &state)
        .await
        .map_err(|r| ApiError::unreadable_body(r.status(), r.body_text()))?;
    let mut files = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::unreadable_body(e.status(), e.body_text()))?
    {
        if field.name() != Some("files") {
            // Only files make a dataset; a part by another name is a mistake worth saying.
            return Err(ApiError::validation(
                format!(
                    "Unknown multipart part {:?}: send each file as a part named 'files'.",
                    field.name().unwrap_or("")
                ),
                "files",
            ));
        }
        if files.len() == MAX_FILES_PER_UPLOAD {
            return Err(ApiError::validation(
                format!("At most {MAX_FILES_PER_UPLOAD} files make one dataset."),
                "files",
            ));
        }
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let bytes: Bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::unreadable_body(e.status(), e.body_text()))?;
        let content_type =
            content_type.or_else(|| legacy_default_type(file_name.as_deref(), &bytes));
        files.push(DirectUpload {
            bytes,
            content_type,
            file_name,
            name: None,
        });
    }
    if files.is_empty() {
        return Err(ApiError::invalid_request(
            "The multipart body has no 'files' part: send each file as a part named 'files'.",
        )
        .with_details(json!({ "field": "files" })));
    }
    let count = files.len();
    let dataset = datasets::create_from_files(
        state.store.as_ref(),
        state.blobs.as_ref(),
        &caller.account.account_id,
        files,
    )
    .await?;
    tracing::info!(dataset_id = %dataset.dataset_id, files = count, rows = dataset.row_count, "legacy upload");
    Ok((
        StatusCode::CREATED,
        Json(LegacyUpload {
            upload_id: dataset.dataset_id.clone(),
            dataset_id: dataset.dataset_id,
            name: dataset.name,
            row_count: dataset.row_count as u64,
            columns: dataset.columns.iter().map(|c| c.name.clone()).collect(),
        }),
    ))
}

/// The legacy API took CSV files: an untyped part that is not named `.parquet` and does not
/// start with Parquet's magic bytes is read as CSV (a part that is not CSV is then a 422 that
/// says why), rather than refused as a file of unknown format.
fn legacy_default_type(file_name: Option<&str>, bytes: &[u8]) -> Option<String> {
    let named_parquet = file_name.is_some_and(|n| n.to_ascii_lowercase().ends_with(".parquet"));
    (!named_parquet && !bytes.starts_with(b"PAR1")).then(|| "text/csv".to_owned())
}

#[utoipa::path(
    delete,
    path = "/v0/uploads/{upload_id}",
    tag = "legacy",
    summary = "Delete an upload (its dataset); models built from it keep working",
    params(("upload_id" = String, Path, description = "What POST /v0/uploads answered (ds_…)")),
    responses(
        (status = 200, description = "Deleted", body = LegacyDeletedUpload),
        (status = 404, description = "Not in this account", body = ErrorEnvelope)
    )
)]
async fn delete_upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(upload_id): Path<String>,
) -> Result<Json<LegacyDeletedUpload>, ApiError> {
    let dataset = datasets::delete_dataset(
        state.store.as_ref(),
        state.blobs.as_ref(),
        &caller.account.account_id,
        &upload_id,
    )
    .await?;
    Ok(Json(LegacyDeletedUpload {
        upload_id: dataset.dataset_id,
        deleted: true,
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Models to show, 1 to 100 (default 100), newest first.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// Models to skip, 0 to 1,000,000,000 (default 0).
    #[param(value_type = Option<u64>, minimum = 0, maximum = 1_000_000_000)]
    offset: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v0/models",
    tag = "legacy",
    summary = "The account's models (each as its newest version), newest first",
    params(ListQuery),
    responses((status = 200, description = "A JSON array", body = Vec<LegacyModel>))
)]
async fn list_models(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<LegacyModel>>, ApiError> {
    let pairs = [
        (
            "limit",
            query.limit.unwrap_or_else(|| MAX_LIMIT.to_string()),
        ),
        ("offset", query.offset.unwrap_or_else(|| "0".into())),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let page = Pagination::from_pairs(&pairs)?;
    let (models, _) = summaries::list_summaries(
        state.store.as_ref(),
        state.blobs.as_ref(),
        &caller.account.account_id,
        ModelListing {
            status: None,
            by_name: false,
            ascending: false,
            limit: page.limit,
            offset: page.offset,
        },
    )
    .await?;
    Ok(Json(
        models.iter().filter_map(LegacyModel::of_summary).collect(),
    ))
}

/// The build both create routes start: a new model from the upload's dataset.
async fn start(
    state: &AppState,
    caller: &Caller,
    model_name: &str,
    upload_id: String,
    intent: String,
    description: Option<String>,
    metric: Option<String>,
) -> Result<(StatusCode, Json<LegacyBuildAccepted>), ApiError> {
    let model_name = ModelName::new(model_name)?;
    // The dataset id is the upload id here; an upload session's id (`upl_…`) works too.
    let (dataset_id, session_id) = if upload_id.starts_with(&format!("{UPLOAD_ID_PREFIX}_")) {
        (None, Some(upload_id))
    } else {
        (Some(upload_id), None)
    };
    let build = builds::start_model(
        ports(state),
        requester(state, caller),
        &model_name,
        NewModel {
            name: None,
            description,
            tags: Value::Null,
        },
        BuildSpec {
            intent: Some(intent),
            dataset_id,
            upload_id: session_id,
            metric,
            ..BuildSpec::default()
        },
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(LegacyBuildAccepted::from(&build)),
    ))
}

fn upload_id_given(upload_id: &str) -> Result<(), ApiError> {
    if upload_id.trim().is_empty() {
        return Err(ApiError::validation(
            "upload_id is required: upload the data with POST /v0/uploads first",
            "upload_id",
        ));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/v0/models/{model_name}/create",
    tag = "legacy",
    summary = "Start a build of a new model (what the Python client's `build` sends)",
    params(("model_name" = String, Path, description = "The new model's name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    request_body = LegacyCreateRequest,
    responses(
        (status = 202, description = "Queued: poll the status", body = LegacyBuildAccepted),
        (status = 404, description = "No such upload in this account", body = ErrorEnvelope),
        (status = 409, description = "The name exists", body = ErrorEnvelope),
        (status = 422, description = "The data or the goal cannot work (details name the candidate columns)", body = ErrorEnvelope),
        (status = 429, description = "concurrency_limit_exceeded or rate_limit_exceeded", body = ErrorEnvelope)
    )
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
    ApiJson(body): ApiJson<LegacyCreateRequest>,
) -> Result<(StatusCode, Json<LegacyBuildAccepted>), ApiError> {
    upload_id_given(&body.upload_id)?;
    let eval = body.eval.filter(|e| !e.trim().is_empty());
    let metric = eval
        .as_deref()
        .and_then(Metric::named_in)
        .map(|m| m.name().to_owned());
    start(
        &state,
        &caller,
        &model_name,
        body.upload_id,
        body.goal,
        eval,
        metric,
    )
    .await
    // What the client sent was `goal` and `eval`.
    .map_err(|e| {
        e.with_field_renamed("intent", "goal")
            .with_field_renamed("description", "eval")
    })
}

#[utoipa::path(
    post,
    path = "/v0/models/{model_name}",
    tag = "legacy",
    summary = "Start a build of a new model (the seed API's request shape)",
    params(("model_name" = String, Path, description = "The new model's name", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$")),
    request_body = LegacySeedCreateRequest,
    responses(
        (status = 202, description = "Queued: poll the status", body = LegacyBuildAccepted),
        (status = 404, description = "No such upload in this account", body = ErrorEnvelope),
        (status = 409, description = "The name exists", body = ErrorEnvelope),
        (status = 422, description = "The data or the intent cannot work", body = ErrorEnvelope),
        (status = 429, description = "concurrency_limit_exceeded or rate_limit_exceeded", body = ErrorEnvelope)
    )
)]
async fn create_seed(
    State(state): State<AppState>,
    caller: Caller,
    Path(model_name): Path<String>,
    ApiJson(body): ApiJson<LegacySeedCreateRequest>,
) -> Result<(StatusCode, Json<LegacyBuildAccepted>), ApiError> {
    upload_id_given(&body.upload_id)?;
    let metric = body.metric.filter(|m| !m.trim().is_empty());
    start(
        &state,
        &caller,
        &model_name,
        body.upload_id,
        body.intent,
        None,
        metric,
    )
    .await
}

#[utoipa::path(
    get,
    path = "/v0/models/{model_name}/{model_version}",
    tag = "legacy",
    summary = "A version, with its schemas as {\"properties\": …}",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest")),
    responses(
        (status = 200, description = "The version", body = LegacyModelDetail),
        (status = 404, description = "No such model or version in this account", body = ErrorEnvelope)
    )
)]
async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
) -> Result<Json<LegacyModelDetail>, ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let version = versions::path_version(&state, &caller, &model_name, &model_version).await?;
    Ok(Json(LegacyModelDetail::from(&version)))
}

#[utoipa::path(
    get,
    path = "/v0/models/{model_name}/{model_version}/status",
    tag = "legacy",
    summary = "A build's status: pending, processing, completed or failed",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest")),
    responses(
        (status = 200, description = "The status", body = LegacyStatusView),
        (status = 404, description = "No such model or version in this account", body = ErrorEnvelope)
    )
)]
async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
) -> Result<Json<LegacyStatusView>, ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let version = versions::path_version(&state, &caller, &model_name, &model_version).await?;
    Ok(Json(LegacyStatusView::from(&version)))
}

#[utoipa::path(
    get,
    path = "/v0/models/{model_name}/{model_version}/describe",
    tag = "legacy",
    summary = "What the model is: description, features, target, performance",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest")),
    responses(
        (status = 200, description = "The description", body = LegacyDescribe),
        (status = 404, description = "No such model or version in this account", body = ErrorEnvelope),
        (status = 409, description = "Not completed", body = ErrorEnvelope)
    )
)]
async fn describe(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
) -> Result<Json<LegacyDescribe>, ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let version = versions::path_version(&state, &caller, &model_name, &model_version).await?;
    LegacyDescribe::new(&version).map(Json).ok_or_else(|| {
        ApiError::conflict(format!(
            "Version {} of {:?} is {}; its description exists once it is completed. Poll GET \
             /v0/models/{}/{}/status.",
            version.label(),
            model_name.as_str(),
            version.status.as_str(),
            model_name,
            version.label()
        ))
    })
}

#[cfg(all(test, feature = "serving"))]
mod tests {
    use super::*;
    use utoipa::OpenApi as _;

    #[test]
    fn openapi_describes_every_route() {
        let doc = LegacyApi::openapi();
        for (path, methods) in [
            ("/v0/uploads", &["post"][..]),
            ("/v0/uploads/{upload_id}", &["delete"]),
            ("/v0/models", &["get"]),
            ("/v0/models/{model_name}", &["post"]),
            ("/v0/models/{model_name}/create", &["post"]),
            ("/v0/models/{model_name}/{model_version}", &["get"]),
            ("/v0/models/{model_name}/{model_version}/status", &["get"]),
            ("/v0/models/{model_name}/{model_version}/describe", &["get"]),
            ("/v0/models/{model_name}/{model_version}/infer", &["post"]),
        ] {
            let item = doc
                .paths
                .paths
                .get(path)
                .unwrap_or_else(|| panic!("{path} missing from the OpenAPI document"));
            let json = serde_json::to_value(item).expect("path item as JSON");
            for method in methods {
                assert!(json.get(method).is_some(), "{method} {path} missing");
            }
        }
    }
}
