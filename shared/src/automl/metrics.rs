//! Scores of predictions against truth: the metrics a user can select by and the ones a build
//! reports. Classification takes class probabilities (row-major, `k` per row); regression
//! takes predicted values.

use super::output::{ActualPredicted, HistogramBin, HoldoutEvaluation};
use super::pipeline::Task;
use super::probability::{sigmoid, softmax_into};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    /// Of the positive class for binary, macro-averaged for multiclass (also precision, recall).
    F1,
    Precision,
    Recall,
    /// Binary; macro one-vs-rest for multiclass.
    RocAuc,
    LogLoss,
    Rmse,
    Mae,
    R2,
}

impl Metric {
    /// Reads a user's metric name forgivingly (`F1`, `f1_score`, `AUC`, `logloss`, `RMSE`).
    pub fn parse(s: &str) -> Option<Metric> {
        let key: String = s
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        Some(match key.as_str() {
            "accuracy" | "acc" => Metric::Accuracy,
            "f1" | "f1score" | "macrof1" | "f1macro" | "fscore" => Metric::F1,
            "precision" => Metric::Precision,
            "recall" | "sensitivity" => Metric::Recall,
            "rocauc" | "auc" | "auroc" | "roc" => Metric::RocAuc,
            "logloss" | "crossentropy" | "loss" => Metric::LogLoss,
            "rmse" | "rootmeansquarederror" => Metric::Rmse,
            "mae" | "meanabsoluteerror" => Metric::Mae,
            "r2" | "rsquared" | "r2score" => Metric::R2,
            _ => return None,
        })
    }

    /// The first metric a piece of free text names ("optimise for F1 score", "lowest mean
    /// absolute error"), trying the longest phrase first at each word; `None` when it names
    /// none. Reads at most the first 2000 characters.
    pub fn named_in(text: &str) -> Option<Metric> {
        let words: Vec<&str> = text
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .take(400)
            .collect();
        (0..words.len()).find_map(|start| {
            (1..=4.min(words.len() - start))
                .rev()
                .find_map(|n| Metric::parse(&words[start..start + n].concat()))
        })
    }

    /// The name reported in results (matches the keys of the reported metrics).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::F1 => "f1_score",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::RocAuc => "roc_auc",
            Metric::LogLoss => "log_loss",
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::R2 => "r2",
        }
    }

    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::LogLoss | Metric::Rmse | Metric::Mae)
    }

    pub fn is_classification(self) -> bool {
        !matches!(self, Metric::Rmse | Metric::Mae | Metric::R2)
    }

    pub fn default_for(task: &Task) -> Metric {
        match task {
            Task::Regression => Metric::Rmse,
            _ => Metric::Accuracy,
        }
    }

    /// `a` is a better score than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        if self.higher_is_better() {
            a > b
        } else {
            a < b
        }
    }
}

/// Truth and predictions of one evaluation.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    Classes {
        y: &'a [usize],
        probs: &'a [f64],
        k: usize,
    },
    Values {
        y: &'a [f64],
        pred: &'a [f64],
    },
}

/// Truth and raw margins turned into what the metrics score, in the shape the task gives them:
/// class indices and probabilities (classification) or values (regression).
#[derive(Debug, Clone)]
pub struct Evaluation {
    y: Vec<f64>,
    classes: Vec<usize>,
    predictions: Vec<f64>,
    /// Classes per row; `None` for regression.
    k: Option<usize>,
}

impl Evaluation {
    /// `y` holds the class index (classification) or the value (regression) per row;
    /// `margins` the raw margins, row-major, `task.n_outputs()` per row.
    pub fn from_margins(task: &Task, y: Vec<f64>, margins: &[f64]) -> Evaluation {
        let k = match task {
            Task::Regression => None,
            Task::Binary { .. } => Some(2),
            Task::Multiclass { labels } => Some(labels.len()),
        };
        let classes = match k {
            Some(_) => y.iter().map(|&v| v as usize).collect(),
            None => Vec::new(),
        };
        Evaluation {
            predictions: margins_to_predictions(task, margins),
            y,
            classes,
            k,
        }
    }

