//! Native prediction of a fitted [`Pipeline`]: the reading of the pipeline that holdout scores
//! use, computed exactly the way the exported ONNX graph computes it (see [`crate::onnx`]), so
//! that the two readings agree.
//!
//! Conventions shared with the ONNX export (both sides must follow them):
//! - every non-string input is cast to `f32` first (booleans 0/1, datetimes as epoch seconds UTC);
//! - a string input maps to the index of its level; the empty string, a missing value and an
//!   unseen value map to NaN;
//! - datetime parts are computed from the `f32`-cast epoch seconds with exact `f64` floor
//!   arithmetic (civil-from-days), UTC; day of week is 0 = Monday … 6 = Sunday;
//! - trees compare `f32` features with `f32` thresholds, NaN follows `missing_left`;
//! - a blend averages model margins with its weights: `Σ wᵢ·mᵢ / Σ wᵢ`;
//! - binary: `p = sigmoid(margin)`, the label is `labels[1]` iff `margin > 0` (so `p > 0.5`; an
//!   exact tie goes to `labels[0]`); multiclass: softmax, the label is the arg-max of the
//!   margins, the first maximum winning.

use super::pipeline::{
    DatetimePart, Feature, LinearModel, Model, Node, Pipeline, SplitRule, Task, TreeEnsemble,
};
use crate::ingest::{ColumnData, ColumnType, Table};
use rayon::prelude::*;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PredictError {
    #[error("the table has no column named `{0}`, which the model needs")]
    MissingColumn(String),
    #[error("column `{name}` holds {found} values, the model expects {expected}")]
    ColumnType {
        name: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("invalid pipeline: {0}")]
    InvalidPipeline(String),
}

/// Per-row predictions.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    Regression {
        values: Vec<f64>,
    },
    Classification {
        /// The class labels, in the pipeline's order (columns of `probabilities`).
        labels: Vec<String>,
        /// Per row, the index in `labels` of the predicted class.
        predicted: Vec<usize>,
        /// Per row, the probability of each label.
        probabilities: Vec<Vec<f64>>,
    },
}

