//! Pipeline → ONNX graph. The graph mirrors native prediction op by op (the conventions are
//! listed in `automl/predict.rs`; the shared rules live in [`crate::automl::pipeline`]); this
//! file only says how each step is spelled in ONNX.

use super::graph::{Attr, GraphBuilder, INTERNAL_PREFIX, ML_DOMAIN, opset, value_info};
use super::{InputField, MetadataKey, OUTPUT_PREDICTION, OUTPUT_PROBABILITIES};
use crate::automl::pipeline::text::{WordBlock, case_forms, word_blocks};
use crate::automl::pipeline::{
    Calendar, Feature, InvalidPipeline, LinearModel, Model, Node, Pipeline, SplitRule, Task,
    TreeEnsemble, level_index,
};
use crate::ingest::ColumnType;
use crate::ingest::calendar::FloorArithmetic;
use crate::serving::text_ops::TOKEN_PATTERN;
use prost::Message;
use std::collections::BTreeMap;
use tract_onnx::pb::{self, tensor_proto::DataType};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    InvalidPipeline(#[from] InvalidPipeline),
    #[error("the pipeline has no features; a model needs at least one")]
    NoFeatures,
    #[error("metadata key `{0}` is reserved by the exporter")]
    ReservedMetadataKey(String),
}

const ONNX_OPSET: i64 = 17;
const ML_OPSET: i64 = 3;
/// onnxruntime's contrib domain, of its `Tokenizer`.
const TEXT_DOMAIN: &str = "com.microsoft";
const TEXT_OPSET: i64 = 1;
/// IR version 8 is the one that goes with opset 17.
const IR_VERSION: i64 = 8;
const BATCH: &str = "N";

/// The pipeline as one ONNX model (serialized `ModelProto`). `metadata` is appended to the
/// exporter's own metadata (target, task, labels, positive class, input schema, producer).
pub fn export(pipeline: &Pipeline, metadata: &[(String, String)]) -> Result<Vec<u8>, ExportError> {
    Ok(export_model(pipeline, metadata)?.encode_to_vec())
}

pub fn export_model(
    pipeline: &Pipeline,
    metadata: &[(String, String)],
) -> Result<pb::ModelProto, ExportError> {
    pipeline.check()?;
    if pipeline.features.is_empty() {
        return Err(ExportError::NoFeatures);
    }
    let fields = input_fields(pipeline);
    let mut g = GraphBuilder::default();

    let features = features(&mut g, pipeline, &fields);
    let feature_refs: Vec<&str> = features.iter().map(String::as_str).collect();
    let x = g.op("Concat", &feature_refs, vec![("axis", Attr::Int(1))]);

    let weight_sum: f64 = pipeline.weights.iter().sum();
    let mut blended: Option<String> = None;
    for (model, weight) in pipeline.models.iter().zip(&pipeline.weights) {
        let margin = model_margins(&mut g, model, &x, pipeline);
        // Same order of operations as the native blend: Σ wᵢ·mᵢ, then ÷ Σ w.
        let w = g.f64_scalar(*weight);
        let weighted = g.op("Mul", &[&margin, &w], vec![]);
        blended = Some(match blended {
            None => weighted,
            Some(acc) => g.op("Add", &[&acc, &weighted], vec![]),
        });
    }
    let Some(blended) = blended else {
        return Err(InvalidPipeline("no models".into()).into());
    };
    let total = g.f64_scalar(weight_sum);
    let margin = g.op("Div", &[&blended, &total], vec![]);
    let outputs = post_process(&mut g, &pipeline.task, &margin);

    let inputs = fields
        .iter()
        .map(|f| {
            let dt = if f.kind == ColumnType::String {
                DataType::String
            } else {
                DataType::Float
            };
            value_info(&f.input, dt, &[Err(BATCH), Ok(1)])
        })
        .collect();
    let graph = pb::GraphProto {
        node: g.nodes,
        name: "plexe_pipeline".into(),
        initializer: g.initializers,
        input: inputs,
        output: outputs,
        ..Default::default()
    };
    Ok(pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import: if pipeline
            .features
            .iter()
            .any(|f| matches!(f, Feature::WordCount { .. }))
        {
            vec![
                opset("", ONNX_OPSET),
                opset(ML_DOMAIN, ML_OPSET),
                opset(TEXT_DOMAIN, TEXT_OPSET),
            ]
        } else {
            vec![opset("", ONNX_OPSET), opset(ML_DOMAIN, ML_OPSET)]
        },
        producer_name: "plexe".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: metadata_props(pipeline, &fields, metadata)?,
        ..Default::default()
    })
}

