//! Predictions: `infer` (one row) and `predictions` (a batch). The fields of a prediction
//! depend on the model: the target column's name holds the prediction, then
//! `<target>_probability` (binary) or `<target>_probabilities` (multiclass: label → p), or the
//! names of the version's `output_schema`.

use super::AnyJson;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Rows a batch request may hold (SPEC §1); a body is refused at the next one, while it is
/// read.
pub const MAX_BATCH_ROWS: usize = 10_000;

/// Why the model scored a row as it did (`?explain=true`): per score, a base value (the
/// average score over the training rows) plus each input field's contribution add up to the
/// raw score. Trees are explained by TreeSHAP, linear terms as weight × (value − training
/// mean), a blend as the weighted average of its members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Explanation {
    /// What the scores are: `value` (regression: the prediction itself), `log_odds` (binary:
    /// of the positive class; its sigmoid is the probability) or `class_score` (multiclass: one
    /// per class; their softmax gives the probabilities).
    pub score: String,
    /// One per score: one for regression and binary, one per class for multiclass.
    pub scores: Vec<ExplainedScore>,
}

/// One score and what made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExplainedScore {
    /// The class the score is of (binary: the positive class); absent for regression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub raw_score: f64,
    pub base_value: f64,
    /// Per input field, what it added to the score (negative: what it took away).
    /// `base_value` + their sum = `raw_score`.
    pub contributions: BTreeMap<String, f64>,
}

/// One row's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InferResponse {
    /// `req_…`
    pub request_id: String,
    /// The prediction's fields (see the module doc).
    #[schema(value_type = Object)]
    pub result: AnyJson,
    pub model_name: String,
    pub model_version: String,
    pub created_at: String,
    /// With `?explain=true`: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

/// One row's answer in a batch, in the order of the request's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PredictionItem {
    #[schema(value_type = Object)]
    pub prediction: AnyJson,
    /// With `?explain=true`: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

/// `POST /models/{model_name}/{model_version}/prediction-jobs`: predictions over a CSV too
/// large for one request. Name exactly one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePredictionJob {
    /// An upload session (`upl_…`) whose CSV was PUT to its `upload_url`; it need not be
    /// completed.
    #[serde(default)]
    pub upload_id: Option<String>,
    /// A dataset (`ds_…`) uploaded as CSV.
    #[serde(default)]
    pub dataset_id: Option<String>,
}

/// A batch prediction job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PredictionJobView {
    /// `job_…`
    pub job_id: String,
    pub model_name: String,
    pub model_version: String,
    /// `QUEUED`, `RUNNING` (poll again), `SUCCEEDED` (download `result_url`) or `FAILED` (see
    /// `error`).
    pub status: String,
    pub upload_id: Option<String>,
    pub dataset_id: Option<String>,
    /// The input file's size.
    pub input_bytes: u64,
    /// Rows predicted, once `SUCCEEDED`.
    pub rows: Option<u64>,
    /// Once `SUCCEEDED`: the path of the result, the input CSV with the prediction columns
    /// appended (as `POST .../predictions` answers a CSV), downloadable for 7 days.
    pub result_url: Option<String>,
    pub result_bytes: Option<u64>,
    /// Why it failed, when `FAILED` (a row that does not fit the model names its rows).
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

impl From<&crate::domain::prediction_jobs::PredictionJob> for PredictionJobView {
    fn from(job: &crate::domain::prediction_jobs::PredictionJob) -> Self {
        use crate::domain::prediction_jobs::PredictionJobStatus;
        let result_url = (job.status == PredictionJobStatus::Succeeded).then(|| {
            format!(
                "/models/{}/{}/prediction-jobs/{}/result",
                job.model_name, job.model_version, job.job_id
            )
        });
        PredictionJobView {
            job_id: job.job_id.clone(),
            model_name: job.model_name.to_string(),
            model_version: job.model_version.clone(),
            status: job.status.as_str().to_owned(),
            upload_id: job.input.upload_id.clone(),
            dataset_id: job.input.dataset_id.clone(),
            input_bytes: job.input_bytes,
            rows: job.rows,
            result_url,
            result_bytes: job.result_bytes,
            error: job.error.clone(),
            created_at: job.created_at.clone(),
            started_at: job.started_at.clone(),
            finished_at: job.finished_at.clone(),
        }
    }
}
