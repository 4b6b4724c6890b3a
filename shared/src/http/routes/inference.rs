//! The `inference` group (one Lambda on AWS): `infer` (one JSON object) and `predictions` (a
//! JSON array of up to 10,000 objects, or a CSV body / multipart `file` answered with a CSV that
//! has the prediction columns appended). Only deployed versions answer (409 otherwise). The
//! version's ONNX plan is loaded from blobs on first use and cached in the process.

use crate::domain::api_keys::Scope;
use crate::domain::deployments;
use crate::domain::models::{self, ModelVersion, VersionRef, VersionStatus};
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::Caller;
use crate::http::middleware::request_id::RequestId;
use crate::http::middleware::scope::Guard;
use crate::http::state::AppState;
use crate::ids::now_rfc3339;
use crate::serving::input::{BatchBuilder, Cell, JsonRows};
use crate::serving::{Batch, BatchOutput, InputError, OnnxModel, OutputRow, RunError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::sync::Arc;

/// Rows per batch request (SPEC section 1).
pub const MAX_BATCH_ROWS: usize = 10_000;
/// Batches at least this large run on the blocking pool rather than the request's thread.
const BLOCKING_BATCH_ROWS: usize = 256;

pub fn routes(guard: &Guard) -> Router<AppState> {
    Router::new()
        .route(
            "/models/{model_name}/{model_version}/infer",
            guard.scoped(Scope::Predict, post(infer)),
        )
        .route(
            "/models/{model_name}/{model_version}/predictions",
            guard.scoped(Scope::Predict, post(predictions)),
        )
}

/// The deployed version a prediction path names, and its loaded plan.
async fn served_model(
    state: &AppState,
    caller: &Caller,
    model_name: &str,
    model_version: &str,
) -> Result<(ModelVersion, Arc<OnnxModel>), ApiError> {
    let account_id = &caller.account.account_id;
    let store = state.store.as_ref();
    let reference = VersionRef::parse(model_version)?;
    // Independent reads run together: on a cold start each is a round trip to the store.
    let (model, version) = tokio::join!(
        models::require_model(store, account_id, model_name),
        models::resolve_version(store, account_id, model_name, &reference)
    );
    model?;
    let version = version?;
    let trained = match (&version.status, &version.trained) {
        (VersionStatus::Ready, Some(t)) => t,
        _ => {
            return Err(ApiError::conflict(format!(
                "Version {} of {model_name:?} is {}, not READY, so it cannot serve predictions.",
                version.label(),
                version.status.as_str()
            )));
        }
    };
    let key = trained.artifact_key.clone();
    let deployed = deployments::is_deployed(store, account_id, model_name, version.number);
    // A plan not cached yet is fetched and loaded while the deployment is checked; it is only
    // used (and cached) when the version is deployed.
    let (deployed, plan) = match state.plans.get(&key) {
        Some(model) => (deployed.await, Ok(model)),
        None => tokio::join!(deployed, load_plan(state, &key)),
    };
    if !deployed? {
        return Err(ApiError::conflict(format!(
            "Version {} of {model_name:?} is not deployed. Deploy it first with POST \
             /models/{model_name}/deploy {{\"model_version\": \"{}\"}}.",
            version.label(),
            version.label()
        ))
        .with_details(json!({ "deploy": format!("POST /models/{model_name}/deploy") })));
    }
    let model = plan?;
    Ok((version, state.plans.insert(&key, model)))
}

/// The artifact `key`'s plan: fetched from blobs, parsed and optimized off the async threads.
async fn load_plan(state: &AppState, key: &str) -> Result<Arc<OnnxModel>, ApiError> {
    let bytes = state.blobs.get(key).await?;
    let model = tokio::task::spawn_blocking(move || OnnxModel::load(&bytes))
        .await
        .map_err(|e| ApiError::internal(format!("loading plan: {e}")))?
        .map_err(|e| ApiError::internal(format!("loading plan: {e}")))?;
    Ok(Arc::new(model))
}

fn run_error(e: RunError) -> ApiError {
    match e {
        RunError::Input(e) => input_error(&e),
        RunError::Tract(cause) => ApiError::internal(format!("model run: {cause}")),
    }
}

fn input_error(e: &InputError) -> ApiError {
    let first = e.errors.first();
    let message = match first {
        Some(f) if f.row.is_some() => format!(
            "{} invalid field(s); first: row {}, field {:?} {}. Send one object per row with \
             every input field of the model (null for a missing value).",
            e.errors.len(),
            f.row.unwrap_or(0),
            f.field,
            f.message
        ),
        Some(f) => format!(
            "Field {:?} {}. The model's input fields are listed by GET \
             /models/{{name}}/{{version}}/describe.",
            f.field, f.message
        ),
        None => "The input is invalid.".into(),
    };
    ApiError::new(ErrorCode::ValidationError, message).with_details(json!({
        "field": first.map(|f| f.field.clone()),
        "errors": e.errors,
    }))
}

#[utoipa::path(
    post,
    path = "/models/{model_name}/{model_version}/infer",
    tag = "inference",
    summary = "Predict one row",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest (the newest READY version)")),
    request_body(content_type = "application/json", description = "One object of input fields (null = missing)"),
    responses((status = 200, description = "{request_id, result, model_name, model_version, created_at}"), (status = 404, description = "No such model or version in this account"), (status = 409, description = "Not deployed"), (status = 422, description = "Invalid fields (details.errors name each)"))
)]
async fn infer(
    State(state): State<AppState>,
    caller: Caller,
    Extension(request_id): Extension<RequestId>,
    Path((model_name, model_version)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let row: Value = parse_json(&body)?;
    if !row.is_object() {
        return Err(ApiError::new(
            ErrorCode::ValidationError,
            "infer takes one JSON object of input fields; for several rows use POST \
             /models/{name}/{version}/predictions with an array.",
        ));
    }
    let (version, model) = served_model(&state, &caller, &model_name, &model_version).await?;
    let output = model
        .predict_json(std::slice::from_ref(&row))
        .map_err(run_error)?;
    let outputs = model.outputs(&output);
    let created_at = now_rfc3339();
    Ok(Json(InferResponse {
        request_id: &request_id.0,
        result: outputs.row(0),
        model_name: &model_name,
        model_version: version.label(),
        created_at: &created_at,
    })
    .into_response())
}

/// The `infer` response (SPEC section 5), serialized straight from the run's output.
#[derive(serde::Serialize)]
struct InferResponse<'a> {
    request_id: &'a str,
    result: OutputRow<'a>,
    model_name: &'a str,
    model_version: String,
    created_at: &'a str,
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid_request("The body is empty; send JSON."));
    }
    serde_json::from_slice(body).map_err(|e| not_json(&e))
}

