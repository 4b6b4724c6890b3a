//! Batch prediction jobs ([`crate::domain::prediction_jobs`]): create one for a deployed
//! version over an uploaded CSV, poll it, download its result. On AWS these routes are the
//! inference function's; the jobs run on the task function.

use super::inference::served_model;
use crate::api::ErrorEnvelope;
use crate::api::predictions::{CreatePredictionJob, PredictionJobView};
use crate::domain::api_keys::{Scope, allows};
use crate::domain::layout::ModelName;
use crate::domain::prediction_jobs::{
    self, JobInput, NewPredictionJob, PredictionJobStatus, RESULT_LINK_TTL,
};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, Caller};
use crate::http::middleware::scope::Guard;
use crate::http::state::AppState;
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub fn routes(guard: &Guard) -> Router<AppState> {
    // Predict scope throughout: a key that may predict may follow its own jobs.
    Router::new()
        .route(
            "/models/{model_name}/{model_version}/prediction-jobs",
            guard.scoped(Scope::Predict, post(create_job)),
        )
        .route(
            "/models/{model_name}/{model_version}/prediction-jobs/{job_id}",
            guard.scoped(Scope::Predict, get(get_job)),
        )
        .route(
            "/models/{model_name}/{model_version}/prediction-jobs/{job_id}/result",
            guard.scoped(Scope::Predict, get(job_result)),
        )
}

fn job_location(view: &PredictionJobView) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "/models/{}/{}/prediction-jobs/{}",
        view.model_name, view.model_version, view.job_id
    ))
    .ok()
}

#[utoipa::path(
    post,
    path = "/models/{model_name}/{model_version}/prediction-jobs",
    tag = "predictions",
    summary = "Predict a whole CSV in the background (for inputs over the request body limit or 10,000 rows)",
    description = "PUT the CSV to an upload session (POST /datasets/uploads; it need not be \
        completed) or name a CSV dataset; the version must be deployed. The job predicts every \
        row in batches and writes the CSV with the prediction columns appended; poll the job \
        (Location) until SUCCEEDED, then GET its result_url.",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest")),
    request_body = CreatePredictionJob,
    responses(
        (status = 202, description = "Queued; poll Location", body = PredictionJobView, headers(("Location" = String, description = "The job"))),
        (status = 404, description = "No such model, version, upload session or dataset in this account", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the predict or the read scope", body = ErrorEnvelope),
        (status = 409, description = "The version is not deployed, the session has no file yet or is being completed, or the account already has 10 jobs queued or running", body = ErrorEnvelope),
        (status = 422, description = "Not exactly one input, or the input is not a CSV", body = ErrorEnvelope),
        (status = 503, description = "This deployment has no task queue", body = ErrorEnvelope)
    )
)]
async fn create_job(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
    ApiJson(body): ApiJson<CreatePredictionJob>,
) -> Result<Response, ApiError> {
    // The result passes every input column through, so naming a dataset reads it: that takes
    // the read scope as well.
    if !allows(&caller.key.scopes, Scope::Read) {
        return Err(ApiError::forbidden(
            "A prediction job reads the named upload or dataset back in its result, so its key \
             needs the 'read' scope as well as 'predict'. Ask an admin of the account for such \
             a key (POST /api-keys).",
        ));
    }
    let model_name = ModelName::existing(&model_name)?;
    let (served, _) = served_model(&state, &caller, &model_name, &model_version).await?;
    let Some(tasks) = state.tasks.as_deref() else {
        return Err(ApiError::unavailable(
            "batch prediction jobs need the task queue: set PLEXE_TASK_QUEUE_URL",
        ));
    };
    let job = prediction_jobs::create_job(
        state.store.as_ref(),
        state.blobs.as_ref(),
        tasks,
        NewPredictionJob {
            account_id: &caller.account.account_id,
            model_name: &model_name,
            model_version: served.label(),
            artifact_key: served.artifact_key.clone(),
            input: JobInput {
                upload_id: body.upload_id,
                dataset_id: body.dataset_id,
            },
        },
    )
    .await?;
    let view = PredictionJobView::from(&job);
    let mut response = (StatusCode::ACCEPTED, Json(&view)).into_response();
    if let Some(location) = job_location(&view) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/models/{model_name}/{model_version}/prediction-jobs/{job_id}",
    tag = "predictions",
    summary = "Where a batch prediction job stands",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "The version the job was created for (as in its Location)"), ("job_id" = String, Path, description = "job_…")),
    responses(
        (status = 200, description = "The job", body = PredictionJobView),
        (status = 404, description = "No such job for this model in this account", body = ErrorEnvelope)
    )
)]
async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, _model_version, job_id)): Path<(String, String, String)>,
) -> Result<Json<PredictionJobView>, ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let job = prediction_jobs::get_job(
        state.store.as_ref(),
        &caller.account.account_id,
        &model_name,
        &job_id,
    )
    .await?;
    Ok(Json(PredictionJobView::from(&job)))
}

