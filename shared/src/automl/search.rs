//! The candidate search: linear models over a small regularization grid and several
//! gradient-boosted tree configurations, tried in a fixed order and scored on k-fold
//! cross-validation (small data) or a validation split (larger data), stratified for
//! classification, all on the training rows only. What wins, alone or blended, is decided by
//! [`super::select`] from the out-of-fold margins kept here.

use super::gbm::{
    self, FeatureColumn, FeatureMatrix, GbmError, GbmFit, GbmParams, GrowPolicy, Objective,
};
use super::linear::{self, LinearKind};
use super::metrics::Metric;
use super::pipeline::{Feature, LinearModel, Model, Task};
use super::refit::linear_importance;
use super::select::selection_key;
use super::split;
use serde::Serialize;
use std::time::Instant;

/// One configuration the search can try.
#[derive(Debug, Clone, PartialEq)]
pub enum CandidateSpec {
    Linear(LinearKind),
    Trees {
        name: &'static str,
        params: GbmParams,
    },
    /// The configuration fit to the natural log of a positive regression target
    /// ([`Model::LogTarget`]).
    LogTarget(Box<CandidateSpec>),
}

impl CandidateSpec {
    pub fn family(&self, task: &Task) -> &'static str {
        match (self, task) {
            (CandidateSpec::Linear(_), Task::Regression) => "ridge_regression",
            (CandidateSpec::Linear(_), _) => "logistic_regression",
            (CandidateSpec::Trees { .. }, _) => "gradient_boosted_trees",
            (CandidateSpec::LogTarget(inner), _) => inner.family(task),
        }
    }

    pub fn is_linear(&self) -> bool {
        match self {
            CandidateSpec::Linear(_) => true,
            CandidateSpec::Trees { .. } => false,
            CandidateSpec::LogTarget(inner) => inner.is_linear(),
        }
    }

    /// The key parameters, for logs and the leaderboard.
    pub fn describe(&self) -> String {
        match self {
            CandidateSpec::LogTarget(inner) => format!("log target, {}", inner.describe()),
            CandidateSpec::Linear(LinearKind::Logistic { c }) => format!("C={c}"),
            CandidateSpec::Linear(LinearKind::Ridge { alpha }) => format!("alpha={alpha}"),
            CandidateSpec::Trees { name, params: p } if p.policy == GrowPolicy::Symmetric => {
                format!(
                    "{name}: learning_rate={}, depth={}, lambda_l2={}, feature_fraction={}, bagging_fraction={}",
                    p.learning_rate,
                    p.max_depth,
                    p.lambda_l2,
                    p.feature_fraction,
                    p.bagging_fraction
                )
            }
            CandidateSpec::Trees { name, params: p } => format!(
                "{name}: learning_rate={}, num_leaves={}, min_data_in_leaf={}, lambda_l2={}, feature_fraction={}, bagging_fraction={}, cat_smooth={}, min_data_per_group={}",
                p.learning_rate,
                p.num_leaves,
                p.min_data_in_leaf,
                p.lambda_l2,
                p.feature_fraction,
                p.bagging_fraction,
                p.cat_smooth,
                p.min_data_per_group
            ),
        }
    }
}

/// A row of the leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaderboardEntry {
    pub family: String,
    pub parameters: String,
    /// The selection metric on validation (cross-validated or the validation split).
    pub validation_score: f64,
    pub fit_seconds: f64,
    /// Boosting rounds found by early stopping (trees only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounds: Option<usize>,
}

/// The training data of a search: features (column-major, per training row), targets and task.
pub struct SearchData<'a> {
    pub task: &'a Task,
    pub features: &'a [Feature],
    pub cols: &'a [Vec<f32>],
    /// Class index or value per row.
    pub y: &'a [f64],
}