fn not_json(e: &serde_json::Error) -> ApiError {
    ApiError::invalid_request(format!(
        "The body is not valid JSON (line {}, column {}): {e}",
        e.line(),
        e.column()
    ))
}

/// A `predictions` JSON body: an array of rows, read without building a tree of values.
fn parse_rows(body: &[u8]) -> Result<JsonRows<'_>, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid_request("The body is empty; send JSON."));
    }
    JsonRows::parse(body)
        .map_err(|e| not_json(&e))?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ValidationError,
                "predictions takes a JSON array of input objects (or a CSV body).",
            )
        })
}

fn content_type(req: &Request) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[utoipa::path(
    post,
    path = "/models/{model_name}/{model_version}/predictions",
    tag = "inference",
    summary = "Predict a batch",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest (the newest READY version)")),
    request_body(content_type = "application/json", description = "A JSON array of up to 10,000 objects, or text/csv, or multipart/form-data with a file part"),
    responses((status = 200, description = "[{prediction}] in order, or the CSV with prediction columns appended"), (status = 404, description = "No such model or version in this account"), (status = 409, description = "Not deployed"), (status = 415, description = "Another content type"), (status = 422, description = "Invalid rows (details.errors name row and field)"))
)]
async fn predictions(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let kind = content_type(&req);
    match kind.as_str() {
        "application/json" | "" => {
            let body = Bytes::from_request(req, &state).await.map_err(|e| {
                ApiError::invalid_request(format!("The body could not be read: {e}"))
            })?;
            let rows = parse_rows(&body)?;
            check_row_count(rows.len())?;
            let (version, model) =
                served_model(&state, &caller, &model_name, &model_version).await?;
            let batch = rows
                .to_batch(model.input_schema())
                .map_err(|e| input_error(&e))?;
            drop(rows);
            let (model, output) = run_batch(model, batch).await?;
            let body = serde_json::to_vec(&model.outputs(&output).items())
                .map_err(|e| ApiError::internal(format!("writing predictions: {e}")))?;
            let mut response = (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response();
            set_version_header(&mut response, &version);
            Ok(response)
        }
        "text/csv" | "application/csv" => {
            let body = Bytes::from_request(req, &state).await.map_err(|e| {
                ApiError::invalid_request(format!("The body could not be read: {e}"))
            })?;
            csv_predictions(&state, &caller, &model_name, &model_version, &body).await
        }
        "multipart/form-data" => {
            let mut multipart = axum::extract::Multipart::from_request(req, &state)
                .await
                .map_err(|e| ApiError::invalid_request(format!("Bad multipart body: {e}")))?;
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|e| ApiError::invalid_request(format!("Bad multipart body: {e}")))?
            {
                if field.name() == Some("file") {
                    let body = field.bytes().await.map_err(|e| {
                        ApiError::invalid_request(format!("The file part could not be read: {e}"))
                    })?;
                    return csv_predictions(&state, &caller, &model_name, &model_version, &body)
                        .await;
                }
            }
            Err(ApiError::invalid_request(
                "The multipart body has no `file` part; send the CSV as the `file` field.",
            ))
        }
        other => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "predictions takes application/json (an array of objects), text/csv or \
                 multipart/form-data with a `file` part (got {other:?})."
            ),
        )),
    }
}

