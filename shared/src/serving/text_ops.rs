//! The two text operators of exported pipelines, which tract lacks: `com.microsoft.Tokenizer`
//! (onnxruntime's contrib operator) and `TfIdfVectorizer` (ONNX), each only in the form
//! [`crate::onnx`] writes, refused otherwise. A text column becomes per-row counts of its
//! vocabulary's words ([`crate::automl::pipeline::text`] is the rule both follow):
//!
//! - `Tokenizer` with `tokenexp = "[A-Za-z0-9]+"`, `mark = 0`, `mincharnum = 1` and
//!   `pad_value = ""`: `[N, 1]` strings → `[N, 1, T]`, each row's maximal runs of ASCII letters
//!   and digits (onnxruntime's RE2 matches bytes, so any other character separates tokens),
//!   padded with "" to the longest row's count;
//! - `TfIdfVectorizer` in `TF` mode on unigrams of `pool_strings`: `[N, T]` strings → `[N, V]`
//!   floats, the count of each pool string in the row, added up at its `ngram_indexes` entry
//!   (several strings may share one: the case forms of a word).
//!
//! tract counts the exporter's chain (`Tokenizer` → `Squeeze` → `TfIdfVectorizer`) in one step
//! from the texts ([`TermCountsOp`] with `from_text`), without the padded `[N, 1, T]` tokens.

use crate::automl::pipeline::text::tokens;
use std::collections::HashMap;
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

/// The one token pattern the exporter writes.
pub const TOKEN_PATTERN: &str = "[A-Za-z0-9]+";

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("Tokenizer", parse_tokenizer);
    reg.insert("TfIdfVectorizer", parse_term_counts);
}

fn parse_tokenizer(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let pattern: Option<String> = node.get_attr_opt("tokenexp")?;
    let separators: Option<Vec<String>> = node.get_attr_opt_vec("separators")?;
    let mark: i64 = node.get_attr_opt("mark")?.unwrap_or(0);
    let min_chars: i64 = node.get_attr_opt("mincharnum")?.unwrap_or(1);
    let pad: String = node.get_attr_opt("pad_value")?.unwrap_or_default();
    if pattern.as_deref() != Some(TOKEN_PATTERN)
        || separators.is_some_and(|s| !s.is_empty())
        || mark != 0
        || min_chars != 1
        || !pad.is_empty()
    {
        bail!(
            "Tokenizer: only tokenexp {TOKEN_PATTERN:?} with mark 0, mincharnum 1 and an empty \
             pad_value is supported"
        );
    }
    let count = ctx.template.symbols.new_with_prefix("tokens");
    Ok((expand(Tokenize { count }), vec![]))
}

fn parse_term_counts(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let mode: String = node.get_attr("mode")?;
    let min_gram: i64 = node.get_attr("min_gram_length")?;
    let max_gram: i64 = node.get_attr("max_gram_length")?;
    let skip: i64 = node.get_attr("max_skip_count")?;
    let pool: Vec<String> = node.get_attr_vec("pool_strings")?;
    let indexes: Vec<i64> = node.get_attr_vec("ngram_indexes")?;
    let weights: Option<Vec<f32>> = node.get_attr_opt_vec("weights")?;
    if mode != "TF" || min_gram != 1 || max_gram != 1 || skip != 0 || weights.is_some() {
        bail!("TfIdfVectorizer: only TF counts of unigrams without weights are supported");
    }
    node.expect_attr(
        "ngram_indexes",
        indexes.len() == pool.len() && indexes.iter().all(|&i| (0..1 << 20).contains(&i)),
        "one index in 0..2^20 per pool string",
    )?;
    let width = indexes.iter().map(|&i| i as usize + 1).max().unwrap_or(0);
    let mut index = HashMap::with_capacity(pool.len());
    for (s, i) in pool.into_iter().zip(indexes) {
        index.entry(s).or_insert(i as usize);
    }
    Ok((
        expand(CountTerms {
            vocabulary: Arc::new(Vocabulary { index, width }),
        }),
        vec![],
    ))
}

#[derive(Debug, Clone)]
struct Tokenize {
    count: Symbol,
}

