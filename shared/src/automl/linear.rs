//! Linear models, the fast baseline (and sometimes the winner): logistic regression (binary and
//! multinomial) and ridge regression, L2-regularized, on median-imputed standardized numerics
//! plus one-hot categoricals. Logistic regression is solved with L-BFGS, ridge in closed form
//! (Cholesky). The fit is then folded back onto raw feature values as a [`LinearModel`]:
//! weights divided by the standard deviation, the intercept absorbing the means, one-hot
//! weights as [`CategoricalTerm`]s, so the exported pipeline needs no scaler.

use super::pipeline::{CategoricalTerm, Feature, LinearModel, NumericTerm, Task};
use super::probability::sigmoid;

/// One-hot columns kept per categorical feature (most frequent levels first, as the features
/// order them); rarer levels add nothing, like unseen ones.
const MAX_ONE_HOT: usize = 100;
/// Above this many design cells the fit uses a seeded subsample of rows (memory bound).
const MAX_DESIGN_CELLS: usize = 24_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinearKind {
    /// L2 strength as scikit-learn's `C` (inverse): loss sum + ||w||² / (2C).
    Logistic { c: f64 },
    /// L2 strength as scikit-learn's `alpha`: squared error sum + alpha ||w||².
    Ridge { alpha: f64 },
}

/// The fitted preprocessing of the design matrix.
#[derive(Debug, Clone)]
struct Design {
    numeric: Vec<NumericPrep>,
    categorical: Vec<CategoricalPrep>,
    width: usize,
}

#[derive(Debug, Clone)]
struct NumericPrep {
    feature: usize,
    median: f64,
    mean: f64,
    std: f64,
    column: usize,
}

#[derive(Debug, Clone)]
struct CategoricalPrep {
    feature: usize,
    n_levels: usize,
    n_cols: usize,
    offset: usize,
    /// Per one-hot column, the share of the training rows at that level.
    shares: Vec<f64>,
}

impl Design {
    fn fit(features: &[Feature], cols: &[Vec<f32>], rows: &[usize]) -> Design {
        let mut numeric = Vec::new();
        let mut categorical = Vec::new();
        let mut width = 0;
        for (f, feature) in features.iter().enumerate() {
            match feature {
                Feature::CategoryIndex { levels, .. } => {
                    let n_cols = levels.len().min(MAX_ONE_HOT);
                    if n_cols > 0 {
                        let mut shares = vec![0.0; n_cols];
                        for &r in rows {
                            let v = cols[f][r];
                            if v.is_finite() && v >= 0.0 && (v as usize) < n_cols {
                                shares[v as usize] += 1.0;
                            }
                        }
                        let n = rows.len().max(1) as f64;
                        shares.iter_mut().for_each(|s| *s /= n);
                        categorical.push(CategoricalPrep {
                            feature: f,
                            n_levels: levels.len(),
                            n_cols,
                            offset: width,
                            shares,
                        });
                        width += n_cols;
                    }
                }
                _ => {
                    let mut present: Vec<f64> = rows
                        .iter()
                        .map(|&r| f64::from(cols[f][r]))
                        .filter(|x| x.is_finite())
                        .collect();
                    if present.is_empty() {
                        continue;
                    }
                    present.sort_by(f64::total_cmp);
                    let mid = present.len() / 2;
                    let median = if present.len().is_multiple_of(2) {
                        (present[mid - 1] + present[mid]) / 2.0
                    } else {
                        present[mid]
                    };
                    let filled = |r: usize| {
                        let x = f64::from(cols[f][r]);
                        if x.is_finite() { x } else { median }
                    };
                    let n = rows.len() as f64;
                    let mean = rows.iter().map(|&r| filled(r)).sum::<f64>() / n;
                    let var = rows
                        .iter()
                        .map(|&r| (filled(r) - mean).powi(2))
                        .sum::<f64>()
                        / n;
                    let std = var.sqrt();
                    if std > 1e-12 && std.is_finite() {
                        numeric.push(NumericPrep {
                            feature: f,
                            median,
                            mean,
                            std,
                            column: width,
                        });
                        width += 1;
                    }
                }
            }
        }
        Design {
            numeric,
            categorical,
            width,
        }
    }

