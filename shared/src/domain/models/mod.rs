//! Models, their versions, the build jobs that produce versions ([`jobs`], [`builds`]), build
//! log lines ([`logs`]), the concurrent-build slots, and deleting a model ([`deletion`]). Every
//! record lives in the owner's partition; the keys are [`super::layout`]'s.

pub mod builds;
pub mod deletion;
pub mod jobs;
pub mod logs;
pub mod summaries;
pub mod version_ref;

use super::layout::{
    MODEL_PREFIX, ModelName, account_pk, artifact_key, artifact_metadata_key, model_sk,
    pipeline_key, version_prefix, version_sk,
};
use super::{DomainError, decode, encode};
use crate::ports::{Condition, Item, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use builds::StartedBuild;
pub use summaries::{ModelListing, ModelSummary};
pub use version_ref::VersionRef;

/// How many items one listing reads at most (keeps every listing bounded).
pub(crate) const MAX_LISTED: usize = 10_000;

/// The user-facing version string of version `number`: `v1.0`, `v2.0`, …
pub fn version_label(number: u32) -> String {
    format!("v{number}.0")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum VersionStatus {
    Pending,
    Building,
    Ready,
    Error,
}

impl VersionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Pending => "PENDING",
            VersionStatus::Building => "BUILDING",
            VersionStatus::Ready => "READY",
            VersionStatus::Error => "ERROR",
        }
    }

    pub fn parse(s: &str) -> Option<VersionStatus> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PENDING" => Some(VersionStatus::Pending),
            "BUILDING" => Some(VersionStatus::Building),
            "READY" => Some(VersionStatus::Ready),
            "ERROR" => Some(VersionStatus::Error),
            _ => None,
        }
    }

    pub fn is_in_flight(self) -> bool {
        matches!(self, VersionStatus::Pending | VersionStatus::Building)
    }
}

/// A model: a name in the account, what it is for, and a counter of its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub model_name: ModelName,
    /// Display name.
    pub name: String,
    pub intent: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Free-form labels: an array of strings or an object of string values.
    #[serde(default)]
    pub tags: Value,
    pub dataset_id: String,
    /// What the user declared, if anything (the built schema is on each version).
    #[serde(default)]
    pub input_schema: Option<Value>,
    #[serde(default)]
    pub output_schema: Option<Value>,
    /// Number of the newest version created (READY or not).
    pub version_count: u32,
    pub created_at: String,
    pub updated_at: String,
    /// The key id that created the model.
    pub created_by: String,
}

/// Why a version failed, as the user sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionError {
    pub code: String,
    pub message: String,
}

/// What a build asked for (kept on the version so a retry runs the same build).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildSettings {
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub metric: Option<String>,
    pub time_budget_s: f64,
    #[serde(default)]
    pub max_iterations: Option<usize>,
    #[serde(default)]
    pub input_schema: Option<Value>,
    #[serde(default)]
    pub output_schema: Option<Value>,
    pub seed: u64,
}

/// What a finished build produced (besides the ONNX artifact itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedModel {
    pub target: String,
    /// `binary`, `multiclass` or `regression`.
    pub task: String,
    /// Class labels in model order (classification).
    #[serde(default)]
    pub labels: Vec<String>,
    /// The class whose probability `<target>_probability` reports (binary).
    #[serde(default)]
    pub positive_class: Option<String>,
    pub metric_name: String,
    /// Holdout value of `metric_name`.
    pub metric_value: f64,
    pub validation_score: f64,
    pub performance_metrics: Value,
    pub algorithm: String,
    pub description: String,
    pub feature_importance: Value,
    pub leaderboard: Value,
    /// The holdout to look at: a confusion matrix, or predicted against actual values and the
    /// residuals (versions built before it existed have `null`).
    #[serde(default)]
    pub evaluation: Value,
    pub input_schema: Value,
    pub output_schema: Value,
    pub dropped_columns: Value,
    pub dataset_size: usize,
    pub train_rows: usize,
    pub holdout_rows: usize,
    pub training_seconds: f64,
    pub artifact_key: String,
    pub artifact_bytes: u64,
    pub metadata_key: String,
    /// The fitted pipeline as JSON, which explanations (`?explain=true`) read; versions built
    /// before it was stored have none and cannot be explained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_key: Option<String>,
    /// The bulky parts above (schemas, importance, leaderboard, dropped columns, evaluation)
    /// are only in the metadata blob: the version's item would otherwise be too large for the
    /// store (a build on thousands of long-named columns). [`with_build_detail`] restores them.
    #[serde(default)]
    pub detail_in_blob: bool,
}

