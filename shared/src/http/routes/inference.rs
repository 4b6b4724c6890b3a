//! The `inference` group (one Lambda on AWS): `infer` (one JSON object) and `predictions` (a
//! JSON array of up to 10,000 objects, or a CSV body / multipart `file` answered with a CSV that
//! has the prediction columns appended). Only deployed versions answer (409 otherwise). The
//! version's ONNX plan is loaded from blobs on first use and cached in the process.

use crate::api::ErrorEnvelope;
use crate::api::predictions::{Explanation, InferResponse, PredictionItem};
use crate::domain::deployments;
use crate::domain::layout::ModelName;
use crate::domain::models::{self, VersionRef, VersionStatus};
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::{ApiQuery, Caller, reject_duplicate_keys};
use crate::http::lookups::{ServedPath, ServedVersion};
use crate::http::middleware::request_id::RequestId;
use crate::http::middleware::scope::Guard;
use crate::http::state::AppState;
use crate::ids::now_rfc3339;
use crate::serving::input::{JsonRows, rows_to_batch};
use crate::serving::{
    Batch, BatchOutput, CsvBatch, CsvBatchError, Explainer, ExplainerState, InputError,
    MAX_BATCH_ROWS, MAX_EXPLAINED_ROWS, MAX_LISTED_ERRORS, OnnxModel, RowsError, RunError,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// Batches at least this large run on the blocking pool rather than the request's thread.
const BLOCKING_BATCH_ROWS: usize = 256;

/// `?explain=true` on `infer` and `predictions`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PredictQuery {
    /// Also say why: per row, each input field's contribution to the model's raw score and
    /// the base value they start from (`predictions`: at most 1,000 rows per request).
    #[serde(default)]
    explain: bool,
}

pub fn routes(guard: &Guard) -> Router<AppState> {
    Router::new()
        .route(
            "/models/{model_name}/{model_version}/infer",
            guard.predicting(post(infer)),
        )
        .route(
            "/models/{model_name}/{model_version}/predictions",
            guard.predicting(post(predictions)),
        )
}

/// The deployed version a prediction path names, and its loaded plan. Both come from caches
/// when warm: the version from [`crate::http::lookups`] (at most 1 s stale), the plan from the
/// plan cache (artifacts never change).
pub(super) async fn served_model(
    state: &AppState,
    caller: &Caller,
    model_name: &ModelName,
    model_version: &str,
) -> Result<(ServedVersion, Arc<OnnxModel>), ApiError> {
    let account_id = &caller.account.account_id;
    let reference = VersionRef::parse(model_version)?;
    let path = ServedPath::new(account_id, model_name, reference);
    if let Some(served) = state.lookups.served.get(&path) {
        let model = match state.plans.get(&served.artifact_key) {
            Some(model) => model,
            None => {
                let model = load_plan(state, &served.artifact_key).await?;
                state.plans.insert(&served.artifact_key, model)
            }
        };
        return Ok((served, model));
    }
    let read_at = Instant::now();
    let store = state.store.as_ref();
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
                "Version {} of {:?} is {}, not READY, so it cannot serve predictions.",
                version.label(),
                model_name.as_str(),
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
            "Version {} of {:?} is not deployed. Deploy it first with POST \
             /models/{model_name}/deploy {{\"model_version\": \"{}\"}}.",
            version.label(),
            model_name.as_str(),
            version.label()
        ))
        .with_details(json!({ "deploy": format!("POST /models/{model_name}/deploy") })));
    }
    let model = plan?;
    let served = ServedVersion {
        number: version.number,
        artifact_key: key.clone(),
        pipeline_key: trained.pipeline_key.clone(),
    };
    state.lookups.served.insert(path, served.clone(), read_at);
    Ok((served, state.plans.insert(&key, model)))
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