    /// Row-major standardized design of `rows`.
    fn matrix(&self, cols: &[Vec<f32>], rows: &[usize]) -> Vec<f64> {
        let w = self.width;
        let mut x = vec![0.0; rows.len() * w];
        for (i, &r) in rows.iter().enumerate() {
            let row = &mut x[i * w..(i + 1) * w];
            for p in &self.numeric {
                let v = f64::from(cols[p.feature][r]);
                let v = if v.is_finite() { v } else { p.median };
                row[p.column] = (v - p.mean) / p.std;
            }
            for c in &self.categorical {
                let v = cols[c.feature][r];
                if v.is_finite() && v >= 0.0 && (v as usize) < c.n_cols {
                    row[c.offset + v as usize] = 1.0;
                }
            }
        }
        x
    }

    /// Folds standardized weights (`width × k`, row-major) and intercepts onto raw values.
    fn fold(&self, weights: &[f64], intercept: &[f64], k: usize) -> LinearModel {
        let mut intercept = intercept.to_vec();
        let mut numeric = Vec::new();
        for p in &self.numeric {
            let w = &weights[p.column * k..(p.column + 1) * k];
            for (b, wk) in intercept.iter_mut().zip(w) {
                *b -= wk * p.mean / p.std;
            }
            numeric.push(NumericTerm {
                feature: p.feature,
                fill: p.median,
                weights: w.iter().map(|wk| wk / p.std).collect(),
                mean: p.mean,
            });
        }
        let categorical = self
            .categorical
            .iter()
            .map(|c| CategoricalTerm {
                feature: c.feature,
                mean: (0..k)
                    .map(|o| {
                        c.shares
                            .iter()
                            .enumerate()
                            .map(|(l, share)| share * weights[(c.offset + l) * k + o])
                            .sum()
                    })
                    .collect(),
                weights: (0..c.n_levels)
                    .map(|l| {
                        if l < c.n_cols {
                            weights[(c.offset + l) * k..(c.offset + l + 1) * k].to_vec()
                        } else {
                            vec![0.0; k]
                        }
                    })
                    .collect(),
            })
            .collect();
        LinearModel {
            intercept,
            numeric,
            categorical,
        }
    }
}

/// Fits a linear model of `kind` on the training `rows` of the feature columns. `y` holds the
/// class index (classification) or the value (regression) per row of the columns.
pub fn fit_linear(
    task: &Task,
    kind: LinearKind,
    features: &[Feature],
    cols: &[Vec<f32>],
    y: &[f64],
    rows: &[usize],
    seed: u64,
) -> LinearModel {
    let design = Design::fit(features, cols, rows);
    let mut rows = rows.to_vec();
    if rows.len() * design.width.max(1) > MAX_DESIGN_CELLS {
        let keep = MAX_DESIGN_CELLS / design.width.max(1);
        super::random::SplitMix64::new(seed).shuffle(&mut rows);
        rows.truncate(keep.max(1));
        rows.sort_unstable();
    }
    let x = design.matrix(cols, &rows);
    let yr: Vec<f64> = rows.iter().map(|&r| y[r]).collect();
    let k = task.n_outputs();
    let (weights, intercept) = match (task, kind) {
        (Task::Regression, LinearKind::Ridge { alpha }) => ridge(&x, &yr, design.width, alpha),
        (Task::Regression, LinearKind::Logistic { .. }) => ridge(&x, &yr, design.width, 1.0),
        (_, LinearKind::Logistic { c }) => logistic(&x, &yr, design.width, k, c),
        (_, LinearKind::Ridge { alpha }) => {
            logistic(&x, &yr, design.width, k, 1.0 / alpha.max(1e-12))
        }
    };
    design.fold(&weights, &intercept, k)
}

/// Raw margins (row-major, one per model output) of a folded linear model on feature columns.
pub fn linear_margins(model: &LinearModel, cols: &[Vec<f32>], rows: &[usize]) -> Vec<f64> {
    let k = model.intercept.len();
    let mut out = vec![0.0; rows.len() * k];
    for (&r, m) in rows.iter().zip(out.chunks_mut(k.max(1))) {
        model.add_margins(|f| cols.get(f).map_or(f32::NAN, |c| c[r]), m);
    }
    out
}