impl SearchData<'_> {
    pub fn n_rows(&self) -> usize {
        self.y.len()
    }
    fn classes(&self) -> Option<Vec<usize>> {
        self.task
            .is_classification()
            .then(|| self.y.iter().map(|&v| v as usize).collect())
    }
    /// A linear model of `kind` fit on `rows` (positions in this data).
    pub fn fit_linear(&self, kind: LinearKind, rows: &[usize], seed: u64) -> LinearModel {
        linear::fit_linear(
            self.task,
            kind,
            self.features,
            self.cols,
            self.y,
            rows,
            seed,
        )
    }

    /// Boosted trees fit on `rows` (positions in this data), early stopping on `valid` when
    /// given, keeping what is trained by `deadline`.
    pub fn fit_trees(
        &self,
        params: &GbmParams,
        rows: &[usize],
        valid: Option<(&FeatureMatrix, &[f64])>,
        deadline: Instant,
    ) -> Result<GbmFit, GbmError> {
        let y: Vec<f64> = rows.iter().map(|&r| self.y[r]).collect();
        gbm::train(
            &self.matrix(rows),
            &y,
            None,
            &objective(self.task),
            params,
            valid,
            Some(deadline),
        )
    }

    /// The feature matrix of `rows` (positions in this data).
    pub fn matrix(&self, rows: &[usize]) -> FeatureMatrix {
        let columns = self
            .features
            .iter()
            .zip(self.cols)
            .map(|(f, c)| {
                let values: Vec<f32> = rows.iter().map(|&r| c[r]).collect();
                match f {
                    Feature::CategoryIndex { levels, .. } => {
                        FeatureColumn::categorical(values, levels.len() as u32)
                    }
                    _ => FeatureColumn::numeric(values),
                }
            })
            .collect();
        FeatureMatrix {
            n_rows: rows.len(),
            columns,
        }
    }
}

pub fn objective(task: &Task) -> Objective {
    match task {
        Task::Regression => Objective::Regression,
        Task::Binary { .. } => Objective::Binary,
        Task::Multiclass { labels } => Objective::Multiclass {
            n_classes: labels.len(),
        },
    }
}

