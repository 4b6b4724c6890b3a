//! One build, end to end: resolve the target, decide the task, plan the features, split a
//! holdout, search candidates on the training part, refit the winner to score the holdout, refit
//! it on every row for the delivered pipeline, and explain the result.
//!
//! Determinism: every random choice is seeded from the request's seed, and candidates are tried
//! in a fixed order, so the same table and request give the same pipeline, bit for bit, as long
//! as the time budget does not cut the search short (the budget is a wall clock, so a build that
//! runs out of time may stop at a different candidate on a slower machine).

use super::describe;
use super::features::{self, DroppedColumn, FeatureError, FeaturePlan};
use super::gbm::{self, FeatureColumn, FeatureMatrix};
use super::importance::input_importance;
use super::linear;
use super::metrics::{self, Evaluation, Metric};
use super::pipeline::{Feature, Model, Pipeline, Task};
use super::search::{self, Choice, LeaderboardEntry, SearchData, SearchError};
use super::split;
use super::target::{TargetError, resolve_target};
use super::task::{TaskError, encode_target, infer_task};
use crate::ingest::{ColumnType, Table};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use thiserror::Error;

/// The default wall-clock budget of a build (SPEC: `time_budget_s` defaults to 60).
pub const DEFAULT_TIME_BUDGET_S: f64 = 60.0;
/// Share of the rows held out to report honest metrics.
const HOLDOUT_FRACTION: f64 = 0.2;
/// Fewer usable rows than this cannot be split into training, validation and holdout.
pub const MIN_ROWS: usize = 20;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildRequest {
    pub intent: String,
    /// Explicit target column.
    pub target: Option<String>,
    /// The user's output schema: an object whose keys are field names, or an array of names
    /// (strings or `{"name": ...}` objects). A field naming a column makes it the target.
    pub output_schema: Option<serde_json::Value>,
    /// Selection metric; `None` = accuracy for classification, rmse for regression.
    pub metric: Option<Metric>,
    pub time_budget_s: f64,
    /// At most this many candidate configurations are evaluated.
    pub max_iterations: Option<usize>,
    pub seed: u64,
}

impl BuildRequest {
    pub fn new(intent: impl Into<String>) -> Self {
        BuildRequest {
            intent: intent.into(),
            target: None,
            output_schema: None,
            metric: None,
            time_budget_s: DEFAULT_TIME_BUDGET_S,
            max_iterations: None,
            seed: 42,
        }
    }

