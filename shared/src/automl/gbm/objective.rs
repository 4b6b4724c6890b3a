//! Gradients, initial scores and losses of the three objectives, as LightGBM defines them
//! (regression L2, binary logloss, multiclass softmax with hessian factor K/(K-1)).

use super::Objective;
use super::split::K_EPSILON;
use crate::automl::probability::{sigmoid, softmax_into};
use rayon::prelude::*;

const ROW_CHUNK: usize = 4096;

/// The init score per output (LightGBM's `boost_from_average`).
pub(crate) fn init_scores(obj: &Objective, y: &[f64], w: Option<&[f64]>) -> Vec<f64> {
    let weight = |i: usize| w.map_or(1.0, |w| w[i]);
    let sum_w: f64 = (0..y.len()).map(weight).sum();
    match obj {
        Objective::Regression => {
            let s: f64 = y.iter().enumerate().map(|(i, v)| v * weight(i)).sum();
            vec![s / sum_w]
        }
        Objective::Binary => {
            let s: f64 = y.iter().enumerate().map(|(i, v)| v * weight(i)).sum();
            let p = (s / sum_w).clamp(K_EPSILON, 1.0 - K_EPSILON);
            vec![(p / (1.0 - p)).ln()]
        }
        Objective::Multiclass { n_classes } => {
            let mut s = vec![0.0; *n_classes];
            for (i, v) in y.iter().enumerate() {
                s[*v as usize] += weight(i);
            }
            s.iter().map(|c| (c / sum_w).max(K_EPSILON).ln()).collect()
        }
    }
}

/// Fills `grad[k][row]`, `hess[k][row]` from row-major `scores[row * K + k]`.
pub(crate) fn gradients(
    obj: &Objective,
    y: &[f64],
    w: Option<&[f64]>,
    scores: &[f64],
    grad: &mut [Vec<f32>],
    hess: &mut [Vec<f32>],
) {
    match obj {
        Objective::Regression | Objective::Binary => {
            let binary = matches!(obj, Objective::Binary);
            grad[0]
                .par_chunks_mut(ROW_CHUNK)
                .zip(hess[0].par_chunks_mut(ROW_CHUNK))
                .enumerate()
                .for_each(|(c, (gs, hs))| {
                    let base = c * ROW_CHUNK;
                    for (j, (g, h)) in gs.iter_mut().zip(hs.iter_mut()).enumerate() {
                        let i = base + j;
                        let wi = w.map_or(1.0, |w| w[i]);
                        if binary {
                            let p = sigmoid(scores[i]);
                            *g = ((p - y[i]) * wi) as f32;
                            *h = (p * (1.0 - p) * wi) as f32;
                        } else {
                            *g = ((scores[i] - y[i]) * wi) as f32;
                            *h = wi as f32;
                        }
                    }
                });
        }
        Objective::Multiclass { n_classes } => {
            let k = *n_classes;
            let factor = k as f64 / (k as f64 - 1.0);
            let mut probs = vec![0.0f64; scores.len()];
            probs
                .par_chunks_mut(k * ROW_CHUNK)
                .zip(scores.par_chunks(k * ROW_CHUNK))
                .for_each(|(p, s)| {
                    for (pr, sr) in p.chunks_mut(k).zip(s.chunks(k)) {
                        softmax_into(sr, pr);
                    }
                });
            for (c, (gc, hc)) in grad.iter_mut().zip(hess.iter_mut()).enumerate() {
                gc.par_chunks_mut(ROW_CHUNK)
                    .zip(hc.par_chunks_mut(ROW_CHUNK))
                    .enumerate()
                    .for_each(|(ch, (gs, hs))| {
                        let base = ch * ROW_CHUNK;
                        for (j, (g, h)) in gs.iter_mut().zip(hs.iter_mut()).enumerate() {
                            let i = base + j;
                            let wi = w.map_or(1.0, |w| w[i]);
                            let p = probs[i * k + c];
                            let target = if y[i] as usize == c { 1.0 } else { 0.0 };
                            *g = ((p - target) * wi) as f32;
                            *h = (factor * p * (1.0 - p) * wi) as f32;
                        }
                    });
            }
        }
    }
}

/// The objective's mean loss (LightGBM's default metric: l2, binary_logloss, multi_logloss) of
/// row-major `scores`.
pub(crate) fn loss(obj: &Objective, y: &[f64], scores: &[f64]) -> f64 {
    let n = y.len() as f64;
    match obj {
        Objective::Regression => {
            y.iter()
                .zip(scores)
                .map(|(t, s)| (s - t) * (s - t))
                .sum::<f64>()
                / n
        }
        Objective::Binary => {
            y.iter()
                .zip(scores)
                .map(|(t, s)| {
                    let p = sigmoid(*s).clamp(K_EPSILON, 1.0 - K_EPSILON);
                    if *t > 0.5 { -p.ln() } else { -(1.0 - p).ln() }
                })
                .sum::<f64>()
                / n
        }
        Objective::Multiclass { n_classes } => {
            let k = *n_classes;
            let mut p = vec![0.0; k];
            let mut total = 0.0;
            for (i, t) in y.iter().enumerate() {
                softmax_into(&scores[i * k..(i + 1) * k], &mut p);
                total -= p[*t as usize].max(K_EPSILON).ln();
            }
            total / n
        }
    }
}