/// One model's margins (batch × outputs, f64); a log-target model's are `Exp` of its inner
/// model's, as native prediction computes them.
fn model_margins(g: &mut GraphBuilder, model: &Model, x: &str, pipeline: &Pipeline) -> String {
    match model {
        Model::Trees(ensemble) => tree_margins(g, ensemble, x, pipeline.task.n_outputs()),
        Model::Linear(linear) => linear_margins(g, linear, x, pipeline),
        Model::LogTarget(inner) => {
            let margin = model_margins(g, inner, x, pipeline);
            g.op("Exp", &[&margin], vec![])
        }
    }
}

/// Column → ONNX input name. Columns keep their names unless one would collide with an output
/// or an internal name; then it gets a numbered name recorded in the input schema.
fn input_fields(pipeline: &Pipeline) -> Vec<InputField> {
    pipeline
        .inputs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let clashes = spec.name == OUTPUT_PREDICTION
                || spec.name == OUTPUT_PROBABILITIES
                || spec.name.starts_with(INTERNAL_PREFIX)
                || spec.name.is_empty()
                || pipeline.inputs[..i].iter().any(|s| s.name == spec.name);
            let input = if clashes {
                format!("{INTERNAL_PREFIX}input_{i}")
            } else {
                spec.name.clone()
            };
            InputField {
                name: spec.name.clone(),
                input,
                kind: spec.kind,
            }
        })
        .collect()
}

fn metadata_props(
    pipeline: &Pipeline,
    fields: &[InputField],
    extra: &[(String, String)],
) -> Result<Vec<pb::StringStringEntryProto>, ExportError> {
    let labels: Vec<String> = match &pipeline.task {
        Task::Regression => vec![],
        Task::Binary { labels } => labels.to_vec(),
        Task::Multiclass { labels } => labels.clone(),
    };
    let positive = match &pipeline.task {
        Task::Binary { labels } => labels[1].clone(),
        _ => String::new(),
    };
    let mut props = vec![
        (MetadataKey::Target, pipeline.target.clone()),
        (MetadataKey::Task, pipeline.task.kind_name().to_string()),
        (
            MetadataKey::Labels,
            serde_json::Value::from(labels).to_string(),
        ),
        (MetadataKey::PositiveClass, positive),
        (
            MetadataKey::InputSchema,
            serde_json::to_value(fields)
                .map(|v| v.to_string())
                .unwrap_or_default(),
        ),
        (
            MetadataKey::Producer,
            format!("plexe {}", env!("CARGO_PKG_VERSION")),
        ),
    ]
    .into_iter()
    .map(|(k, value)| pb::StringStringEntryProto {
        key: k.as_str().to_string(),
        value,
    })
    .collect::<Vec<_>>();
    for (key, value) in extra {
        if MetadataKey::ALL.iter().any(|k| k.as_str() == key) {
            return Err(ExportError::ReservedMetadataKey(key.clone()));
        }
        props.push(pb::StringStringEntryProto {
            key: key.clone(),
            value: value.clone(),
        });
    }
    Ok(props)
}