#[utoipa::path(
    get,
    path = "/models/{model_name}/{model_version}/prediction-jobs/{job_id}/result",
    tag = "predictions",
    summary = "A finished job's result: the input CSV with the prediction columns appended",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "The version the job was created for"), ("job_id" = String, Path, description = "job_…")),
    responses(
        (status = 200, description = "The CSV", content_type = "text/csv", body = String),
        (status = 307, description = "On AWS: Location is a presigned S3 URL of the CSV, valid 15 minutes", headers(("Location" = String, description = "The presigned URL"))),
        (status = 404, description = "No such job, or its result has expired (7 days)", body = ErrorEnvelope),
        (status = 409, description = "The job has not succeeded", body = ErrorEnvelope)
    )
)]
async fn job_result(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, _model_version, job_id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let job = prediction_jobs::get_job(
        state.store.as_ref(),
        &caller.account.account_id,
        &model_name,
        &job_id,
    )
    .await?;
    if job.status != PredictionJobStatus::Succeeded {
        return Err(ApiError::conflict(format!(
            "Prediction job {job_id} is {}, not SUCCEEDED; poll \
             GET /models/{model_name}/{}/prediction-jobs/{job_id} until it is.",
            job.status.as_str(),
            job.model_version
        )));
    }
    let key = job.result_key();
    let file_name = format!("{job_id}.csv");
    let gone = || {
        ApiError::not_found(format!(
            "The result of prediction job {job_id} has expired (results are kept {} days); \
             create the job again.",
            prediction_jobs::RESULT_DAYS
        ))
    };
    // On S3 the file comes straight from the bucket: it can be far larger than an API
    // function's answer.
    if let Some(url) = state
        .blobs
        .presign_get(&key, RESULT_LINK_TTL, &file_name)
        .await?
    {
        if state.blobs.size(&key).await?.is_none() {
            return Err(gone());
        }
        return Ok(super::redirect_to_presigned(&url));
    }
    // The embedded folder: streamed from its file, so memory does not grow with it.
    let body = match state.blobs.local_path(&key) {
        Some(path) => match tokio::fs::File::open(&path).await {
            Ok(file) => Body::from_stream(tokio_util::io::ReaderStream::new(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(gone()),
            Err(e) => return Err(ApiError::internal(format!("opening {key}: {e}"))),
        },
        None => match state.blobs.get(&key).await {
            Ok(bytes) => Body::from(bytes),
            Err(crate::ports::BlobError::NotFound(_)) => return Err(gone()),
            Err(e) => return Err(e.into()),
        },
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Some(length) = job.result_bytes
        && let Ok(v) = HeaderValue::from_str(&length.to_string())
    {
        headers.insert(header::CONTENT_LENGTH, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// This part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create_job, get_job, job_result))]
pub struct PredictionJobsApi;
