//! Gradient-boosted decision trees with LightGBM's algorithm: quantile histogram binning with a
//! separate missing bin, leaf-wise growth on gradient/hessian histograms (with the subtraction
//! trick) or CatBoost's symmetric trees on the same histograms, learned missing directions,
//! native categorical splits, L1/L2-regularised leaves, shrinkage, bagging, feature fraction and
//! early stopping.
//!
//! The output is a [`TreeEnsemble`] of the fitted pipeline: thresholds are `f32` values chosen so
//! that `x_f32 <= t` reproduces the bin decision made in training for every `f32` input, which is
//! what lets the ONNX export agree with training.
//!
//! Determinism: parallel work (histograms per feature, gradients per row, binning per feature)
//! never reduces floats across threads, so the same input and seed give the same trees bit for
//! bit whatever the number of threads.

mod binning;
mod booster;
mod histogram;
mod objective;
mod split;
mod tree_learner;

#[cfg(test)]
mod tests;

use crate::automl::pipeline::{TreeEnsemble, leaf_value};
use std::time::Instant;

/// Column-major `f32` features; NaN = missing. Categorical features hold category indices
/// `0..n` as `f32` (anything else, e.g. negative or fractional, is read as missing).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    pub n_rows: usize,
    pub columns: Vec<FeatureColumn>,
}

impl FeatureMatrix {
    /// Feature `feature` of row `row`; NaN (missing) when either is out of range.
    pub fn value(&self, feature: usize, row: usize) -> f32 {
        self.columns
            .get(feature)
            .and_then(|c| c.values.get(row))
            .copied()
            .unwrap_or(f32::NAN)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeatureColumn {
    pub values: Vec<f32>,
    /// `Some(number of categories)` for a categorical feature.
    pub categorical: Option<u32>,
}

impl FeatureColumn {
    pub fn numeric(values: Vec<f32>) -> Self {
        FeatureColumn {
            values,
            categorical: None,
        }
    }

    pub fn categorical(values: Vec<f32>, n_categories: u32) -> Self {
        FeatureColumn {
            values,
            categorical: Some(n_categories),
        }
    }
}

/// The loss being boosted: L2, logloss or softmax (multi-logloss).
#[derive(Debug, Clone, PartialEq)]
pub enum Objective {
    Regression,
    Binary,
    Multiclass { n_classes: usize },
}

impl Objective {
    /// Number of raw margins (trees per round).
    pub fn n_outputs(&self) -> usize {
        match self {
            Objective::Regression | Objective::Binary => 1,
            Objective::Multiclass { n_classes } => *n_classes,
        }
    }
}

/// How a tree grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrowPolicy {
    /// LightGBM's: the leaf with the largest gain splits next, up to `num_leaves`.
    LeafWise,
    /// CatBoost's symmetric (oblivious) trees: `max_depth` levels, every node of a level split
    /// by the same rule (but a node the rule would leave with an empty side, which takes the
    /// next level's rule). A strong regularizer on small tables. `lambda_l2` must be > 0.
    Symmetric,
}

/// Training parameters; `Default` gives LightGBM's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct GbmParams {
    pub policy: GrowPolicy,
    pub learning_rate: f64,
    pub num_leaves: usize,
    /// `-1` (or any value <= 0) = no limit.
    pub max_depth: i32,
    pub min_data_in_leaf: usize,
    pub min_sum_hessian_in_leaf: f64,
    pub lambda_l1: f64,
    pub lambda_l2: f64,
    pub min_gain_to_split: f64,
    /// Fraction of features drawn for each tree.
    pub feature_fraction: f64,
    pub bagging_fraction: f64,
    /// Redraw the bag every `bagging_freq` rounds; 0 = no bagging.
    pub bagging_freq: usize,
    pub max_bin: usize,
    /// A bin holds at least this many (sampled) values.
    pub min_data_in_bin: usize,
    pub max_cat_threshold: usize,
    pub cat_l2: f64,
    pub cat_smooth: f64,
    pub min_data_per_group: usize,
    pub max_cat_to_onehot: usize,
    /// Maximum number of boosting rounds.
    pub n_estimators: usize,
    /// Stop when the validation loss has not improved for this many rounds; 0 = never.
    pub early_stopping_rounds: usize,
    /// A round counts as an improvement only when it lowers the best validation loss by more
    /// than this fraction of the first round's loss (0 = any decrease, LightGBM's default).
    /// Without it, separable classes keep "improving" the log loss by crumbs for thousands of
    /// rounds, which buys nothing but a bigger, slower model.
    pub early_stopping_min_delta: f64,
    pub seed: u64,
    /// 0 = rayon's current pool.
    pub n_threads: usize,
}