/// One `[N, 1]` float value per feature.
fn features(g: &mut GraphBuilder, pipeline: &Pipeline, fields: &[InputField]) -> Vec<String> {
    // One calendar per datetime input, so its parts share their intermediate values.
    let mut calendars: BTreeMap<usize, Calendar<String>> = BTreeMap::new();
    let mut out = Vec::with_capacity(pipeline.features.len());
    let blocks = word_blocks(&pipeline.features);
    for (j, feature) in pipeline.features.iter().enumerate() {
        let value = match feature {
            Feature::Numeric { input } => fields[*input].input.clone(),
            Feature::CategoryIndex { input, levels } => {
                category_index(g, &fields[*input].input, levels)
            }
            Feature::WordCount { input, .. } => {
                // A text input's words are one block of features, counted by one operator;
                // the block stands at its first feature in the concatenation.
                match blocks.iter().find(|b| b.first == j) {
                    Some(block) => word_counts(g, &fields[*input].input, block),
                    None => continue,
                }
            }
            Feature::DatetimePart { input, part } => {
                let calendar = calendars.entry(*input).or_insert_with(|| {
                    let seconds = g.op(
                        "Cast",
                        &[&fields[*input].input],
                        vec![("to", Attr::Int(DataType::Double as i64))],
                    );
                    Calendar::new(&mut GraphArithmetic(g), seconds)
                });
                let part = calendar.part(&mut GraphArithmetic(g), *part);
                g.op(
                    "Cast",
                    &[&part],
                    vec![("to", Attr::Int(DataType::Float as i64))],
                )
            }
        };
        out.push(value);
    }
    out
}

/// A text input's word counts, `[N, V]` float: onnxruntime's `Tokenizer` (`[N, 1, T]` tokens),
/// `Squeeze` to `[N, T]`, then `TfIdfVectorizer` counting each word's case forms at its slot
/// (see [`crate::automl::pipeline::text`] and, for tract, `serving/text_ops.rs`).
fn word_counts(g: &mut GraphBuilder, input: &str, block: &WordBlock) -> String {
    let tokens = g.op_in(
        TEXT_DOMAIN,
        "Tokenizer",
        &[input],
        vec![
            ("mark", Attr::Int(0)),
            ("mincharnum", Attr::Int(1)),
            ("pad_value", Attr::Str(String::new())),
            ("tokenexp", Attr::Str(TOKEN_PATTERN.into())),
        ],
    );
    let axis = g.i64s(&[1], &[1]);
    let tokens = g.op("Squeeze", &[&tokens, &axis], vec![]);
    let mut by_slot: Vec<(&String, usize)> = block.slots.iter().map(|(w, &i)| (w, i)).collect();
    by_slot.sort_by_key(|&(_, i)| i);
    let (mut pool, mut indexes) = (Vec::new(), Vec::new());
    for (word, slot) in by_slot {
        for form in case_forms(word) {
            pool.push(form);
            indexes.push(slot as i64);
        }
    }
    g.op(
        "TfIdfVectorizer",
        &[&tokens],
        vec![
            ("mode", Attr::Str("TF".into())),
            ("min_gram_length", Attr::Int(1)),
            ("max_gram_length", Attr::Int(1)),
            ("max_skip_count", Attr::Int(0)),
            ("ngram_counts", Attr::Ints(vec![0])),
            ("ngram_indexes", Attr::Ints(indexes)),
            ("pool_strings", Attr::Strs(pool)),
        ],
    )
}

/// String → level index as float, NaN when unseen, missing or empty: CategoryMapper to an
/// int64 index (default one past the last level), then a Gather from `[0, 1, …, L-1, NaN]`.
fn category_index(g: &mut GraphBuilder, input: &str, levels: &[String]) -> String {
    let index = level_index(levels);
    // Sorted by index so the attribute order is deterministic.
    let mut cats: Vec<(&str, usize)> = index.into_iter().collect();
    cats.sort_by_key(|&(_, i)| i);
    let ints: Vec<i64> = cats.iter().map(|&(_, i)| i as i64).collect();
    let strs: Vec<String> = cats.iter().map(|&(s, _)| s.to_string()).collect();
    let l = levels.len();
    // The empty string means missing: mapped explicitly to the NaN row (this also keeps the
    // category list non-empty when the pipeline has no levels).
    let mut ints = ints;
    let mut strs = strs;
    ints.push(l as i64);
    strs.push(String::new());
    let idx = g.op_in(
        ML_DOMAIN,
        "CategoryMapper",
        &[input],
        vec![
            ("cats_int64s", Attr::Ints(ints)),
            ("cats_strings", Attr::Strs(strs)),
            ("default_int64", Attr::Int(l as i64)),
        ],
    );
    let mut table: Vec<f32> = (0..l).map(|i| i as f32).collect();
    table.push(f32::NAN);
    let table = g.f32s(&[l as i64 + 1], &table);
    g.op("Gather", &[&table, &idx], vec![("axis", Attr::Int(0))])
}