/// Ridge with an unpenalized intercept: center columns and target, solve
/// `(XᵀX + αI) w = Xᵀy` by Cholesky.
fn ridge(x: &[f64], y: &[f64], p: usize, alpha: f64) -> (Vec<f64>, Vec<f64>) {
    let n = y.len();
    if n == 0 {
        return (vec![0.0; p], vec![0.0]);
    }
    let y_mean = y.iter().sum::<f64>() / n as f64;
    if p == 0 {
        return (Vec::new(), vec![y_mean]);
    }
    let mut col_mean = vec![0.0; p];
    for row in x.chunks(p) {
        for (m, v) in col_mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    col_mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut a = vec![0.0; p * p];
    let mut b = vec![0.0; p];
    let mut centered = vec![0.0; p];
    for (row, &yi) in x.chunks(p).zip(y) {
        for j in 0..p {
            centered[j] = row[j] - col_mean[j];
        }
        let yc = yi - y_mean;
        for j in 0..p {
            let cj = centered[j];
            if cj == 0.0 {
                continue;
            }
            b[j] += cj * yc;
            let arow = &mut a[j * p..(j + 1) * p];
            for l in 0..=j {
                arow[l] += cj * centered[l];
            }
        }
    }
    for j in 0..p {
        for l in 0..j {
            a[l * p + j] = a[j * p + l];
        }
        a[j * p + j] += alpha.max(1e-10);
    }
    let w = cholesky_solve(&mut a, &b, p);
    let intercept = y_mean - w.iter().zip(&col_mean).map(|(wj, m)| wj * m).sum::<f64>();
    (w, vec![intercept])
}

/// Solves `A w = b` for symmetric positive definite `A` (overwritten by its factor).
fn cholesky_solve(a: &mut [f64], b: &[f64], p: usize) -> Vec<f64> {
    for j in 0..p {
        let mut d = a[j * p + j];
        for k in 0..j {
            d -= a[j * p + k] * a[j * p + k];
        }
        let d = d.max(1e-12).sqrt();
        a[j * p + j] = d;
        for i in (j + 1)..p {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= a[i * p + k] * a[j * p + k];
            }
            a[i * p + j] = s / d;
        }
    }
    let mut z = vec![0.0; p];
    for i in 0..p {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * p + k] * z[k];
        }
        z[i] = s / a[i * p + i];
    }
    let mut w = vec![0.0; p];
    for i in (0..p).rev() {
        let mut s = z[i];
        for k in (i + 1)..p {
            s -= a[k * p + i] * w[k];
        }
        w[i] = s / a[i * p + i];
    }
    w
}

/// L2-regularized logistic regression (sigmoid for `k == 1`, softmax over `k` classes
/// otherwise) minimizing `Σ loss / n + ||W||² / (2 C n)` (scikit-learn's objective divided by n)
/// with L-BFGS. Returns weights (`p × k`, row-major) and intercepts.
fn logistic(x: &[f64], y: &[f64], p: usize, k: usize, c: f64) -> (Vec<f64>, Vec<f64>) {
    let n = y.len().max(1);
    let lambda = 1.0 / (c * n as f64);
    let dim = p * k + k;
    let classes: Vec<usize> = y.iter().map(|&v| v as usize).collect();
    let objective = |theta: &[f64], grad: &mut [f64]| -> f64 {
        grad.iter_mut().for_each(|g| *g = 0.0);
        let (w, b) = theta.split_at(p * k);
        let mut loss = 0.0;
        let mut z = vec![0.0; k];
        let mut resid = vec![0.0; k];
        for (row, &ci) in x.chunks(p.max(1)).take(y.len()).zip(&classes) {
            z.copy_from_slice(b);
            for (j, &xj) in row.iter().enumerate().take(p) {
                if xj != 0.0 {
                    for (zk, wk) in z.iter_mut().zip(&w[j * k..(j + 1) * k]) {
                        *zk += xj * wk;
                    }
                }
            }
            if k == 1 {
                let t = if ci == 1 { 1.0 } else { 0.0 };
                // log(1 + e^z) - t z, computed stably.
                let m = z[0];
                loss += if m > 0.0 {
                    m + (-m).exp().ln_1p()
                } else {
                    m.exp().ln_1p()
                } - t * m;
                resid[0] = sigmoid(m) - t;
            } else {
                let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
                let lse = max + sum.ln();
                loss += lse - z[ci.min(k - 1)];
                for (kk, r) in resid.iter_mut().enumerate() {
                    *r = (z[kk] - lse).exp() - if kk == ci { 1.0 } else { 0.0 };
                }
            }
            for (j, &xj) in row.iter().enumerate().take(p) {
                if xj != 0.0 {
                    for (g, r) in grad[j * k..(j + 1) * k].iter_mut().zip(&resid) {
                        *g += xj * r;
                    }
                }
            }
            for (g, r) in grad[p * k..].iter_mut().zip(&resid) {
                *g += r;
            }
        }
        let inv_n = 1.0 / n as f64;
        grad.iter_mut().for_each(|g| *g *= inv_n);
        let mut penalty = 0.0;
        for (g, wj) in grad[..p * k].iter_mut().zip(w) {
            *g += lambda * wj;
            penalty += wj * wj;
        }
        loss * inv_n + 0.5 * lambda * penalty
    };
    let theta = lbfgs(objective, vec![0.0; dim], 500);
    let (w, b) = theta.split_at(p * k);
    (w.to_vec(), b.to_vec())
}

