//! A loaded ONNX pipeline: parsed and optimized by tract once, then run from any thread.

use super::input::{Batch, InputError, rows_to_batch};
use super::{category_mapper, parts, text_ops, tree_ensemble};
use crate::onnx::{InputField, MetadataKey};
use prost::Message;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
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
    /// Appends the rows of `other`, an output of the same model.
    fn append(&mut self, other: BatchOutput) {
        match (self, other) {
            (BatchOutput::Regression { values }, BatchOutput::Regression { values: more }) => {
                values.extend(more)
            }
            (
                BatchOutput::Classification {
                    predicted,
                    probabilities,
                    ..
                },
                BatchOutput::Classification {
                    predicted: more_predicted,
                    probabilities: more_probabilities,
                    ..
                },
            ) => {
                predicted.extend(more_predicted);
                probabilities.extend(more_probabilities);
            }
            // One model gives one kind of output.
            _ => {}
        }
    }

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
    /// Whether large batches are cut into parts (see SPLIT_MAX_TREE_STEPS).
    split_batches: bool,
    /// The version's explainer, or why it has none: loaded once, by the first request for an
    /// explanation (concurrent first requests wait for it), and kept as long as the plan.
    explainer: tokio::sync::OnceCell<super::explainer::ExplainerState>,
}

/// Rows from which a batch may be cut into parts, each run through the whole plan
/// ([`parts`]).
const SPLIT_MIN_ROWS: usize = 4096;
/// Node steps per row (all tree operators together) up to which large batches are cut. The
/// tree operator spreads rows over threads by itself, but every other operator of the plan
/// runs on one thread: with light forests those are a third to a half of a batch (titanic,
/// 443 steps: ~0.9M → 1.2M rows/s at 10,000 rows cut in two; diabetes, 735 steps: ~1.3M →
/// 1.65M). With heavy forests the tree operator's own spreading did better (diamonds, 21,700
/// steps: 65k → 45k rows/s cut in two; breast_cancer, 3,500 steps: 316k → 269k).
const SPLIT_MAX_TREE_STEPS: usize = 2000;

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
        category_mapper::register(&mut onnx.op_register);
        text_ops::register(&mut onnx.op_register);
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
        let tree_steps: usize = plan
            .model()
            .nodes
            .iter()
            .filter_map(|node| node.op_as::<tree_ensemble::TreeEnsembleOp>())
            .map(|op| op.forest.steps_per_row())
            .sum();
        Ok(OnnxModel {
            plan,
            schema,
            target,
            task,
            artifact_bytes: bytes.len(),
            split_batches: tree_steps <= SPLIT_MAX_TREE_STEPS,
            explainer: tokio::sync::OnceCell::new(),
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

    /// The names of the operators a run evaluates, in order (tests look at the plan's shape).
    #[cfg(test)]
    pub(crate) fn evaluated_ops(&self) -> Vec<String> {
        let model = self.plan.model();
        self.plan
            .order_without_consts()
            .iter()
            .map(|&n| format!("{:?}", model.nodes[n].op))
            .collect()
    }

    pub fn artifact_bytes(&self) -> usize {
        self.artifact_bytes
    }

    /// The explainer's state, loaded by `load` if no request has loaded it yet. A load that
    /// fails (the store unavailable) is not kept, so the next request tries again.
    pub async fn explainer_or_load<E, F>(
        &self,
        load: impl FnOnce() -> F,
    ) -> Result<&super::explainer::ExplainerState, E>
    where
        F: std::future::Future<Output = Result<super::explainer::ExplainerState, E>>,
    {
        self.explainer.get_or_try_init(load).await
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

    /// Runs a batch already in columnar form (the fast path for benches and CSV bodies). With
    /// a light forest, a batch of SPLIT_MIN_ROWS rows or more is cut into parts that the
    /// calling thread and helper threads run ([`parts`]).
    pub fn run(&self, batch: &Batch) -> Result<BatchOutput, RunError> {
        let n = batch.n_rows;
        let cut = if self.split_batches && n >= SPLIT_MIN_ROWS {
            parts::cut(n)
        } else {
            Vec::new()
        };
        if cut.len() <= 1 {
            return self.run_rows(batch, 0..n);
        }
        let mut outputs = parts::run_parts(&cut, |rows| self.run_rows(batch, rows))
            .ok_or_else(|| RunError::Tract("a part of the batch did not run".into()))?
            .into_iter();
        let mut all = outputs
            .next()
            .ok_or_else(|| RunError::Tract("no part ran".into()))??;
        for part in outputs {
            all.append(part?);
        }
        Ok(all)
    }

    fn run_rows(
        &self,
        batch: &Batch,
        rows: std::ops::Range<usize>,
    ) -> Result<BatchOutput, RunError> {
        let inputs: TVec<TValue> = batch
            .columns
            .iter()
            .map(|c| c.to_tensor(rows.clone()).map(TValue::from))
            .collect::<TractResult<_>>()
            .map_err(|e| RunError::Tract(format!("{e:?}")))?;
        // A fresh state per run, made and dropped on this thread: tract keeps matmul scratch
        // space per thread and session, freed when the state is dropped on that thread, so a
        // state reused across threads would leave scratch behind on the others.
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
        // Through text: `to_value` would widen each f32 (0.9 → 0.8999999761581421).
        let text = serde_json::to_vec(&self.outputs(output).row(row)).unwrap_or_default();
        match serde_json::from_slice(&text) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::new(),
        }
    }

    /// A run's output, serializable row by row (SPEC section 5) without building JSON values.
    pub fn outputs<'a>(&self, output: &'a BatchOutput) -> Outputs<'a> {
        let (prediction, probability) = self.output_field_names();
        Outputs {
            prediction,
            probability,
            binary: matches!(self.task, ServedTask::Binary { .. }),
            output,
        }
    }
}