/// Graph values under the calendar's arithmetic: each operation appends its ONNX nodes (on
/// float64 values), so [`Calendar`] builds in the graph exactly the computation it runs
/// natively.
struct GraphArithmetic<'g>(&'g mut GraphBuilder);

impl FloorArithmetic for GraphArithmetic<'_> {
    type Value = String;
    fn add(&mut self, a: &String, b: &String) -> String {
        self.0.op("Add", &[a, b], vec![])
    }
    fn sub(&mut self, a: &String, b: &String) -> String {
        self.0.op("Sub", &[a, b], vec![])
    }
    fn add_constant(&mut self, a: &String, c: f64) -> String {
        let c = self.0.f64_scalar(c);
        self.0.op("Add", &[a, &c], vec![])
    }
    fn times_constant(&mut self, a: &String, c: f64) -> String {
        let c = self.0.f64_scalar(c);
        self.0.op("Mul", &[&c, a], vec![])
    }
    fn floor_div(&mut self, a: &String, c: f64) -> String {
        let c = self.0.f64_scalar(c);
        let q = self.0.op("Div", &[a, &c], vec![]);
        self.0.op("Floor", &[&q], vec![])
    }
}

/// `[N, K]` float64 margins of a tree ensemble: a `TreeEnsembleRegressor` (raw sums, no
/// post-transform) cast to float64, plus the base values.
fn tree_margins(g: &mut GraphBuilder, ensemble: &TreeEnsemble, x: &str, n_out: usize) -> String {
    let mut a = TreeAttrs::default();
    for (t, tree) in ensemble.trees.iter().enumerate() {
        a.push_tree(t as i64, tree.output as i64, &tree.nodes);
    }
    if ensemble.trees.is_empty() {
        // The operator needs at least one node: one leaf adding nothing.
        a.node(0, 0, 0, "LEAF", 0.0, 0, 0, false);
        a.leaf(0, 0, 0, 0.0);
    }
    let scores = g.op_in(
        ML_DOMAIN,
        "TreeEnsembleRegressor",
        &[x],
        vec![
            ("n_targets", Attr::Int(n_out as i64)),
            ("nodes_treeids", Attr::Ints(a.tree_ids)),
            ("nodes_nodeids", Attr::Ints(a.node_ids)),
            ("nodes_featureids", Attr::Ints(a.feature_ids)),
            ("nodes_modes", Attr::Strs(a.modes)),
            ("nodes_values", Attr::Floats(a.values)),
            ("nodes_truenodeids", Attr::Ints(a.true_ids)),
            ("nodes_falsenodeids", Attr::Ints(a.false_ids)),
            (
                "nodes_missing_value_tracks_true",
                Attr::Ints(a.missing_true),
            ),
            ("target_treeids", Attr::Ints(a.target_tree_ids)),
            ("target_nodeids", Attr::Ints(a.target_node_ids)),
            ("target_ids", Attr::Ints(a.target_ids)),
            ("target_weights", Attr::Floats(a.target_weights)),
            ("post_transform", Attr::Str("NONE".into())),
            ("aggregate_function", Attr::Str("SUM".into())),
        ],
    );
    let scores = g.op(
        "Cast",
        &[&scores],
        vec![("to", Attr::Int(DataType::Double as i64))],
    );
    let base = g.f64s(&[n_out as i64], &ensemble.base);
    g.op("Add", &[&scores, &base], vec![])
}

