//! Starting a build: `POST /models/{name}` (a new model and its v1.0), `POST .../versions` and
//! `POST .../retrain` (the next version). Everything that can be refused is refused here, before
//! anything is written: the dataset must exist, the target must be resolvable and the task
//! learnable (a 422 that names the candidate columns), the account must have a free build slot
//! (429 `concurrency_limit_exceeded`) and builds left this minute. Then the model, the version
//! (PENDING), the job and the slot are written in one transaction and the job is enqueued.

use super::jobs::{self, BuildSlot, Job, JobMessage, JobState};
use super::{
    BuildSettings, Model, ModelVersion, VersionError, VersionStatus, require_model, validate_tags,
};
use crate::automl::{self, BuildRequest, Metric, PlanError, PlanInput, TargetError};
use crate::config::Limits;
use crate::domain::accounts::Account;
use crate::domain::datasets::{self, Dataset};
use crate::domain::layout::{
    BUILD_SLOT_PREFIX, ModelName, account_pk, build_rate_pk, build_slot_index, build_slot_sk,
    model_sk, version_sk,
};
use crate::domain::{DomainError, decode, encode, uploads};
use crate::ids::{new_id, now_epoch, now_rfc3339};
use crate::ports::{Blobs, Condition, Item, Queue, Store, StoreError, WriteOp};
use serde_json::Value;

/// Longest build a request may ask for: the trainer Lambda runs at most 900 s, and loading,
/// the final refit and the export need their share of it.
pub const MAX_TIME_BUDGET_S: f64 = 600.0;
/// The most candidate models a request may ask the search to try.
pub const MAX_ITERATIONS: usize = 1000;
/// Datasets up to this size are read whole at submit time so the task check is exact; larger
/// ones are checked against their stored profile.
const EXACT_CHECK_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Why a build was not started.
#[derive(Debug, thiserror::Error)]
pub enum StartBuildError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The dataset or the request cannot work (422), with the columns the user can pick from.
    #[error("{message}")]
    Unusable {
        message: String,
        field: String,
        candidates: Vec<String>,
    },
    #[error("the account already has {limit} builds in flight")]
    ConcurrencyLimit { limit: u32 },
    #[error("the account started {limit} builds this minute")]
    BuildRate { limit: u32, retry_after: i64 },
    /// The upload session named by `upload_id` could not be completed into a dataset.
    #[error(transparent)]
    Upload(#[from] uploads::CompleteError),
}

impl From<StoreError> for StartBuildError {
    fn from(e: StoreError) -> Self {
        StartBuildError::Domain(e.into())
    }
}

/// What the request asks the build to do (the fields shared by create, versions and retrain).
#[derive(Debug, Clone, Default)]
pub struct BuildSpec {
    pub intent: Option<String>,
    pub dataset_id: Option<String>,
    pub upload_id: Option<String>,
    pub target: Option<String>,
    pub metric: Option<String>,
    pub time_budget_s: Option<f64>,
    pub max_iterations: Option<usize>,
    pub input_schema: Option<Value>,
    pub output_schema: Option<Value>,
}

/// A new model's own fields.
#[derive(Debug, Clone, Default)]
pub struct NewModel {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Value,
}

/// Who asks, and the limits of the deployment their account's tier is held to.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub account: &'a Account,
    pub key_id: &'a str,
    pub limits: &'a Limits,
}

/// A build accepted and queued.
#[derive(Debug, Clone)]
pub struct StartedBuild {
    pub job_id: String,
    pub model: Model,
    pub version: ModelVersion,
}

/// The ports a build start writes to.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub store: &'a dyn Store,
    pub blobs: &'a dyn Blobs,
    pub queue: &'a dyn Queue,
    /// The task queue, where one is configured (large upload completions).
    pub tasks: Option<&'a dyn Queue>,
}

