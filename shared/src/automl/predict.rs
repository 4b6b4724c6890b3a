//! Native prediction of a fitted [`Pipeline`] on a table (`Pipeline::predict`), computed exactly
//! the way the exported ONNX graph computes it (see [`crate::onnx`]), so that the two readings
//! agree; the tests hold them to each other. (A build scores its holdout from its own feature
//! columns, reading the models through the same tree walk and linear sum.)
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

use super::pipeline::text::word_blocks;
use super::pipeline::{
    Feature, InvalidPipeline, Model, Pipeline, Task, TreeEnsemble, datetime_part, leaf_value,
    level_index,
};
use super::probability::{sigmoid, softmax};
use crate::ingest::{ColumnData, ColumnType, Table};
use rayon::prelude::*;

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
    #[error(transparent)]
    InvalidPipeline(#[from] InvalidPipeline),
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
        self.check()?;
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
                    return Err(PredictError::InvalidPipeline(InvalidPipeline(format!(
                        "column `{}` has {} rows, the table {}",
                        spec.name,
                        column.data.len(),
                        n_rows
                    ))));
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
                            // The ONNX input is `f32`: parts are of the `f32` value.
                            let seconds = f64::from(*v as f32);
                            matrix[row * n_features + j] = datetime_part(seconds, *part) as f32;
                        }
                    }
                }
                // Counted a block at a time, below.
                Feature::WordCount { .. } => {}
            }
        }
        for block in word_blocks(&self.features) {
            if let ColumnData::Categorical { codes, levels } = columns[block.input] {
                let mut counts = vec![0f32; block.len()];
                for (row, &code) in codes.iter().enumerate() {
                    counts.iter_mut().for_each(|c| *c = 0.0);
                    if let Some(text) = levels.get(code as usize) {
                        block.count(text, &mut counts);
                    }
                    let at = row * n_features + block.first;
                    matrix[at..at + block.len()].copy_from_slice(&counts);
                }
            }
        }
        Ok(matrix)
    }

    /// Margins from a feature matrix built by [`Pipeline::feature_matrix`]. The pipeline must
    /// have passed [`Pipeline::check`].
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
                    let value_of = |f: usize| x.get(f).copied().unwrap_or(f32::NAN);
                    for (model, weight) in self.models.iter().zip(&self.weights) {
                        model_margin.iter_mut().for_each(|m| *m = 0.0);
                        add_model_margin(model, value_of, &mut model_margin);
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

/// Adds one model's margins of a row (`out` starts at zero); a log-target model's is `exp` of
/// its inner model's, as the ONNX graph computes it.
pub(crate) fn add_model_margin(
    model: &Model,
    value_of: impl Fn(usize) -> f32 + Copy,
    out: &mut [f64],
) {
    match model {
        Model::Trees(ensemble) => ensemble_margin(ensemble, value_of, out),
        Model::Linear(linear) => linear.add_margins(value_of, out),
        Model::LogTarget(inner) => {
            add_model_margin(inner, value_of, out);
            out.iter_mut().for_each(|m| *m = m.exp());
        }
    }
}

fn ensemble_margin(ensemble: &TreeEnsemble, value_of: impl Fn(usize) -> f32, out: &mut [f64]) {
    for (o, b) in out.iter_mut().zip(&ensemble.base) {
        *o += b;
    }
    for tree in &ensemble.trees {
        out[tree.output] += leaf_value(&tree.nodes, &value_of);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