#[derive(Default)]
struct TreeAttrs {
    tree_ids: Vec<i64>,
    node_ids: Vec<i64>,
    feature_ids: Vec<i64>,
    modes: Vec<String>,
    values: Vec<f32>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    missing_true: Vec<i64>,
    target_tree_ids: Vec<i64>,
    target_node_ids: Vec<i64>,
    target_ids: Vec<i64>,
    target_weights: Vec<f32>,
}

struct OnnxNode {
    id: i64,
    feature: i64,
    mode: &'static str,
    value: f32,
    true_id: i64,
    false_id: i64,
    missing_true: bool,
    leaf: Option<f64>,
}

impl TreeAttrs {
    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        tree: i64,
        id: i64,
        feature: i64,
        mode: &str,
        value: f32,
        t: i64,
        f: i64,
        missing_true: bool,
    ) {
        self.tree_ids.push(tree);
        self.node_ids.push(id);
        self.feature_ids.push(feature);
        self.modes.push(mode.to_string());
        self.values.push(value);
        self.true_ids.push(t);
        self.false_ids.push(f);
        self.missing_true.push(i64::from(missing_true));
    }

    fn leaf(&mut self, tree: i64, id: i64, target: i64, weight: f32) {
        self.target_tree_ids.push(tree);
        self.target_node_ids.push(id);
        self.target_ids.push(target);
        self.target_weights.push(weight);
    }

    /// Our node `i` keeps id `i`; an `InSet` split becomes a chain of `BRANCH_EQ` nodes whose
    /// true branches all point to the left child (extra chain nodes get ids after the last).
    fn push_tree(&mut self, tree: i64, output: i64, nodes: &[Node]) {
        let mut onnx: Vec<OnnxNode> = Vec::with_capacity(nodes.len());
        let mut next_id = nodes.len() as i64;
        let mut extra: Vec<OnnxNode> = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let id = i as i64;
            match node {
                Node::Leaf { value } => onnx.push(OnnxNode {
                    id,
                    feature: 0,
                    mode: "LEAF",
                    value: 0.0,
                    true_id: 0,
                    false_id: 0,
                    missing_true: false,
                    leaf: Some(*value),
                }),
                Node::Split {
                    feature,
                    rule,
                    missing_left,
                    left,
                    right,
                } => {
                    let (feature, left, right) = (*feature as i64, *left as i64, *right as i64);
                    match rule {
                        SplitRule::LessOrEqual(t) => onnx.push(OnnxNode {
                            id,
                            feature,
                            mode: "BRANCH_LEQ",
                            value: *t,
                            true_id: left,
                            false_id: right,
                            missing_true: *missing_left,
                            leaf: None,
                        }),
                        SplitRule::InSet(set) if set.is_empty() => onnx.push(OnnxNode {
                            // No category goes left: category indices are ≥ 0, never ≤ -1.
                            id,
                            feature,
                            mode: "BRANCH_LEQ",
                            value: -1.0,
                            true_id: left,
                            false_id: right,
                            missing_true: *missing_left,
                            leaf: None,
                        }),
                        SplitRule::InSet(set) => {
                            let mut chain_id = id;
                            for (k, c) in set.iter().enumerate() {
                                let false_id = if k + 1 == set.len() {
                                    right
                                } else {
                                    next_id += 1;
                                    next_id - 1
                                };
                                let node = OnnxNode {
                                    id: chain_id,
                                    feature,
                                    mode: "BRANCH_EQ",
                                    value: *c as f32,
                                    true_id: left,
                                    false_id,
                                    missing_true: *missing_left,
                                    leaf: None,
                                };
                                if k == 0 {
                                    onnx.push(node)
                                } else {
                                    extra.push(node)
                                }
                                chain_id = false_id;
                            }
                        }
                    }
                }
            }
        }
        onnx.extend(extra);
        for n in &onnx {
            self.node(
                tree,
                n.id,
                n.feature,
                n.mode,
                n.value,
                n.true_id,
                n.false_id,
                n.missing_true,
            );
            if let Some(v) = n.leaf {
                self.leaf(tree, n.id, output, v as f32);
            }
        }
    }
}