/// The candidates in the order they are tried: the cheap linear baseline and LightGBM's
/// defaults first, so a tight budget still gets both; then the variations.
pub fn candidates(task: &Task, n_rows: usize, seed: u64, log_target: bool) -> Vec<CandidateSpec> {
    let lin = |s: f64| match task {
        Task::Regression => CandidateSpec::Linear(LinearKind::Ridge { alpha: s }),
        _ => CandidateSpec::Linear(LinearKind::Logistic { c: 1.0 / s }),
    };
    let base = GbmParams {
        seed,
        n_estimators: 1000,
        early_stopping_rounds: 40,
        // Classes that separate cleanly keep lowering the log loss by crumbs for thousands of
        // rounds; regression keeps every real gain (its loss is relative to the variance, and
        // a high R² needs the last small steps).
        early_stopping_min_delta: if matches!(task, Task::Regression) {
            0.0
        } else {
            1e-3
        },
        ..GbmParams::default()
    };
    let defaults = CandidateSpec::Trees {
        name: "lightgbm_defaults",
        params: base.clone(),
    };
    let slow = CandidateSpec::Trees {
        name: "slow_bagged",
        params: GbmParams {
            learning_rate: 0.05,
            feature_fraction: 0.8,
            bagging_fraction: 0.8,
            bagging_freq: 1,
            lambda_l2: 1.0,
            n_estimators: 2000,
            early_stopping_rounds: 60,
            ..base.clone()
        },
    };
    // Categories seen in few rows (one of fifty states) fit noise: the regularized
    // configurations ignore categories rarer than `cat_smooth` rows in a node and need bigger
    // groups per side of a categorical split, both growing with the data.
    let regularized = CandidateSpec::Trees {
        name: "regularized",
        params: GbmParams {
            learning_rate: 0.03,
            num_leaves: 15,
            min_data_in_leaf: 40.min(n_rows / 20).max(5),
            cat_smooth: (n_rows as f64 / 64.0).clamp(10.0, 200.0),
            min_data_per_group: (n_rows / 16).clamp(100, 1000),
            lambda_l2: 5.0,
            feature_fraction: 0.6,
            bagging_fraction: 0.8,
            bagging_freq: 1,
            n_estimators: 3000,
            early_stopping_rounds: 80,
            ..base.clone()
        },
    };
    let small = CandidateSpec::Trees {
        name: "small_trees",
        params: GbmParams {
            learning_rate: 0.05,
            num_leaves: 7,
            min_data_in_leaf: 10,
            lambda_l2: 1.0,
            feature_fraction: 0.8,
            n_estimators: 2000,
            early_stopping_rounds: 60,
            ..base.clone()
        },
    };
    // Noisy targets (many classes, weak signal) want shallow, heavily smoothed trees that see
    // a random half of the features each.
    let conservative = CandidateSpec::Trees {
        name: "conservative",
        params: GbmParams {
            learning_rate: 0.05,
            num_leaves: 15,
            min_data_in_leaf: (n_rows / 50).clamp(20, 200),
            cat_smooth: (n_rows as f64 / 32.0).clamp(10.0, 400.0),
            min_data_per_group: (n_rows / 8).clamp(100, 2000),
            lambda_l2: 10.0,
            feature_fraction: 0.5,
            bagging_fraction: 0.7,
            bagging_freq: 1,
            n_estimators: 2000,
            early_stopping_rounds: 60,
            ..base.clone()
        },
    };
    let large = CandidateSpec::Trees {
        name: "large_trees",
        params: GbmParams {
            learning_rate: 0.05,
            num_leaves: 63,
            min_data_in_leaf: 10,
            feature_fraction: 0.8,
            bagging_fraction: 0.8,
            bagging_freq: 1,
            n_estimators: 2000,
            early_stopping_rounds: 60,
            ..base.clone()
        },
    };
    // CatBoost's defaults: symmetric trees of depth 6, L2 of 3 on the leaves. Last, so that a
    // large table's budget goes to the leaf-wise configurations first.
    let symmetric = CandidateSpec::Trees {
        name: "symmetric_trees",
        params: GbmParams {
            policy: GrowPolicy::Symmetric,
            max_depth: 6,
            learning_rate: 0.05,
            lambda_l2: 3.0,
            min_data_in_leaf: 1,
            bagging_fraction: 0.8,
            bagging_freq: 1,
            n_estimators: 3000,
            early_stopping_rounds: 80,
            ..base
        },
    };
    let log = |spec: &CandidateSpec| CandidateSpec::LogTarget(Box::new(spec.clone()));
    // Log-target variants of the trees only: a linear model of the log extrapolates through
    // `exp` (on ames_housing and diamonds its RMSE was 2.4 and 3 times the raw one's).
    let mut specs = vec![lin(1.0), defaults.clone(), slow.clone()];
    if log_target {
        specs.extend([log(&defaults), log(&slow)]);
    }
    specs.extend([lin(10.0), lin(0.1), regularized.clone()]);
    if log_target {
        specs.push(log(&regularized));
    }
    specs.push(small.clone());
    if log_target {
        specs.push(log(&small));
    }
    specs.extend([conservative, lin(100.0), large]);
    // Not for multiclass: CatBoost grows one symmetric tree for all the classes, with a value
    // per class in each leaf; a symmetric tree per class is another model, and on loan_grade
    // it won the validation split by 1.4 points and lost the test rows by as much.
    if !matches!(task, Task::Multiclass { .. }) {
        specs.push(symmetric.clone());
        if log_target {
            specs.push(log(&symmetric));
        }
    }
    specs
}

/// How candidates are validated: k folds for small data (less noise), one split for larger.
fn validation_splits(data: &SearchData, seed: u64) -> Vec<(Vec<usize>, Vec<usize>)> {
    let n = data.n_rows();
    let classes = data.classes();
    let folds = if n <= 1500 {
        5
    } else if n <= 6000 {
        3
    } else {
        0
    };
    if folds == 0 {
        let (train, valid) =
            split::holdout_split(n, classes.as_deref(), 0.2, seed.wrapping_add(17));
        return vec![(train, valid)];
    }
    let assignment = split::fold_assignment(n, classes.as_deref(), folds, seed.wrapping_add(17));
    (0..folds)
        .map(|f| {
            let train = (0..n).filter(|&i| assignment[i] != f).collect();
            let valid = (0..n).filter(|&i| assignment[i] == f).collect();
            (train, valid)
        })
        .collect()
}