/// A run's output with its field names: [`Outputs::row`] serializes one row's fields,
/// [`Outputs::items`] the `predictions` response (`[{"prediction": {…}}, …]`).
pub struct Outputs<'a> {
    prediction: String,
    probability: Option<String>,
    binary: bool,
    output: &'a BatchOutput,
}

impl Outputs<'_> {
    pub fn row(&self, row: usize) -> OutputRow<'_> {
        OutputRow { outputs: self, row }
    }

    pub fn items(&self) -> OutputItems<'_> {
        OutputItems { outputs: self }
    }
}

/// One row's output fields: `{"<target>": …, "<target>_probability[ies]": …}`.
pub struct OutputRow<'a> {
    outputs: &'a Outputs<'a>,
    row: usize,
}

/// Every row as `{"prediction": <its fields>}`, in order.
pub struct OutputItems<'a> {
    outputs: &'a Outputs<'a>,
}

/// Probabilities keyed by label (multiclass).
struct LabelProbabilities<'a> {
    labels: &'a [String],
    values: &'a [f32],
}

// f32 is serialized through its shortest decimal form (0.1f32 prints as 0.1); a non-finite
// value (never produced by a valid model) becomes null.
impl Serialize for OutputRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Outputs {
            prediction,
            probability,
            binary,
            output,
        } = self.outputs;
        let row = self.row;
        match output {
            BatchOutput::Regression { values } => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(prediction, &values.get(row).copied().unwrap_or(f32::NAN))?;
                map.end()
            }
            BatchOutput::Classification {
                labels,
                predicted,
                probabilities,
            } => {
                let k = labels.len();
                let p = probabilities.get(row * k..(row + 1) * k).unwrap_or(&[]);
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry(
                    prediction,
                    predicted.get(row).map(String::as_str).unwrap_or_default(),
                )?;
                if let Some(probability) = probability {
                    if *binary {
                        map.serialize_entry(probability, &p.get(1).copied().unwrap_or(f32::NAN))?;
                    } else {
                        map.serialize_entry(
                            probability,
                            &LabelProbabilities { labels, values: p },
                        )?;
                    }
                }
                map.end()
            }
        }
    }
}

impl Serialize for LabelProbabilities<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.labels.iter().zip(self.values))
    }
}

impl Serialize for OutputItems<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Item<'a>(OutputRow<'a>);
        impl Serialize for Item<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("prediction", &self.0)?;
                map.end()
            }
        }
        serializer.collect_seq((0..self.outputs.output.len()).map(|r| Item(self.outputs.row(r))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs<'a>(
        output: &'a BatchOutput,
        probability: Option<&str>,
        binary: bool,
    ) -> Outputs<'a> {
        Outputs {
            prediction: "y".into(),
            probability: probability.map(str::to_string),
            binary,
            output,
        }
    }

    #[test]
    fn numbers_print_in_their_shortest_f32_form() {
        let values = vec![
            0.1f32,
            1.0,
            1e-7,
            123_456.79,
            0.833_333_3,
            -2.5e10,
            3.4e38,
            7e-45,
        ];
        let output = BatchOutput::Regression {
            values: values.clone(),
        };
        let text = serde_json::to_string(&outputs(&output, None, false).items()).unwrap();
        // The same text as f32 → shortest decimal → f64 → JSON, digit for digit.
        let expected: Vec<String> = values
            .iter()
            .map(|v| {
                let n = serde_json::Number::from_f64(v.to_string().parse().unwrap()).unwrap();
                format!(r#"{{"prediction":{{"y":{n}}}}}"#)
            })
            .collect();
        assert_eq!(text, format!("[{}]", expected.join(",")));
        assert!(text.starts_with(r#"[{"prediction":{"y":0.1}},{"prediction":{"y":1.0}}"#));

        let nan = BatchOutput::Regression {
            values: vec![f32::NAN],
        };
        let text = serde_json::to_string(&outputs(&nan, None, false).row(0)).unwrap();
        assert_eq!(text, r#"{"y":null}"#);
    }

    #[test]
    fn classes_print_their_label_and_probabilities() {
        let output = BatchOutput::Classification {
            labels: vec!["a".into(), "b".into(), "c".into()],
            predicted: vec!["b".into(), "a".into()],
            probabilities: vec![0.25, 0.5, 0.25, 0.9, 0.05, 0.05],
        };
        let multi = outputs(&output, Some("y_probabilities"), false);
        assert_eq!(
            serde_json::to_string(&multi.row(1)).unwrap(),
            r#"{"y":"a","y_probabilities":{"a":0.9,"b":0.05,"c":0.05}}"#
        );
        let binary = BatchOutput::Classification {
            labels: vec!["no".into(), "yes".into()],
            predicted: vec!["yes".into()],
            probabilities: vec![0.25, 0.75],
        };
        assert_eq!(
            serde_json::to_string(&outputs(&binary, Some("y_probability"), true).items()).unwrap(),
            r#"[{"prediction":{"y":"yes","y_probability":0.75}}]"#
        );
    }
}