    /// The output schema's field names (they may name the target).
    pub fn output_fields(&self) -> Vec<String> {
        match &self.output_schema {
            Some(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| match v {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Object(o) => {
                        o.get("name").and_then(|n| n.as_str()).map(str::to_string)
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Info,
    Warn,
}

/// Hears how a build goes: progress (0–100, never decreasing) and log lines for the build log.
pub trait BuildObserver: Sync {
    fn progress(&self, percent: u8);
    fn log(&self, level: LogLevel, message: &str);
}

/// An observer that ignores everything (tests, benches).
pub struct SilentObserver;

impl BuildObserver for SilentObserver {
    fn progress(&self, _percent: u8) {}
    fn log(&self, _level: LogLevel, _message: &str) {}
}

#[derive(Debug, Error)]
pub enum BuildError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error("metric `{metric}` does not apply to a {task} task")]
    MetricMismatch {
        metric: &'static str,
        task: &'static str,
    },
    #[error("only {rows} rows have a value for target `{target}`; at least {MIN_ROWS} are needed")]
    TooFewRows { target: String, rows: usize },
    #[error("no usable feature columns remain besides the target `{target}` (dropped: {dropped})")]
    NoFeatures { target: String, dropped: String },
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error(transparent)]
    Search(#[from] SearchError),
}

impl BuildError {
    /// Whether the dataset or request cannot work (SPEC: a 422), as opposed to a failure of ours.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, BuildError::Search(_) | BuildError::Features(_))
    }
}

/// A field of the input or output schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaField {
    pub name: String,
    /// `integer`, `float`, `boolean`, `string`, `datetime`, or `object` (label → probability).
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureImportance {
    pub feature: String,
    pub importance: f64,
}

/// Everything a build produces besides the ONNX file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildOutput {
    #[serde(skip)]
    pub pipeline: Pipeline,
    #[serde(skip)]
    pub task: Task,
    pub target: String,
    /// `binary`, `multiclass` or `regression`.
    pub task_kind: &'static str,
    /// The metric the search selected by.
    pub metric: &'static str,
    /// The winner's validation score on that metric.
    pub validation_score: f64,
    /// Metrics of the winner (refit on the training part) on the holdout rows.
    pub holdout_metrics: BTreeMap<String, f64>,
    /// Per input column, largest first; sums to 1.
    pub feature_importance: Vec<FeatureImportance>,
    pub leaderboard: Vec<LeaderboardEntry>,
    pub algorithm: String,
    pub description: String,
    pub input_schema: Vec<SchemaField>,
    pub output_schema: Vec<SchemaField>,
    pub dropped_columns: Vec<(String, String)>,
    /// Rows with a target value: (used for training and validation, held out).
    pub train_rows: usize,
    pub holdout_rows: usize,
    pub build_seconds: f64,
}

/// Builds a model from `table` as `request` asks, telling `observer` how it goes.
pub fn build(
    table: &Table,
    request: &BuildRequest,
    observer: &dyn BuildObserver,
) -> Result<BuildOutput, BuildError> {
    let started = Instant::now();
    let budget = Duration::from_secs_f64(request.time_budget_s.clamp(1.0, 86_400.0));
    observer.progress(0);
    observer.log(
        LogLevel::Info,
        &format!(
            "data: {} rows, {} columns",
            table.n_rows,
            table.columns.len()
        ),
    );

    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    let target = resolve_target(
        &names,
        &request.intent,
        request.target.as_deref(),
        &request.output_fields(),
    )?;
    let target_column = table
        .column(&target)
        .ok_or_else(|| TargetError::UnknownColumn {
            name: target.clone(),
            columns: names.iter().map(|s| s.to_string()).collect(),
        })?;
    let all_rows: Vec<usize> = (0..table.n_rows).collect();
    let task = infer_task(target_column, &all_rows, &request.intent)?;
    let metric = request.metric.unwrap_or_else(|| Metric::default_for(&task));
    if metric.is_classification() == matches!(task, Task::Regression) {
        return Err(BuildError::MetricMismatch {
            metric: metric.name(),
            task: task.kind_name(),
        });
    }
    observer.log(
        LogLevel::Info,
        &format!("target: `{target}`, task: {}", describe::task_phrase(&task)),
    );

    // Rows without a target value teach nothing.
    let encoded = encode_target(target_column, &task, &all_rows);
    let labelled: Vec<usize> = all_rows
        .iter()
        .copied()
        .filter(|&r| encoded[r].is_some())
        .collect();
    if labelled.len() < table.n_rows {
        observer.log(
            LogLevel::Warn,
            &format!(
                "{} rows have no value for `{target}` and are left out",
                table.n_rows - labelled.len()
            ),
        );
    }
    if labelled.len() < MIN_ROWS {
        return Err(BuildError::TooFewRows {
            target,
            rows: labelled.len(),
        });
    }
    let y_all: Vec<f64> = labelled
        .iter()
        .map(|&r| encoded[r].unwrap_or(0.0))
        .collect();
    let classes: Option<Vec<usize>> =
        (!matches!(task, Task::Regression)).then(|| y_all.iter().map(|&v| v as usize).collect());
    let (train_pos, hold_pos) = split::holdout_split(
        labelled.len(),
        classes.as_deref(),
        HOLDOUT_FRACTION,
        request.seed,
    );
    let train_rows: Vec<usize> = train_pos.iter().map(|&p| labelled[p]).collect();
    let hold_rows: Vec<usize> = hold_pos.iter().map(|&p| labelled[p]).collect();

    let plan = features::plan_features(table, &target, &train_rows);
    for DroppedColumn { name, reason } in &plan.dropped {
        observer.log(
            LogLevel::Info,
            &format!("dropped column `{name}`: {}", reason.explain()),
        );
    }
    if plan.features.is_empty() {
        let dropped = plan
            .dropped
            .iter()
            .map(|d| d.name.clone())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(BuildError::NoFeatures { target, dropped });
    }
    observer.log(
        LogLevel::Info,
        &format!(
            "features: {} from {} columns; {} rows for training, {} held out",
            plan.features.len(),
            plan.inputs.len(),
            train_rows.len(),
            hold_rows.len()
        ),
    );
    observer.progress(5);

    let train_cols = features::feature_columns(&plan.inputs, &plan.features, table, &train_rows)?;
    let y_train: Vec<f64> = train_pos.iter().map(|&p| y_all[p]).collect();
    let data = SearchData {
        task: &task,
        features: &plan.features,
        cols: &train_cols,
        y: &y_train,
    };
    let search_deadline = started + budget.mul_f64(0.6);
    let hard_deadline = started + budget.mul_f64(0.95);
    let mut on_candidate = |entry: &LeaderboardEntry, i: usize, total: usize| {
        observer.log(
            LogLevel::Info,
            &format!(
                "candidate {}/{total}: {} ({}) validation {} = {:.5} in {:.2}s",
                i + 1,
                entry.family,
                entry.parameters,
                metric.name(),
                entry.validation_score,
                entry.fit_seconds
            ),
        );
        observer.progress((5 + (70 * (i + 1) / total.max(1))).min(75) as u8);
    };
    let outcome = search::search(
        &data,
        metric,
        request.seed,
        request.max_iterations,
        search_deadline,
        hard_deadline,
        &mut on_candidate,
    )?;
    let choice = outcome.choice;
    let algorithm = algorithm_name(&choice, &task);
    observer.log(
        LogLevel::Info,
        &format!(
            "chosen: {algorithm}, validation {} = {:.5}",
            metric.name(),
            choice.validation_score
        ),
    );

    // Honest metrics: the winner refit on the training part, scored on the held-out rows.
    let fitted = search::refit(&data, &choice, request.seed, hard_deadline)?;
    let hold_cols = features::feature_columns(&plan.inputs, &plan.features, table, &hold_rows)?;
    let y_hold: Vec<f64> = hold_pos.iter().map(|&p| y_all[p]).collect();
    let models: Vec<(f64, &Model)> = fitted.iter().map(|f| (f.weight, &f.model)).collect();
    let holdout_margins = blended_margins(
        &models,
        &plan.features,
        &hold_cols,
        hold_rows.len(),
        task.n_outputs(),
    );
    let holdout_metrics = holdout_report(&task, &y_hold, &holdout_margins);
    let summary: Vec<String> = holdout_metrics
        .iter()
        .map(|(k, v)| format!("{k} = {v:.4}"))
        .collect();
    observer.log(
        LogLevel::Info,
        &format!("holdout ({} rows): {}", hold_rows.len(), summary.join(", ")),
    );
    observer.progress(85);

    // The delivered model learns from every labelled row, with the configuration that won.
    let all_cols = features::feature_columns(&plan.inputs, &plan.features, table, &labelled)?;
    let full = SearchData {
        task: &task,
        features: &plan.features,
        cols: &all_cols,
        y: &y_all,
    };
    let scale = labelled.len() as f64 / train_rows.len().max(1) as f64;
    let final_choice = scale_rounds(&choice, scale);
    let final_deadline = hard_deadline.max(Instant::now() + budget.mul_f64(0.25));
    let fitted = search::refit(&full, &final_choice, request.seed, final_deadline)?;
    observer.progress(95);

    let per_model: Vec<(f64, Vec<f64>)> = fitted
        .iter()
        .map(|f| (f.weight, f.feature_importance.clone()))
        .collect();
    let feature_importance: Vec<FeatureImportance> =
        input_importance(&plan.inputs, &plan.features, &per_model)
            .into_iter()
            .map(|(feature, importance)| FeatureImportance {
                feature,
                importance,
            })
            .collect();
    let pipeline = Pipeline {
        target: target.clone(),
        task: task.clone(),
        inputs: plan.inputs.clone(),
        features: plan.features.clone(),
        weights: fitted.iter().map(|f| f.weight).collect(),
        models: fitted.into_iter().map(|f| f.model).collect(),
    };
    let (input_schema, output_schema) = schemas(&plan, &target, target_column.kind, &task);
    let description = describe::describe(&describe::Summary {
        target: &target,
        task: &task,
        algorithm: &algorithm,
        pipeline: &pipeline,
        importance: &feature_importance,
        holdout_metrics: &holdout_metrics,
        train_rows: train_rows.len(),
        holdout_rows: hold_rows.len(),
        dropped: &plan.dropped,
    });
    let output = BuildOutput {
        task_kind: task.kind_name(),
        metric: metric.name(),
        validation_score: choice.validation_score,
        holdout_metrics,
        feature_importance,
        leaderboard: outcome.leaderboard,
        algorithm,
        description,
        input_schema,
        output_schema,
        dropped_columns: plan
            .dropped
            .iter()
            .map(|d| (d.name.clone(), d.reason.explain().to_string()))
            .collect(),
        train_rows: train_rows.len(),
        holdout_rows: hold_rows.len(),
        build_seconds: started.elapsed().as_secs_f64(),
        pipeline,
        task,
        target,
    };
    observer.log(
        LogLevel::Info,
        &format!("model ready in {:.2}s", output.build_seconds),
    );
    observer.progress(100);
    Ok(output)
}

/// `gradient_boosted_trees`, `logistic_regression`, or a blend such as
/// `blend(0.65 gradient_boosted_trees + 0.35 logistic_regression)`.
fn algorithm_name(choice: &Choice, task: &Task) -> String {
    match choice.members.as_slice() {
        [one] => one.spec.family(task).to_string(),
        members => {
            let parts: Vec<String> = members
                .iter()
                .map(|m| format!("{:.2} {}", m.weight, m.spec.family(task)))
                .collect();
            format!("blend({})", parts.join(" + "))
        }
    }
}

/// The same configuration with boosting rounds scaled for a larger training set.
fn scale_rounds(choice: &Choice, scale: f64) -> Choice {
    let mut c = choice.clone();
    for m in &mut c.members {
        m.rounds = m
            .rounds
            .map(|r| ((r as f64 * scale).round() as usize).max(1));
    }
    c
}

/// Weighted raw margins (row-major, `k` per row) of `models` on feature columns of `n` rows.
pub fn blended_margins(
    models: &[(f64, &Model)],
    features: &[Feature],
    cols: &[Vec<f32>],
    n: usize,
    k: usize,
) -> Vec<f64> {
    let rows: Vec<usize> = (0..n).collect();
    let mut out = vec![0.0; n * k];
    for (weight, model) in models {
        let margins = match model {
            Model::Linear(m) => linear::linear_margins(m, cols, &rows),
            Model::Trees(ensemble) => {
                gbm::predict_margins(ensemble, &feature_matrix(features, cols, n)).concat()
            }
        };
        for (o, m) in out.iter_mut().zip(&margins) {
            *o += weight * m;
        }
    }
    out
}

fn feature_matrix(features: &[Feature], cols: &[Vec<f32>], n: usize) -> FeatureMatrix {
    let columns = features
        .iter()
        .zip(cols)
        .map(|(f, c)| match f {
            Feature::CategoryIndex { levels, .. } => {
                FeatureColumn::categorical(c.clone(), levels.len() as u32)
            }
            _ => FeatureColumn::numeric(c.clone()),
        })
        .collect();
    FeatureMatrix { n_rows: n, columns }
}

/// The SPEC's holdout metrics: accuracy, precision, recall, f1_score (and roc_auc when binary),
/// log_loss for classification; rmse, mae, r2 for regression.
pub fn holdout_report(task: &Task, y: &[f64], margins: &[f64]) -> BTreeMap<String, f64> {
    metrics::report(
        task,
        Evaluation::from_margins(task, y.to_vec(), margins).outcome(),
    )
}

fn type_name(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::Integer => "integer",
        ColumnType::Float => "float",
        ColumnType::Boolean => "boolean",
        ColumnType::String => "string",
        ColumnType::Datetime => "datetime",
    }
}