impl TrainedModel {
    /// Every blob the version owns.
    pub fn blob_keys(&self) -> impl Iterator<Item = &String> {
        [&self.artifact_key, &self.metadata_key]
            .into_iter()
            .chain(self.pipeline_key.as_ref())
    }

    /// The record without its bulky parts, for a version item that must stay small.
    pub fn without_detail(&self) -> TrainedModel {
        TrainedModel {
            feature_importance: Value::Null,
            leaderboard: Value::Null,
            evaluation: Value::Null,
            input_schema: Value::Null,
            output_schema: Value::Null,
            dropped_columns: Value::Null,
            detail_in_blob: true,
            ..self.clone()
        }
    }
}

/// `version` with its whole build record: a record kept slim in the store (see
/// [`TrainedModel::detail_in_blob`]) is read back from the metadata blob.
pub async fn with_build_detail(
    blobs: &dyn crate::ports::Blobs,
    mut version: ModelVersion,
) -> Result<ModelVersion, DomainError> {
    let Some(trained) = &version.trained else {
        return Ok(version);
    };
    if !trained.detail_in_blob {
        return Ok(version);
    }
    let bytes = blobs.get(&trained.metadata_key).await?;
    let mut full: TrainedModel = serde_json::from_slice(&bytes).map_err(|e| {
        DomainError::Corrupt(format!("build metadata {}: {e}", trained.metadata_key))
    })?;
    full.detail_in_blob = false;
    version.trained = Some(full);
    Ok(version)
}

/// One version of a model and its build state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub version_id: String,
    pub model_name: ModelName,
    pub number: u32,
    pub status: VersionStatus,
    pub build_progress: u8,
    pub job_id: String,
    pub dataset_id: String,
    pub intent: String,
    pub settings: BuildSettings,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: String,
    #[serde(default)]
    pub build_started_at: Option<String>,
    #[serde(default)]
    pub build_finished_at: Option<String>,
    #[serde(default)]
    pub error: Option<VersionError>,
    #[serde(default)]
    pub trained: Option<TrainedModel>,
}

impl ModelVersion {
    pub fn label(&self) -> String {
        version_label(self.number)
    }

    /// `{metric_name, metric_value}` when READY.
    pub fn result_json(&self) -> Option<Value> {
        self.trained.as_ref().map(
            |t| serde_json::json!({ "metric_name": t.metric_name, "metric_value": t.metric_value }),
        )
    }

    /// The version as `GET /models/{name}/{version}` and the versions list show it.
    pub fn to_json(&self) -> Value {
        let t = self.trained.as_ref();
        serde_json::json!({
            "model_name": self.model_name,
            "model_version": self.label(),
            "version_id": self.version_id,
            "status": self.status.as_str(),
            "build_progress": self.build_progress,
            "job_id": self.job_id,
            "dataset_id": self.dataset_id,
            "intent": self.intent,
            "target": t.map(|t| t.target.clone()).or_else(|| self.settings.target.clone()),
            "task": t.map(|t| t.task.clone()),
            "algorithm": t.map(|t| t.algorithm.clone()),
            "metrics": t.map(|t| t.performance_metrics.clone()),
            "result": self.result_json(),
            "error": self.error,
            "input_schema": t.map(|t| t.input_schema.clone()).or_else(|| self.settings.input_schema.clone()),
            "output_schema": t.map(|t| t.output_schema.clone()).or_else(|| self.settings.output_schema.clone()),
            "time_budget_s": self.settings.time_budget_s,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "build_started_at": self.build_started_at,
            "build_finished_at": self.build_finished_at,
            "created_by": self.created_by,
        })
    }
}

pub async fn get_model(
    store: &dyn Store,
    account_id: &str,
    model: &ModelName,
) -> Result<Option<(Model, u64)>, DomainError> {
    match store.get(&account_pk(account_id), &model_sk(model)).await? {
        Some(item) => Ok(Some((decode(&item)?, item.rev))),
        None => Ok(None),
    }
}

