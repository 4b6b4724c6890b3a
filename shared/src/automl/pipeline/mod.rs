//! A fitted pipeline: what the engine produces, what [`crate::onnx`] exports and what native
//! prediction runs. It is plain data so that the ONNX graph and native prediction are two
//! readings of one description, and the rules both follow live here: how a tree is walked and a
//! linear model summed (`margins`), how calendar parts are computed (`calendar`), how a level
//! maps to its index ([`level_index`]) and what makes a pipeline readable at all (`check`).
//!
//! Numeric precision: ONNX tree ensembles compare `f32` inputs with `f32` thresholds, so features
//! are cast to `f32` before any comparison, in training and in native prediction alike, and
//! thresholds are `f32` values. Raw margins are summed in `f64` natively; exported leaf weights
//! are `f32` (the tolerance of the cross-runtime check covers that).

mod calendar;
mod check;
mod contributions;
mod margins;
pub mod text;

pub use calendar::{Calendar, datetime_part};
pub use check::InvalidPipeline;
pub use contributions::{Contributions, NotExplainable};
pub use margins::{category_index, leaf_value};

use crate::ingest::ColumnType;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Task {
    Regression,
    /// `labels[1]` is the positive class (whose probability is reported).
    Binary {
        labels: [String; 2],
    },
    Multiclass {
        labels: Vec<String>,
    },
}

impl Task {
    /// Number of raw model outputs (margins): 1 for regression and binary, K for multiclass.
    pub fn n_outputs(&self) -> usize {
        match self {
            Task::Regression | Task::Binary { .. } => 1,
            Task::Multiclass { labels } => labels.len(),
        }
    }

    pub fn is_classification(&self) -> bool {
        !matches!(self, Task::Regression)
    }

    /// The class labels in model order (none for regression).
    pub fn labels(&self) -> &[String] {
        match self {
            Task::Regression => &[],
            Task::Binary { labels } => labels,
            Task::Multiclass { labels } => labels,
        }
    }

    /// `regression`, `binary` or `multiclass`: the task as results and model files name it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Task::Regression => "regression",
            Task::Binary { .. } => "binary",
            Task::Multiclass { .. } => "multiclass",
        }
    }
}

/// One raw input column of the pipeline (one named ONNX input, shape `[N, 1]`).
/// String columns are string tensors; every other type is `f32` (booleans 0/1, datetimes as
/// epoch seconds UTC, missing as NaN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    pub kind: ColumnType,
}

/// How one model feature is computed from the inputs. The feature vector is `f32`, NaN = missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Feature {
    /// The input's value as is.
    Numeric { input: usize },
    /// A string input mapped to the index of its level in `levels` (as `f32`);
    /// unseen values and missing → NaN.
    CategoryIndex { input: usize, levels: Vec<String> },
    /// A calendar part of a datetime input (epoch seconds, UTC); missing → NaN.
    DatetimePart { input: usize, part: DatetimePart },
    /// How many of a text input's tokens are `word` ([`text`] says which count); a missing
    /// text has none. The words of one input are consecutive features.
    WordCount { input: usize, word: String },
}

impl Feature {
    /// The input the feature reads.
    pub fn input(&self) -> usize {
        match self {
            Feature::Numeric { input }
            | Feature::CategoryIndex { input, .. }
            | Feature::DatetimePart { input, .. }
            | Feature::WordCount { input, .. } => *input,
        }
    }
}

/// Level → index of a [`Feature::CategoryIndex`]'s `levels`, the first occurrence winning; the
/// empty string is never a level (it means missing, as in the ONNX graph).
pub fn level_index(levels: &[String]) -> HashMap<&str, usize> {
    let mut index = HashMap::with_capacity(levels.len());
    for (i, level) in levels.iter().enumerate() {
        if !level.is_empty() {
            index.entry(level.as_str()).or_insert(i);
        }
    }
    index
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DatetimePart {
    Year,
    Month,
    Day,
    DayOfWeek,
    Hour,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Model {
    Trees(TreeEnsemble),
    Linear(LinearModel),
    /// A regression model fit to the natural log of a positive target; it answers `exp` of its
    /// margin. Prices and counts spread over orders of magnitude, and a model of their log
    /// weighs relative errors alike (on ames_housing LightGBM's RMSE falls 15% this way).
    LogTarget(Box<Model>),
}

impl Model {
    /// The model that reads the features: itself, or the one inside a [`Model::LogTarget`].
    pub fn inner(&self) -> &Model {
        match self {
            Model::LogTarget(inner) => inner.inner(),
            other => other,
        }
    }
}

/// Additive trees on raw margins: `margin[k] = base[k] + Σ leaf values of trees with output k`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeEnsemble {
    pub base: Vec<f64>,
    pub trees: Vec<Tree>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Which margin this tree adds to.
    pub output: usize,
    /// `nodes[0]` is the root.
    pub nodes: Vec<Node>,
    /// Per node, how many training rows reached it (a split's is the sum of its children's).
    /// Explanations weigh the branches a row did not take by these ([`Pipeline::contributions`]);
    /// empty in pipelines made before they were recorded, which then cannot be explained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covers: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Node {
    Leaf {
        value: f64,
    },
    Split {
        feature: usize,
        rule: SplitRule,
        /// Where a missing (NaN) feature value goes.
        missing_left: bool,
        left: u32,
        right: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SplitRule {
    /// Left when `value <= threshold` (both `f32`).
    LessOrEqual(f32),
    /// Left when the category index is one of these (sorted); every other index, including
    /// unseen categories (NaN) unless `missing_left`, goes right.
    InSet(Vec<u32>),
}

/// A linear model on raw margins, folded back onto raw feature values:
/// `margin[k] = intercept[k] + Σ numeric terms + Σ categorical terms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub intercept: Vec<f64>,
    pub numeric: Vec<NumericTerm>,
    pub categorical: Vec<CategoricalTerm>,
}

/// `weights[k] * (x if x is not NaN else fill)`, where x is the feature's `f32` value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericTerm {
    pub feature: usize,
    pub fill: f64,
    pub weights: Vec<f64>,
    /// The training mean of the filled value: an explanation credits the term with
    /// `weights[k] * (x - mean)`, so its base value is the average training margin.
    #[serde(default)]
    pub mean: f64,
}

/// `weights[level][k]` for the feature's category index; unseen and missing add nothing.
/// The feature must be a [`Feature::CategoryIndex`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalTerm {
    pub feature: usize,
    pub weights: Vec<Vec<f64>>,
    /// Per output, the term's average over the training rows (`Σ share(level) · weights[level]`),
    /// what an explanation measures a row's level against. Empty = 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mean: Vec<f64>,
}

/// The whole fitted pipeline. It is read two ways that must agree: natively (holdout scores,
/// `Pipeline::predict`) and as the exported ONNX graph; [`Pipeline::check`] guards both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub target: String,
    pub task: Task,
    pub inputs: Vec<InputSpec>,
    pub features: Vec<Feature>,
    /// One model, or several whose margins are averaged with `weights` (a blend). Never empty.
    pub models: Vec<Model>,
    pub weights: Vec<f64>,
}