fn check_row_count(n: usize) -> Result<(), ApiError> {
    if n == 0 {
        return Err(ApiError::new(
            ErrorCode::ValidationError,
            "The batch has no rows; send at least one.",
        ));
    }
    if n > MAX_BATCH_ROWS {
        return Err(ApiError::new(
            ErrorCode::ValidationError,
            format!(
                "The batch has {n} rows; at most {MAX_BATCH_ROWS} are allowed per request. \
                 Split it into several requests."
            ),
        )
        .with_details(json!({ "field": "rows", "limit": MAX_BATCH_ROWS })));
    }
    Ok(())
}

/// Predicts a validated batch, on the blocking pool when it is large.
async fn run_batch(
    model: Arc<OnnxModel>,
    batch: Batch,
) -> Result<(Arc<OnnxModel>, BatchOutput), ApiError> {
    if batch.n_rows < BLOCKING_BATCH_ROWS {
        let output = model.run(&batch).map_err(run_error)?;
        return Ok((model, output));
    }
    tokio::task::spawn_blocking(move || {
        let output = model.run(&batch);
        (model, output)
    })
    .await
    .map_err(|e| ApiError::internal(format!("batch prediction: {e}")))
    .and_then(|(model, output)| Ok((model, output.map_err(run_error)?)))
}

fn set_version_header(response: &mut Response, version: &ModelVersion) {
    if let Ok(v) = HeaderValue::from_str(&version.label()) {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("x-model-version"), v);
    }
}