/// The targets' natural logs, for log-target fits: a row without a log (zero or negative, which
/// only a held-out row refit later can have) gets 0 and must be left out of the fit.
pub(crate) fn log_targets(y: &[f64]) -> Vec<f64> {
    y.iter()
        .map(|&v| if v > 0.0 { v.ln() } else { 0.0 })
        .collect()
}

/// A candidate as the search fit it on the training part of a single validation split: a model
/// that never saw the holdout, kept so that a large table is not fit twice more (see
/// [`super::build`]).
pub struct SearchFit {
    pub model: Model,
    /// Per feature: split gain (trees) or |standardized coefficient| (linear).
    pub feature_importance: Vec<f64>,
    /// The rows it was fit on, and how long fitting (and scoring the validation rows) took.
    pub rows: usize,
    pub seconds: f64,
}

/// A candidate's out-of-fold margins and what they score.
pub struct Evaluated {
    pub spec: CandidateSpec,
    /// Row-major, `task.n_outputs()` per row of [`Searched::eval_rows`].
    pub margins: Vec<f64>,
    /// (selection metric, secondary loss): see [`selection_key`].
    pub key: (f64, f64),
    /// Boosting rounds for a refit (trees only).
    pub rounds: Option<usize>,
    /// The fitted model, when the candidate was validated on one split (not k folds).
    pub fit: Option<SearchFit>,
}

/// Every candidate scored: out-of-fold margins over the same validation rows, and the
/// leaderboard.
pub struct Searched {
    pub evaluated: Vec<Evaluated>,
    /// The training rows the margins are of, in margin order.
    pub eval_rows: Vec<usize>,
    pub leaderboard: Vec<LeaderboardEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("gradient boosting failed: {0}")]
    Gbm(#[from] gbm::GbmError),
    #[error("no candidate could be evaluated")]
    NothingEvaluated,
}

