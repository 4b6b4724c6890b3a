//! What a build hands back besides the ONNX file: the output record, the input and output
//! schemas a prediction request and answer follow, and feature importance.

use super::features::FeaturePlan;
use super::pipeline::{Pipeline, Task};
use super::search::LeaderboardEntry;
use crate::ingest::ColumnType;
use serde::Serialize;
use std::collections::BTreeMap;

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

/// How the model did on the held-out rows, for a person to look at: a confusion matrix, or
/// predictions against actual values and the residuals' spread.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HoldoutEvaluation {
    Classification {
        labels: Vec<String>,
        /// `confusion_matrix[actual][predicted]`, rows and columns in `labels` order.
        confusion_matrix: Vec<Vec<u64>>,
    },
    Regression {
        /// At most [`HoldoutEvaluation::MAX_POINTS`] holdout rows, evenly spaced.
        points: Vec<ActualPredicted>,
        /// Of actual − predicted over every holdout row.
        residual_histogram: Vec<HistogramBin>,
    },
}

impl HoldoutEvaluation {
    /// Points of a regression's scatter (a record stays small whatever the holdout's size).
    pub const MAX_POINTS: usize = 500;
    /// Bins of the residual histogram.
    pub const BINS: usize = 20;
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ActualPredicted {
    pub actual: f64,
    pub predicted: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HistogramBin {
    pub from: f64,
    pub to: f64,
    pub count: u64,
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
    /// Metrics of the winner on the holdout rows (as the search fit it on a large table,
    /// refit on the training part on a small one).
    pub holdout_metrics: BTreeMap<String, f64>,
    /// The same holdout, to look at.
    pub evaluation: HoldoutEvaluation,
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

/// Input fields (one per raw input column) and output fields: the target holds the prediction,
/// `<target>_probability` (binary, of the positive class) or `<target>_probabilities`
/// (multiclass, label → p).
pub(crate) fn schemas(
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
            kind: i.kind.name().to_string(),
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
                kind: target_kind.name().into(),
            });
            outputs.push(SchemaField {
                name: format!("{target}_probability"),
                kind: "float".into(),
            });
        }
        Task::Multiclass { .. } => {
            outputs.push(SchemaField {
                name: target.to_string(),
                kind: target_kind.name().into(),
            });
            outputs.push(SchemaField {
                name: format!("{target}_probabilities"),
                kind: "object".into(),
            });
        }
    }
    (inputs, outputs)
}