/// A CSV of inputs → the same CSV with the prediction columns appended (one probability column
/// per class for classification). Cells are passed as text, so the model's own rules for
/// numeric text apply; an empty or missing-marker cell is a missing value.
async fn csv_predictions(
    state: &AppState,
    caller: &Caller,
    model_name: &str,
    model_version: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let bad_csv = |e: csv::Error| {
        let line = e.position().map(|p| p.line());
        ApiError::new(
            ErrorCode::ValidationError,
            format!("The CSV body could not be read: {e}"),
        )
        .with_details(json!({ "line": line }))
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(body);
    let headers = reader.headers().map_err(bad_csv)?.clone();
    let records: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .map_err(bad_csv)?;
    check_row_count(records.len())?;
    let (version, model) = served_model(state, caller, model_name, model_version).await?;
    let schema_names: Vec<String> = model
        .input_schema()
        .iter()
        .map(|f| f.name.clone())
        .collect();
    let missing: Vec<&String> = schema_names
        .iter()
        .filter(|n| !headers.iter().any(|h| h == n.as_str()))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ValidationError,
            format!(
                "The CSV lacks the model's input column(s): {}. Its header must include every \
                 input field (other columns are kept and passed through).",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .with_details(json!({ "field": missing.first(), "missing_columns": missing })));
    }
    let positions: Vec<(String, usize)> = schema_names
        .iter()
        .filter_map(|n| headers.iter().position(|h| h == n).map(|i| (n.clone(), i)))
        .collect();
    let mut builder = BatchBuilder::new(model.input_schema(), records.len());
    for record in &records {
        builder.push_row(positions.iter().map(|(name, i)| {
            let cell = record.get(*i).unwrap_or("").trim();
            let value = if cell.is_empty() || crate::ingest::cell::is_missing(cell) {
                Cell::Null
            } else {
                Cell::Text(Cow::Borrowed(cell))
            };
            (name.as_str(), value)
        }));
    }
    let batch = builder.finish().map_err(|e| input_error(&e))?;
    let (model, output) = run_batch(model, batch).await?;

    // Output columns: the prediction, then probabilities; renamed when the input has a column
    // of that name already (a CSV that still holds the target, say).
    let (prediction_name, _) = model.output_field_names();
    let free = |name: String| {
        if headers.iter().any(|h| h == name) {
            format!("predicted_{name}")
        } else {
            name
        }
    };
    let mut extra: Vec<String> = vec![free(prediction_name.clone())];
    let labels: Vec<String> = match &output {
        BatchOutput::Classification { labels, .. } => labels.clone(),
        BatchOutput::Regression { .. } => Vec::new(),
    };
    let binary = labels.len() == 2;
    if binary {
        extra.push(free(format!("{prediction_name}_probability")));
    } else {
        for label in &labels {
            extra.push(free(format!("{prediction_name}_probability_{label}")));
        }
    }
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(body.len() * 2));
    let write_err = |e: csv::Error| ApiError::internal(format!("writing CSV: {e}"));
    let mut header_row: Vec<String> = headers.iter().map(str::to_string).collect();
    header_row.extend(extra);
    writer.write_record(&header_row).map_err(write_err)?;
    for (r, record) in records.iter().enumerate() {
        let mut row: Vec<String> = record.iter().map(str::to_string).collect();
        match &output {
            BatchOutput::Regression { values } => {
                row.push(values.get(r).map(|v| v.to_string()).unwrap_or_default());
            }
            BatchOutput::Classification {
                predicted,
                probabilities,
                labels,
            } => {
                row.push(predicted.get(r).cloned().unwrap_or_default());
                let k = labels.len();
                let p = probabilities.get(r * k..(r + 1) * k).unwrap_or(&[]);
                if binary {
                    row.push(p.get(1).map(|v| v.to_string()).unwrap_or_default());
                } else {
                    row.extend(p.iter().map(|v| v.to_string()));
                }
            }
        }
        writer.write_record(&row).map_err(write_err)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ApiError::internal(format!("writing CSV: {e}")))?;
    let mut response = bytes.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    set_version_header(&mut response, &version);
    Ok(response)
}

/// This group's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(infer, predictions))]
pub struct InferenceApi;
