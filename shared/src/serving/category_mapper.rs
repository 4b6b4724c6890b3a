//! `ai.onnx.ml.CategoryMapper` from strings to int64 (the direction our exports write, one
//! per categorical column) as one operator over a foldhash map. tract's own parse wires two
//! operators, a SipHash lookup into an int32 index and then a lookup of the int64 value;
//! together they were about a twentieth of a titanic batch of 10,000 rows on one thread. The
//! other direction (int64 to strings) keeps tract's own operators.
//!
//! Same results as tract's and onnxruntime's: a string equal to one of `cats_strings` maps to
//! the int64 at the same position (the first one when a string repeats), any other string to
//! `default_int64`.

use std::collections::HashMap;
use std::sync::OnceLock;
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

type Parse = fn(&ParsingContext, &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

/// tract's parse, for the direction this file leaves to it.
static TRACT_PARSE: OnceLock<Option<Parse>> = OnceLock::new();

pub fn register(reg: &mut OnnxOpRegister) {
    let tract_parse = reg.0.get("CategoryMapper").copied();
    TRACT_PARSE.get_or_init(|| tract_parse);
    reg.insert("CategoryMapper", parse);
}

fn parse(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let default_int: Option<i64> = node.get_attr_opt("default_int64")?;
    let default_string: Option<String> = node.get_attr_opt("default_string")?;
    let (Some(default), None) = (default_int, default_string) else {
        return match TRACT_PARSE.get().copied().flatten() {
            Some(tract_parse) => tract_parse(ctx, node),
            None => bail!("CategoryMapper: only strings to int64 are supported"),
        };
    };
    let strings: Vec<String> = node.get_attr_vec("cats_strings")?;
    let ints: Vec<i64> = node.get_attr_vec("cats_int64s")?;
    node.expect_attr(
        "cats_int64s",
        ints.len() == strings.len(),
        "as many values as cats_strings",
    )?;
    Ok((
        expand(StringsToInts {
            map: Arc::new(CategoryMap::new(strings, ints, default)),
        }),
        vec![],
    ))
}

type Index = HashMap<String, i64, foldhash::fast::RandomState>;

#[derive(Debug)]
pub struct CategoryMap {
    index: Index,
    default: i64,
}

impl CategoryMap {
    fn new(strings: Vec<String>, ints: Vec<i64>, default: i64) -> CategoryMap {
        let mut index = Index::with_capacity_and_hasher(strings.len(), Default::default());
        for (s, i) in strings.into_iter().zip(ints) {
            index.entry(s).or_insert(i);
        }
        CategoryMap { index, default }
    }

    fn get(&self, s: &str) -> i64 {
        self.index.get(s).copied().unwrap_or(self.default)
    }
}

#[derive(Debug, Clone)]
struct StringsToInts {
    map: Arc<CategoryMap>,
}

impl Expansion for StringsToInts {
    fn name(&self) -> StaticName {
        "CategoryMapper".into()
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
        s.equals(&outputs[0].datum_type, DatumType::I64)?;
        s.equals(&inputs[0].shape, &outputs[0].shape)?;
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
            CategoryMapperOp {
                map: self.map.clone(),
            },
            inputs,
        )
    }
}

/// The typed operator: strings of any shape → int64 of the same shape.
#[derive(Debug, Clone)]
pub struct CategoryMapperOp {
    pub map: Arc<CategoryMap>,
}

impl PartialEq for CategoryMapperOp {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.map, &other.map)
    }
}
impl Eq for CategoryMapperOp {}

impl Op for CategoryMapperOp {
    fn name(&self) -> StaticName {
        "CategoryMapper".into()
    }

    op_as_typed_op!();
}

impl EvalOp for CategoryMapperOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let plain = input.try_as_plain_ram()?;
        let strings = plain.as_slice::<String>()?;
        let ints: Vec<i64> = strings.iter().map(|s| self.map.get(s)).collect();
        let out = tract_ndarray::ArrayD::from_shape_vec(input.shape(), ints)?;
        Ok(tvec!(out.into_tensor().into_tvalue()))
    }
}

impl TypedOp for CategoryMapperOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(i64::fact(inputs[0].shape.iter())))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_map_to_their_ints_the_first_of_a_repeat_and_others_to_the_default() {
        let strings = ["a", "b", "", "a"].map(String::from).to_vec();
        let m = CategoryMap::new(strings, vec![3, 1, 7, 9], -1);
        assert_eq!(m.get("a"), 3);
        assert_eq!(m.get("b"), 1);
        assert_eq!(m.get(""), 7);
        assert_eq!(m.get("A"), -1);
        assert_eq!(m.get("a "), -1);
    }
}