impl Default for GbmParams {
    fn default() -> Self {
        GbmParams {
            policy: GrowPolicy::LeafWise,
            learning_rate: 0.1,
            num_leaves: 31,
            max_depth: -1,
            min_data_in_leaf: 20,
            min_sum_hessian_in_leaf: 1e-3,
            lambda_l1: 0.0,
            lambda_l2: 0.0,
            min_gain_to_split: 0.0,
            feature_fraction: 1.0,
            bagging_fraction: 1.0,
            bagging_freq: 0,
            max_bin: 255,
            min_data_in_bin: 3,
            max_cat_threshold: 32,
            cat_l2: 10.0,
            cat_smooth: 10.0,
            min_data_per_group: 100,
            max_cat_to_onehot: 4,
            n_estimators: 100,
            early_stopping_rounds: 0,
            early_stopping_min_delta: 0.0,
            seed: 0,
            n_threads: 0,
        }
    }
}

/// A trained ensemble and what was observed while training it.
#[derive(Debug, Clone, PartialEq)]
pub struct GbmFit {
    pub ensemble: TreeEnsemble,
    /// Number of rounds kept in `ensemble` (the best round on `valid` when early stopping).
    pub best_iteration: usize,
    /// Per trained round, the objective's loss on `valid` (empty without `valid`).
    pub valid_scores: Vec<f64>,
    /// Per feature, the total split gain in the kept trees.
    pub feature_gain: Vec<f64>,
    /// The deadline stopped boosting (not the rounds, early stopping or a lack of splits).
    pub out_of_time: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GbmError {
    #[error("the feature matrix has no rows")]
    Empty,
    #[error("column {column} has {got} values, expected {expected}")]
    ColumnLength {
        column: usize,
        got: usize,
        expected: usize,
    },
    #[error("{what} has {got} entries, expected {expected}")]
    LengthMismatch {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("target value at row {row} is not a finite number")]
    NonFiniteTarget { row: usize },
    #[error("target value {value} at row {row} is not a class index of this objective")]
    InvalidLabel { row: usize, value: f64 },
    #[error("sample weight at row {row} is negative or not finite")]
    InvalidWeight { row: usize },
    #[error("sample weights sum to zero")]
    ZeroWeight,
    #[error("validation matrix has {got} columns, training has {expected}")]
    ValidColumns { got: usize, expected: usize },
    #[error("invalid parameter: {0}")]
    InvalidParams(String),
    #[error("could not start the training thread pool: {0}")]
    ThreadPool(String),
}

/// Trains a boosted ensemble. `y` holds regression targets or class indices (`0/1` for binary,
/// `0..K` for multiclass). Stops after `params.n_estimators` rounds, at the `deadline` (keeping
/// what was trained), or by early stopping on `valid`.
pub fn train(
    x: &FeatureMatrix,
    y: &[f64],
    sample_weight: Option<&[f64]>,
    objective: &Objective,
    params: &GbmParams,
    valid: Option<(&FeatureMatrix, &[f64])>,
    deadline: Option<Instant>,
) -> Result<GbmFit, GbmError> {
    validate(x, y, sample_weight, objective, params, valid)?;
    if params.n_threads > 0 {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(params.n_threads)
            .build()
            .map_err(|e| GbmError::ThreadPool(e.to_string()))?;
        Ok(
            pool.install(|| {
                booster::boost(x, y, sample_weight, objective, params, valid, deadline)
            }),
        )
    } else {
        Ok(booster::boost(
            x,
            y,
            sample_weight,
            objective,
            params,
            valid,
            deadline,
        ))
    }
}

/// Raw margins `[row][output]` of an ensemble: `base[k] +` the leaf values of the trees of output
/// `k`, comparing `f32` features with `f32` thresholds as the ONNX export does.
pub fn predict_margins(ensemble: &TreeEnsemble, x: &FeatureMatrix) -> Vec<Vec<f64>> {
    use rayon::prelude::*;
    // Blocks of rows on every core; within a block the trees are added in order, so each row's
    // sum is the same, bit for bit, as one thread's.
    const BLOCK: usize = 1024;
    let mut out: Vec<Vec<f64>> = (0..x.n_rows).map(|_| ensemble.base.clone()).collect();
    out.par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(block, rows)| {
            let first = block * BLOCK;
            for tree in &ensemble.trees {
                for (i, margins) in rows.iter_mut().enumerate() {
                    if let Some(m) = margins.get_mut(tree.output) {
                        *m += leaf_value(&tree.nodes, |f| x.value(f, first + i));
                    }
                }
            }
        });
    out
}

