//! Choosing the model from the scored candidates: each one alone, blends of the best trees with
//! the best linear model, and a greedy ensemble; the best by the selection metric, with near
//! ties (within noise) going to the lower probabilistic loss.

use super::metrics::{Evaluation, Metric, score};
use super::pipeline::Task;
use super::search::{CandidateSpec, Evaluated, SearchData, SearchError, Searched};

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

impl Choice {
    /// `gradient_boosted_trees`, `logistic_regression`, or a blend such as
    /// `blend(0.65 gradient_boosted_trees + 0.35 logistic_regression)`.
    pub fn algorithm(&self, task: &Task) -> String {
        match self.members.as_slice() {
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
}

/// Picks the model: every candidate alone, blends of the best trees with the best linear
/// model, and a greedy ensemble, all judged by the same selection key on the same validation
/// rows.
pub fn select(
    data: &SearchData,
    metric: Metric,
    searched: &Searched,
) -> Result<Choice, SearchError> {
    let Searched {
        evaluated,
        eval_rows,
        ..
    } = searched;
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
            .filter(|e| e.spec.is_linear() == linear)
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
            let key = selection_key(data, metric, eval_rows, &blended);
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
    if let Some(ensemble) = ensemble_selection(data, metric, eval_rows, evaluated) {
        pool.push(ensemble);
    }
    let keys: Vec<(f64, f64)> = pool.iter().map(|(_, k)| *k).collect();
    let best = pick_best(&keys, metric, n_eval).ok_or(SearchError::NothingEvaluated)?;
    Ok(pool.swap_remove(best).0)
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

/// How a candidate's margins on `rows` rank: (selection metric, secondary loss), NaN made the
/// worst value.
pub fn selection_key(
    data: &SearchData,
    metric: Metric,
    rows: &[usize],
    margins: &[f64],
) -> (f64, f64) {
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
    let loss = score(secondary(data.task), outcome);
    (
        clean(score(metric, outcome)),
        if loss.is_nan() { f64::MAX } else { loss },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automl::linear::LinearKind;

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
            fit: None,
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