pub fn model_not_found(model_name: &str) -> DomainError {
    DomainError::not_found(format!(
        "No model named \"{model_name}\" in this account. GET /models lists your models."
    ))
}

/// The model or a 404.
pub async fn require_model(
    store: &dyn Store,
    account_id: &str,
    model: &ModelName,
) -> Result<(Model, u64), DomainError> {
    get_model(store, account_id, model)
        .await?
        .ok_or_else(|| model_not_found(model.as_str()))
}

/// Every item of `pk` under `prefix`, in sort-key order (bounded by [`MAX_LISTED`]).
pub(crate) async fn query_all(
    store: &dyn Store,
    pk: &str,
    prefix: &str,
    ascending: bool,
) -> Result<Vec<Item>, DomainError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .query(pk, prefix, ascending, 1000, cursor.as_deref())
            .await?;
        items.extend(page.items);
        match page.cursor {
            Some(c) if items.len() < MAX_LISTED => cursor = Some(c),
            _ => break,
        }
    }
    Ok(items)
}

pub async fn list_models(store: &dyn Store, account_id: &str) -> Result<Vec<Model>, DomainError> {
    query_all(store, &account_pk(account_id), MODEL_PREFIX, true)
        .await?
        .iter()
        .map(decode)
        .collect()
}

/// The versions of one model, oldest first.
pub async fn list_versions(
    store: &dyn Store,
    account_id: &str,
    model: &ModelName,
) -> Result<Vec<ModelVersion>, DomainError> {
    query_all(store, &account_pk(account_id), &version_prefix(model), true)
        .await?
        .iter()
        .map(decode)
        .collect()
}

pub async fn get_version(
    store: &dyn Store,
    account_id: &str,
    model: &ModelName,
    number: u32,
) -> Result<Option<ModelVersion>, DomainError> {
    match store
        .get(&account_pk(account_id), &version_sk(model, number))
        .await?
    {
        Some(item) => Ok(Some(decode(&item)?)),
        None => Ok(None),
    }
}

/// The version a path names (`v2.0`, `v2`, `2`, `latest` = newest READY), or a 404 that says
/// which versions exist.
pub async fn resolve_version(
    store: &dyn Store,
    account_id: &str,
    model_name: &ModelName,
    reference: &VersionRef,
) -> Result<ModelVersion, DomainError> {
    match reference {
        VersionRef::Number(n) => get_version(store, account_id, model_name, *n)
            .await?
            .ok_or_else(|| {
                DomainError::not_found(format!(
                    "Model \"{model_name}\" has no version {}. GET /models/{model_name}/versions \
                     lists its versions.",
                    version_label(*n)
                ))
            }),
        VersionRef::Latest => newest_ready_version(store, account_id, model_name)
            .await?
            .ok_or_else(|| {
                DomainError::not_found(format!(
                    "Model \"{model_name}\" has no READY version yet; `latest` names the newest \
                     READY version. Poll GET /models/{model_name}/{{version}}/status."
                ))
            }),
    }
}

/// The model's newest version (one item read).
pub async fn newest_version(
    store: &dyn Store,
    account_id: &str,
    model_name: &ModelName,
) -> Result<Option<ModelVersion>, DomainError> {
    let page = store
        .query(
            &account_pk(account_id),
            &version_prefix(model_name),
            false,
            1,
            None,
        )
        .await?;
    page.items.first().map(decode).transpose()
}

/// The model's newest READY version, reading newest first, a few versions at a time, and
/// stopping there (usually after one or two).
pub async fn newest_ready_version(
    store: &dyn Store,
    account_id: &str,
    model_name: &ModelName,
) -> Result<Option<ModelVersion>, DomainError> {
    let pk = account_pk(account_id);
    let prefix = version_prefix(model_name);
    let mut cursor: Option<String> = None;
    let mut read = 0;
    loop {
        let page = store
            .query(&pk, &prefix, false, 10, cursor.as_deref())
            .await?;
        for item in &page.items {
            let version: ModelVersion = decode(item)?;
            if version.status == VersionStatus::Ready {
                return Ok(Some(version));
            }
        }
        read += page.items.len();
        cursor = page.cursor;
        if cursor.is_none() || read >= MAX_LISTED {
            return Ok(None);
        }
    }
}

