//! The `datasets` group (one Lambda on AWS): direct uploads, upload sessions, list, get, preview,
//! delete (SPEC §3). Plus, on the embedded backend only, `PUT /uploads/{token}`: the signed URL
//! an upload session hands out, which `plexe serve` accepts itself (S3 does on AWS).

use crate::api::datasets::{
    CreateUploadRequest, DatasetList, DatasetPreview, DatasetView, DeletedDataset, UploadReceived,
    UploadSessionView, UploadStatusView,
};
use crate::api::{ErrorEnvelope, FileBytes};
use crate::domain::api_keys::Scope;
use crate::domain::datasets::{self, DatasetError, DirectUpload};
use crate::domain::uploads::{self, CompleteError, Completion, MAX_UPLOAD_BYTES, NewUpload};
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::{ApiJson, ApiQuery, Caller};
use crate::http::middleware::scope::Guard;
use crate::http::pagination::{PageQuery, Pagination, whole_number};
use crate::http::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

/// Routes that need an API key.
pub fn routes(guard: &Guard) -> Router<AppState> {
    Router::new()
        .route("/datasets", guard.scoped(Scope::Read, get(list_datasets)))
        .route(
            "/datasets",
            guard.scoped(Scope::Write, post(create_dataset)),
        )
        .route(
            "/datasets/uploads",
            guard.scoped(Scope::Write, post(create_upload)),
        )
        .route(
            "/datasets/uploads/{upload_id}",
            guard.scoped(Scope::Read, get(upload_status)),
        )
        .route(
            "/datasets/uploads/{upload_id}/complete",
            guard.scoped(Scope::Write, post(complete_upload)),
        )
        .route(
            "/datasets/{dataset_id}",
            guard.scoped(Scope::Read, get(get_dataset)),
        )
        .route(
            "/datasets/{dataset_id}",
            guard.scoped(Scope::Write, delete(delete_dataset)),
        )
        .route(
            "/datasets/{dataset_id}/preview",
            guard.scoped(Scope::Read, get(preview)),
        )
}

/// The OpenAPI description of this group's routes, for the API document to merge.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create_dataset,
    list_datasets,
    get_dataset,
    preview,
    delete_dataset,
    create_upload,
    upload_status,
    complete_upload,
    receive_upload
))]
pub struct DatasetsApi;

/// Routes that need no API key: the signed upload URL carries its own authorization.
pub fn public_routes() -> Router<AppState> {
    Router::new().route("/uploads/{token}", put(receive_upload))
}

/// How a file that cannot become a dataset reads over HTTP.
impl From<DatasetError> for ApiError {
    fn from(e: DatasetError) -> Self {
        match e {
            DatasetError::Domain(e) => e.into(),
            e if e.is_unsupported_format() => {
                ApiError::new(ErrorCode::UnsupportedMediaType, capitalized(&e.to_string()))
            }
            e if e.is_own_failure() => ApiError::internal(format!("reading an upload: {e}")),
            e => ApiError::new(
                ErrorCode::ValidationError,
                format!("The file cannot be used as a dataset: {e}."),
            )
            .with_details(e.details()),
        }
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CreateQuery {
    /// Dataset name (default: the file name, else the dataset id): 1 to 200 characters, spaces
    /// around it trimmed, no control characters.
    #[param(
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f]|[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]{0,198}[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f])[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    name: Option<String>,
    /// `csv` or `parquet`: the file's format, whatever the content type says.
    #[param(value_type = Option<crate::api::datasets::FileFormat>)]
    format: Option<String>,
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// The file of a direct upload: the body itself, or a multipart body's `file` part (and its
/// `name` field).
async fn read_direct_upload(state: &AppState, req: Request) -> Result<DirectUpload, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if !is_multipart(req.headers()) {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| ApiError::unreadable_body(r.status(), r.body_text()))?;
        return Ok(DirectUpload {
            bytes,
            content_type,
            ..DirectUpload::default()
        });
    }
    let mut multipart = Multipart::from_request(req, state)
        .await
        .map_err(|r| ApiError::unreadable_body(r.status(), r.body_text()))?;
    let mut file = None;
    let mut name = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::unreadable_body(e.status(), e.body_text()))?
    {
        match field.name() {
            Some("file") if file.is_none() => {
                let file_name = field.file_name().map(str::to_owned);
                let part_type = field.content_type().map(str::to_owned);
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| ApiError::unreadable_body(e.status(), e.body_text()))?;
                file = Some((bytes, part_type, file_name));
            }
            Some("name") => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| ApiError::unreadable_body(e.status(), e.body_text()))?;
                name = Some(text);
            }
            // Other parts are ignored, as form posts often carry extra fields.
            _ => {}
        }
    }
    let Some((bytes, part_type, file_name)) = file else {
        return Err(ApiError::invalid_request(
            "The multipart body has no 'file' part: send the dataset as a part named 'file'.",
        )
        .with_details(json!({ "field": "file" })));
    };
    Ok(DirectUpload {
        bytes,
        content_type: part_type,
        file_name,
        name,
    })
}