/// Scores the candidates in order on the validation splits. `on_candidate` hears each
/// leaderboard entry as it is scored (for logs and progress); candidates start only while
/// `search_deadline` has not passed (the first always runs) and at most `max_candidates` of
/// them.
pub fn evaluate_candidates(
    data: &SearchData,
    metric: Metric,
    seed: u64,
    max_candidates: Option<usize>,
    search_deadline: Instant,
    hard_deadline: Instant,
    on_candidate: &mut dyn FnMut(&LeaderboardEntry, usize, usize),
) -> Result<Searched, SearchError> {
    let splits = validation_splits(data, seed);
    let eval_rows: Vec<usize> = splits.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    let k = data.task.n_outputs();
    // The log of a positive target that spans a factor of 4 or more, for the log-target
    // candidates.
    let log_y: Option<Vec<f64>> = {
        let (low, high) = data
            .y
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        (matches!(data.task, Task::Regression)
            && low > 0.0
            && high.is_finite()
            && high >= 4.0 * low)
            .then(|| log_targets(data.y))
    };
    let log_data = log_y.as_deref().map(|y| SearchData { y, ..*data });
    let mut specs = candidates(data.task, data.n_rows(), seed, log_data.is_some());
    if let Some(m) = max_candidates {
        specs.truncate(m.max(1));
    }
    let total = specs.len();
    let mut evaluated: Vec<Evaluated> = Vec::new();
    let mut leaderboard = Vec::new();
    for (i, spec) in specs.into_iter().enumerate() {
        if i > 0 && Instant::now() >= search_deadline {
            break;
        }
        let started = Instant::now();
        let mut margins = vec![0.0; eval_rows.len() * k];
        let mut rounds = Vec::new();
        let mut at = 0;
        let mut fits = Vec::new();
        // A log-target candidate fits its inner configuration to log(y); its margins, scored
        // and blended with the others, are exp of the inner model's.
        let (fit_data, fit_spec, log_target) = match (&spec, &log_data) {
            (CandidateSpec::LogTarget(inner), Some(log_data)) => (log_data, &**inner, true),
            _ => (data, &spec, false),
        };
        let wrap = |model: Model| {
            if log_target {
                Model::LogTarget(Box::new(model))
            } else {
                model
            }
        };
        for (train, valid) in &splits {
            let mut m = match fit_spec {
                CandidateSpec::Linear(kind) => {
                    let model = fit_data.fit_linear(*kind, train, seed);
                    let margins = linear::linear_margins(&model, data.cols, valid);
                    if splits.len() == 1 {
                        let importance = linear_importance(&model, data.features, data.cols);
                        fits.push((wrap(Model::Linear(model)), importance, train.len()));
                    }
                    margins
                }
                CandidateSpec::Trees { params, .. } => {
                    let y_valid: Vec<f64> = valid.iter().map(|&r| fit_data.y[r]).collect();
                    let x_valid = data.matrix(valid);
                    let fit = fit_data.fit_trees(
                        params,
                        train,
                        Some((&x_valid, &y_valid)),
                        hard_deadline,
                    )?;
                    rounds.push(fit.best_iteration.max(1));
                    let margins = gbm::predict_margins(&fit.ensemble, &x_valid).concat();
                    if splits.len() == 1 {
                        fits.push((
                            wrap(Model::Trees(fit.ensemble)),
                            fit.feature_gain,
                            train.len(),
                        ));
                    }
                    margins
                }
                // Not made by `candidates` (no nesting), nor without a positive target.
                CandidateSpec::LogTarget(_) => continue,
            };
            if log_target {
                m.iter_mut().for_each(|v| *v = v.exp());
            }
            margins[at * k..(at + valid.len()) * k].copy_from_slice(&m);
            at += valid.len();
        }
        let key = selection_key(data, metric, &eval_rows, &margins);
        let rounds = (!rounds.is_empty()).then(|| {
            let mean = rounds.iter().sum::<usize>() as f64 / rounds.len() as f64;
            // The refit sees all the training rows, more than each validation fit: a few more rounds.
            ((mean * 1.1).round() as usize).max(1)
        });
        let seconds = started.elapsed().as_secs_f64();
        let entry = LeaderboardEntry {
            family: spec.family(data.task).to_string(),
            parameters: spec.describe(),
            validation_score: key.0,
            fit_seconds: seconds,
            rounds,
        };
        let fit = fits
            .pop()
            .map(|(model, feature_importance, rows)| SearchFit {
                model,
                feature_importance,
                rows,
                seconds,
            });
        on_candidate(&entry, i, total);
        leaderboard.push(entry);
        evaluated.push(Evaluated {
            spec,
            margins,
            key,
            rounds,
            fit,
        });
    }
    Ok(Searched {
        evaluated,
        eval_rows,
        leaderboard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symmetric(specs: &[CandidateSpec]) -> Vec<String> {
        specs
            .iter()
            .filter(|s| {
                let inner = match s {
                    CandidateSpec::LogTarget(inner) => &**inner,
                    other => other,
                };
                matches!(inner, CandidateSpec::Trees { params, .. }
                    if params.policy == GrowPolicy::Symmetric)
            })
            .map(CandidateSpec::describe)
            .collect()
    }

    #[test]
    fn symmetric_trees_are_tried_last_for_regression_and_binary_only() {
        let binary = Task::Binary {
            labels: ["no".into(), "yes".into()],
        };
        let multiclass = Task::Multiclass {
            labels: vec!["a".into(), "b".into(), "c".into()],
        };
        let regression = candidates(&Task::Regression, 2000, 7, true);
        assert_eq!(symmetric(&regression).len(), 2, "plain and log target");
        assert!(symmetric(&regression[regression.len() - 2..]).len() == 2);
        let plain = candidates(&Task::Regression, 2000, 7, false);
        assert_eq!(symmetric(&plain).len(), 1);
        let binary_specs = candidates(&binary, 2000, 7, false);
        assert_eq!(symmetric(&binary_specs).len(), 1);
        assert_eq!(
            symmetric(&binary_specs[binary_specs.len() - 1..]).len(),
            1,
            "last"
        );
        assert!(symmetric(&candidates(&multiclass, 2000, 7, false)).is_empty());
        // CatBoost's defaults: depth 6, L2 3.
        assert!(symmetric(&plain)[0].contains("depth=6, lambda_l2=3"));
    }
}