impl Expansion for Tokenize {
    fn name(&self) -> StaticName {
        "Tokenizer".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, DatumType::String)?;
        s.equals(&outputs[0].datum_type, DatumType::String)?;
        s.equals(&inputs[0].rank, 2)?;
        s.equals(&outputs[0].rank, 3)?;
        s.equals(&inputs[0].shape[0], &outputs[0].shape[0])?;
        s.equals(&inputs[0].shape[1], &outputs[0].shape[1])?;
        s.equals(&outputs[0].shape[2], self.count.to_dim())?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(
            prefix,
            TokenizerOp {
                count: self.count.clone(),
            },
            inputs,
        )
    }
}

/// The typed tokenizer: `[N, C]` strings → `[N, C, T]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizerOp {
    count: Symbol,
}

impl Op for TokenizerOp {
    fn name(&self) -> StaticName {
        "Tokenizer".into()
    }

    op_as_typed_op!();
}

impl EvalOp for TokenizerOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let plain = input.try_as_plain_ram()?;
        let strings = plain.as_slice::<String>()?;
        let split: Vec<Vec<&str>> = strings.iter().map(|s| tokens(s).collect()).collect();
        let width = split.iter().map(Vec::len).max().unwrap_or(0);
        let mut out = Vec::with_capacity(split.len() * width);
        for row in &split {
            out.extend(row.iter().map(|t| t.to_string()));
            out.extend(std::iter::repeat_n(String::new(), width - row.len()));
        }
        let mut shape: TVec<usize> = input.shape().into();
        shape.push(width);
        let out = tract_ndarray::ArrayD::from_shape_vec(&*shape, out)?;
        Ok(tvec!(out.into_tensor().into_tvalue()))
    }
}

impl TypedOp for TokenizerOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        shape.push(self.count.to_dim());
        Ok(tvec!(String::fact(shape)))
    }

    as_op!();
}

#[derive(Debug)]
pub struct Vocabulary {
    index: HashMap<String, usize>,
    width: usize,
}

#[derive(Debug, Clone)]
struct CountTerms {
    vocabulary: Arc<Vocabulary>,
}

impl Expansion for CountTerms {
    fn name(&self) -> StaticName {
        "TfIdfVectorizer".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, DatumType::String)?;
        s.equals(&outputs[0].datum_type, DatumType::F32)?;
        s.equals(&inputs[0].rank, 2)?;
        s.equals(&outputs[0].rank, 2)?;
        s.equals(&inputs[0].shape[0], &outputs[0].shape[0])?;
        s.equals(&outputs[0].shape[1], self.vocabulary.width.to_dim())?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        // The exporter's chain, Tokenizer → Squeeze(axis 1) → here, is counted from the texts
        // themselves: the tokenizer pads every row to the longest row's token count, so one
        // long text among many short ones would make rows × its tokens strings. The tokenizer
        // and squeeze nodes are then left unused, and the plan does not run them.
        let squeeze = model.node(inputs[0].node);
        let texts = match squeeze.op_as::<AxisOp>() {
            Some(AxisOp::Rm(1)) => squeeze.inputs.first().and_then(|outlet| {
                let tokenizer = model.node(outlet.node);
                tokenizer.op_as::<TokenizerOp>()?;
                tokenizer.inputs.first().copied()
            }),
            _ => None,
        };
        let (from_text, inputs) = match texts {
            Some(texts) => (true, tvec![texts]),
            None => (false, inputs.into()),
        };
        model.wire_node(
            prefix,
            TermCountsOp {
                vocabulary: self.vocabulary.clone(),
                from_text,
            },
            &inputs,
        )
    }
}

/// The typed term counter: `[N, T]` tokens → `[N, V]` f32 counts; or, fused with the
/// tokenizer before it (`from_text`), `[N, C]` texts → the same counts, tokenized row by row.
#[derive(Debug, Clone)]
pub struct TermCountsOp {
    vocabulary: Arc<Vocabulary>,
    from_text: bool,
}

impl PartialEq for TermCountsOp {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.vocabulary, &other.vocabulary) && self.from_text == other.from_text
    }
}
impl Eq for TermCountsOp {}