/// `POST /datasets`: a CSV or Parquet file of up to 6 MB, as the raw body or a multipart `file`
/// part; parsed and profiled before anything is stored.
#[utoipa::path(
    post,
    path = "/datasets",
    tag = "datasets",
    summary = "Upload a dataset of up to 6 MB",
    params(CreateQuery),
    request_body(
        description = "The file, at most 6 MB",
        content(
            (String = "text/csv"),
            (inline(FileBytes) = "application/vnd.apache.parquet"),
            (inline(FileBytes) = "application/octet-stream")
        )
    ),
    responses(
        (status = 201, description = "The dataset, with its profile", body = DatasetView),
        (status = 413, description = "Over 6 MB: use an upload session", body = ErrorEnvelope),
        (status = 415, description = "Not CSV or Parquet", body = ErrorEnvelope),
        (status = 422, description = "The file is unusable (the message names the line and column)", body = ErrorEnvelope)
    )
)]
async fn create_dataset(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<CreateQuery>,
    req: Request,
) -> Result<(StatusCode, Json<DatasetView>), ApiError> {
    let upload = read_direct_upload(&state, req).await?;
    let dataset = datasets::create_from_direct_upload(
        state.store.as_ref(),
        state.blobs.as_ref(),
        &caller.account.account_id,
        upload,
        query.name.as_deref(),
        query.format.as_deref(),
    )
    .await?;
    tracing::info!(dataset_id = %dataset.dataset_id, rows = dataset.row_count, "dataset created");
    Ok((StatusCode::CREATED, Json(DatasetView::from(&dataset))))
}

/// `GET /datasets`: the account's datasets, newest first.
#[utoipa::path(
    get,
    path = "/datasets",
    tag = "datasets",
    summary = "List datasets (newest first)",
    params(PageQuery),
    responses((status = 200, description = "The account's datasets", body = DatasetList))
)]
async fn list_datasets(
    State(state): State<AppState>,
    caller: Caller,
    page: Pagination,
) -> Result<Json<DatasetList>, ApiError> {
    let (items, total) = datasets::list_datasets(
        state.store.as_ref(),
        state.blobs.as_ref(),
        &caller.account.account_id,
        page.limit,
        page.offset,
    )
    .await?;
    Ok(Json(DatasetList {
        datasets: items.iter().map(DatasetView::from).collect(),
        pagination: page.info(total),
    }))
}

