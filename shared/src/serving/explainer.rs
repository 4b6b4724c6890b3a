//! Explanations of served predictions (`?explain=true`). The ONNX graph answers the prediction;
//! the explanation reads the version's fitted pipeline, stored beside it as JSON
//! ([`crate::domain::layout::pipeline_key`]), because contributions need what the graph does not
//! keep (how many training rows reached each tree node, the training means of linear terms).
//! The pipeline computes the same raw scores as the graph (the tests hold native prediction
//! to tract); its contributions add up to them exactly ([`Pipeline::contributions`]).
//!
//! Contributions are per input field: the features made from one field (a datetime's calendar
//! parts, say) are summed.

use super::input::Batch;
use super::model::OnnxModel;
use crate::api::predictions::{ExplainedScore, Explanation};
use crate::automl::PredictError;
use crate::automl::pipeline::{InvalidPipeline, NotExplainable, Pipeline, Task};
use crate::onnx::InputField;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most rows one request may ask to explain.
pub const MAX_EXPLAINED_ROWS: usize = 1_000;
/// The most explanation work one request may ask for, in [`Pipeline::explanation_cost`] steps
/// (rows × the model's cost per row): TreeSHAP visits every node of every tree for each row,
/// so a large forest allows fewer rows. About a second and a half of one core on the bench
/// machine (see `bench-automl`'s `explain`).
pub const MAX_EXPLAIN_STEPS: u64 = 1_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ExplainerError {
    #[error("the stored pipeline is not readable: {0}")]
    Unreadable(#[from] serde_json::Error),
    #[error("the stored pipeline is invalid: {0}")]
    Invalid(#[from] InvalidPipeline),
    #[error("the model cannot be explained: {0}")]
    NotExplainable(#[from] NotExplainable),
    #[error("the stored pipeline does not match the model's inputs: {0}")]
    Mismatch(String),
    #[error("the rows' features: {0}")]
    Features(#[from] PredictError),
}

/// What a served model holds for explanations once its pipeline was read: the explainer, or why
/// there is none (the pipeline is immutable, so the answer stays true).
#[derive(Debug, Clone)]
pub enum ExplainerState {
    Ready(Arc<Explainer>),
    /// The model cannot be explained (its trees lack covers, say).
    NotExplainable(String),
    /// The stored pipeline is unreadable or does not fit the model.
    Broken(String),
}

impl ExplainerState {
    /// The state a load's result leaves.
    pub fn of(loaded: Result<Explainer, ExplainerError>) -> ExplainerState {
        match loaded {
            Ok(explainer) => ExplainerState::Ready(Arc::new(explainer)),
            Err(ExplainerError::NotExplainable(why)) => {
                ExplainerState::NotExplainable(why.to_string())
            }
            Err(other) => ExplainerState::Broken(other.to_string()),
        }
    }
}

/// A version's pipeline, ready to explain rows of the model's input batches.
#[derive(Debug)]
pub struct Explainer {
    pipeline: Pipeline,
    /// The model's input fields (= the pipeline's inputs, in order).
    schema: Vec<InputField>,
    /// [`Pipeline::explanation_cost`].
    cost_per_row: u64,
}

impl Explainer {
    /// Reads a pipeline stored as JSON and checks it against the model it explains: the same
    /// inputs in the same order.
    pub fn load(json: &[u8], model: &OnnxModel) -> Result<Explainer, ExplainerError> {
        let pipeline: Pipeline = serde_json::from_slice(json)?;
        pipeline.check()?;
        pipeline.check_explainable()?;
        let schema = model.input_schema();
        if schema.len() != pipeline.inputs.len()
            || schema
                .iter()
                .zip(&pipeline.inputs)
                .any(|(field, input)| field.name != input.name || field.kind != input.kind)
        {
            return Err(ExplainerError::Mismatch(
                "its inputs are not the model's input fields".into(),
            ));
        }
        Ok(Explainer {
            schema: schema.to_vec(),
            cost_per_row: pipeline.explanation_cost(),
            pipeline,
        })
    }

    /// The most rows one request may have explained (0: not even one; see
    /// [`MAX_EXPLAIN_STEPS`]).
    pub fn max_rows(&self) -> usize {
        let rows = MAX_EXPLAIN_STEPS / self.cost_per_row.max(1);
        usize::try_from(rows).map_or(MAX_EXPLAINED_ROWS, |r| r.min(MAX_EXPLAINED_ROWS))
    }

    /// The work of explaining one row, in [`Pipeline::explanation_cost`] steps.
    pub fn cost_per_row(&self) -> u64 {
        self.cost_per_row
    }

    /// Every row of `batch` explained (rows in parallel). Features are computed by native
    /// prediction's own [`Pipeline::feature_matrix`], which the tests hold to the ONNX graph.
    pub fn explain(&self, batch: &Batch) -> Result<Vec<Explanation>, ExplainerError> {
        let n_features = self.pipeline.features.len();
        let x = self
            .pipeline
            .feature_matrix(&batch.to_table(&self.schema))?;
        Ok((0..batch.n_rows)
            .into_par_iter()
            .map(|row| self.explain_row(&x[row * n_features..(row + 1) * n_features]))
            .collect())
    }

    fn explain_row(&self, x: &[f32]) -> Explanation {
        let c = self.pipeline.contributions(x);
        let n_out = c.base.len();
        let mut per_field = vec![vec![0.0; n_out]; self.schema.len()];
        for (feature, values) in self.pipeline.features.iter().zip(&c.per_feature) {
            if let Some(field) = per_field.get_mut(feature.input()) {
                for (a, v) in field.iter_mut().zip(values) {
                    *a += v;
                }
            }
        }
        let (score, labels): (&str, Vec<Option<String>>) = match &self.pipeline.task {
            Task::Regression => ("value", vec![None]),
            Task::Binary { labels } => ("log_odds", vec![Some(labels[1].clone())]),
            Task::Multiclass { labels } => {
                ("class_score", labels.iter().cloned().map(Some).collect())
            }
        };
        let scores = labels
            .into_iter()
            .enumerate()
            .map(|(k, label)| ExplainedScore {
                label,
                raw_score: c.margins[k],
                base_value: c.base[k],
                contributions: self
                    .schema
                    .iter()
                    .zip(&per_field)
                    .map(|(field, v)| (field.name.clone(), v[k]))
                    .collect::<BTreeMap<_, _>>(),
            })
            .collect();
        Explanation {
            score: score.into(),
            scores,
        }
    }
}