/// Writes a version back (it must still exist: a deleted model's version is not resurrected).
pub async fn put_version(
    store: &dyn Store,
    account_id: &str,
    version: &ModelVersion,
) -> Result<(), DomainError> {
    store
        .put(
            Item::new(
                account_pk(account_id),
                version_sk(&version.model_name, version.number),
                encode(version)?,
            ),
            Condition::Exists,
        )
        .await?;
    Ok(())
}

/// Where a version's files go.
pub struct ArtifactKeys {
    pub onnx: String,
    pub pipeline: String,
    pub metadata: String,
}

pub fn artifact_keys(account_id: &str, version: &ModelVersion) -> ArtifactKeys {
    let (model, id) = (&version.model_name, &version.version_id);
    ArtifactKeys {
        onnx: artifact_key(account_id, model, id),
        pipeline: pipeline_key(account_id, model, id),
        metadata: artifact_metadata_key(account_id, model, id),
    }
}

/// Why a finished build's files could not be stored (already logged with the cause; the
/// message is for the build's record and says nothing of the store).
#[derive(Debug, thiserror::Error)]
#[error("{what} could not be stored")]
pub struct ArtifactError {
    pub what: &'static str,
    #[source]
    pub source: crate::ports::BlobError,
}

/// Stores a finished build's ONNX file, its pipeline (when `trained` names a key for it), then
/// its metadata (the [`TrainedModel`] as JSON) under the keys it names; if a later one fails
/// the earlier are deleted again, so nothing half-written stays behind.
pub async fn store_artifacts(
    blobs: &dyn crate::ports::Blobs,
    trained: &TrainedModel,
    onnx: bytes::Bytes,
    pipeline: bytes::Bytes,
) -> Result<(), ArtifactError> {
    let metadata = serde_json::to_vec_pretty(trained).map_err(|e| ArtifactError {
        what: "the metadata",
        source: crate::ports::BlobError::other(format!("encoding: {e}")),
    })?;
    blobs
        .put(&trained.artifact_key, onnx)
        .await
        .map_err(|source| ArtifactError {
            what: "the ONNX file",
            source,
        })?;
    if let Some(key) = &trained.pipeline_key
        && let Err(source) = blobs.put(key, pipeline).await
    {
        discard_artifacts(blobs, trained).await;
        return Err(ArtifactError {
            what: "the pipeline",
            source,
        });
    }
    if let Err(source) = blobs
        .put(&trained.metadata_key, bytes::Bytes::from(metadata))
        .await
    {
        discard_artifacts(blobs, trained).await;
        return Err(ArtifactError {
            what: "the metadata",
            source,
        });
    }
    Ok(())
}

/// Deletes a build's files (a build whose result is not kept); failures are only logged, the
/// deletion of the model or a later sweep removes what remains.
pub async fn discard_artifacts(blobs: &dyn crate::ports::Blobs, trained: &TrainedModel) {
    for key in trained.blob_keys() {
        if let Err(e) = blobs.delete(key).await {
            tracing::warn!(key = %key, error = %e, "could not delete a discarded build file");
        }
    }
}

/// The bounds of what a user writes into a model's records (each refused with a 422 naming the
/// field): together they keep a model item far below DynamoDB's 400 KB.
pub mod bounds {
    /// A model's display name, in characters.
    pub const NAME_CHARS: usize = 200;
    /// A model's description, in characters.
    pub const DESCRIPTION_CHARS: usize = 2000;
    /// Tags: entries, and characters of a tag (an object's key, or a value).
    pub const TAGS: usize = 50;
    pub const TAG_KEY_CHARS: usize = 64;
    pub const TAG_CHARS: usize = 256;
    /// A declared input or output schema, as JSON.
    pub const SCHEMA_BYTES: usize = 64 * 1024;
    /// An explicit target column's name (no column name is longer).
    pub const TARGET_CHARS: usize = crate::ingest::MAX_COLUMN_NAME_CHARS;
    /// A metric's name (the longest known is `log_loss`).
    pub const METRIC_CHARS: usize = 32;
}