/// `GET /datasets/{dataset_id}`: one dataset with its profile.
#[utoipa::path(
    get,
    path = "/datasets/{dataset_id}",
    tag = "datasets",
    summary = "A dataset and its profile",
    params(("dataset_id" = String, Path, description = "ds_…")),
    responses(
        (status = 200, description = "The dataset", body = DatasetView),
        (status = 404, description = "Not in this account", body = ErrorEnvelope)
    )
)]
async fn get_dataset(
    State(state): State<AppState>,
    caller: Caller,
    Path(dataset_id): Path<String>,
) -> Result<Json<DatasetView>, ApiError> {
    let dataset = datasets::get_dataset(
        state.store.as_ref(),
        state.blobs.as_ref(),
        &caller.account.account_id,
        &dataset_id,
    )
    .await?;
    Ok(Json(DatasetView::from(&dataset)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PreviewQuery {
    /// Rows, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// `GET /datasets/{dataset_id}/preview?limit=20`: the first rows as JSON objects.
#[utoipa::path(
    get,
    path = "/datasets/{dataset_id}/preview",
    tag = "datasets",
    summary = "The first rows of a dataset",
    params(("dataset_id" = String, Path, description = "ds_…"), PreviewQuery),
    responses(
        (status = 200, description = "The first rows", body = DatasetPreview),
        (status = 404, description = "Not in this account", body = ErrorEnvelope)
    )
)]
async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    Path(dataset_id): Path<String>,
    ApiQuery(query): ApiQuery<PreviewQuery>,
) -> Result<Json<DatasetPreview>, ApiError> {
    let max = datasets::MAX_PREVIEW_ROWS;
    let limit = match query.limit.as_deref() {
        None => 20,
        Some(raw) => match whole_number(raw) {
            Some(n) if (1..=max).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid_request(format!(
                    "limit must be a whole number from 1 to {max} (got {raw:?})"
                ))
                .with_details(json!({ "field": "limit" })));
            }
        },
    };
    let preview = datasets::preview(
        state.store.as_ref(),
        state.blobs.as_ref(),
        &caller.account.account_id,
        &dataset_id,
        limit,
    )
    .await?;
    Ok(Json(DatasetPreview::from(preview)))
}

/// `DELETE /datasets/{dataset_id}`: the record and the stored file. Models trained from it keep
/// working.
#[utoipa::path(
    delete,
    path = "/datasets/{dataset_id}",
    tag = "datasets",
    summary = "Delete a dataset (models trained from it keep working)",
    params(("dataset_id" = String, Path, description = "ds_…")),
    responses(
        (status = 200, description = "Deleted", body = DeletedDataset),
        (status = 404, description = "Not in this account", body = ErrorEnvelope)
    )
)]
async fn delete_dataset(
    State(state): State<AppState>,
    caller: Caller,
    Path(dataset_id): Path<String>,
) -> Result<Json<DeletedDataset>, ApiError> {
    let dataset = datasets::delete_dataset(
        state.store.as_ref(),
        state.blobs.as_ref(),
        &caller.account.account_id,
        &dataset_id,
    )
    .await?;
    tracing::info!(dataset_id = %dataset.dataset_id, "dataset deleted");
    Ok(Json(DeletedDataset {
        dataset_id: dataset.dataset_id,
        deleted: true,
    }))
}

/// `POST /datasets/uploads`: opens an upload session for a file of up to 500 MB.
#[utoipa::path(
    post,
    path = "/datasets/uploads",
    tag = "datasets",
    summary = "Open an upload session (files up to 500 MB)",
    request_body = CreateUploadRequest,
    responses(
        (status = 201, description = "Where to PUT the file", body = UploadSessionView),
        (status = 422, description = "A bad name, format, size or SHA-256", body = ErrorEnvelope)
    )
)]
async fn create_upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateUploadRequest>,
) -> Result<(StatusCode, Json<UploadSessionView>), ApiError> {
    let created = uploads::create_upload(
        state.store.as_ref(),
        state.blobs.as_ref(),
        &caller.account.account_id,
        NewUpload {
            name: body.name,
            format: body.format,
            size_bytes: body.size_bytes,
            sha256: body.sha256,
        },
    )
    .await?;
    tracing::info!(upload_id = %created.session.upload_id, "upload session created");
    Ok((StatusCode::CREATED, Json(UploadSessionView::from(&created))))
}

