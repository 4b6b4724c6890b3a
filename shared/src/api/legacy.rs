//! The legacy `/v0` surface (SPEC §8) that the published Plexe Python client speaks: uploads
//! named by `upload_id`, builds started with a `goal`, lowercase statuses and a flat prediction
//! with a `prediction` field. Each body here is built from the same domain records as the
//! current API's (see [`crate::http::routes::legacy_v0`]).

use super::AnyJson;
use super::models::BuildResult;
use crate::domain::models::{ModelSummary, ModelVersion, StartedBuild, VersionStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// `POST /v0/uploads`: the dataset made of the uploaded files (its id is the upload id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LegacyUpload {
    /// The dataset's id (`ds_…`), which serves as the upload id.
    pub upload_id: String,
    /// The same id, under the current API's name.
    pub dataset_id: String,
    pub name: String,
    pub row_count: u64,
    /// The column names, in file order.
    pub columns: Vec<String>,
}

/// `DELETE /v0/uploads/{upload_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LegacyDeletedUpload {
    pub upload_id: String,
    pub deleted: bool,
}

/// `POST /v0/models/{model_name}/create`: what the client's `build` sends.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct LegacyCreateRequest {
    /// What `POST /v0/uploads` answered.
    #[schema(min_length = 1, max_length = 200)]
    pub upload_id: String,
    /// What to predict, in plain words (the intent).
    #[schema(min_length = 1, max_length = 2000)]
    pub goal: String,
    /// Free text about how to judge the model: kept as the model's description, and the metric
    /// it names (accuracy, f1, precision, recall, roc_auc, log_loss, rmse, mae, r2) picks the
    /// models.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub eval: Option<String>,
}

/// `POST /v0/models/{model_name}`: the seed API's shape of the same request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct LegacySeedCreateRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub upload_id: String,
    #[schema(min_length = 1, max_length = 2000)]
    pub intent: String,
    #[serde(default)]
    pub metric: Option<String>,
}

/// A build status in the old API's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LegacyStatus {
    /// PENDING
    Pending,
    /// BUILDING
    Processing,
    /// READY
    Completed,
    /// ERROR
    Failed,
}

impl From<VersionStatus> for LegacyStatus {
    fn from(s: VersionStatus) -> Self {
        match s {
            VersionStatus::Pending => LegacyStatus::Pending,
            VersionStatus::Building => LegacyStatus::Processing,
            VersionStatus::Ready => LegacyStatus::Completed,
            VersionStatus::Error => LegacyStatus::Failed,
        }
    }
}

/// The 202 of a legacy build start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LegacyBuildAccepted {
    pub model_name: String,
    /// `v1.0`: what the status, describe and infer paths take.
    pub model_version: String,
    pub status: LegacyStatus,
    pub job_id: String,
    pub created_at: String,
}

impl From<&StartedBuild> for LegacyBuildAccepted {
    fn from(b: &StartedBuild) -> Self {
        LegacyBuildAccepted {
            model_name: b.model.model_name.to_string(),
            model_version: b.version.label(),
            status: b.version.status.into(),
            job_id: b.job_id.clone(),
            created_at: b.version.created_at.clone(),
        }
    }
}

/// `GET /v0/models/{model_name}/{model_version}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LegacyStatusView {
    pub status: LegacyStatus,
    /// The holdout metric, once completed.
    pub result: Option<BuildResult>,
    /// Why the build failed, once failed.
    pub error: Option<String>,
    pub model_name: String,
    pub model_version: String,
    /// 0–100.
    pub build_progress: u8,
}

impl From<&ModelVersion> for LegacyStatusView {
    fn from(v: &ModelVersion) -> Self {
        LegacyStatusView {
            status: v.status.into(),
            result: v.trained.as_ref().map(|t| BuildResult {
                metric_name: t.metric_name.clone(),
                metric_value: t.metric_value,
            }),
            error: v.error.as_ref().map(|e| e.message.clone()),
            model_name: v.model_name.to_string(),
            model_version: v.label(),
            build_progress: v.build_progress,
        }
    }
}