/// Input fields (one per raw input column) and output fields: the target holds the prediction,
/// `<target>_probability` (binary, of the positive class) or `<target>_probabilities`
/// (multiclass, label → p).
fn schemas(
    plan: &FeaturePlan,
    target: &str,
    target_kind: ColumnType,
    task: &Task,
) -> (Vec<SchemaField>, Vec<SchemaField>) {
    let inputs = plan
        .inputs
        .iter()
        .map(|i| SchemaField {
            name: i.name.clone(),
            kind: type_name(i.kind).to_string(),
        })
        .collect();
    let mut outputs = Vec::new();
    match task {
        Task::Regression => outputs.push(SchemaField {
            name: target.to_string(),
            kind: "float".into(),
        }),
        Task::Binary { .. } => {
            outputs.push(SchemaField {
                name: target.to_string(),
                kind: type_name(target_kind).into(),
            });
            outputs.push(SchemaField {
                name: format!("{target}_probability"),
                kind: "float".into(),
            });
        }
        Task::Multiclass { .. } => {
            outputs.push(SchemaField {
                name: target.to_string(),
                kind: type_name(target_kind).into(),
            });
            outputs.push(SchemaField {
                name: format!("{target}_probabilities"),
                kind: "object".into(),
            });
        }
    }
    (inputs, outputs)
}