/// `GET /datasets/uploads/{upload_id}`: where a session stands (poll it after a 202 from
/// `complete`).
#[utoipa::path(
    get,
    path = "/datasets/uploads/{upload_id}",
    tag = "datasets",
    summary = "An upload session's status",
    params(("upload_id" = String, Path, description = "upl_…")),
    responses(
        (status = 200, description = "The session's status", body = UploadStatusView),
        (status = 404, description = "No such session (they last 24 hours)", body = ErrorEnvelope)
    )
)]
async fn upload_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(upload_id): Path<String>,
) -> Result<Json<UploadStatusView>, ApiError> {
    let (session, _) =
        uploads::get_upload(state.store.as_ref(), &caller.account.account_id, &upload_id).await?;
    Ok(Json(UploadStatusView::from(&session)))
}

/// `POST /datasets/uploads/{upload_id}/complete`: checks the uploaded file and creates the
/// dataset; on AWS a file over 16 MB is completed by the task function instead (202: poll
/// `GET /datasets/uploads/{upload_id}`).
#[utoipa::path(
    post,
    path = "/datasets/uploads/{upload_id}/complete",
    tag = "datasets",
    summary = "Complete an upload session into a dataset",
    params(("upload_id" = String, Path, description = "upl_…")),
    responses(
        (status = 201, description = "The dataset", body = DatasetView),
        (status = 202, description = "Being completed in the background (AWS, files over 16 MB): poll GET /datasets/uploads/{upload_id}", body = UploadStatusView),
        (status = 404, description = "No such session (they last 24 hours)", body = ErrorEnvelope),
        (status = 409, description = "Nothing uploaded yet, or already completed", body = ErrorEnvelope),
        (status = 413, description = "The file is over 500 MB", body = ErrorEnvelope),
        (status = 415, description = "Not CSV or Parquet", body = ErrorEnvelope),
        (status = 422, description = "Size or SHA-256 mismatch, or an unusable file", body = ErrorEnvelope)
    )
)]
async fn complete_upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(upload_id): Path<String>,
) -> Result<Response, ApiError> {
    let completion = uploads::complete_or_queue(
        state.store.as_ref(),
        state.blobs.as_ref(),
        state.completion_queue(),
        &caller.account.account_id,
        &upload_id,
    )
    .await?;
    Ok(match completion {
        Completion::Done(dataset) => {
            tracing::info!(dataset_id = %dataset.dataset_id, %upload_id, rows = dataset.row_count, "upload completed");
            (StatusCode::CREATED, Json(DatasetView::from(&*dataset))).into_response()
        }
        Completion::Queued(session) => {
            tracing::info!(%upload_id, "upload completion queued");
            let status = format!("/datasets/uploads/{upload_id}");
            let mut response = (
                StatusCode::ACCEPTED,
                Json(UploadStatusView::from(&*session)),
            )
                .into_response();
            if let Ok(value) = axum::http::HeaderValue::from_str(&status) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
    })
}

/// `PUT /uploads/{token}` (embedded backend): receives an upload session's file at the signed
/// URL. The token (HMAC-signed blob key + expiry) is the authorization; the body streams to a
/// temporary file and then into the blob folder, so memory does not grow with the file.
#[utoipa::path(
    put,
    path = "/uploads/{token}",
    tag = "datasets",
    security(()),
    params(("token" = String, Path, description = "The signed token of an upload_url")),
    request_body(content = inline(FileBytes), content_type = "application/octet-stream", description = "The file"),
    responses(
        (status = 200, description = "Stored; now complete the session", body = UploadReceived),
        (status = 403, description = "Invalid or expired token", body = ErrorEnvelope),
        (status = 404, description = "The session has expired", body = ErrorEnvelope),
        (status = 409, description = "The session is already completed", body = ErrorEnvelope),
        (status = 413, description = "Over 500 MB", body = ErrorEnvelope)
    )
)]
async fn receive_upload(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<UploadReceived>, ApiError> {
    // On AWS the upload URL is S3's: this server never accepts uploads itself.
    let Some(folder) = state.folder_blobs.clone() else {
        return Err(ApiError::from_status(StatusCode::NOT_FOUND));
    };
    let (key, declared_size) = folder.verify_upload_token(&token).map_err(|e| {
        let expired = e.to_string().contains("expired");
        ApiError::forbidden(if expired {
            "This upload URL has expired: create a new upload session (POST /datasets/uploads)."
        } else {
            "This upload URL is not valid (its signature does not match): use the upload_url \
             exactly as POST /datasets/uploads returned it."
        })
    })?;
    uploads::check_accepts_file(state.store.as_ref(), &key).await?;
    // A session that declared its size takes exactly that many bytes (as S3 does with the
    // signed Content-Length); the others at most the upload limit.
    let limit = declared_size.unwrap_or(MAX_UPLOAD_BYTES);
    let too_large = || {
        let message = match declared_size {
            Some(size) => format!(
                "The file is larger than the {size} bytes this upload session declared: start \
                 a session with the file's real size_bytes."
            ),
            None => format!(
                "The file is larger than the upload limit of {} MB: split or sample it.",
                MAX_UPLOAD_BYTES / (1024 * 1024)
            ),
        };
        ApiError::new(ErrorCode::PayloadTooLarge, message)
            .with_details(json!({ "limit_bytes": limit }))
    };
    let sent = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if sent.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    // Streamed into the blob folder's own temporary directory, then renamed into place: memory
    // holds one chunk at a time and the file is written once.
    let temp = folder.new_temp_path();
    let received = match stream_to_file(body, &temp, limit).await {
        Ok(received) => received,
        Err(e) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(match e {
                StreamError::TooLarge => too_large(),
                StreamError::Interrupted(cause) => {
                    ApiError::invalid_request(format!("The upload was interrupted: {cause}"))
                }
                StreamError::Io(cause) => {
                    ApiError::internal(format!("writing an uploaded file: {cause}"))
                }
            });
        }
    };
    folder.commit_temp(&temp, &key).await?;
    tracing::info!(bytes = received, "upload received");
    Ok(Json(UploadReceived {
        size_bytes: received,
    }))
}