/// A model (in the list) or one version of it, as the old API showed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LegacyModel {
    /// The version's id (`ver_…`).
    pub model_id: String,
    pub model_name: String,
    pub model_version: String,
    pub status: LegacyStatus,
    pub created_at: String,
    pub intent: String,
    /// Always `auto`: the platform's own AutoML.
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_value: Option<f64>,
}

impl From<&ModelVersion> for LegacyModel {
    fn from(v: &ModelVersion) -> Self {
        let t = v.trained.as_ref();
        LegacyModel {
            model_id: v.version_id.clone(),
            model_name: v.model_name.to_string(),
            model_version: v.label(),
            status: v.status.into(),
            created_at: v.created_at.clone(),
            intent: v.intent.clone(),
            provider: "auto".into(),
            metric_name: t.map(|t| t.metric_name.clone()),
            metric_value: t.map(|t| t.metric_value),
        }
    }
}

impl LegacyModel {
    /// A model's listing entry: its newest version (`None` for a model without one).
    pub fn of_summary(s: &ModelSummary) -> Option<Self> {
        s.latest.as_ref().map(LegacyModel::from)
    }
}

/// `GET /v0/models/{model_name}/{model_version}`: the version, with its schemas as
/// `{"properties": {field: {"type": …}}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LegacyModelDetail {
    #[serde(flatten)]
    pub model: LegacyModel,
    #[schema(value_type = Object)]
    pub input_schema: AnyJson,
    #[schema(value_type = Object)]
    pub output_schema: AnyJson,
}

/// `[{name, type}, …]` (or a user's declared schema) → `{"properties": {name: {"type"}}}`.
fn properties(schema: &Value) -> Value {
    let mut props = Map::new();
    match schema {
        Value::Array(fields) => {
            for f in fields {
                if let Some(name) = f.get("name").and_then(Value::as_str) {
                    let kind = f.get("type").cloned().unwrap_or(Value::Null);
                    props.insert(name.to_owned(), json!({ "type": kind }));
                }
            }
        }
        Value::Object(o) if o.contains_key("properties") => return schema.clone(),
        Value::Object(o) => {
            for (name, kind) in o {
                let kind = if kind.is_object() {
                    kind.clone()
                } else {
                    json!({ "type": kind })
                };
                props.insert(name.clone(), kind);
            }
        }
        _ => {}
    }
    json!({ "properties": props })
}

impl From<&ModelVersion> for LegacyModelDetail {
    fn from(v: &ModelVersion) -> Self {
        let t = v.trained.as_ref();
        let input = t
            .map(|t| t.input_schema.clone())
            .or_else(|| v.settings.input_schema.clone())
            .unwrap_or(Value::Null);
        let output = t
            .map(|t| t.output_schema.clone())
            .or_else(|| v.settings.output_schema.clone())
            .unwrap_or(Value::Null);
        LegacyModelDetail {
            model: LegacyModel::from(v),
            input_schema: properties(&input),
            output_schema: properties(&output),
        }
    }
}

/// `GET /v0/models/{model_name}/{model_version}/describe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LegacyDescribe {
    /// A plain-language summary of the model.
    pub description: String,
    /// The input fields, in order.
    pub features: Vec<String>,
    /// The column the model predicts.
    pub target: String,
    /// Holdout metrics.
    #[schema(value_type = Object)]
    pub performance: AnyJson,
}

impl LegacyDescribe {
    /// `None` unless the version is READY with its build record.
    pub fn new(v: &ModelVersion) -> Option<Self> {
        let t = v.trained.as_ref()?;
        (v.status == VersionStatus::Ready).then(|| LegacyDescribe {
            description: t.description.clone(),
            features: t
                .input_schema
                .as_array()
                .map(|fields| {
                    fields
                        .iter()
                        .filter_map(|f| f.get("name").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            target: t.target.clone(),
            performance: t.performance_metrics.clone(),
        })
    }
}

/// `POST /v0/models/{model_name}/{model_version}/infer`: `prediction` (the class label or the
/// number), then the SPEC §5 output fields (`<target>`, `<target>_probability` or
/// `<target>_probabilities`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LegacyPrediction {
    /// The class label (a string) or the predicted number.
    #[schema(value_type = Object)]
    pub prediction: AnyJson,
    /// The output fields, as `POST /models/{name}/{version}/infer` gives them in `result`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub outputs: Map<String, Value>,
}