/// Checks `tags`: an array of strings or an object of string values, within [`bounds`].
pub fn validate_tags(tags: &Value) -> Result<(), DomainError> {
    let short = |s: &str, limit: usize| s.chars().count() <= limit;
    let ok = match tags {
        Value::Null => true,
        Value::Array(items) => {
            items.len() <= bounds::TAGS
                && items
                    .iter()
                    .all(|v| v.as_str().is_some_and(|s| short(s, bounds::TAG_CHARS)))
        }
        Value::Object(map) => {
            map.len() <= bounds::TAGS
                && map.iter().all(|(k, v)| {
                    short(k, bounds::TAG_KEY_CHARS)
                        && v.as_str().is_some_and(|s| short(s, bounds::TAG_CHARS))
                })
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(DomainError::validation(
            format!(
                "tags must be an array of strings or an object of string values: at most {} \
                 tags, keys of at most {} and values of at most {} characters",
                bounds::TAGS,
                bounds::TAG_KEY_CHARS,
                bounds::TAG_CHARS
            ),
            "tags",
        ))
    }
}

/// Checks a display name (trimmed, 1 to [`bounds::NAME_CHARS`] characters).
pub fn validate_display_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > bounds::NAME_CHARS {
        return Err(DomainError::validation(
            format!("name must be 1 to {} characters", bounds::NAME_CHARS),
            "name",
        ));
    }
    Ok(name.to_string())
}

/// Checks a description (at most [`bounds::DESCRIPTION_CHARS`] characters); blank is none.
pub fn validate_description(description: Option<String>) -> Result<Option<String>, DomainError> {
    match description {
        Some(d) if d.chars().count() > bounds::DESCRIPTION_CHARS => Err(DomainError::validation(
            format!(
                "description must be at most {} characters",
                bounds::DESCRIPTION_CHARS
            ),
            "description",
        )),
        Some(d) if d.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Checks a declared schema: an object of field → type or an array of fields, at most
/// [`bounds::SCHEMA_BYTES`] as JSON.
pub fn validate_schema(field: &str, schema: &Option<Value>) -> Result<(), DomainError> {
    let Some(schema) = schema else {
        return Ok(());
    };
    if !(schema.is_object() || schema.is_array() || schema.is_null()) {
        return Err(DomainError::validation(
            format!("{field} must be an object of field → type or an array of fields"),
            field,
        ));
    }
    let bytes = serde_json::to_vec(schema).map_or(usize::MAX, |v| v.len());
    if bytes > bounds::SCHEMA_BYTES {
        return Err(DomainError::validation(
            format!(
                "{field} is {bytes} bytes of JSON; at most {} are taken",
                bounds::SCHEMA_BYTES
            ),
            field,
        ));
    }
    Ok(())
}

/// A change to a model (`PATCH`): display name, description, tags.
#[derive(Debug, Clone, Default)]
pub struct ModelPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub tags: Option<Value>,
}

/// Applies `patch` with optimistic concurrency (retrying a few times when another write wins).
pub async fn patch_model(
    store: &dyn Store,
    account_id: &str,
    model_name: &ModelName,
    patch: &ModelPatch,
) -> Result<Model, DomainError> {
    let name = patch
        .name
        .as_deref()
        .map(validate_display_name)
        .transpose()?;
    let description = patch
        .description
        .clone()
        .map(validate_description)
        .transpose()?;
    if let Some(tags) = &patch.tags {
        validate_tags(tags)?;
    }
    for _ in 0..5 {
        let (mut model, rev) = require_model(store, account_id, model_name).await?;
        if let Some(name) = &name {
            model.name = name.clone();
        }
        if let Some(description) = &description {
            model.description = description.clone();
        }
        if let Some(tags) = &patch.tags {
            model.tags = tags.clone();
        }
        model.updated_at = crate::ids::now_rfc3339();
        let item = Item::new(
            account_pk(account_id),
            model_sk(model_name),
            encode(&model)?,
        );
        match store.put(item, Condition::Revision(rev)).await {
            Ok(_) => return Ok(model),
            Err(crate::ports::StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::Conflict {
        message: "The model was changed by other requests at the same time; retry.".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_labels_read_vn_0() {
        assert_eq!(version_label(2), "v2.0");
    }

    #[test]
    fn tags_are_strings() {
        assert!(validate_tags(&serde_json::json!(["a", "b"])).is_ok());
        assert!(validate_tags(&serde_json::json!({"team": "x"})).is_ok());
        assert!(validate_tags(&serde_json::json!([1])).is_err());
        assert!(validate_tags(&serde_json::json!("x")).is_err());
    }
}
