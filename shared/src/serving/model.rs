//! A loaded ONNX pipeline: parsed and optimized by tract once, then run from any thread.

use super::input::{Batch, InputError, rows_to_batch};
use super::tree_ensemble;
use crate::onnx::{InputField, MetadataKey};
use prost::Message;
use serde_json::{Map, Value};
use std::sync::Arc;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

type Plan = Arc<TypedRunnableModel>;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the file is not an ONNX model: {0}")]
    NotOnnx(String),
    #[error("the ONNX model lacks the `{0}` metadata written by plexe's exporter")]
    MissingMetadata(&'static str),
    #[error("the ONNX model's `{key}` metadata is malformed: {reason}")]
    BadMetadata { key: &'static str, reason: String },
    #[error("tract cannot run the model: {0}")]
    Tract(String),
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("the model failed to run: {0}")]
    Tract(String),
}

/// What the model predicts, read from its metadata.
#[derive(Debug, Clone, PartialEq)]
pub enum ServedTask {
    Regression,
    /// `labels[1]` is the positive class.
    Binary {
        labels: [String; 2],
    },
    Multiclass {
        labels: Vec<String>,
    },
}

/// The outputs of one run, one entry per row.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchOutput {
    Regression {
        values: Vec<f32>,
    },
    /// `probabilities` is row-major `[rows, labels]`, columns in label order.
    Classification {
        labels: Vec<String>,
        predicted: Vec<String>,
        probabilities: Vec<f32>,
    },
}