/// `POST /models/{model_name}`: a new model and its first version.
pub async fn start_model(
    ports: Ports<'_>,
    who: Requester<'_>,
    model_name: &ModelName,
    new: NewModel,
    spec: BuildSpec,
) -> Result<StartedBuild, StartBuildError> {
    validate_tags(&new.tags)?;
    let description = super::validate_description(new.description)?;
    let account_id = &who.account.account_id;
    if super::get_model(ports.store, account_id, model_name)
        .await?
        .is_some()
    {
        return Err(name_taken(model_name).into());
    }
    let intent = required_intent(spec.intent.as_deref())?;
    let dataset = resolve_dataset(ports, account_id, &spec).await?;
    let (settings, _) = check_build(ports, &dataset, &intent, &spec, None).await?;
    let now = now_rfc3339();
    let display = match new.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => super::validate_display_name(name)?,
        _ => model_name.to_string(),
    };
    let model = Model {
        model_name: model_name.clone(),
        name: display,
        intent: intent.clone(),
        description,
        tags: new.tags,
        dataset_id: dataset.dataset_id.clone(),
        input_schema: spec.input_schema.clone(),
        output_schema: spec.output_schema.clone(),
        version_count: 1,
        created_at: now.clone(),
        updated_at: now,
        created_by: who.key_id.to_string(),
    };
    enqueue_build(ports, who, model, None, &dataset, intent, settings).await
}

/// `POST /models/{model_name}/versions` and `/retrain`: the next version of an existing model.
/// Unset fields come from the model and its newest version.
pub async fn start_version(
    ports: Ports<'_>,
    who: Requester<'_>,
    model_name: &ModelName,
    spec: BuildSpec,
) -> Result<StartedBuild, StartBuildError> {
    let account_id = &who.account.account_id;
    let (model, rev) = require_model(ports.store, account_id, model_name).await?;
    let previous = super::get_version(ports.store, account_id, model_name, model.version_count)
        .await?
        .map(|v| v.settings);
    let mut spec = spec;
    if spec.dataset_id.is_none() && spec.upload_id.is_none() {
        spec.dataset_id = Some(model.dataset_id.clone());
    }
    if let Some(previous) = &previous {
        spec.metric = spec.metric.or_else(|| previous.metric.clone());
        spec.time_budget_s = spec.time_budget_s.or(Some(previous.time_budget_s));
        spec.max_iterations = spec.max_iterations.or(previous.max_iterations);
        spec.input_schema = spec.input_schema.or_else(|| previous.input_schema.clone());
        spec.output_schema = spec
            .output_schema
            .or_else(|| previous.output_schema.clone());
    }
    let intent = match spec.intent.as_deref() {
        Some(i) => required_intent(Some(i))?,
        None => model.intent.clone(),
    };
    let dataset = resolve_dataset(ports, account_id, &spec).await?;
    // The previous target carries over unless the request names another.
    let fallback_target = previous.and_then(|p| p.target);
    let (settings, _) = check_build(ports, &dataset, &intent, &spec, fallback_target).await?;
    let mut model = model;
    model.version_count += 1;
    model.updated_at = now_rfc3339();
    enqueue_build(ports, who, model, Some(rev), &dataset, intent, settings).await
}

/// What a build would do, decided and nothing written.
#[derive(Debug, Clone)]
pub struct PlannedBuild {
    pub dataset: Dataset,
    pub settings: BuildSettings,
    pub plan: automl::BuildPlan,
}

/// `POST /models/{model_name}/plan`: every check a build start makes on the request and the
/// data, and the target, task and metric they resolve to; no build is started, no limit is
/// counted and an upload session is not completed (its dataset must exist already).
pub async fn plan_model(
    ports: Ports<'_>,
    who: Requester<'_>,
    spec: BuildSpec,
) -> Result<PlannedBuild, StartBuildError> {
    let account_id = &who.account.account_id;
    let intent = required_intent(spec.intent.as_deref())?;
    let dataset = match (&spec.dataset_id, &spec.upload_id) {
        (None, Some(upload_id)) => {
            let (session, _) = uploads::get_upload(ports.store, account_id, upload_id).await?;
            let Some(dataset_id) = session.dataset_id else {
                return Err(DomainError::Conflict {
                    message: format!(
                        "upload session {upload_id} is not completed yet: complete it (POST \
                         /datasets/uploads/{upload_id}/complete), then plan with its dataset_id"
                    ),
                }
                .into());
            };
            datasets::get_dataset(ports.store, ports.blobs, account_id, &dataset_id).await?
        }
        _ => resolve_dataset(ports, account_id, &spec).await?,
    };
    let (settings, plan) = check_build(ports, &dataset, &intent, &spec, None).await?;
    Ok(PlannedBuild {
        dataset,
        settings,
        plan,
    })
}

fn name_taken(model_name: &ModelName) -> DomainError {
    DomainError::Conflict {
        message: format!(
            "A model named \"{model_name}\" already exists in this account. Choose another name, \
             or start a new version with POST /models/{model_name}/versions."
        ),
    }
}