fn validate(
    x: &FeatureMatrix,
    y: &[f64],
    sample_weight: Option<&[f64]>,
    objective: &Objective,
    params: &GbmParams,
    valid: Option<(&FeatureMatrix, &[f64])>,
) -> Result<(), GbmError> {
    check_matrix(x)?;
    check_target(y, x.n_rows, objective)?;
    if let Some(w) = sample_weight {
        if w.len() != x.n_rows {
            return Err(GbmError::LengthMismatch {
                what: "sample_weight",
                got: w.len(),
                expected: x.n_rows,
            });
        }
        if let Some(row) = w.iter().position(|v| !v.is_finite() || *v < 0.0) {
            return Err(GbmError::InvalidWeight { row });
        }
        if w.iter().sum::<f64>() <= 0.0 {
            return Err(GbmError::ZeroWeight);
        }
    }
    if let Some((vx, vy)) = valid {
        check_matrix(vx)?;
        if vx.columns.len() != x.columns.len() {
            return Err(GbmError::ValidColumns {
                got: vx.columns.len(),
                expected: x.columns.len(),
            });
        }
        check_target(vy, vx.n_rows, objective)?;
    }
    let p = params;
    let bad = |what: &str| Err(GbmError::InvalidParams(what.to_string()));
    if !(p.learning_rate.is_finite() && p.learning_rate > 0.0) {
        return bad("learning_rate must be > 0");
    }
    if p.num_leaves < 2 {
        return bad("num_leaves must be >= 2");
    }
    // A symmetric tree holds 2^(depth-1) histograms at once; a leaf may hold one row.
    if p.policy == GrowPolicy::Symmetric && (!(1..=12).contains(&p.max_depth) || p.lambda_l2 <= 0.0)
    {
        return bad("symmetric trees need max_depth in 1..=12 and lambda_l2 > 0");
    }
    if p.max_bin < 2 || p.max_bin > 65535 {
        return bad("max_bin must be in 2..=65535");
    }
    for (name, v) in [
        ("feature_fraction", p.feature_fraction),
        ("bagging_fraction", p.bagging_fraction),
    ] {
        if !(v > 0.0 && v <= 1.0) {
            return bad(&format!("{name} must be in (0, 1]"));
        }
    }
    for (name, v) in [
        ("min_sum_hessian_in_leaf", p.min_sum_hessian_in_leaf),
        ("lambda_l1", p.lambda_l1),
        ("lambda_l2", p.lambda_l2),
        ("min_gain_to_split", p.min_gain_to_split),
        ("cat_l2", p.cat_l2),
        ("cat_smooth", p.cat_smooth),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return bad(&format!("{name} must be a finite number >= 0"));
        }
    }
    if let Objective::Multiclass { n_classes } = objective
        && *n_classes < 2
    {
        return bad("multiclass needs at least 2 classes");
    }
    Ok(())
}

fn check_matrix(x: &FeatureMatrix) -> Result<(), GbmError> {
    if x.n_rows == 0 {
        return Err(GbmError::Empty);
    }
    for (column, c) in x.columns.iter().enumerate() {
        if c.values.len() != x.n_rows {
            return Err(GbmError::ColumnLength {
                column,
                got: c.values.len(),
                expected: x.n_rows,
            });
        }
    }
    Ok(())
}

fn check_target(y: &[f64], n_rows: usize, objective: &Objective) -> Result<(), GbmError> {
    if y.len() != n_rows {
        return Err(GbmError::LengthMismatch {
            what: "y",
            got: y.len(),
            expected: n_rows,
        });
    }
    if let Some(row) = y.iter().position(|v| !v.is_finite()) {
        return Err(GbmError::NonFiniteTarget { row });
    }
    let n_classes = match objective {
        Objective::Regression => return Ok(()),
        Objective::Binary => 2,
        Objective::Multiclass { n_classes } => *n_classes,
    };
    for (row, &value) in y.iter().enumerate() {
        if value < 0.0 || value.fract() != 0.0 || value >= n_classes as f64 {
            return Err(GbmError::InvalidLabel { row, value });
        }
    }
    Ok(())
}