impl Op for TermCountsOp {
    fn name(&self) -> StaticName {
        "TfIdfVectorizer".into()
    }

    op_as_typed_op!();
}

impl EvalOp for TermCountsOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let plain = input.try_as_plain_ram()?;
        let strings = plain.as_slice::<String>()?;
        let shape = input.shape();
        let (rows, per_row) = (shape[0], shape[1]);
        let width = self.vocabulary.width;
        let mut out = vec![0f32; rows * width];
        let index = &self.vocabulary.index;
        for r in 0..rows {
            let counts = &mut out[r * width..(r + 1) * width];
            for s in &strings[r * per_row..(r + 1) * per_row] {
                if self.from_text {
                    for token in tokens(s) {
                        if let Some(&i) = index.get(token) {
                            counts[i] += 1.0;
                        }
                    }
                } else if let Some(&i) = index.get(s) {
                    counts[i] += 1.0;
                }
            }
        }
        let out = tract_ndarray::Array2::from_shape_vec((rows, width), out)?;
        Ok(tvec!(out.into_tensor().into_tvalue()))
    }
}

impl TypedOp for TermCountsOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact([
            inputs[0].shape[0].clone(),
            self.vocabulary.width.to_dim()
        ])))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use crate::automl::pipeline::{
        Feature, InputSpec, LinearModel, Model, NumericTerm, Pipeline, Task,
    };
    use crate::ingest::ColumnType;
    use crate::serving::{BatchOutput, OnnxModel};

    /// A review's word counts: the exported chain runs fused, so a batch of short texts and one
    /// very long one makes no padded token tensor, and counts as native prediction does.
    #[test]
    fn the_exported_chain_is_counted_from_the_texts() {
        let words = ["good", "bad", "movie"];
        let pipeline = Pipeline {
            target: "score".into(),
            task: Task::Regression,
            inputs: vec![InputSpec {
                name: "review".into(),
                kind: ColumnType::String,
            }],
            features: words
                .iter()
                .map(|w| Feature::WordCount {
                    input: 0,
                    word: w.to_string(),
                })
                .collect(),
            models: vec![Model::Linear(LinearModel {
                intercept: vec![0.5],
                numeric: (0..3)
                    .map(|feature| NumericTerm {
                        feature,
                        fill: 0.0,
                        weights: vec![[1.0, -2.0, 0.25][feature]],
                        mean: 0.0,
                    })
                    .collect(),
                categorical: Vec::new(),
            })],
            weights: vec![1.0],
        };
        let bytes = crate::onnx::export(&pipeline, &[]).expect("exports");
        let model = OnnxModel::load(&bytes).expect("loads");
        let ops = model.evaluated_ops();
        assert!(
            ops.iter().any(|op| op.contains("from_text: true")),
            "{ops:?}"
        );
        assert!(
            !ops.iter().any(|op| op.starts_with("TokenizerOp")),
            "{ops:?}"
        );

        let long = "Good movie, bad ".repeat(50_000);
        let mut rows: Vec<serde_json::Value> = (0..2_000)
            .map(|i| {
                let review = ["good", "BAD bad", "", "gOOd"][i % 4];
                serde_json::json!({ "review": review })
            })
            .collect();
        rows.push(serde_json::json!({ "review": long }));
        let batch =
            crate::serving::input::rows_to_batch(model.input_schema(), &rows).expect("rows");
        let BatchOutput::Regression { values } = model.run(&batch).expect("runs") else {
            panic!("a regression model");
        };
        let native = pipeline
            .predict(&batch.to_table(model.input_schema()))
            .expect("native");
        for (row, v) in values.iter().enumerate() {
            let expected = native.value(row).expect("a value");
            assert!(
                (f64::from(*v) - expected).abs() <= 1e-4 * expected.abs().max(1.0),
                "row {row}: tract {v}, native {expected}"
            );
        }
        // good 50,000 - 2 × bad 50,000 + 0.25 × movie 50,000 + 0.5.
        assert_eq!(values[2_000], -37_499.5);
    }
}