enum StreamError {
    TooLarge,
    Interrupted(String),
    Io(std::io::Error),
}

/// Writes a request body to a new file at `path`, at most `max_bytes` of it; returns its size.
async fn stream_to_file(
    body: Body,
    path: &std::path::Path,
    max_bytes: u64,
) -> Result<u64, StreamError> {
    let file = crate::ports::blobs::private_create(path)
        .await
        .map_err(StreamError::Io)?;
    let mut file = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let mut received: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| StreamError::Interrupted(e.to_string()))?;
        received += chunk.len() as u64;
        if received > max_bytes {
            return Err(StreamError::TooLarge);
        }
        file.write_all(&chunk).await.map_err(StreamError::Io)?;
    }
    file.flush().await.map_err(StreamError::Io)?;
    file.into_inner()
        .sync_all()
        .await
        .map_err(StreamError::Io)?;
    Ok(received)
}

/// How a failed upload completion reads over HTTP (also for `POST /models` with an `upload_id`).
impl From<CompleteError> for ApiError {
    fn from(e: CompleteError) -> Self {
        match e {
            CompleteError::Mismatch { message, details } => {
                ApiError::new(ErrorCode::ValidationError, capitalized(&message))
                    .with_details(details)
            }
            CompleteError::TooLarge { message } => {
                ApiError::new(ErrorCode::PayloadTooLarge, capitalized(&message))
                    .with_details(json!({ "limit_bytes": MAX_UPLOAD_BYTES }))
            }
            CompleteError::Dataset(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi as _;

    #[test]
    fn openapi_describes_every_route() {
        let doc = DatasetsApi::openapi();
        for (path, methods) in [
            ("/datasets", &["get", "post"][..]),
            ("/datasets/uploads", &["post"]),
            ("/datasets/uploads/{upload_id}/complete", &["post"]),
            ("/datasets/{dataset_id}", &["get", "delete"]),
            ("/datasets/{dataset_id}/preview", &["get"]),
            ("/uploads/{token}", &["put"]),
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
