//! The model search: candidates (linear models over a small regularization grid and several
//! gradient-boosted tree configurations) scored on k-fold cross-validation (small data) or a
//! validation split (larger data), stratified for classification, all on the training rows
//! only; then a margin blend of the best trees and the best linear model when it validates
//! better; then a refit of the winner on every training row.

use super::gbm::{self, FeatureColumn, FeatureMatrix, GbmParams, Objective};
use super::linear::{self, LinearKind};
use super::metrics::{self, Evaluation, Metric};
use super::pipeline::{Feature, LinearModel, Model, Task};
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
}

impl CandidateSpec {
    pub fn family(&self, task: &Task) -> &'static str {
        match (self, task) {
            (CandidateSpec::Linear(_), Task::Regression) => "ridge_regression",
            (CandidateSpec::Linear(_), _) => "logistic_regression",
            (CandidateSpec::Trees { .. }, _) => "gradient_boosted_trees",
        }
    }

    /// The key parameters, for logs and the leaderboard.
    pub fn describe(&self) -> String {
        match self {
            CandidateSpec::Linear(LinearKind::Logistic { c }) => format!("C={c}"),
            CandidateSpec::Linear(LinearKind::Ridge { alpha }) => format!("alpha={alpha}"),
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

/// What won: one model, or a weighted blend; each with the rounds to refit trees with.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub members: Vec<ChosenModel>,
    pub validation_score: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChosenModel {
    pub spec: CandidateSpec,
    /// Boosting rounds for the refit (trees only).
    pub rounds: Option<usize>,
    pub weight: f64,
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
    fn n_rows(&self) -> usize {
        self.y.len()
    }
    fn classes(&self) -> Option<Vec<usize>> {
        (!matches!(self.task, Task::Regression))
            .then(|| self.y.iter().map(|&v| v as usize).collect())
    }
    fn matrix(&self, rows: &[usize]) -> FeatureMatrix {
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
pub fn candidates(task: &Task, n_rows: usize, seed: u64) -> Vec<CandidateSpec> {
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
            ..base
        },
    };
    vec![
        lin(1.0),
        defaults,
        slow,
        lin(10.0),
        lin(0.1),
        regularized,
        small,
        conservative,
        lin(100.0),
        large,
    ]
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

/// A candidate's out-of-fold margins and what they score.
struct Evaluated {
    spec: CandidateSpec,
    margins: Vec<f64>,
    key: (f64, f64),
    rounds: Option<usize>,
}

/// Everything the search decided and observed.
pub struct SearchOutcome {
    pub choice: Choice,
    pub leaderboard: Vec<LeaderboardEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("gradient boosting failed: {0}")]
    Gbm(#[from] gbm::GbmError),
    #[error("no candidate could be evaluated")]
    NothingEvaluated,
}

/// Runs the search. `on_candidate` hears each leaderboard entry as it is scored (for logs and
/// progress); candidates start only while `search_deadline` has not passed (the first always
/// runs) and at most `max_candidates` of them.
pub fn search(
    data: &SearchData,
    metric: Metric,
    seed: u64,
    max_candidates: Option<usize>,
    search_deadline: Instant,
    hard_deadline: Instant,
    on_candidate: &mut dyn FnMut(&LeaderboardEntry, usize, usize),
) -> Result<SearchOutcome, SearchError> {
    let splits = validation_splits(data, seed);
    let eval_rows: Vec<usize> = splits.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    let k = data.task.n_outputs();
    let mut specs = candidates(data.task, data.n_rows(), seed);
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
        for (train, valid) in &splits {
            let m = match &spec {
                CandidateSpec::Linear(kind) => {
                    let model = linear::fit_linear(
                        data.task,
                        *kind,
                        data.features,
                        data.cols,
                        data.y,
                        train,
                        seed,
                    );
                    linear::linear_margins(&model, data.cols, valid)
                }
                CandidateSpec::Trees { params, .. } => {
                    let y_train: Vec<f64> = train.iter().map(|&r| data.y[r]).collect();
                    let y_valid: Vec<f64> = valid.iter().map(|&r| data.y[r]).collect();
                    let x_valid = data.matrix(valid);
                    let fit = gbm::train(
                        &data.matrix(train),
                        &y_train,
                        None,
                        &objective(data.task),
                        params,
                        Some((&x_valid, &y_valid)),
                        Some(hard_deadline),
                    )?;
                    rounds.push(fit.best_iteration.max(1));
                    gbm::predict_margins(&fit.ensemble, &x_valid).concat()
                }
            };
            margins[at * k..(at + valid.len()) * k].copy_from_slice(&m);
            at += valid.len();
        }
        let key = selection_key(data, metric, &eval_rows, &margins);
        let rounds = (!rounds.is_empty()).then(|| {
            let mean = rounds.iter().sum::<usize>() as f64 / rounds.len() as f64;
            // The refit sees all the training rows, more than each validation fit: a few more rounds.
            ((mean * 1.1).round() as usize).max(1)
        });
        let entry = LeaderboardEntry {
            family: spec.family(data.task).to_string(),
            parameters: spec.describe(),
            validation_score: key.0,
            fit_seconds: started.elapsed().as_secs_f64(),
            rounds,
        };
        on_candidate(&entry, i, total);
        leaderboard.push(entry);
        evaluated.push(Evaluated {
            spec,
            margins,
            key,
            rounds,
        });
    }
    let n_eval = eval_rows.len();
    let single = |e: &Evaluated| Choice {
        members: vec![ChosenModel {
            spec: e.spec.clone(),
            rounds: e.rounds,
            weight: 1.0,
        }],
        validation_score: e.key.0,
    };
    let best_of = |linear: bool| {
        let family: Vec<&Evaluated> = evaluated
            .iter()
            .filter(|e| matches!(e.spec, CandidateSpec::Linear(_)) == linear)
            .collect();
        let keys: Vec<(f64, f64)> = family.iter().map(|e| e.key).collect();
        pick_best(&keys, metric, n_eval).map(|i| family[i])
    };
    // The pool: every candidate, and blends of the best trees with the best linear model.
    let mut pool: Vec<(Choice, (f64, f64))> =
        evaluated.iter().map(|e| (single(e), e.key)).collect();
    if let (Some(trees), Some(lin)) = (best_of(false), best_of(true)) {
        for w in [0.2, 0.35, 0.5, 0.65, 0.8] {
            let blended: Vec<f64> = trees
                .margins
                .iter()
                .zip(&lin.margins)
                .map(|(t, l)| (1.0 - w) * t + w * l)
                .collect();
            let key = selection_key(data, metric, &eval_rows, &blended);
            let choice = Choice {
                members: vec![
                    ChosenModel {
                        spec: trees.spec.clone(),
                        rounds: trees.rounds,
                        weight: 1.0 - w,
                    },
                    ChosenModel {
                        spec: lin.spec.clone(),
                        rounds: None,
                        weight: w,
                    },
                ],
                validation_score: key.0,
            };
            pool.push((choice, key));
        }
    }
    if let Some(ensemble) = ensemble_selection(data, metric, &eval_rows, &evaluated) {
        pool.push(ensemble);
    }
    let keys: Vec<(f64, f64)> = pool.iter().map(|(_, k)| *k).collect();
    let best = pick_best(&keys, metric, n_eval).ok_or(SearchError::NothingEvaluated)?;
    let choice = pool.swap_remove(best).0;
    Ok(SearchOutcome {
        choice,
        leaderboard,
    })
}

/// Rounds of greedy ensemble selection; the weights are multiples of 1/ENSEMBLE_STEPS.
const ENSEMBLE_STEPS: usize = 10;
/// Distinct members of an ensemble at most (each is refit, exported and run at predict time).
const ENSEMBLE_MAX_MEMBERS: usize = 3;

/// Greedy ensemble selection (Caruana et al., 2004) on the validation margins: start empty,
/// and each round add (with replacement) the candidate whose addition gives the averaged
/// margins the lowest secondary loss (log loss or RMSE: smooth, so the greedy steps follow
/// signal rather than single rows flipping). `None` when fewer than two candidates exist or
/// the result is a single model (already in the pool).
fn ensemble_selection(
    data: &SearchData,
    metric: Metric,
    eval_rows: &[usize],
    evaluated: &[Evaluated],
) -> Option<(Choice, (f64, f64))> {
    if evaluated.len() < 2 {
        return None;
    }
    let len = evaluated[0].margins.len();
    let mut counts = vec![0usize; evaluated.len()];
    let mut sum = vec![0.0; len];
    let mut averaged = vec![0.0; len];
    for step in 1..=ENSEMBLE_STEPS {
        let distinct = counts.iter().filter(|&&c| c > 0).count();
        let mut best: Option<(usize, f64)> = None;
        for (i, e) in evaluated.iter().enumerate() {
            if counts[i] == 0 && distinct >= ENSEMBLE_MAX_MEMBERS {
                continue;
            }
            for ((a, s), m) in averaged.iter_mut().zip(&sum).zip(&e.margins) {
                *a = (s + m) / step as f64;
            }
            let loss = selection_key(data, metric, eval_rows, &averaged).1;
            if best.is_none_or(|(_, b)| loss < b) {
                best = Some((i, loss));
            }
        }
        let (chosen, _) = best?;
        counts[chosen] += 1;
        for (s, m) in sum.iter_mut().zip(&evaluated[chosen].margins) {
            *s += m;
        }
    }
    if counts.iter().filter(|&&c| c > 0).count() < 2 {
        return None;
    }
    for (a, s) in averaged.iter_mut().zip(&sum) {
        *a = s / ENSEMBLE_STEPS as f64;
    }
    let key = selection_key(data, metric, eval_rows, &averaged);
    let members = evaluated
        .iter()
        .zip(&counts)
        .filter(|(_, c)| **c > 0)
        .map(|(e, c)| ChosenModel {
            spec: e.spec.clone(),
            rounds: e.rounds,
            weight: *c as f64 / ENSEMBLE_STEPS as f64,
        })
        .collect();
    Some((
        Choice {
            members,
            validation_score: key.0,
        },
        key,
    ))
}

/// The index of the best key (selection metric, secondary loss). Counting metrics (accuracy,
/// f1, precision, recall) move in steps of single rows and their validation estimate is noisy,
/// so candidates within half a standard error of the best count as tied; ties, exact or not,
/// go to the lower secondary loss (log loss or RMSE, which rank models far less noisily), then
/// to the earlier candidate.
fn pick_best(keys: &[(f64, f64)], metric: Metric, n_eval: usize) -> Option<usize> {
    let top = keys
        .iter()
        .map(|k| k.0)
        .reduce(|a, b| if metric.better(b, a) { b } else { a })?;
    let tolerance = match metric {
        Metric::Accuracy | Metric::F1 | Metric::Precision | Metric::Recall => {
            let p = top.clamp(0.0, 1.0);
            0.5 * (p * (1.0 - p) / n_eval.max(1) as f64).sqrt()
        }
        _ => 0.0,
    };
    let tied = |v: f64| (v - top).abs() <= tolerance;
    let mut best: Option<usize> = None;
    for (i, k) in keys.iter().enumerate() {
        if !tied(k.0) {
            continue;
        }
        if best.is_none_or(|b| k.1 < keys[b].1) {
            best = Some(i);
        }
    }
    best
}

/// Ties on the selection metric are broken by the probabilistic loss (or RMSE).
fn secondary(task: &Task) -> Metric {
    match task {
        Task::Regression => Metric::Rmse,
        _ => Metric::LogLoss,
    }
}

fn selection_key(data: &SearchData, metric: Metric, rows: &[usize], margins: &[f64]) -> (f64, f64) {
    let y: Vec<f64> = rows.iter().map(|&r| data.y[r]).collect();
    let evaluation = Evaluation::from_margins(data.task, y, margins);
    let outcome = evaluation.outcome();
    let clean = |v: f64| {
        if v.is_nan() {
            if metric.higher_is_better() {
                f64::MIN
            } else {
                f64::MAX
            }
        } else {
            v
        }
    };
    let loss = metrics::score(secondary(data.task), outcome);
    (
        clean(metrics::score(metric, outcome)),
        if loss.is_nan() { f64::MAX } else { loss },
    )
}

/// A fitted member of the final pipeline, with what importance needs.
pub struct FittedModel {
    pub model: Model,
    pub weight: f64,
    /// Per feature: split gain (trees) or |standardized coefficient| (linear).
    pub feature_importance: Vec<f64>,
}

/// Refits the chosen configuration on every row of `data`.
pub fn refit(
    data: &SearchData,
    choice: &Choice,
    seed: u64,
    deadline: Instant,
) -> Result<Vec<FittedModel>, SearchError> {
    let rows: Vec<usize> = (0..data.n_rows()).collect();
    choice
        .members
        .iter()
        .map(|member| {
            Ok(match &member.spec {
                CandidateSpec::Linear(kind) => {
                    let model = linear::fit_linear(
                        data.task,
                        *kind,
                        data.features,
                        data.cols,
                        data.y,
                        &rows,
                        seed,
                    );
                    let importance = linear_importance(&model, data.features, data.cols);
                    FittedModel {
                        model: Model::Linear(model),
                        weight: member.weight,
                        feature_importance: importance,
                    }
                }
                CandidateSpec::Trees { params, .. } => {
                    let params = GbmParams {
                        n_estimators: member.rounds.unwrap_or(params.n_estimators),
                        early_stopping_rounds: 0,
                        ..params.clone()
                    };
                    let fit = gbm::train(
                        &data.matrix(&rows),
                        data.y,
                        None,
                        &objective(data.task),
                        &params,
                        None,
                        Some(deadline),
                    )?;
                    FittedModel {
                        model: Model::Trees(fit.ensemble),
                        weight: member.weight,
                        feature_importance: fit.feature_gain,
                    }
                }
            })
        })
        .collect()
}

/// |standardized coefficient| per feature, summed over outputs (and over levels, each one-hot
/// weight scaled by its indicator's standard deviation), on the training feature values.
pub fn linear_importance(model: &LinearModel, features: &[Feature], cols: &[Vec<f32>]) -> Vec<f64> {
    let mut importance = vec![0.0; features.len()];
    for t in &model.numeric {
        let col = &cols[t.feature];
        let filled: Vec<f64> = col
            .iter()
            .map(|&v| if v.is_nan() { t.fill } else { f64::from(v) })
            .collect();
        let n = filled.len().max(1) as f64;
        let mean = filled.iter().sum::<f64>() / n;
        let std = (filled.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        importance[t.feature] += t.weights.iter().map(|w| (w * std).abs()).sum::<f64>();
    }
    for t in &model.categorical {
        let col = &cols[t.feature];
        let n = col.len().max(1) as f64;
        let mut counts = vec![0usize; t.weights.len()];
        for &v in col {
            if v.is_finite() && v >= 0.0 && (v as usize) < counts.len() {
                counts[v as usize] += 1;
            }
        }
        for (level, w) in t.weights.iter().enumerate() {
            let p = counts[level] as f64 / n;
            let sd = (p * (1.0 - p)).sqrt();
            importance[t.feature] += w.iter().map(|x| (x * sd).abs()).sum::<f64>();
        }
    }
    importance
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_metrics_treat_near_ties_as_ties_and_prefer_the_lower_loss() {
        // 1,000 validation rows at ~80% accuracy: half a standard error is ~0.0063.
        let keys = [(0.800, 0.45), (0.796, 0.41), (0.780, 0.30)];
        assert_eq!(pick_best(&keys, Metric::Accuracy, 1000), Some(1));
        // With 100,000 rows the same gap is real: the higher accuracy wins.
        assert_eq!(pick_best(&keys, Metric::Accuracy, 100_000), Some(0));
    }

    #[test]
    fn ensemble_selection_averages_models_whose_errors_cancel() {
        let y: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let rows: Vec<usize> = (0..y.len()).collect();
        let data = SearchData {
            task: &Task::Regression,
            features: &[],
            cols: &[],
            y: &y,
        };
        let candidate = |alpha: f64, shift: f64| Evaluated {
            spec: CandidateSpec::Linear(LinearKind::Ridge { alpha }),
            margins: y.iter().map(|v| v + shift).collect(),
            key: (0.5, 0.5),
            rounds: None,
        };
        let evaluated = [
            candidate(1.0, 0.5),
            candidate(2.0, -0.5),
            candidate(3.0, 0.9),
        ];
        let (choice, key) =
            ensemble_selection(&data, Metric::Rmse, &rows, &evaluated).expect("an ensemble");
        assert!(key.0 < 1e-9, "averaged rmse {}", key.0);
        let weights: Vec<f64> = choice.members.iter().map(|m| m.weight).collect();
        assert_eq!(weights, vec![0.5, 0.5]);
        assert_eq!(
            choice.members[1].spec,
            CandidateSpec::Linear(LinearKind::Ridge { alpha: 2.0 })
        );
    }

    #[test]
    fn smooth_metrics_pick_the_best_value_and_the_first_of_exact_ties() {
        let keys = [(3.0, 3.0), (2.5, 2.5), (2.5, 2.5)];
        assert_eq!(pick_best(&keys, Metric::Rmse, 10), Some(1));
        let keys = [(0.90, 0.3), (0.91, 0.5)];
        assert_eq!(pick_best(&keys, Metric::RocAuc, 10), Some(1));
        assert_eq!(pick_best(&[], Metric::Rmse, 10), None);
    }
}