/// The explainer of a served version, read once per cached plan: the first explained request
/// fetches and parses the pipeline (concurrent ones wait for it); a pipeline that cannot
/// explain is remembered as such, a store that fails is tried again next time.
async fn explainer_of(
    state: &AppState,
    served: &ServedVersion,
    model: &Arc<OnnxModel>,
    rows: usize,
) -> Result<Arc<Explainer>, ApiError> {
    let Some(key) = &served.pipeline_key else {
        return Err(ApiError::conflict(format!(
            "Version {} was built before explanations were recorded, so it cannot explain its \
             predictions; build a new version of the model to get them (or leave out \
             explain=true).",
            served.label()
        )));
    };
    let loaded = model
        .explainer_or_load(|| async {
            let bytes = state.blobs.get(key).await?;
            // The parsed pipeline takes about as much memory as its JSON.
            let size = bytes.len();
            let for_load = model.clone();
            let loaded = tokio::task::spawn_blocking(move || Explainer::load(&bytes, &for_load))
                .await
                .map_err(|e| ApiError::internal(format!("loading the explainer: {e}")))?;
            if loaded.is_ok() {
                state.plans.grow(&served.artifact_key, size);
            }
            Ok::<_, ApiError>(ExplainerState::of(loaded))
        })
        .await?;
    let explainer = match loaded {
        ExplainerState::Ready(explainer) => explainer.clone(),
        ExplainerState::NotExplainable(why) => {
            return Err(ApiError::conflict(format!(
                "Version {} cannot explain its predictions: {why}. Leave out explain=true.",
                served.label()
            )));
        }
        ExplainerState::Broken(why) => {
            return Err(ApiError::internal(format!("loading the explainer: {why}")));
        }
    };
    if rows > explainer.max_rows() {
        return Err(too_many_to_explain(rows, explainer.max_rows()));
    }
    Ok(explainer)
}

/// More rows than explain=true takes: [`MAX_EXPLAINED_ROWS`], or fewer for a large model
/// (`limit`; 0 when even one row would cost more than a request may).
fn too_many_to_explain(n: usize, limit: usize) -> ApiError {
    let message = if limit == 0 {
        "This model's forest is too large to explain within one request's bound. Leave out \
         explain=true."
            .to_string()
    } else {
        format!(
            "The batch has {n} rows; explain=true takes at most {limit} per request for this \
             model. Split it, or leave out explain=true for up to {MAX_BATCH_ROWS} rows."
        )
    };
    ApiError::new(ErrorCode::ValidationError, message)
        .with_details(json!({ "field": "explain", "limit": limit }))
}

fn run_error(e: RunError) -> ApiError {
    match e {
        RunError::Input(e) => input_error(&e),
        RunError::Tract(cause) => ApiError::internal(format!("model run: {cause}")),
    }
}

fn input_error(e: &InputError) -> ApiError {
    let first = e.errors.first();
    let listed = if e.total > e.errors.len() {
        format!(" (the first {MAX_LISTED_ERRORS} are listed)")
    } else {
        String::new()
    };
    let message = match first {
        Some(f) if f.row.is_some() => format!(
            "{} invalid field(s){listed}; first: row {}, field {:?} {}. Send one object per row \
             with every input field of the model (null for a missing value).",
            e.total,
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
        "error_count": e.total,
    }))
}

#[utoipa::path(
    post,
    path = "/models/{model_name}/{model_version}/infer",
    tag = "inference",
    summary = "Predict one row",
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest (the newest READY version)"), PredictQuery),
    request_body(content = Object, description = "One object of input fields (null = missing); the version's input_schema lists them"),
    responses(
        (status = 200, description = "The prediction", body = InferResponse),
        (status = 400, description = "Not JSON, or a bad query string (explain takes true or false)", body = ErrorEnvelope),
        (status = 404, description = "No such model or version in this account", body = ErrorEnvelope),
        (status = 409, description = "Not READY or not deployed, or (explain=true) built before explanations were recorded", body = ErrorEnvelope),
        (status = 422, description = "Invalid fields (details.errors name each), or (explain=true) a model too large to explain (details.limit 0)", body = ErrorEnvelope)
    )
)]
async fn infer(
    State(state): State<AppState>,
    caller: Caller,
    Extension(request_id): Extension<RequestId>,
    Path((model_name, model_version)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<PredictQuery>,
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
    let model_name = ModelName::existing(&model_name)?;
    let (version, model, output, explanation) = if query.explain {
        let (version, model) = served_model(&state, &caller, &model_name, &model_version).await?;
        let batch = rows_to_batch(model.input_schema(), std::slice::from_ref(&row))
            .map_err(|e| input_error(&e))?;
        let explainer = explainer_of(&state, &version, &model, 1).await?;
        let (model, output, mut explanations) = run_explained(model, explainer, batch).await?;
        (version, model, output, explanations.pop())
    } else {
        let (version, model, output) =
            predict_one(&state, &caller, &model_name, &model_version, &row).await?;
        (version, model, output, None)
    };
    let outputs = model.outputs(&output);
    let created_at = now_rfc3339();
    Ok(Json(InferAnswer {
        request_id: &request_id.0,
        result: outputs.row(0),
        model_name: model_name.as_str(),
        model_version: version.label(),
        created_at: &created_at,
        explanation,
    })
    .into_response())
}

/// One row (a JSON object) predicted by the deployed version a path names: the version, its
/// model and the run's output. `infer` and the legacy `/v0` infer both answer from this.
pub(super) async fn predict_one(
    state: &AppState,
    caller: &Caller,
    model_name: &ModelName,
    model_version: &str,
    row: &Value,
) -> Result<(ServedVersion, Arc<OnnxModel>, BatchOutput), ApiError> {
    let (version, model) = served_model(state, caller, model_name, model_version).await?;
    let output = model
        .predict_json(std::slice::from_ref(row))
        .map_err(run_error)?;
    Ok((version, model, output))
}

/// [`InferResponse`], serialized straight from the run's output (no tree of values on the
/// way): the same fields in the same order (a test checks they read alike).
#[derive(serde::Serialize)]
struct InferAnswer<'a, R> {
    request_id: &'a str,
    result: R,
    model_name: &'a str,
    model_version: String,
    created_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<Explanation>,
}

