//! `/models`: builds, models, versions, status, describe, build logs.

use super::{AnyJson, PageInfo};
use crate::automl::Task;
use crate::domain::models::builds::{BuildSpec, NewModel, PlannedBuild};
use crate::domain::models::logs::LogLine;
use crate::domain::models::{
    Model, ModelSummary, ModelVersion, StartedBuild, VersionError, VersionStatus,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /models/{model_name}`: what to build.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateModelRequest {
    /// What to predict, in plain words ("predict whether a customer churns"): 1 to 2000
    /// characters, spaces around it trimmed.
    #[schema(
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]|[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][\s\S]{0,1998}[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub intent: String,
    /// The dataset to train on (or `upload_id`).
    #[serde(default)]
    pub dataset_id: Option<String>,
    /// An upload session's id, completed by this request if it is not yet.
    #[serde(default)]
    pub upload_id: Option<String>,
    /// A display name (default: the model name): 1 to 200 characters, spaces around it trimmed.
    #[serde(default)]
    #[schema(
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]|[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][\s\S]{0,198}[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// The input fields wanted, `{"field": "type", …}` or a JSON Schema object.
    #[serde(default)]
    pub input_schema: AnyJson,
    /// The output field names wanted; one that names a column makes it the target.
    #[serde(default)]
    pub output_schema: AnyJson,
    /// accuracy, f1, precision, recall, roc_auc, log_loss (classification); rmse, mae, r2
    /// (regression).
    #[serde(default)]
    pub metric: Option<String>,
    /// An array of strings or an object of string values (at most 50).
    #[serde(default)]
    pub tags: AnyJson,
    /// The column to predict, when the intent should not decide.
    #[serde(default)]
    pub target: Option<String>,
    /// Seconds the search may take (1–600, default 60).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 600)]
    pub time_budget_s: Option<f64>,
    /// Candidate models to try at most.
    #[serde(default, deserialize_with = "crate::api::whole_number::optional")]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_iterations: Option<u64>,
}

impl CreateModelRequest {
    /// What to build, for the domain.
    pub fn spec(&self) -> BuildSpec {
        BuildSpec {
            intent: Some(self.intent.clone()),
            dataset_id: self.dataset_id.clone(),
            upload_id: self.upload_id.clone(),
            target: self.target.clone(),
            metric: self.metric.clone(),
            time_budget_s: self.time_budget_s,
            max_iterations: self.max_iterations.map(|n| n as usize),
            input_schema: super::non_null(self.input_schema.clone()),
            output_schema: super::non_null(self.output_schema.clone()),
        }
    }

    /// The new model's own fields.
    pub fn new_model(&self) -> NewModel {
        NewModel {
            name: self.name.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// `POST /models/{model_name}/versions`: the next version; unset fields are the previous
/// version's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVersionRequest {
    #[serde(default)]
    pub dataset_id: Option<String>,
    #[serde(default)]
    pub upload_id: Option<String>,
    #[serde(default)]
    #[schema(
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]|[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][\s\S]{0,1998}[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub intent: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub metric: Option<String>,
    #[serde(default)]
    pub input_schema: AnyJson,
    #[serde(default)]
    pub output_schema: AnyJson,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 600)]
    pub time_budget_s: Option<f64>,
    #[serde(default, deserialize_with = "crate::api::whole_number::optional")]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_iterations: Option<u64>,
}

impl From<CreateVersionRequest> for BuildSpec {
    fn from(r: CreateVersionRequest) -> Self {
        BuildSpec {
            intent: r.intent,
            dataset_id: r.dataset_id,
            upload_id: r.upload_id,
            target: r.target,
            metric: r.metric,
            time_budget_s: r.time_budget_s,
            max_iterations: r.max_iterations.map(|n| n as usize),
            input_schema: super::non_null(r.input_schema),
            output_schema: super::non_null(r.output_schema),
        }
    }
}

/// `POST /models/{model_name}/retrain`: every field optional (an empty body retrains as before).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrainRequest {
    #[serde(default)]
    pub upload_id: Option<String>,
    #[serde(default)]
    pub dataset_id: Option<String>,
    /// A new intent.
    #[serde(default)]
    #[schema(
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]|[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][\s\S]{0,1998}[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub goal: Option<String>,
    #[serde(default)]
    pub metric: Option<String>,
    #[serde(default, deserialize_with = "crate::api::whole_number::optional")]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_iterations: Option<u64>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 600)]
    pub time_budget_s: Option<f64>,
}

impl From<RetrainRequest> for BuildSpec {
    fn from(r: RetrainRequest) -> Self {
        BuildSpec {
            intent: r.goal,
            dataset_id: r.dataset_id,
            upload_id: r.upload_id,
            metric: r.metric,
            max_iterations: r.max_iterations.map(|n| n as usize),
            time_budget_s: r.time_budget_s,
            ..BuildSpec::default()
        }
    }
}

/// `PATCH /models/{model_name}`: absent fields stay; `description: null` clears it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchModelRequest {
    #[serde(default)]
    #[schema(
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]|[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][\s\S]{0,198}[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present_or_null")]
    #[schema(max_length = 2000)]
    pub description: Option<Option<String>>,
    /// New tags (absent or `null`: unchanged).
    #[serde(default)]
    pub tags: AnyJson,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present_or_null<'de, D>(d: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(d).map(Some)
}

/// What a build would do (`POST /models/{model_name}/plan`), decided before anything starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BuildPlanView {
    pub model_name: String,
    pub dataset_id: String,
    /// The column the model will predict.
    pub target: String,
    /// `binary`, `multiclass` or `regression` (`null` when the dataset is too large to read
    /// before the build: it is then decided by the build).
    pub task: Option<String>,
    /// The classes, in model order (classification).
    pub labels: Option<Vec<String>>,
    /// The metric candidates are chosen by.
    pub metric: Option<String>,
    pub time_budget_s: f64,
    /// Rows with a target value (those the model learns from).
    pub labelled_rows: u64,
    /// Every column of the dataset and what the build will do with it.
    pub features: Vec<PlannedColumn>,
}

/// A dataset column in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlannedColumn {
    pub name: String,
    /// `integer`, `float`, `boolean`, `string` or `datetime`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether it goes into the model as an input.
    pub used: bool,
    /// Why not, when it is not (`target`, `constant`, `empty`). The build itself may still
    /// leave out id-like and free-text columns; `describe` lists what it left out.
    pub reason: Option<String>,
}

impl BuildPlanView {
    pub fn new(model_name: &str, planned: &PlannedBuild) -> Self {
        let plan = &planned.plan;
        let (task, labels) = match &plan.task {
            None => (None, None),
            Some(Task::Regression) => (Some("regression"), None),
            Some(Task::Binary { labels }) => (Some("binary"), Some(labels.to_vec())),
            Some(Task::Multiclass { labels }) => (Some("multiclass"), Some(labels.clone())),
        };
        let rows = planned.dataset.row_count;
        let features = planned
            .dataset
            .columns
            .iter()
            .map(|c| {
                let reason = if c.name == plan.target {
                    Some("target")
                } else if c.missing >= rows {
                    Some("empty")
                } else if c.unique <= 1 {
                    Some("constant")
                } else {
                    None
                };
                PlannedColumn {
                    name: c.name.clone(),
                    kind: serde_json::to_value(c.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    used: reason.is_none(),
                    reason: reason.map(str::to_string),
                }
            })
            .collect();
        BuildPlanView {
            model_name: model_name.to_string(),
            dataset_id: planned.dataset.dataset_id.clone(),
            target: plan.target.clone(),
            task: task.map(str::to_string),
            labels,
            metric: plan
                .metric
                .map(|m| m.name().to_string())
                .or_else(|| planned.settings.metric.clone()),
            time_budget_s: planned.settings.time_budget_s,
            labelled_rows: plan.labelled_rows as u64,
            features,
        }
    }
}

/// A build accepted and queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BuildAccepted {
    /// `job_…`: its log lines are at `GET /models/build-logs?job_id=…`.
    pub job_id: String,
    pub status: VersionStatus,
    pub model_name: String,
    /// `v1.0`, `v2.0`, …
    pub model_version: String,
    pub created_at: String,
}

impl From<&StartedBuild> for BuildAccepted {
    fn from(b: &StartedBuild) -> Self {
        BuildAccepted {
            job_id: b.job_id.clone(),
            status: b.version.status,
            model_name: b.model.model_name.to_string(),
            model_version: b.version.label(),
            created_at: b.version.created_at.clone(),
        }
    }
}

/// `DEPLOYED` when some environment serves it. Named `ModelDeploymentStatus` in the document:
/// a deployment's own `DeploymentStatus` (ACTIVE, UNDEPLOYED) has the plain name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
#[schema(as = ModelDeploymentStatus)]
pub enum DeploymentStatus {
    Deployed,
}

/// A model: its newest version's status, its newest READY version's metrics and schemas, and
/// where it is deployed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelView {
    pub model_name: String,
    /// Display name.
    pub name: String,
    pub intent: String,
    pub description: Option<String>,
    /// The newest version's status.
    pub status: Option<VersionStatus>,
    pub latest_version: Option<String>,
    /// The newest READY version.
    pub ready_version: Option<String>,
    pub deployment_status: Option<DeploymentStatus>,
    /// Where predictions go: the `production` deployment's, else any active one's.
    pub endpoint: Option<String>,
    pub metrics: AnyJson,
    pub dataset_id: String,
    pub input_schema: AnyJson,
    pub output_schema: AnyJson,
    pub tags: AnyJson,
    pub version_count: u32,
    pub created_at: String,
    pub updated_at: String,
    /// The key id that created it.
    pub created_by: String,
}

/// The path a deployed version answers predictions at.
pub fn endpoint(model_name: &str, version_label: &str) -> String {
    format!("/v1/models/{model_name}/{version_label}/infer")
}

impl From<&ModelSummary> for ModelView {
    fn from(s: &ModelSummary) -> Self {
        let m: &Model = &s.model;
        let trained = s.ready.as_ref().and_then(|v| v.trained.as_ref());
        ModelView {
            model_name: m.model_name.to_string(),
            name: m.name.clone(),
            intent: m.intent.clone(),
            description: m.description.clone(),
            status: s.latest.as_ref().map(|v| v.status),
            latest_version: s.latest.as_ref().map(ModelVersion::label),
            ready_version: s.ready.as_ref().map(ModelVersion::label),
            deployment_status: s.serving.as_ref().map(|_| DeploymentStatus::Deployed),
            endpoint: s.serving.as_ref().map(|a| {
                endpoint(
                    m.model_name.as_str(),
                    &crate::domain::models::version_label(a.version_number),
                )
            }),
            metrics: trained.map_or(AnyJson::Null, |t| t.performance_metrics.clone()),
            dataset_id: m.dataset_id.clone(),
            input_schema: trained
                .map(|t| t.input_schema.clone())
                .or_else(|| m.input_schema.clone())
                .unwrap_or_default(),
            output_schema: trained
                .map(|t| t.output_schema.clone())
                .or_else(|| m.output_schema.clone())
                .unwrap_or_default(),
            tags: m.tags.clone(),
            version_count: m.version_count,
            created_at: m.created_at.clone(),
            updated_at: m.updated_at.clone(),
            created_by: m.created_by.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    pub models: Vec<ModelView>,
    pub pagination: PageInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeletedModel {
    pub model_name: String,
    pub deleted: bool,
}

/// The holdout score of a READY version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BuildResult {
    pub metric_name: String,
    pub metric_value: f64,
}

/// Why a version failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BuildError {
    /// `validation_error` (the data cannot support the build), `build_failed`,
    /// `build_interrupted` or `service_unavailable`.
    pub code: String,
    pub message: String,
}

impl From<&VersionError> for BuildError {
    fn from(e: &VersionError) -> Self {
        BuildError {
            code: e.code.clone(),
            message: e.message.clone(),
        }
    }
}

fn result_of(v: &ModelVersion) -> Option<BuildResult> {
    v.trained.as_ref().map(|t| BuildResult {
        metric_name: t.metric_name.clone(),
        metric_value: t.metric_value,
    })
}

/// One version of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VersionView {
    pub model_name: String,
    pub model_version: String,
    /// `ver_…`
    pub version_id: String,
    pub status: VersionStatus,
    /// 0–100, moving during the build.
    #[schema(minimum = 0, maximum = 100)]
    pub build_progress: u8,
    pub job_id: String,
    pub dataset_id: String,
    pub intent: String,
    pub target: Option<String>,
    /// `binary`, `multiclass` or `regression` (once built).
    pub task: Option<String>,
    pub algorithm: Option<String>,
    /// Holdout metrics (once READY).
    pub metrics: AnyJson,
    pub result: Option<BuildResult>,
    pub error: Option<BuildError>,
    pub input_schema: AnyJson,
    pub output_schema: AnyJson,
    pub time_budget_s: f64,
    pub created_at: String,
    pub updated_at: String,
    pub build_started_at: Option<String>,
    pub build_finished_at: Option<String>,
    pub created_by: String,
    pub deployment_status: Option<DeploymentStatus>,
    pub endpoint: Option<String>,
}

impl VersionView {
    /// `version`, deployed or not.
    pub fn new(version: &ModelVersion, deployed: bool) -> Self {
        let t = version.trained.as_ref();
        VersionView {
            model_name: version.model_name.to_string(),
            model_version: version.label(),
            version_id: version.version_id.clone(),
            status: version.status,
            build_progress: version.build_progress,
            job_id: version.job_id.clone(),
            dataset_id: version.dataset_id.clone(),
            intent: version.intent.clone(),
            target: t
                .map(|t| t.target.clone())
                .or_else(|| version.settings.target.clone()),
            task: t.map(|t| t.task.clone()),
            algorithm: t.map(|t| t.algorithm.clone()),
            metrics: t.map_or(AnyJson::Null, |t| t.performance_metrics.clone()),
            result: result_of(version),
            error: version.error.as_ref().map(BuildError::from),
            input_schema: t
                .map(|t| t.input_schema.clone())
                .or_else(|| version.settings.input_schema.clone())
                .unwrap_or_default(),
            output_schema: t
                .map(|t| t.output_schema.clone())
                .or_else(|| version.settings.output_schema.clone())
                .unwrap_or_default(),
            time_budget_s: version.settings.time_budget_s,
            created_at: version.created_at.clone(),
            updated_at: version.updated_at.clone(),
            build_started_at: version.build_started_at.clone(),
            build_finished_at: version.build_finished_at.clone(),
            created_by: version.created_by.clone(),
            deployment_status: deployed.then_some(DeploymentStatus::Deployed),
            endpoint: deployed.then(|| endpoint(version.model_name.as_str(), &version.label())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VersionList {
    pub versions: Vec<VersionView>,
    pub pagination: PageInfo,
}

/// A version's build status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VersionStatusView {
    pub model_name: String,
    pub model_version: String,
    pub job_id: String,
    pub status: VersionStatus,
    pub deployment_status: Option<DeploymentStatus>,
    #[schema(minimum = 0, maximum = 100)]
    pub build_progress: u8,
    pub last_updated: String,
    /// When READY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<BuildResult>,
    /// When ERROR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<BuildError>,
}

impl VersionStatusView {
    pub fn new(version: &ModelVersion, deployed: bool) -> Self {
        VersionStatusView {
            model_name: version.model_name.to_string(),
            model_version: version.label(),
            job_id: version.job_id.clone(),
            status: version.status,
            deployment_status: deployed.then_some(DeploymentStatus::Deployed),
            build_progress: version.build_progress,
            last_updated: version.updated_at.clone(),
            result: result_of(version),
            error: version.error.as_ref().map(BuildError::from),
        }
    }
}

/// What a READY model is and how it was built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DescribeView {
    pub model_name: String,
    pub model_version: String,
    pub status: VersionStatus,
    pub intent: String,
    /// A plain-language summary.
    pub description: String,
    pub target: String,
    /// `binary`, `multiclass` or `regression`.
    pub task: String,
    /// Class labels in model order (classification).
    pub labels: Vec<String>,
    /// The class `<target>_probability` reports (binary).
    pub positive_class: Option<String>,
    pub input_schema: AnyJson,
    pub output_schema: AnyJson,
    /// Holdout metrics.
    pub performance_metrics: AnyJson,
    /// The holdout to look at: `{"kind": "classification", "labels", "confusion_matrix"}`
    /// (`confusion_matrix[actual][predicted]`, in `labels` order) or `{"kind": "regression",
    /// "points": [{actual, predicted}] (at most 500), "residual_histogram": [{from, to,
    /// count}]}` (residual = actual − predicted).
    pub evaluation: AnyJson,
    pub training_info: TrainingInfo,
    pub artifact: ArtifactInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrainingInfo {
    pub dataset_id: String,
    pub dataset_size: u64,
    pub train_rows: u64,
    pub holdout_rows: u64,
    pub training_time_minutes: f64,
    pub algorithm: String,
    pub metric: String,
    pub validation_score: f64,
    /// Column → share of the model's use (sums to 1).
    pub feature_importance: AnyJson,
    /// Every candidate tried, with its validation score.
    pub leaderboard: AnyJson,
    /// Columns the build left out, with the reason.
    pub dropped_columns: AnyJson,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArtifactInfo {
    /// Always `onnx`.
    pub format: String,
    pub size_bytes: u64,
    /// Where to download it.
    pub download: String,
}

impl DescribeView {
    /// `None` unless the version is READY with its build record.
    pub fn new(version: &ModelVersion) -> Option<Self> {
        let t = version.trained.as_ref()?;
        (version.status == VersionStatus::Ready).then(|| DescribeView {
            model_name: version.model_name.to_string(),
            model_version: version.label(),
            status: version.status,
            intent: version.intent.clone(),
            description: t.description.clone(),
            target: t.target.clone(),
            task: t.task.clone(),
            labels: t.labels.clone(),
            positive_class: t.positive_class.clone(),
            input_schema: t.input_schema.clone(),
            output_schema: t.output_schema.clone(),
            performance_metrics: t.performance_metrics.clone(),
            evaluation: t.evaluation.clone(),
            training_info: TrainingInfo {
                dataset_id: version.dataset_id.clone(),
                dataset_size: t.dataset_size as u64,
                train_rows: t.train_rows as u64,
                holdout_rows: t.holdout_rows as u64,
                training_time_minutes: t.training_seconds / 60.0,
                algorithm: t.algorithm.clone(),
                metric: t.metric_name.clone(),
                validation_score: t.validation_score,
                feature_importance: t.feature_importance.clone(),
                leaderboard: t.leaderboard.clone(),
                dropped_columns: t.dropped_columns.clone(),
            },
            artifact: ArtifactInfo {
                format: "onnx".into(),
                size_bytes: t.artifact_bytes,
                download: format!(
                    "/v1/models/{}/{}/artifact",
                    version.model_name,
                    version.label()
                ),
            },
        })
    }
}

/// A line of a build's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogLineView {
    pub job_id: String,
    pub model_name: String,
    pub timestamp: String,
    /// `info`, `warn` or `error`.
    pub level: String,
    pub message: String,
}

impl From<&LogLine> for LogLineView {
    fn from(l: &LogLine) -> Self {
        LogLineView {
            job_id: l.job_id.clone(),
            model_name: l.model_name.to_string(),
            timestamp: l.timestamp.clone(),
            level: l.level.clone(),
            message: l.message.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogList {
    pub logs: Vec<LogLineView>,
    pub pagination: PageInfo,
}