    /// The holdout to look at (see [`HoldoutEvaluation`]); `labels` are the task's classes.
    pub fn to_view(&self, labels: &[String]) -> HoldoutEvaluation {
        match self.k {
            Some(k) => {
                let mut matrix = vec![vec![0u64; k]; k];
                for (row, &actual) in self.classes.iter().enumerate() {
                    let probs = &self.predictions[row * k..(row + 1) * k];
                    let predicted = probs
                        .iter()
                        .enumerate()
                        .fold(0, |best, (i, &p)| if p > probs[best] { i } else { best });
                    if let Some(cell) = matrix.get_mut(actual).and_then(|r| r.get_mut(predicted)) {
                        *cell += 1;
                    }
                }
                HoldoutEvaluation::Classification {
                    labels: labels.to_vec(),
                    confusion_matrix: matrix,
                }
            }
            None => {
                let n = self.y.len();
                let step = n.div_ceil(HoldoutEvaluation::MAX_POINTS).max(1);
                let points = (0..n)
                    .step_by(step)
                    .map(|i| ActualPredicted {
                        actual: self.y[i],
                        predicted: self.predictions[i],
                    })
                    .collect();
                let residuals: Vec<f64> = self
                    .y
                    .iter()
                    .zip(&self.predictions)
                    .map(|(y, p)| y - p)
                    .filter(|r| r.is_finite())
                    .collect();
                HoldoutEvaluation::Regression {
                    points,
                    residual_histogram: histogram(&residuals, HoldoutEvaluation::BINS),
                }
            }
        }
    }

    pub fn outcome(&self) -> Outcome<'_> {
        match self.k {
            None => Outcome::Values {
                y: &self.y,
                pred: &self.predictions,
            },
            Some(k) => Outcome::Classes {
                y: &self.classes,
                probs: &self.predictions,
                k,
            },
        }
    }
}

/// `bins` equal-width bins over the values' range (one bin when they are all equal; none when
/// there are no values).
fn histogram(values: &[f64], bins: usize) -> Vec<HistogramBin> {
    let (Some(lo), Some(hi)) = (
        values.iter().copied().reduce(f64::min),
        values.iter().copied().reduce(f64::max),
    ) else {
        return Vec::new();
    };
    if hi <= lo {
        return vec![HistogramBin {
            from: lo,
            to: hi,
            count: values.len() as u64,
        }];
    }
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0u64; bins];
    for v in values {
        let i = (((v - lo) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, count)| HistogramBin {
            from: lo + width * i as f64,
            to: if i + 1 == bins {
                hi
            } else {
                lo + width * (i + 1) as f64
            },
            count,
        })
        .collect()
}

/// Converts raw margins (row-major, `n_outputs` per row) into what [`Outcome`] expects:
/// class probabilities for classification (binary → 2 columns), values for regression.
pub fn margins_to_predictions(task: &Task, margins: &[f64]) -> Vec<f64> {
    match task {
        Task::Regression => margins.to_vec(),
        Task::Binary { .. } => margins
            .iter()
            .flat_map(|&m| {
                let p = sigmoid(m);
                [1.0 - p, p]
            })
            .collect(),
        Task::Multiclass { labels } => {
            let mut out = vec![0.0; margins.len()];
            for (row, probs) in margins
                .chunks(labels.len())
                .zip(out.chunks_mut(labels.len()))
            {
                softmax_into(row, probs);
            }
            out
        }
    }
}