pub(super) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid_request("The body is empty; send JSON."));
    }
    reject_duplicate_keys(body)?;
    serde_json::from_slice(body).map_err(|e| not_json(&e))
}

fn not_json(e: &serde_json::Error) -> ApiError {
    ApiError::invalid_request(format!(
        "The body is not valid JSON (line {}, column {}): {e}",
        e.line(),
        e.column()
    ))
}

fn too_many_rows() -> ApiError {
    ApiError::new(
        ErrorCode::ValidationError,
        format!(
            "The batch has more than {MAX_BATCH_ROWS} rows, the most one request may hold. Split \
             it into several requests."
        ),
    )
    .with_details(json!({ "field": "rows", "limit": MAX_BATCH_ROWS }))
}

/// A `predictions` JSON body: an array of rows, read without building a tree of values.
fn parse_rows(body: &[u8]) -> Result<JsonRows<'_>, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid_request("The body is empty; send JSON."));
    }
    reject_duplicate_keys(body)?;
    JsonRows::parse(body)
        .map_err(|e| match e {
            RowsError::Json(e) => not_json(&e),
            RowsError::TooManyRows => too_many_rows(),
        })?
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
    params(("model_name" = String, Path, description = "The model's name"), ("model_version" = String, Path, description = "v2.0, v2, 2 or latest (the newest READY version)"), PredictQuery),
    request_body(
        description = "Up to 10,000 rows: a JSON array of input objects, or a CSV with a header row (also as the `file` part of a multipart body)",
        content(
            (Vec<Object> = "application/json"),
            (String = "text/csv")
        )
    ),
    responses(
        (status = 200, description = "One prediction per row, in order (a CSV body gets the CSV back with the prediction columns appended; with explain=true also <target>_base_value and one <field>_contribution column per input field)", content(
            (Vec<PredictionItem> = "application/json"),
            (String = "text/csv")
        )),
        (status = 400, description = "Not JSON or not CSV, or a bad query string (explain takes true or false)", body = ErrorEnvelope),
        (status = 404, description = "No such model or version in this account", body = ErrorEnvelope),
        (status = 409, description = "Not READY or not deployed, or (explain=true) built before explanations were recorded", body = ErrorEnvelope),
        (status = 415, description = "Another content type", body = ErrorEnvelope),
        (status = 422, description = "Invalid rows (details.errors name row and field), or over 10,000 rows (with explain=true: over 1,000, or fewer for a large model; details.limit)", body = ErrorEnvelope)
    )
)]
async fn predictions(
    State(state): State<AppState>,
    caller: Caller,
    Path((model_name, model_version)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<PredictQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let model_name = ModelName::existing(&model_name)?;
    let explain = query.explain;
    let kind = content_type(&req);
    match kind.as_str() {
        "application/json" | "" => {
            let body = Bytes::from_request(req, &state)
                .await
                .map_err(|r| ApiError::unreadable_body(r.status(), r.body_text()))?;
            let rows = parse_rows(&body)?;
            check_row_count(rows.len(), explain)?;
            let (version, model) =
                served_model(&state, &caller, &model_name, &model_version).await?;
            let batch = rows
                .to_batch(model.input_schema())
                .map_err(|e| input_error(&e))?;
            drop(rows);
            let body = if explain {
                let explainer = explainer_of(&state, &version, &model, batch.n_rows).await?;
                let (model, output, explanations) = run_explained(model, explainer, batch).await?;
                let items: Vec<PredictionItem> = explanations
                    .into_iter()
                    .enumerate()
                    .map(|(row, explanation)| PredictionItem {
                        prediction: Value::Object(model.output_fields(&output, row)),
                        explanation: Some(explanation),
                    })
                    .collect();
                serde_json::to_vec(&items)
            } else {
                let (model, output) = run_batch(model, batch).await?;
                serde_json::to_vec(&model.outputs(&output).items())
            }
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
            let body = Bytes::from_request(req, &state)
                .await
                .map_err(|r| ApiError::unreadable_body(r.status(), r.body_text()))?;
            csv_predictions(&state, &caller, &model_name, &model_version, &body, explain).await
        }
        "multipart/form-data" => {
            let mut multipart = axum::extract::Multipart::from_request(req, &state)
                .await
                .map_err(|r| ApiError::unreadable_body(r.status(), r.body_text()))?;
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|e| ApiError::unreadable_body(e.status(), e.body_text()))?
            {
                if field.name() == Some("file") {
                    let body = field
                        .bytes()
                        .await
                        .map_err(|e| ApiError::unreadable_body(e.status(), e.body_text()))?;
                    return csv_predictions(
                        &state,
                        &caller,
                        &model_name,
                        &model_version,
                        &body,
                        explain,
                    )
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

/// A batch has at least one row (the readers stop at [`MAX_BATCH_ROWS`] themselves), and at
/// most [`MAX_EXPLAINED_ROWS`] when explained.
fn check_row_count(n: usize, explain: bool) -> Result<(), ApiError> {
    if explain && n > MAX_EXPLAINED_ROWS {
        return Err(too_many_to_explain(n, MAX_EXPLAINED_ROWS));
    }
    if n == 0 {
        return Err(ApiError::new(
            ErrorCode::ValidationError,
            "The batch has no rows; send at least one.",
        ));
    }
    if n > MAX_BATCH_ROWS {
        return Err(too_many_rows());
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

/// Predicts and explains a validated batch on the blocking pool.
async fn run_explained(
    model: Arc<OnnxModel>,
    explainer: Arc<Explainer>,
    batch: Batch,
) -> Result<(Arc<OnnxModel>, BatchOutput, Vec<Explanation>), ApiError> {
    let (model, output, explanations) = tokio::task::spawn_blocking(move || {
        let output = model.run(&batch);
        let explanations = explainer.explain(&batch);
        (model, output, explanations)
    })
    .await
    .map_err(|e| ApiError::internal(format!("batch prediction: {e}")))?;
    let explanations =
        explanations.map_err(|e| ApiError::internal(format!("explaining the batch: {e}")))?;
    Ok((model, output.map_err(run_error)?, explanations))
}

fn set_version_header(response: &mut Response, version: &ServedVersion) {
    if let Ok(v) = HeaderValue::from_str(&version.label()) {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("x-model-version"), v);
    }
}

fn csv_error(e: CsvBatchError) -> ApiError {
    match e {
        CsvBatchError::Unreadable { line, .. } => {
            ApiError::new(ErrorCode::ValidationError, e.to_string())
                .with_details(json!({ "line": line }))
        }
        CsvBatchError::MissingColumns { ref missing } => {
            let details = json!({ "field": missing.first(), "missing_columns": missing });
            ApiError::new(ErrorCode::ValidationError, e.to_string()).with_details(details)
        }
        CsvBatchError::TooManyRows => too_many_rows(),
        CsvBatchError::Input(e) => input_error(&e),
    }
}

/// A CSV of inputs → the same CSV with the prediction columns appended
/// ([`crate::serving::csv_batch`] says how).
async fn csv_predictions(
    state: &AppState,
    caller: &Caller,
    model_name: &ModelName,
    model_version: &str,
    body: &[u8],
    explain: bool,
) -> Result<Response, ApiError> {
    let csv = CsvBatch::parse(body).map_err(csv_error)?;
    check_row_count(csv.len(), explain)?;
    let (version, model) = served_model(state, caller, model_name, model_version).await?;
    let batch = csv.to_batch(&model).map_err(csv_error)?;
    let (model, output, explanations) = if explain {
        let explainer = explainer_of(state, &version, &model, batch.n_rows).await?;
        let (model, output, explanations) = run_explained(model, explainer, batch).await?;
        (model, output, Some(explanations))
    } else {
        let (model, output) = run_batch(model, batch).await?;
        (model, output, None)
    };
    let bytes = csv
        .with_predictions(&model, &output, explanations.as_deref())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_infer_answer_reads_as_its_documented_type() {
        let answer = InferAnswer {
            request_id: "req_1",
            result: json!({"survived": "1"}),
            model_name: "titanic",
            model_version: "v1.0".into(),
            created_at: "2026-01-01T00:00:00Z",
            explanation: None,
        };
        let text = serde_json::to_string(&answer).expect("serializes");
        let typed: InferResponse = serde_json::from_str(&text).expect("reads as InferResponse");
        assert_eq!(typed.model_name, "titanic");
        assert_eq!(typed.result["survived"], "1");
        let _ = PredictionItem {
            prediction: Value::Null,
            explanation: None,
        };
    }
}