/// Limited-memory BFGS with a backtracking (Armijo) line search.
fn lbfgs(
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
    mut x: Vec<f64>,
    max_iter: usize,
) -> Vec<f64> {
    const M: usize = 10;
    let dim = x.len();
    let mut g = vec![0.0; dim];
    let mut fx = f(&x, &mut g);
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut x_new = vec![0.0; dim];
    let mut g_new = vec![0.0; dim];
    for _ in 0..max_iter {
        let gnorm = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if gnorm < 1e-7 {
            break;
        }
        // Two-loop recursion for the direction d = -H g.
        let mut q = g.clone();
        let mut alphas = vec![0.0; s_hist.len()];
        for i in (0..s_hist.len()).rev() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            alphas[i] = rho * dot(&s_hist[i], &q);
            axpy(-alphas[i], &y_hist[i], &mut q);
        }
        if let (Some(s), Some(y)) = (s_hist.last(), y_hist.last()) {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|v| *v *= gamma);
        }
        for i in 0..s_hist.len() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            let beta = rho * dot(&y_hist[i], &q);
            axpy(alphas[i] - beta, &s_hist[i], &mut q);
        }
        let mut d: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            d = g.iter().map(|v| -v).collect();
            slope = -dot(&g, &g);
            s_hist.clear();
            y_hist.clear();
        }
        let mut step = if s_hist.is_empty() {
            1.0 / gnorm.max(1.0)
        } else {
            1.0
        };
        let mut fx_new;
        let mut tries = 0;
        loop {
            for i in 0..dim {
                x_new[i] = x[i] + step * d[i];
            }
            fx_new = f(&x_new, &mut g_new);
            if fx_new <= fx + 1e-4 * step * slope || tries >= 40 {
                break;
            }
            step *= 0.5;
            tries += 1;
        }
        if fx_new > fx {
            break;
        }
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let yv: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &yv);
        let converged = (fx - fx_new).abs() <= 1e-12 * fx.abs().max(1.0);
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        fx = fx_new;
        if sy > 1e-12 {
            if s_hist.len() == M {
                s_hist.remove(0);
                y_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(yv);
        }
        if converged {
            break;
        }
    }
    x
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automl::random::SplitMix64;

    fn normal(rng: &mut SplitMix64) -> f64 {
        // Box-Muller.
        let u1 = rng.next_f64() + 1e-12;
        let u2 = rng.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Two numeric features on very different scales (one with missing values) and a 3-level
    /// categorical.
    fn synthetic(n: usize, seed: u64) -> (Vec<Feature>, Vec<Vec<f32>>) {
        let mut rng = SplitMix64::new(seed);
        let a: Vec<f32> = (0..n)
            .map(|_| (normal(&mut rng) * 2.0 + 5.0) as f32)
            .collect();
        let b: Vec<f32> = (0..n)
            .map(|i| {
                if i % 17 == 0 {
                    f32::NAN
                } else {
                    (normal(&mut rng) * 100.0 - 40.0) as f32
                }
            })
            .collect();
        let c: Vec<f32> = (0..n).map(|_| rng.scaled_below(3) as f32).collect();
        let features = vec![
            Feature::Numeric { input: 0 },
            Feature::Numeric { input: 1 },
            Feature::CategoryIndex {
                input: 2,
                levels: vec!["x".into(), "y".into(), "z".into()],
            },
        ];
        (features, vec![a, b, c])
    }

    #[test]
    fn ridge_recovers_known_coefficients_on_the_raw_scale() {
        let n = 2000;
        let (features, cols) = synthetic(n, 3);
        let level_effect = [0.0, 4.0, -2.0];
        let y: Vec<f64> = (0..n)
            .map(|i| {
                let b = if cols[1][i].is_nan() {
                    0.0
                } else {
                    f64::from(cols[1][i])
                };
                7.0 + 3.0 * f64::from(cols[0][i]) - 0.05 * b + level_effect[cols[2][i] as usize]
            })
            .collect();
        let rows: Vec<usize> = (0..n).filter(|i| i % 17 != 0).collect();
        let m = fit_linear(
            &Task::Regression,
            LinearKind::Ridge { alpha: 1e-6 },
            &features,
            &cols,
            &y,
            &rows,
            0,
        );
        assert!(
            (m.numeric[0].weights[0] - 3.0).abs() < 1e-4,
            "{:?}",
            m.numeric[0]
        );
        assert!((m.numeric[1].weights[0] + 0.05).abs() < 1e-6);
        let cat = &m.categorical[0].weights;
        assert!((cat[1][0] - cat[0][0] - 4.0).abs() < 1e-4);
        assert!((cat[2][0] - cat[0][0] + 2.0).abs() < 1e-4);
        // The folded model predicts what generated the data.
        let pred = linear_margins(&m, &cols, &rows);
        let worst = rows
            .iter()
            .zip(&pred)
            .map(|(&r, p)| (p - y[r]).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-3, "worst error {worst}");
    }

    #[test]
    fn folded_model_predicts_like_the_standardized_one() {
        let n = 500;
        let (features, cols) = synthetic(n, 5);
        let mut rng = SplitMix64::new(9);
        let y: Vec<f64> = (0..n)
            .map(|i| {
                let z = 0.8 * (f64::from(cols[0][i]) - 5.0)
                    + if cols[2][i] == 1.0 { 1.5 } else { -0.5 };
                f64::from(u8::from(normal(&mut rng) < z))
            })
            .collect();
        let rows: Vec<usize> = (0..n).collect();
        let task = Task::Binary {
            labels: ["0".into(), "1".into()],
        };
        let design = Design::fit(&features, &cols, &rows);
        let x = design.matrix(&cols, &rows);
        let (w, b) = logistic(&x, &y, design.width, 1, 1.0);
        let standardized: Vec<f64> = x
            .chunks(design.width)
            .map(|row| b[0] + dot(row, &w))
            .collect();
        let folded = design.fold(&w, &b, 1);
        let raw = linear_margins(&folded, &cols, &rows);
        for (s, r) in standardized.iter().zip(&raw) {
            assert!((s - r).abs() < 1e-4 * (1.0 + s.abs()), "{s} vs {r}");
        }
        // And fit_linear gives that same model.
        let m = fit_linear(
            &task,
            LinearKind::Logistic { c: 1.0 },
            &features,
            &cols,
            &y,
            &rows,
            0,
        );
        assert_eq!(m, folded);
    }

    #[test]
    fn logistic_recovers_known_coefficients() {
        let n = 20_000;
        let mut rng = SplitMix64::new(11);
        let x1: Vec<f32> = (0..n).map(|_| normal(&mut rng) as f32).collect();
        let x2: Vec<f32> = (0..n).map(|_| (normal(&mut rng) * 3.0) as f32).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| {
                let z = 0.5 + 1.5 * f64::from(x1[i]) - 0.4 * f64::from(x2[i]);
                let u = rng.next_f64();
                f64::from(u8::from(u < crate::automl::probability::sigmoid(z)))
            })
            .collect();
        let features = vec![Feature::Numeric { input: 0 }, Feature::Numeric { input: 1 }];
        let rows: Vec<usize> = (0..n).collect();
        let task = Task::Binary {
            labels: ["0".into(), "1".into()],
        };
        let m = fit_linear(
            &task,
            LinearKind::Logistic { c: 1e4 },
            &features,
            &[x1, x2],
            &y,
            &rows,
            0,
        );
        assert!((m.intercept[0] - 0.5).abs() < 0.08, "{m:?}");
        assert!((m.numeric[0].weights[0] - 1.5).abs() < 0.08, "{m:?}");
        assert!((m.numeric[1].weights[0] + 0.4).abs() < 0.03, "{m:?}");
    }

    #[test]
    fn multinomial_separates_three_classes() {
        let n = 600;
        let mut rng = SplitMix64::new(2);
        let y: Vec<f64> = (0..n).map(|i| (i % 3) as f64).collect();
        let x: Vec<f32> = y
            .iter()
            .map(|&c| (c * 3.0 + normal(&mut rng) * 0.5) as f32)
            .collect();
        let features = vec![Feature::Numeric { input: 0 }];
        let rows: Vec<usize> = (0..n).collect();
        let task = Task::Multiclass {
            labels: vec!["a".into(), "b".into(), "c".into()],
        };
        let m = fit_linear(
            &task,
            LinearKind::Logistic { c: 1.0 },
            &features,
            &[x],
            &y,
            &rows,
            0,
        );
        let cols = [(0..3).map(|c| c as f32 * 3.0).collect::<Vec<f32>>()];
        let margins = linear_margins(&m, &cols, &[0, 1, 2]);
        let probs = crate::automl::metrics::margins_to_predictions(&task, &margins);
        assert_eq!(
            crate::automl::metrics::predicted_classes(&probs, 3),
            vec![0, 1, 2]
        );
    }
}
