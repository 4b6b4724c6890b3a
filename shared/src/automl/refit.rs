//! Refitting the chosen configuration on a set of rows (the training part, to score the holdout;
//! every labelled row, for the delivered model), the margins of what was refit, and what
//! feature importance needs from each fitted model.

use super::gbm::{self, GbmParams};
use super::linear;
use super::pipeline::{Feature, LinearModel, Model};
use super::search::{CandidateSpec, SearchData, SearchError, log_targets};
use super::select::{Choice, ChosenModel};
use std::time::Instant;

/// A fitted member of the final pipeline, with what importance needs.
pub struct FittedModel {
    pub model: Model,
    pub weight: f64,
    /// Per feature: split gain (trees) or |standardized coefficient| (linear).
    pub feature_importance: Vec<f64>,
    /// The deadline stopped boosting before the planned rounds.
    pub truncated: bool,
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
        .map(|member| fit_member(data, &member.spec, member, &rows, seed, deadline))
        .collect()
}

fn fit_member(
    data: &SearchData,
    spec: &CandidateSpec,
    member: &ChosenModel,
    rows: &[usize],
    seed: u64,
    deadline: Instant,
) -> Result<FittedModel, SearchError> {
    Ok(match spec {
        CandidateSpec::Linear(kind) => {
            let model = data.fit_linear(*kind, rows, seed);
            let importance = linear_importance(&model, data.features, data.cols);
            FittedModel {
                model: Model::Linear(model),
                weight: member.weight,
                feature_importance: importance,
                truncated: false,
            }
        }
        CandidateSpec::Trees { params, .. } => {
            let params = GbmParams {
                n_estimators: member.rounds.unwrap_or(params.n_estimators),
                early_stopping_rounds: 0,
                ..params.clone()
            };
            let fit = data.fit_trees(&params, rows, None, deadline)?;
            FittedModel {
                truncated: fit.out_of_time,
                model: Model::Trees(fit.ensemble),
                weight: member.weight,
                feature_importance: fit.feature_gain,
            }
        }
        CandidateSpec::LogTarget(inner) => {
            // The search saw positive targets only, in the training part; a held-out row
            // refit now may have a zero or a negative one, which has no log: it is left out
            // of this member's fit.
            let positive: Vec<usize> = rows.iter().copied().filter(|&r| data.y[r] > 0.0).collect();
            let log_y = log_targets(data.y);
            let log_data = SearchData { y: &log_y, ..*data };
            let fitted = fit_member(&log_data, inner, member, &positive, seed, deadline)?;
            FittedModel {
                model: Model::LogTarget(Box::new(fitted.model)),
                ..fitted
            }
        }
    })
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

/// The same configuration with boosting rounds scaled for a larger training set.
pub fn scale_rounds(choice: &Choice, scale: f64) -> Choice {
    let mut c = choice.clone();
    for m in &mut c.members {
        m.rounds = m
            .rounds
            .map(|r| ((r as f64 * scale).round() as usize).max(1));
    }
    c
}

/// The weighted raw margins `Σ wᵢ·mᵢ` (row-major, `task.n_outputs()` per row) of fitted models
/// on every row of `data`: what the holdout is scored on.
pub fn blended_margins(fitted: &[FittedModel], data: &SearchData) -> Vec<f64> {
    let rows: Vec<usize> = (0..data.n_rows()).collect();
    let mut out = vec![0.0; rows.len() * data.task.n_outputs()];
    for f in fitted {
        let margins = model_margins(&f.model, data, &rows);
        for (o, m) in out.iter_mut().zip(&margins) {
            *o += f.weight * m;
        }
    }
    out
}

/// One model's raw margins on `rows` (row-major); a log-target model's are `exp` of its inner
/// model's.
fn model_margins(model: &Model, data: &SearchData, rows: &[usize]) -> Vec<f64> {
    match model {
        Model::Linear(m) => linear::linear_margins(m, data.cols, rows),
        Model::Trees(ensemble) => gbm::predict_margins(ensemble, &data.matrix(rows)).concat(),
        Model::LogTarget(inner) => {
            let mut margins = model_margins(inner, data, rows);
            margins.iter_mut().for_each(|m| *m = m.exp());
            margins
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automl::pipeline::Task;

    /// The search gates log-target candidates on its training part; the refit on every row
    /// also sees the held-out rows, whose target may be zero or negative (no log): those rows
    /// are left out of the log-target member's fit instead of failing the build.
    #[test]
    fn a_log_target_refit_leaves_out_targets_without_a_log() {
        let n = 400;
        let x: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let mut y: Vec<f64> = (0..n).map(|i| (1.0 + i as f64 / 100.0).exp()).collect();
        y[7] = 0.0;
        y[300] = -5.0;
        let features = [Feature::Numeric { input: 0 }];
        let cols = [x];
        let data = SearchData {
            task: &Task::Regression,
            features: &features,
            cols: &cols,
            y: &y,
        };
        let trees = CandidateSpec::Trees {
            name: "test",
            params: GbmParams {
                n_estimators: 20,
                ..GbmParams::default()
            },
        };
        let choice = Choice {
            members: vec![ChosenModel {
                spec: CandidateSpec::LogTarget(Box::new(trees)),
                rounds: Some(20),
                weight: 1.0,
            }],
            validation_score: 0.0,
        };
        let far = Instant::now() + std::time::Duration::from_secs(600);
        let fitted = match refit(&data, &choice, 1, far) {
            Ok(fitted) => fitted,
            Err(e) => panic!("the refit failed: {e}"),
        };
        assert!(matches!(fitted[0].model, Model::LogTarget(_)));
        let margins = blended_margins(&fitted, &data);
        assert!(
            margins.iter().all(|m| m.is_finite() && *m > 0.0),
            "{margins:?}"
        );
    }
}