/// The predicted class of each row: the most probable (the first on ties, like ONNX ArgMax).
pub fn predicted_classes(probs: &[f64], k: usize) -> Vec<usize> {
    probs
        .chunks(k)
        .map(|row| {
            let mut best = 0;
            for (i, &p) in row.iter().enumerate() {
                if p > row[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}

/// One metric's value. Classification metrics on a regression outcome (or the reverse) are NaN.
pub fn score(metric: Metric, outcome: Outcome) -> f64 {
    match outcome {
        Outcome::Classes { y, probs, k } => {
            let pred = predicted_classes(probs, k);
            let binary = k == 2;
            match metric {
                Metric::Accuracy => accuracy(y, &pred),
                Metric::F1 | Metric::Precision | Metric::Recall => {
                    let per_class = per_class_prf(y, &pred, k);
                    let pick = |(p, r, f): (f64, f64, f64)| match metric {
                        Metric::Precision => p,
                        Metric::Recall => r,
                        _ => f,
                    };
                    if binary {
                        pick(per_class[1])
                    } else {
                        per_class.into_iter().map(pick).sum::<f64>() / k as f64
                    }
                }
                Metric::RocAuc => {
                    if binary {
                        roc_auc(y, &probs.chunks(2).map(|r| r[1]).collect::<Vec<_>>(), 1)
                    } else {
                        let aucs: Vec<f64> = (0..k)
                            .map(|c| {
                                roc_auc(y, &probs.chunks(k).map(|r| r[c]).collect::<Vec<_>>(), c)
                            })
                            .filter(|a| !a.is_nan())
                            .collect();
                        aucs.iter().sum::<f64>() / aucs.len().max(1) as f64
                    }
                }
                Metric::LogLoss => log_loss(y, probs, k),
                Metric::Rmse | Metric::Mae | Metric::R2 => f64::NAN,
            }
        }
        Outcome::Values { y, pred } => match metric {
            Metric::Rmse => rmse(y, pred),
            Metric::Mae => mae(y, pred),
            Metric::R2 => r2(y, pred),
            _ => f64::NAN,
        },
    }
}

/// The metrics a build reports for its task.
pub fn report(task: &Task, outcome: Outcome) -> BTreeMap<String, f64> {
    let metrics: &[Metric] = match task {
        Task::Regression => &[Metric::Rmse, Metric::Mae, Metric::R2],
        Task::Binary { .. } => &[
            Metric::Accuracy,
            Metric::Precision,
            Metric::Recall,
            Metric::F1,
            Metric::RocAuc,
            Metric::LogLoss,
        ],
        Task::Multiclass { .. } => &[
            Metric::Accuracy,
            Metric::Precision,
            Metric::Recall,
            Metric::F1,
            Metric::LogLoss,
        ],
    };
    metrics
        .iter()
        .map(|&m| (m.name().to_string(), score(m, outcome)))
        .collect()
}

pub fn accuracy(y: &[usize], pred: &[usize]) -> f64 {
    let hits = y.iter().zip(pred).filter(|(a, b)| a == b).count();
    hits as f64 / y.len().max(1) as f64
}

/// (precision, recall, f1) per class; 0 where undefined (as scikit-learn's zero_division=0).
pub fn per_class_prf(y: &[usize], pred: &[usize], k: usize) -> Vec<(f64, f64, f64)> {
    (0..k)
        .map(|c| {
            let tp = y
                .iter()
                .zip(pred)
                .filter(|&(&a, &b)| a == c && b == c)
                .count() as f64;
            let fp = y
                .iter()
                .zip(pred)
                .filter(|&(&a, &b)| a != c && b == c)
                .count() as f64;
            let fn_ = y
                .iter()
                .zip(pred)
                .filter(|&(&a, &b)| a == c && b != c)
                .count() as f64;
            let p = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
            let r = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 };
            let f = if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            };
            (p, r, f)
        })
        .collect()
}

pub fn macro_f1(y: &[usize], pred: &[usize], k: usize) -> f64 {
    per_class_prf(y, pred, k).iter().map(|t| t.2).sum::<f64>() / k.max(1) as f64
}

/// Area under the ROC curve of `scores` for class `positive` against the rest (ties averaged);
/// NaN when only one side is present.
pub fn roc_auc(y: &[usize], scores: &[f64], positive: usize) -> f64 {
    let mut order: Vec<usize> = (0..y.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            if y[o] == positive {
                rank_sum += avg_rank;
            }
        }
        i = j + 1;
    }
    let n_pos = y.iter().filter(|&&c| c == positive).count() as f64;
    let n_neg = y.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

pub fn log_loss(y: &[usize], probs: &[f64], k: usize) -> f64 {
    let total: f64 = y
        .iter()
        .zip(probs.chunks(k))
        .map(|(&c, row)| -row[c].clamp(1e-15, 1.0).ln())
        .sum();
    total / y.len().max(1) as f64
}

pub fn rmse(y: &[f64], pred: &[f64]) -> f64 {
    let sse: f64 = y.iter().zip(pred).map(|(a, b)| (a - b).powi(2)).sum();
    (sse / y.len().max(1) as f64).sqrt()
}

pub fn mae(y: &[f64], pred: &[f64]) -> f64 {
    y.iter().zip(pred).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len().max(1) as f64
}

pub fn r2(y: &[f64], pred: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len().max(1) as f64;
    let ss_tot: f64 = y.iter().map(|a| (a - mean).powi(2)).sum();
    let ss_res: f64 = y.iter().zip(pred).map(|(a, b)| (a - b).powi(2)).sum();
    if ss_tot == 0.0 {
        0.0
    } else {
        1.0 - ss_res / ss_tot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_names_a_metric() {
        assert_eq!(Metric::named_in("optimise for F1 score"), Some(Metric::F1));
        assert_eq!(
            Metric::named_in("the lowest mean absolute error please"),
            Some(Metric::Mae)
        );
        assert_eq!(Metric::named_in("ROC AUC above 0.8"), Some(Metric::RocAuc));
        assert_eq!(Metric::named_in("be accurate and fast"), None);
        assert_eq!(Metric::named_in(""), None);
    }

    #[test]
    fn the_holdout_view_counts_every_row_once() {
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let task = Task::Multiclass {
            labels: labels.clone(),
        };
        // Rows 0, 1 predicted right; row 2 (class c) predicted b.
        let margins = [5.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 5.0, 0.0];
        let view = Evaluation::from_margins(&task, vec![0.0, 1.0, 2.0], &margins).to_view(&labels);
        let HoldoutEvaluation::Classification {
            confusion_matrix, ..
        } = view
        else {
            panic!("not a classification view");
        };
        assert_eq!(
            confusion_matrix,
            vec![vec![1, 0, 0], vec![0, 1, 0], vec![0, 1, 0]]
        );

        let y: Vec<f64> = (0..1200).map(f64::from).collect();
        let predicted: Vec<f64> = y.iter().map(|v| v + 1.0).collect();
        let view = Evaluation::from_margins(&Task::Regression, y, &predicted).to_view(&[]);
        let HoldoutEvaluation::Regression {
            points,
            residual_histogram,
        } = view
        else {
            panic!("not a regression view");
        };
        assert!(points.len() <= HoldoutEvaluation::MAX_POINTS && points.len() >= 400);
        assert_eq!(points[1].actual + 1.0, points[1].predicted);
        // Every residual is -1: one bin holding all 1200 rows.
        assert_eq!(residual_histogram.len(), 1);
        assert_eq!(residual_histogram[0].count, 1200);
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn binary_metrics_match_hand_computed_values() {
        // Truth 1,1,0,0,1 ; P(positive) .9,.4,.35,.1,.8 → predicted 1,0,0,0,1.
        let y = [1, 1, 0, 0, 1];
        let p1 = [0.9, 0.4, 0.35, 0.1, 0.8];
        let probs: Vec<f64> = p1.iter().flat_map(|&p| [1.0 - p, p]).collect();
        let o = Outcome::Classes {
            y: &y,
            probs: &probs,
            k: 2,
        };
        close(score(Metric::Accuracy, o), 0.8);
        close(score(Metric::Precision, o), 1.0);
        close(score(Metric::Recall, o), 2.0 / 3.0);
        close(score(Metric::F1, o), 0.8);
        // Positives' scores .9,.4,.8 vs negatives .35,.1: 6 pairs, all ordered right.
        close(score(Metric::RocAuc, o), 1.0);
        let ll = -(0.9f64.ln() + 0.4f64.ln() + 0.65f64.ln() + 0.9f64.ln() + 0.8f64.ln()) / 5.0;
        close(score(Metric::LogLoss, o), ll);
        // One inverted pair out of six, one tied pair counting a half.
        close(
            roc_auc(&[1, 0, 1, 0], &[0.3, 0.5, 0.7, 0.3], 1),
            (0.0 + 0.5 + 1.0 + 1.0) / 4.0,
        );
    }

    #[test]
    fn multiclass_f1_is_macro() {
        let y = [0, 0, 1, 1, 2, 2];
        let pred = [0, 1, 1, 1, 2, 0];
        // class 0: p=1/2 r=1/2 f=1/2; class 1: p=2/3 r=1 f=0.8; class 2: p=1 r=1/2 f=2/3.
        close(macro_f1(&y, &pred, 3), (0.5 + 0.8 + 2.0 / 3.0) / 3.0);
        let probs: Vec<f64> = pred
            .iter()
            .flat_map(|&c| (0..3).map(move |j| if j == c { 0.8 } else { 0.1 }))
            .collect();
        let o = Outcome::Classes {
            y: &y,
            probs: &probs,
            k: 3,
        };
        close(score(Metric::F1, o), (0.5 + 0.8 + 2.0 / 3.0) / 3.0);
        close(score(Metric::Accuracy, o), 4.0 / 6.0);
    }

    #[test]
    fn regression_metrics_match_hand_computed_values() {
        let y = [3.0, -0.5, 2.0, 7.0];
        let p = [2.5, 0.0, 2.0, 8.0];
        close(rmse(&y, &p), (1.5f64 / 4.0).sqrt());
        close(mae(&y, &p), 0.5);
        // scikit-learn's documented example: r2_score = 0.948...
        close(r2(&y, &p), 1.0 - 1.5 / 29.1875);
    }

    #[test]
    fn margins_become_probabilities() {
        let bin = Task::Binary {
            labels: ["a".into(), "b".into()],
        };
        let p = margins_to_predictions(&bin, &[0.0, 2.0]);
        close(p[1], 0.5);
        close(p[3], sigmoid(2.0));
        let multi = Task::Multiclass {
            labels: vec!["a".into(), "b".into(), "c".into()],
        };
        let p = margins_to_predictions(&multi, &[1.0, 1.0, 1.0]);
        close(p[0] + p[1] + p[2], 1.0);
        close(p[2], 1.0 / 3.0);
        assert_eq!(Metric::parse("F1-Score"), Some(Metric::F1));
        assert_eq!(Metric::parse("AUC"), Some(Metric::RocAuc));
        assert_eq!(Metric::parse("bogus"), None);
    }
}