/// `[N, K]` float64 margins of a linear model. Numeric terms: the feature columns gathered,
/// NaN replaced by the fills, times the weight matrix. Categorical terms: the index column
/// (NaN → one past the table) gathers a row of a weight table whose last row is zeros.
fn linear_margins(
    g: &mut GraphBuilder,
    linear: &LinearModel,
    x: &str,
    pipeline: &Pipeline,
) -> String {
    let k = pipeline.task.n_outputs();
    let mut margin = g.f64s(&[1, k as i64], &linear.intercept);
    let mut has_terms = false;
    if !linear.numeric.is_empty() {
        let cols: Vec<i64> = linear.numeric.iter().map(|t| t.feature as i64).collect();
        let cols = g.i64s(&[cols.len() as i64], &cols);
        let xs = g.op("Gather", &[x, &cols], vec![("axis", Attr::Int(1))]);
        let nan = g.op("IsNaN", &[&xs], vec![]);
        let xd = g.op(
            "Cast",
            &[&xs],
            vec![("to", Attr::Int(DataType::Double as i64))],
        );
        let fills: Vec<f64> = linear.numeric.iter().map(|t| t.fill).collect();
        let fills = g.f64s(&[fills.len() as i64], &fills);
        let filled = g.op("Where", &[&nan, &fills, &xd], vec![]);
        let w: Vec<f64> = linear
            .numeric
            .iter()
            .flat_map(|t| t.weights.iter().copied())
            .collect();
        let w = g.f64s(&[linear.numeric.len() as i64, k as i64], &w);
        let product = g.op("MatMul", &[&filled, &w], vec![]);
        margin = g.op("Add", &[&product, &margin], vec![]);
        has_terms = true;
    }
    if !linear.categorical.is_empty() {
        // All categorical terms at once (a graph node costs a few microseconds per run,
        // whatever its size): one table stacking each term's weight rows plus a zero row for
        // missing/unseen, each term's index column shifted to its block, one Gather, and a sum
        // over the terms.
        let mut table: Vec<f64> = Vec::new();
        let mut offsets: Vec<f32> = Vec::new();
        let mut zero_rows: Vec<f32> = Vec::new();
        let mut cols: Vec<i64> = Vec::new();
        let mut table_rows = 0usize;
        for term in &linear.categorical {
            let n_levels = match &pipeline.features[term.feature] {
                Feature::CategoryIndex { levels, .. } => levels.len(),
                _ => term.weights.len(),
            };
            let rows = n_levels.max(term.weights.len());
            for r in 0..=rows {
                match term.weights.get(r) {
                    Some(w) if r < n_levels => table.extend_from_slice(w),
                    _ => table.extend(std::iter::repeat_n(0.0, k)),
                }
            }
            offsets.push(table_rows as f32);
            zero_rows.push(rows as f32);
            cols.push(term.feature as i64);
            table_rows += rows + 1;
        }
        let n_terms = cols.len() as i64;
        let table = g.f64s(&[table_rows as i64, k as i64], &table);
        let cols = g.i64s(&[n_terms], &cols);
        let v = g.op("Gather", &[x, &cols], vec![("axis", Attr::Int(1))]);
        let nan = g.op("IsNaN", &[&v], vec![]);
        let zero_rows = g.f32s(&[n_terms], &zero_rows);
        let v = g.op("Where", &[&nan, &zero_rows, &v], vec![]);
        // Shifted to each term's block in float (whole numbers far below 2^24, so exact):
        // tract adds int64 tensors through its symbolic-dimension type, several times slower.
        let offsets = g.f32s(&[n_terms], &offsets);
        let v = g.op("Add", &[&v, &offsets], vec![]);
        let idx = g.op(
            "Cast",
            &[&v],
            vec![("to", Attr::Int(DataType::Int64 as i64))],
        );
        let contributions = g.op("Gather", &[&table, &idx], vec![("axis", Attr::Int(0))]);
        let axes = g.i64s(&[1], &[1]);
        let sum = g.op(
            "ReduceSum",
            &[&contributions, &axes],
            vec![("keepdims", Attr::Int(0))],
        );
        margin = g.op("Add", &[&margin, &sum], vec![]);
        has_terms = true;
    }
    if !has_terms {
        // An intercept-only model still needs the batch dimension: zeros from the first
        // feature column (IsNaN → 0/1 → ×0, so a missing value cannot leak in).
        let first = g.i64s(&[1], &[0]);
        let col = g.op("Gather", &[x, &first], vec![("axis", Attr::Int(1))]);
        let nan = g.op("IsNaN", &[&col], vec![]);
        let flags = g.op(
            "Cast",
            &[&nan],
            vec![("to", Attr::Int(DataType::Double as i64))],
        );
        let zero = g.f64_scalar(0.0);
        let zeros = g.op("Mul", &[&flags, &zero], vec![]);
        margin = g.op("Add", &[&zeros, &margin], vec![]);
    }
    margin
}