impl Predictions {
    pub fn len(&self) -> usize {
        match self {
            Predictions::Regression { values } => values.len(),
            Predictions::Classification { predicted, .. } => predicted.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The predicted label of `row`, for classification.
    pub fn label(&self, row: usize) -> Option<&str> {
        match self {
            Predictions::Regression { .. } => None,
            Predictions::Classification {
                labels, predicted, ..
            } => predicted.get(row).map(|&i| labels[i].as_str()),
        }
    }

    /// The predicted value of `row`, for regression.
    pub fn value(&self, row: usize) -> Option<f64> {
        match self {
            Predictions::Regression { values } => values.get(row).copied(),
            Predictions::Classification { .. } => None,
        }
    }
}

/// Rows per parallel work item: large enough to amortize scheduling, small enough to spread.
const CHUNK_ROWS: usize = 1024;

impl Pipeline {
    /// The blended raw margins, per row `task.n_outputs()` values.
    pub fn predict_margins(&self, table: &Table) -> Result<Vec<Vec<f64>>, PredictError> {
        check_pipeline(self)?;
        let features = self.feature_matrix(table)?;
        Ok(self.margins_of_features(&features, table.n_rows))
    }

    /// Labels and probabilities (classification) or values (regression) per row.
    pub fn predict(&self, table: &Table) -> Result<Predictions, PredictError> {
        let margins = self.predict_margins(table)?;
        Ok(margins_to_predictions(&self.task, margins))
    }

    /// The feature matrix, row-major `n_rows × features.len()`, `f32`, NaN = missing.
    pub fn feature_matrix(&self, table: &Table) -> Result<Vec<f32>, PredictError> {
        let n_rows = table.n_rows;
        let n_features = self.features.len();
        let columns = self
            .inputs
            .iter()
            .map(|spec| {
                let column = table
                    .column(&spec.name)
                    .ok_or_else(|| PredictError::MissingColumn(spec.name.clone()))?;
                let storage_ok = match (&column.data, spec.kind) {
                    (ColumnData::Categorical { .. }, ColumnType::String) => true,
                    (ColumnData::Numeric(_), kind) => kind != ColumnType::String,
                    _ => false,
                };
                if !storage_ok {
                    return Err(PredictError::ColumnType {
                        name: spec.name.clone(),
                        expected: if spec.kind == ColumnType::String {
                            "string"
                        } else {
                            "numeric"
                        },
                        found: match column.data {
                            ColumnData::Categorical { .. } => "string",
                            ColumnData::Numeric(_) => "numeric",
                        },
                    });
                }
                if column.data.len() != n_rows {
                    return Err(PredictError::InvalidPipeline(format!(
                        "column `{}` has {} rows, the table {}",
                        spec.name,
                        column.data.len(),
                        n_rows
                    )));
                }
                Ok(&column.data)
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut matrix = vec![f32::NAN; n_rows * n_features];
        for (j, feature) in self.features.iter().enumerate() {
            match feature {
                Feature::Numeric { input } => {
                    if let ColumnData::Numeric(values) = columns[*input] {
                        for (row, v) in values.iter().enumerate() {
                            matrix[row * n_features + j] = *v as f32;
                        }
                    }
                }
                Feature::CategoryIndex { input, levels } => {
                    if let ColumnData::Categorical {
                        codes,
                        levels: table_levels,
                    } = columns[*input]
                    {
                        let index = level_index(levels);
                        // Translate the table's dictionary once, then each row is a lookup.
                        let by_code: Vec<f32> = table_levels
                            .iter()
                            .map(|s| index.get(s.as_str()).map_or(f32::NAN, |&i| i as f32))
                            .collect();
                        for (row, &code) in codes.iter().enumerate() {
                            matrix[row * n_features + j] =
                                by_code.get(code as usize).copied().unwrap_or(f32::NAN);
                        }
                    }
                }
                Feature::DatetimePart { input, part } => {
                    if let ColumnData::Numeric(values) = columns[*input] {
                        for (row, v) in values.iter().enumerate() {
                            matrix[row * n_features + j] = datetime_part(*v as f32, *part);
                        }
                    }
                }
            }
        }
        Ok(matrix)
    }

    /// Margins from a feature matrix built by [`Pipeline::feature_matrix`]. The pipeline must
    /// have passed [`check_pipeline`].
    fn margins_of_features(&self, features: &[f32], n_rows: usize) -> Vec<Vec<f64>> {
        let n_features = self.features.len();
        let n_out = self.task.n_outputs();
        let weight_sum: f64 = self.weights.iter().sum();
        let mut margins = vec![vec![0.0; n_out]; n_rows];
        margins
            .par_chunks_mut(CHUNK_ROWS)
            .enumerate()
            .for_each(|(chunk, rows)| {
                let mut model_margin = vec![0.0f64; n_out];
                for (i, out) in rows.iter_mut().enumerate() {
                    let row = chunk * CHUNK_ROWS + i;
                    let x = &features[row * n_features..(row + 1) * n_features];
                    for (model, weight) in self.models.iter().zip(&self.weights) {
                        model_margin.iter_mut().for_each(|m| *m = 0.0);
                        match model {
                            Model::Trees(ensemble) => {
                                ensemble_margin(ensemble, x, &mut model_margin)
                            }
                            Model::Linear(linear) => linear_margin(linear, x, &mut model_margin),
                        }
                        for (o, m) in out.iter_mut().zip(&model_margin) {
                            *o += weight * m;
                        }
                    }
                    for o in out.iter_mut() {
                        *o /= weight_sum;
                    }
                }
            });
        margins
    }
}

/// Level → index, the first occurrence winning; the empty string is never a level (it means
/// missing, as in the ONNX graph).
pub fn level_index(levels: &[String]) -> HashMap<&str, usize> {
    let mut index = HashMap::with_capacity(levels.len());
    for (i, level) in levels.iter().enumerate() {
        if !level.is_empty() {
            index.entry(level.as_str()).or_insert(i);
        }
    }
    index
}

fn ensemble_margin(ensemble: &TreeEnsemble, x: &[f32], out: &mut [f64]) {
    for (o, b) in out.iter_mut().zip(&ensemble.base) {
        *o += b;
    }
    for tree in &ensemble.trees {
        let mut at = 0usize;
        // `check_pipeline` rejects cyclic trees; the bound is a second guard.
        for _ in 0..=tree.nodes.len() {
            match &tree.nodes[at] {
                Node::Leaf { value } => {
                    out[tree.output] += value;
                    break;
                }
                Node::Split {
                    feature,
                    rule,
                    missing_left,
                    left,
                    right,
                } => {
                    let v = x[*feature];
                    let go_left = if v.is_nan() {
                        *missing_left
                    } else {
                        match rule {
                            SplitRule::LessOrEqual(t) => v <= *t,
                            SplitRule::InSet(set) => set.iter().any(|&c| v == c as f32),
                        }
                    };
                    at = if go_left {
                        *left as usize
                    } else {
                        *right as usize
                    };
                }
            }
        }
    }
}

fn linear_margin(linear: &LinearModel, x: &[f32], out: &mut [f64]) {
    for (o, b) in out.iter_mut().zip(&linear.intercept) {
        *o += b;
    }
    for term in &linear.numeric {
        let v = x[term.feature];
        let v = if v.is_nan() { term.fill } else { v as f64 };
        for (o, w) in out.iter_mut().zip(&term.weights) {
            *o += w * v;
        }
    }
    for term in &linear.categorical {
        let v = x[term.feature];
        if let Some(weights) = category_row(v, term.weights.len()).map(|i| &term.weights[i]) {
            for (o, w) in out.iter_mut().zip(weights) {
                *o += w;
            }
        }
    }
}

/// The row of a categorical weight table for feature value `v`: `None` for missing/unseen.
fn category_row(v: f32, n_rows: usize) -> Option<usize> {
    if v.is_nan() || v < 0.0 || v.fract() != 0.0 {
        return None;
    }
    let i = v as usize;
    (i < n_rows).then_some(i)
}

/// One calendar part of `seconds` (epoch seconds UTC, already cast to `f32` like the ONNX
/// input). Every step is exact in `f64` (integers far below 2^53), which the ONNX graph mirrors
/// op by op, so both give identical results.
pub fn datetime_part(seconds: f32, part: DatetimePart) -> f32 {
    let s = seconds as f64;
    let days = (s / 86400.0).floor();
    let value = match part {
        DatetimePart::Hour => ((s - days * 86400.0) / 3600.0).floor(),
        // 1970-01-01 was a Thursday (3 with Monday = 0).
        DatetimePart::DayOfWeek => floor_mod(days + 3.0, 7.0),
        DatetimePart::Year | DatetimePart::Month | DatetimePart::Day => {
            let (y, m, d) = civil_from_days(days);
            match part {
                DatetimePart::Year => y,
                DatetimePart::Month => m,
                _ => d,
            }
        }
    };
    value as f32
}

fn floor_mod(x: f64, n: f64) -> f64 {
    x - n * (x / n).floor()
}

/// Howard Hinnant's civil-from-days, written with floors only (no branches) so that the ONNX
/// graph can repeat it with Div/Floor/Mul/Sub: `(year, month 1–12, day 1–31)`.
pub fn civil_from_days(days: f64) -> (f64, f64, f64) {
    let z = days + 719468.0;
    let era = (z / 146097.0).floor();
    let doe = z - era * 146097.0;
    let yoe = ((doe - (doe / 1460.0).floor() + (doe / 36524.0).floor() - (doe / 146096.0).floor())
        / 365.0)
        .floor();
    let doy = doe - (365.0 * yoe + (yoe / 4.0).floor() - (yoe / 100.0).floor());
    let mp = ((5.0 * doy + 2.0) / 153.0).floor();
    let day = doy - ((153.0 * mp + 2.0) / 5.0).floor() + 1.0;
    // mp ∈ 0..=11 counts months from March; mp ≥ 10 (Jan, Feb) belongs to the next year.
    let wraps = (mp / 10.0).floor();
    let month = mp + 3.0 - 12.0 * wraps;
    let year = yoe + era * 400.0 + wraps;
    (year, month, day)
}

/// Margins → predictions, with the tie rules of the module documentation.
pub fn margins_to_predictions(task: &Task, margins: Vec<Vec<f64>>) -> Predictions {
    match task {
        Task::Regression => Predictions::Regression {
            values: margins.into_iter().map(|m| m[0]).collect(),
        },
        Task::Binary { labels } => {
            let mut predicted = Vec::with_capacity(margins.len());
            let mut probabilities = Vec::with_capacity(margins.len());
            for m in &margins {
                let p = sigmoid(m[0]);
                predicted.push(usize::from(m[0] > 0.0));
                probabilities.push(vec![1.0 - p, p]);
            }
            Predictions::Classification {
                labels: labels.to_vec(),
                predicted,
                probabilities,
            }
        }
        Task::Multiclass { labels } => {
            let mut predicted = Vec::with_capacity(margins.len());
            let mut probabilities = Vec::with_capacity(margins.len());
            for m in &margins {
                let mut best = 0;
                for (k, v) in m.iter().enumerate() {
                    if *v > m[best] {
                        best = k;
                    }
                }
                predicted.push(best);
                probabilities.push(softmax(m));
            }
            Predictions::Classification {
                labels: labels.clone(),
                predicted,
                probabilities,
            }
        }
    }
}

pub fn sigmoid(m: f64) -> f64 {
    1.0 / (1.0 + (-m).exp())
}

pub fn softmax(m: &[f64]) -> Vec<f64> {
    let max = m.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = m.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Structural checks shared by native prediction and the ONNX export: every index in range,
/// kinds consistent, trees acyclic. A pipeline that passes cannot make either reading panic.
pub fn check_pipeline(p: &Pipeline) -> Result<(), PredictError> {
    let bad = |msg: String| Err(PredictError::InvalidPipeline(msg));
    let n_out = p.task.n_outputs();
    match &p.task {
        Task::Multiclass { labels } if labels.len() < 2 => {
            return bad("multiclass needs at least 2 labels".into());
        }
        _ => {}
    }
    if p.models.is_empty() || p.models.len() != p.weights.len() {
        return bad(format!(
            "{} models with {} blend weights",
            p.models.len(),
            p.weights.len()
        ));
    }
    let weight_sum: f64 = p.weights.iter().sum();
    if !weight_sum.is_finite() || weight_sum == 0.0 || p.weights.iter().any(|w| !w.is_finite()) {
        return bad("blend weights must be finite with a non-zero sum".into());
    }
    for (j, feature) in p.features.iter().enumerate() {
        let (input, wants_string) = match feature {
            Feature::Numeric { input } | Feature::DatetimePart { input, .. } => (*input, false),
            Feature::CategoryIndex { input, .. } => (*input, true),
        };
        let Some(spec) = p.inputs.get(input) else {
            return bad(format!("feature {j} reads input {input}, out of range"));
        };
        if (spec.kind == ColumnType::String) != wants_string {
            return bad(format!(
                "feature {j} does not fit the type of input `{}`",
                spec.name
            ));
        }
    }
    let n_features = p.features.len();
    for model in &p.models {
        match model {
            Model::Trees(ensemble) => {
                if ensemble.base.len() != n_out {
                    return bad(format!(
                        "tree base has {} values, the task {n_out}",
                        ensemble.base.len()
                    ));
                }
                for (t, tree) in ensemble.trees.iter().enumerate() {
                    check_tree(tree, n_features, n_out)
                        .map_err(|m| PredictError::InvalidPipeline(format!("tree {t}: {m}")))?;
                }
            }
            Model::Linear(linear) => {
                if linear.intercept.len() != n_out {
                    return bad(format!(
                        "linear intercept has {} values, the task {n_out}",
                        linear.intercept.len()
                    ));
                }
                for term in &linear.numeric {
                    if term.feature >= n_features
                        || term.weights.len() != n_out
                        || !term.fill.is_finite()
                    {
                        return bad(format!(
                            "numeric term on feature {} is malformed",
                            term.feature
                        ));
                    }
                }
                for term in &linear.categorical {
                    if !matches!(
                        p.features.get(term.feature),
                        Some(Feature::CategoryIndex { .. })
                    ) {
                        return bad(format!(
                            "categorical term on feature {} which is not a category index",
                            term.feature
                        ));
                    }
                    if term.weights.iter().any(|w| w.len() != n_out) {
                        return bad(format!(
                            "categorical term on feature {} has rows of the wrong width",
                            term.feature
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_tree(tree: &super::pipeline::Tree, n_features: usize, n_out: usize) -> Result<(), String> {
    if tree.output >= n_out {
        return Err(format!("output {} out of range", tree.output));
    }
    if tree.nodes.is_empty() {
        return Err("no nodes".into());
    }
    // Depth-first walk from the root; a node met twice on one path is a cycle. Shared subtrees
    // (a DAG) are fine for both readings.
    let n = tree.nodes.len();
    let mut state = vec![0u8; n]; // 0 new, 1 on the current path, 2 done
    let mut stack = vec![(0usize, false)];
    while let Some((at, leaving)) = stack.pop() {
        if leaving {
            state[at] = 2;
            continue;
        }
        match state[at] {
            1 => return Err(format!("cycle through node {at}")),
            2 => continue,
            _ => {}
        }
        state[at] = 1;
        stack.push((at, true));
        if let Node::Split {
            feature,
            left,
            right,
            ..
        } = &tree.nodes[at]
        {
            if *feature >= n_features {
                return Err(format!(
                    "node {at} splits on feature {feature}, out of range"
                ));
            }
            for child in [*left as usize, *right as usize] {
                if child >= n {
                    return Err(format!("node {at} points to node {child}, out of range"));
                }
                if state[child] == 1 {
                    return Err(format!("cycle through node {child}"));
                }
                stack.push((child, false));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        // Independent reference (Hinnant's days_from_civil, integer form).
        let y = if m <= 2 { y - 1 } else { y };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146097 + doe - 719468
    }

    #[test]
    fn civil_from_days_round_trips_over_four_centuries() {
        for days in (-150_000i64..150_000).step_by(7) {
            let (y, m, d) = civil_from_days(days as f64);
            assert!(
                (1.0..=12.0).contains(&m) && (1.0..=31.0).contains(&d),
                "{days}: {y}-{m}-{d}"
            );
            assert_eq!(
                days_from_civil(y as i64, m as i64, d as i64),
                days,
                "{y}-{m}-{d}"
            );
        }
    }

    #[test]
    fn datetime_parts_of_known_instants() {
        // 2024-02-29T13:00:00Z, a Thursday; exactly representable in f32 (multiple of 128 s).
        let s = 1_709_211_648.0f32; // 2024-02-29T13:00:48Z
        assert_eq!(datetime_part(s, DatetimePart::Year), 2024.0);
        assert_eq!(datetime_part(s, DatetimePart::Month), 2.0);
        assert_eq!(datetime_part(s, DatetimePart::Day), 29.0);
        assert_eq!(datetime_part(s, DatetimePart::Hour), 13.0);
        assert_eq!(datetime_part(s, DatetimePart::DayOfWeek), 3.0);
        // 1969-12-31T23:00:00Z, a Wednesday: negative epochs floor correctly.
        let s = -3600.0f32;
        assert_eq!(datetime_part(s, DatetimePart::Year), 1969.0);
        assert_eq!(datetime_part(s, DatetimePart::Month), 12.0);
        assert_eq!(datetime_part(s, DatetimePart::Day), 31.0);
        assert_eq!(datetime_part(s, DatetimePart::Hour), 23.0);
        assert_eq!(datetime_part(s, DatetimePart::DayOfWeek), 2.0);
        assert!(datetime_part(f32::NAN, DatetimePart::Year).is_nan());
    }

    #[test]
    fn binary_tie_goes_to_the_first_label() {
        let task = Task::Binary {
            labels: ["no".into(), "yes".into()],
        };
        let p = margins_to_predictions(&task, vec![vec![0.0], vec![1e-12], vec![-1.0]]);
        assert_eq!(p.label(0), Some("no"));
        assert_eq!(p.label(1), Some("yes"));
        assert_eq!(p.label(2), Some("no"));
    }

    #[test]
    fn multiclass_first_maximum_wins() {
        let task = Task::Multiclass {
            labels: vec!["a".into(), "b".into(), "c".into()],
        };
        let p = margins_to_predictions(&task, vec![vec![1.0, 2.0, 2.0]]);
        assert_eq!(p.label(0), Some("b"));
        if let Predictions::Classification { probabilities, .. } = &p {
            assert!((probabilities[0].iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }
}