impl BatchOutput {
    pub fn len(&self) -> usize {
        match self {
            BatchOutput::Regression { values } => values.len(),
            BatchOutput::Classification { predicted, .. } => predicted.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A model ready to serve. Cheap to share (`Arc`) across threads; each run uses its own state.
#[derive(Debug)]
pub struct OnnxModel {
    plan: Plan,
    schema: Vec<InputField>,
    target: String,
    task: ServedTask,
    /// The artifact's size, a proxy for the plan's memory (the cache's budget unit).
    artifact_bytes: usize,
}

impl OnnxModel {
    /// Parses, type-checks and optimizes an ONNX file exported by [`crate::onnx::export`].
    pub fn load(bytes: &[u8]) -> Result<OnnxModel, LoadError> {
        let proto = ModelProto::decode(bytes).map_err(|e| LoadError::NotOnnx(e.to_string()))?;
        let meta = |key: MetadataKey| {
            proto
                .metadata_props
                .iter()
                .find(|p| p.key == key.as_str())
                .map(|p| p.value.as_str())
                .ok_or(LoadError::MissingMetadata(key.as_str()))
        };
        let target = meta(MetadataKey::Target)?.to_string();
        let schema: Vec<InputField> = serde_json::from_str(meta(MetadataKey::InputSchema)?)
            .map_err(|e| LoadError::BadMetadata {
                key: MetadataKey::InputSchema.as_str(),
                reason: e.to_string(),
            })?;
        let labels: Vec<String> =
            serde_json::from_str(meta(MetadataKey::Labels)?).map_err(|e| {
                LoadError::BadMetadata {
                    key: MetadataKey::Labels.as_str(),
                    reason: e.to_string(),
                }
            })?;
        let bad_labels = |reason: &str| LoadError::BadMetadata {
            key: MetadataKey::Labels.as_str(),
            reason: reason.into(),
        };
        let task = match meta(MetadataKey::Task)? {
            "regression" => ServedTask::Regression,
            "binary" => match <[String; 2]>::try_from(labels) {
                Ok(labels) => ServedTask::Binary { labels },
                Err(_) => return Err(bad_labels("a binary model needs exactly 2 labels")),
            },
            "multiclass" if labels.len() >= 2 => ServedTask::Multiclass { labels },
            "multiclass" => return Err(bad_labels("a multiclass model needs at least 2 labels")),
            other => {
                return Err(LoadError::BadMetadata {
                    key: MetadataKey::Task.as_str(),
                    reason: format!("unknown task `{other}`"),
                });
            }
        };

        let graph_inputs: Vec<&str> = proto
            .graph
            .as_ref()
            .map(|g| g.input.iter().map(|i| i.name.as_str()).collect())
            .unwrap_or_default();
        if graph_inputs.len() != schema.len()
            || schema.iter().zip(&graph_inputs).any(|(f, i)| f.input != *i)
        {
            return Err(LoadError::BadMetadata {
                key: MetadataKey::InputSchema.as_str(),
                reason: "does not list the graph's inputs in order".into(),
            });
        }

        let mut onnx = tract_onnx::onnx();
        tree_ensemble::register(&mut onnx.op_register);
        let tract = |e: TractError| LoadError::Tract(format!("{e:?}"));
        let model = onnx.model_for_proto_model(&proto).map_err(tract)?;
        let plan = model
            .into_optimized()
            .map_err(tract)?
            .into_runnable()
            .map_err(tract)?;
        let expected_outputs = if task == ServedTask::Regression { 1 } else { 2 };
        if plan.model().outputs.len() != expected_outputs {
            return Err(LoadError::Tract(format!(
                "the graph has {} outputs, a {} model {expected_outputs}",
                plan.model().outputs.len(),
                meta(MetadataKey::Task)?
            )));
        }
        Ok(OnnxModel {
            plan,
            schema,
            target,
            task,
            artifact_bytes: bytes.len(),
        })
    }

    pub fn input_schema(&self) -> &[InputField] {
        &self.schema
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn task(&self) -> &ServedTask {
        &self.task
    }

    pub fn artifact_bytes(&self) -> usize {
        self.artifact_bytes
    }

    /// Validates JSON rows (objects) against the input schema and predicts them; every invalid
    /// field of every row is reported at once.
    pub fn predict_json(&self, rows: &[Value]) -> Result<BatchOutput, RunError> {
        let batch = rows_to_batch(&self.schema, rows)?;
        self.run(&batch)
    }

    /// One row → the output fields of SPEC section 5 (`<target>`, and `<target>_probability`
    /// or `<target>_probabilities`).
    pub fn predict_one(&self, row: &Value) -> Result<Map<String, Value>, RunError> {
        let output = self.predict_json(std::slice::from_ref(row))?;
        Ok(self.output_fields(&output, 0))
    }

    /// Runs a batch already in columnar form (the fast path for benches and CSV bodies).
    pub fn run(&self, batch: &Batch) -> Result<BatchOutput, RunError> {
        let n = batch.n_rows;
        let inputs: TVec<TValue> = batch
            .columns
            .iter()
            .map(|c| c.to_tensor(n).map(TValue::from))
            .collect::<TractResult<_>>()
            .map_err(|e| RunError::Tract(format!("{e:?}")))?;
        let outputs = self
            .plan
            .run(inputs)
            .map_err(|e| RunError::Tract(format!("{e:?}")))?;
        let tract = |e: TractError| RunError::Tract(format!("{e:?}"));
        match &self.task {
            ServedTask::Regression => {
                let values = outputs[0]
                    .try_as_plain_ram()
                    .and_then(|t| t.as_slice::<f32>().map(<[f32]>::to_vec))
                    .map_err(tract)?;
                Ok(BatchOutput::Regression { values })
            }
            ServedTask::Binary { labels } => self.classification(&outputs, labels.as_slice()),
            ServedTask::Multiclass { labels } => self.classification(&outputs, labels),
        }
    }

    fn classification(
        &self,
        outputs: &[TValue],
        labels: &[String],
    ) -> Result<BatchOutput, RunError> {
        let tract = |e: TractError| RunError::Tract(format!("{e:?}"));
        let predicted = outputs[0]
            .try_as_plain_ram()
            .and_then(|t| t.as_slice::<String>().map(<[String]>::to_vec))
            .map_err(tract)?;
        let probabilities = outputs[1]
            .try_as_plain_ram()
            .and_then(|t| t.as_slice::<f32>().map(<[f32]>::to_vec))
            .map_err(tract)?;
        if probabilities.len() != predicted.len() * labels.len() {
            return Err(RunError::Tract(
                "the probabilities do not match the labels".into(),
            ));
        }
        Ok(BatchOutput::Classification {
            labels: labels.to_vec(),
            predicted,
            probabilities,
        })
    }

    /// The names of the output fields: the prediction, and the probability field if any.
    pub fn output_field_names(&self) -> (String, Option<String>) {
        let t = &self.target;
        match self.task {
            ServedTask::Regression => (t.clone(), None),
            ServedTask::Binary { .. } => (t.clone(), Some(format!("{t}_probability"))),
            ServedTask::Multiclass { .. } => (t.clone(), Some(format!("{t}_probabilities"))),
        }
    }

    /// Row `row` of a run's output as JSON fields (SPEC section 5).
    pub fn output_fields(&self, output: &BatchOutput, row: usize) -> Map<String, Value> {
        let (name, probability_name) = self.output_field_names();
        let mut fields = Map::new();
        match output {
            BatchOutput::Regression { values } => {
                let v = values.get(row).copied().unwrap_or(f32::NAN);
                fields.insert(name, json_number(v));
            }
            BatchOutput::Classification {
                labels,
                predicted,
                probabilities,
            } => {
                let k = labels.len();
                let p = probabilities.get(row * k..(row + 1) * k).unwrap_or(&[]);
                fields.insert(
                    name,
                    Value::from(predicted.get(row).cloned().unwrap_or_default()),
                );
                if let Some(probability_name) = probability_name {
                    let value = if matches!(self.task, ServedTask::Binary { .. }) {
                        json_number(p.get(1).copied().unwrap_or(f32::NAN))
                    } else {
                        Value::Object(
                            labels
                                .iter()
                                .zip(p)
                                .map(|(l, v)| (l.clone(), json_number(*v)))
                                .collect(),
                        )
                    };
                    fields.insert(probability_name, value);
                }
            }
        }
        fields
    }
}

/// `f32` → JSON number through its shortest decimal form (so 0.1f32 prints as 0.1); a
/// non-finite value (never produced by a valid model) becomes null.
fn json_number(v: f32) -> Value {
    let text = v.to_string();
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}