fn required_intent(intent: Option<&str>) -> Result<String, DomainError> {
    let intent = intent.map(str::trim).unwrap_or("");
    if intent.is_empty() {
        return Err(DomainError::validation(
            "intent is required: say in plain words what to predict, e.g. \"predict whether a \
             passenger survived\"",
            "intent",
        ));
    }
    if intent.chars().count() > 2000 {
        return Err(DomainError::validation(
            "intent must be at most 2000 characters",
            "intent",
        ));
    }
    Ok(intent.to_string())
}

async fn resolve_dataset(
    ports: Ports<'_>,
    account_id: &str,
    spec: &BuildSpec,
) -> Result<Dataset, StartBuildError> {
    match (&spec.dataset_id, &spec.upload_id) {
        (Some(dataset_id), _) => {
            Ok(datasets::get_dataset(ports.store, ports.blobs, account_id, dataset_id).await?)
        }
        // An uploaded file whose session is not completed yet is completed now.
        (None, Some(upload_id)) => Ok(uploads::dataset_for_upload(
            ports.store,
            ports.blobs,
            ports.tasks,
            account_id,
            upload_id,
        )
        .await?),
        (None, None) => Err(DomainError::validation(
            "dataset_id (or upload_id) is required: upload data with POST /datasets first",
            "dataset_id",
        )
        .into()),
    }
}

/// Refuses, before anything is written, a build that cannot work; returns the settings the
/// build will run with (the target resolved) and the engine's plan.
async fn check_build(
    ports: Ports<'_>,
    dataset: &Dataset,
    intent: &str,
    spec: &BuildSpec,
    fallback_target: Option<String>,
) -> Result<(BuildSettings, automl::BuildPlan), StartBuildError> {
    let time_budget_s = spec
        .time_budget_s
        .unwrap_or(BuildRequest::DEFAULT_TIME_BUDGET_S);
    if !time_budget_s.is_finite() || !(1.0..=MAX_TIME_BUDGET_S).contains(&time_budget_s) {
        return Err(DomainError::validation(
            format!("time_budget_s must be between 1 and {MAX_TIME_BUDGET_S} seconds"),
            "time_budget_s",
        )
        .into());
    }
    if spec
        .max_iterations
        .is_some_and(|n| !(1..=MAX_ITERATIONS).contains(&n))
    {
        return Err(DomainError::validation(
            format!("max_iterations must be from 1 to {MAX_ITERATIONS}"),
            "max_iterations",
        )
        .into());
    }
    let metric = match &spec.metric {
        None => None,
        Some(m) if m.chars().count() > super::bounds::METRIC_CHARS => {
            return Err(DomainError::validation(
                "unknown metric; use accuracy, f1, precision, recall, roc_auc or log_loss for \
                 classification, rmse, mae or r2 for regression",
                "metric",
            )
            .into());
        }
        Some(m) => Some(Metric::parse(m).ok_or_else(|| {
            DomainError::validation(
                format!(
                    "unknown metric {m:?}; use accuracy, f1, precision, recall, roc_auc or \
                     log_loss for classification, rmse, mae or r2 for regression"
                ),
                "metric",
            )
        })?),
    };
    super::validate_schema("input_schema", &spec.input_schema)?;
    super::validate_schema("output_schema", &spec.output_schema)?;
    if let Some(target) = &spec.target
        && target.chars().count() > super::bounds::TARGET_CHARS
    {
        return Err(DomainError::validation(
            format!(
                "target must be at most {} characters: name one of the dataset's columns",
                super::bounds::TARGET_CHARS
            ),
            "target",
        )
        .into());
    }
    let request = BuildRequest {
        target: spec.target.clone().or(fallback_target),
        output_schema: spec.output_schema.clone(),
        metric,
        time_budget_s,
        max_iterations: spec.max_iterations,
        ..BuildRequest::new(intent)
    };
    // The engine's own plan check: exact on the data when it is small enough, else on the
    // profile; on the blocking pool, as matching a target reads every row.
    let table = if dataset.size_bytes <= EXACT_CHECK_MAX_BYTES {
        Some(datasets::load_dataset_table(ports.blobs, dataset).await?)
    } else {
        None
    };
    let columns = dataset.columns.clone();
    let rows = dataset.row_count;
    let planned = tokio::task::spawn_blocking(move || {
        let input = match &table {
            Some(table) => PlanInput::Table(table),
            None => PlanInput::Profile {
                columns: &columns,
                rows,
            },
        };
        automl::plan_build(input, &request)
    })
    .await
    .map_err(|e| DomainError::Corrupt(format!("planning task failed: {e}")))?;
    let plan = planned.map_err(plan_refusal)?;
    let settings = BuildSettings {
        target: Some(plan.target.clone()),
        metric: metric.map(|m| m.name().to_string()),
        time_budget_s,
        max_iterations: spec.max_iterations,
        input_schema: spec.input_schema.clone(),
        output_schema: spec.output_schema.clone(),
        seed: 42,
    };
    Ok((settings, plan))
}