/// Margins → graph outputs (see the module documentation of `predict` for the rules).
fn post_process(g: &mut GraphBuilder, task: &Task, margin: &str) -> Vec<pb::ValueInfoProto> {
    let flat = g.i64s(&[1], &[-1]);
    match task {
        Task::Regression => {
            let m = g.op("Reshape", &[margin, &flat], vec![]);
            g.op_to(
                "",
                "Cast",
                &[&m],
                vec![("to", Attr::Int(DataType::Float as i64))],
                OUTPUT_PREDICTION,
            );
            vec![value_info(
                OUTPUT_PREDICTION,
                DataType::Float,
                &[Err(BATCH)],
            )]
        }
        Task::Binary { labels } => {
            let m32 = to_float(g, margin);
            let p = g.op("Sigmoid", &[&m32], vec![]);
            let one = g.f32s(&[], &[1.0]);
            let q = g.op("Sub", &[&one, &p], vec![]);
            g.op_to(
                "",
                "Concat",
                &[&q, &p],
                vec![("axis", Attr::Int(1))],
                OUTPUT_PROBABILITIES,
            );
            // The label is labels[1] iff the margin is above 0 (a tie goes to labels[0]).
            let zero = g.f64_scalar(0.0);
            let positive = g.op("Greater", &[margin, &zero], vec![]);
            let idx = g.op(
                "Cast",
                &[&positive],
                vec![("to", Attr::Int(DataType::Int64 as i64))],
            );
            let idx = g.op("Reshape", &[&idx, &flat], vec![]);
            classification_outputs(g, labels, &idx)
        }
        Task::Multiclass { labels } => {
            let m32 = to_float(g, margin);
            g.op_to(
                "",
                "Softmax",
                &[&m32],
                vec![("axis", Attr::Int(1))],
                OUTPUT_PROBABILITIES,
            );
            // The first maximum wins, as in native prediction.
            let idx = g.op(
                "ArgMax",
                &[margin],
                vec![
                    ("axis", Attr::Int(1)),
                    ("keepdims", Attr::Int(0)),
                    ("select_last_index", Attr::Int(0)),
                ],
            );
            classification_outputs(g, labels, &idx)
        }
    }
}

/// The float64 margins as the float32 the probability ops and outputs use.
fn to_float(g: &mut GraphBuilder, margin: &str) -> String {
    g.op(
        "Cast",
        &[margin],
        vec![("to", Attr::Int(DataType::Float as i64))],
    )
}

/// The predicted label (the label at each row's class index `idx`) as the `prediction` output,
/// and the classification outputs' descriptions.
fn classification_outputs(
    g: &mut GraphBuilder,
    labels: &[String],
    idx: &str,
) -> Vec<pb::ValueInfoProto> {
    let table = g.strings(&[labels.len() as i64], labels);
    g.op_to(
        "",
        "Gather",
        &[&table, idx],
        vec![("axis", Attr::Int(0))],
        OUTPUT_PREDICTION,
    );
    vec![
        value_info(OUTPUT_PREDICTION, DataType::String, &[Err(BATCH)]),
        value_info(
            OUTPUT_PROBABILITIES,
            DataType::Float,
            &[Err(BATCH), Ok(labels.len() as i64)],
        ),
    ]
}