/// The engine's refusal as the API gives it: a 400 for a metric that does not fit the task, a
/// 422 naming the field and the columns to choose from for the rest.
fn plan_refusal(e: PlanError) -> StartBuildError {
    let message = match &e {
        PlanError::MetricMismatch { metric, task } => {
            return DomainError::validation(
                format!("metric {metric} does not apply to a {task} task"),
                "metric",
            )
            .into();
        }
        PlanError::Target(target) => {
            let hint = match target {
                TargetError::Ambiguous { .. } => "Pass `target` to choose one of the candidates.",
                _ => "Pass `target` with one of the dataset's columns, or name it in the intent.",
            };
            format!("Cannot tell which column to predict: {target}. {hint}")
        }
        PlanError::Task { error, .. } => {
            format!("The build cannot work: {error}. Choose another target column.")
        }
        PlanError::TooFewRows { .. } => format!("The dataset is too small to build from: {e}."),
    };
    StartBuildError::Unusable {
        message,
        field: e.field().unwrap_or("dataset_id").into(),
        candidates: e.candidates().to_vec(),
    }
}

/// Counts this build against the per-minute build limit of metered tiers.
async fn count_build(store: &dyn Store, who: Requester<'_>) -> Result<(), StartBuildError> {
    let account = who.account;
    let Some(limit) = who.limits.builds_per_minute(account.tier) else {
        return Ok(());
    };
    let now = now_epoch();
    let window = now - now.rem_euclid(60);
    let count = store
        .increment(
            &build_rate_pk(&account.account_id),
            &window.to_string(),
            1,
            Some(window + 120),
        )
        .await?;
    if count > i64::from(limit) {
        return Err(StartBuildError::BuildRate {
            limit,
            retry_after: (window + 60 - now).max(1),
        });
    }
    Ok(())
}

/// A free slot index, reclaiming slots whose job already ended (a crash between a job's end
/// and its slot's release cannot then block the account forever).
async fn free_slot(store: &dyn Store, who: Requester<'_>) -> Result<u32, StartBuildError> {
    let account = who.account;
    let limit = who.limits.concurrent_builds(account.tier);
    let pk = account_pk(&account.account_id);
    let taken = super::query_all(store, &pk, BUILD_SLOT_PREFIX, true).await?;
    let mut used = std::collections::HashSet::new();
    for item in &taken {
        let Some(index) = build_slot_index(&item.sk) else {
            continue;
        };
        let slot: BuildSlot = decode(item)?;
        let live = match jobs::get_job(store, &account.account_id, &slot.job_id).await? {
            Some((job, _)) => !job.state.is_terminal(),
            None => false,
        };
        if live {
            used.insert(index);
        } else {
            // Stale: free it unless someone rewrote it meanwhile.
            match store
                .delete(&pk, &item.sk, Condition::Revision(item.rev))
                .await
            {
                Ok(()) | Err(StoreError::ConditionFailed) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    (0..limit)
        .find(|i| !used.contains(i))
        .ok_or(StartBuildError::ConcurrencyLimit { limit })
}

/// Writes model + version + job + slot in one transaction, then enqueues the job.
async fn enqueue_build(
    ports: Ports<'_>,
    who: Requester<'_>,
    model: Model,
    model_rev: Option<u64>,
    dataset: &Dataset,
    intent: String,
    settings: BuildSettings,
) -> Result<StartedBuild, StartBuildError> {
    let account = who.account;
    let pk = account_pk(&account.account_id);
    let number = model.version_count;
    // Slot first (cheap to check, and the 429 must not depend on the rate counter's state).
    let mut slot = free_slot(ports.store, who).await?;
    count_build(ports.store, who).await?;
    let now = now_rfc3339();
    let job_id = new_id("job");
    let version = ModelVersion {
        version_id: new_id("ver"),
        model_name: model.model_name.clone(),
        number,
        status: VersionStatus::Pending,
        build_progress: 0,
        job_id: job_id.clone(),
        dataset_id: dataset.dataset_id.clone(),
        intent,
        settings,
        created_at: now.clone(),
        updated_at: now.clone(),
        created_by: who.key_id.to_string(),
        build_started_at: None,
        build_finished_at: None,
        error: None,
        trained: None,
    };
    let mut job = Job {
        job_id: job_id.clone(),
        account_id: account.account_id.clone(),
        model_name: model.model_name.clone(),
        version_number: number,
        state: JobState::Queued,
        attempts: 0,
        lease_until: 0,
        worker: None,
        slot,
        created_at: now.clone(),
        updated_at: now,
        last_error: None,
        touched_at: now_epoch(),
    };
    let mut attempt = 0;
    loop {
        job.slot = slot;
        let ops = vec![
            WriteOp::Put {
                item: Item::new(pk.clone(), model_sk(&model.model_name), encode(&model)?),
                condition: model_rev.map_or(Condition::Absent, Condition::Revision),
            },
            WriteOp::Put {
                item: Item::new(
                    pk.clone(),
                    version_sk(&model.model_name, number),
                    encode(&version)?,
                ),
                condition: Condition::Absent,
            },
            WriteOp::Put {
                item: jobs::job_item(&job)?,
                condition: Condition::Absent,
            },
            WriteOp::Put {
                item: Item::new(
                    pk.clone(),
                    build_slot_sk(slot),
                    encode(&BuildSlot {
                        job_id: job_id.clone(),
                    })?,
                ),
                condition: Condition::Absent,
            },
        ];
        match ports.store.transact(ops).await {
            Ok(()) => break,
            Err(StoreError::ConditionFailed) => {
                // Either the model changed (name taken, or another version started at the same
                // time) or another build took the slot: tell which.
                let current =
                    super::get_model(ports.store, &account.account_id, &model.model_name).await?;
                match (model_rev, current) {
                    (None, Some(_)) => return Err(name_taken(&model.model_name).into()),
                    (Some(_), None) => {
                        return Err(super::model_not_found(model.model_name.as_str()).into());
                    }
                    (Some(rev), Some((_, now_rev))) if rev != now_rev => {
                        return Err(DomainError::Conflict {
                            message: format!(
                                "Another version of {:?} was started at the same time; retry.",
                                model.model_name
                            ),
                        }
                        .into());
                    }
                    _ => {}
                }
                attempt += 1;
                if attempt >= 5 {
                    return Err(StartBuildError::ConcurrencyLimit {
                        limit: who.limits.concurrent_builds(account.tier),
                    });
                }
                slot = free_slot(ports.store, who).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let message = serde_json::to_string(&JobMessage {
        account_id: account.account_id.clone(),
        job_id: job_id.clone(),
    })
    .map_err(|e| DomainError::Corrupt(format!("encode job message: {e}")))?;
    if let Err(e) = ports.queue.send(&message).await {
        // Nothing will ever run this job: end it now rather than leave it PENDING.
        tracing::error!(job_id = %job_id, error = %e, "could not enqueue a build");
        fail_unqueued(ports.store, &account.account_id, &job, &version).await;
        return Err(DomainError::Queue(e).into());
    }
    tracing::info!(job_id = %job_id, model_name = %model.model_name, version = number, "build queued");
    Ok(StartedBuild {
        job_id,
        model,
        version,
    })
}

async fn fail_unqueued(store: &dyn Store, account_id: &str, job: &Job, version: &ModelVersion) {
    let Ok(Some((mut job, rev))) = jobs::get_job(store, account_id, &job.job_id).await else {
        return;
    };
    job.state = JobState::Failed;
    job.last_error = Some("could not be queued".into());
    let mut version = version.clone();
    version.status = VersionStatus::Error;
    version.error = Some(VersionError {
        code: "service_unavailable".into(),
        message: "The build could not be queued; start it again.".into(),
    });
    let Ok(mut ops) = jobs::transition_ops(&job, rev) else {
        return;
    };
    if let Ok(data) = encode(&version) {
        ops.push(WriteOp::Put {
            item: Item::new(
                account_pk(account_id),
                version_sk(&version.model_name, version.number),
                data,
            ),
            condition: Condition::Exists,
        });
    }
    if let Err(e) = store.transact(ops).await {
        tracing::error!(error = %e, "could not record an unqueued build as failed");
    }
}
