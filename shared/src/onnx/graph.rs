//! A small builder over the ONNX protobuf types tract ships (`tract_onnx::pb`): nodes with
//! generated names, deduplicated constants, attributes. Names come from a counter, so the same
//! sequence of calls always gives the same graph (the export must be deterministic).

use std::collections::BTreeMap;
use tract_onnx::pb::{
    self, AttributeProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
};

/// Internal value names start with this prefix; the export renames inputs that would collide.
pub const INTERNAL_PREFIX: &str = "plexe/";
pub const ML_DOMAIN: &str = "ai.onnx.ml";

#[derive(Default)]
pub struct GraphBuilder {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    counter: usize,
    constants: BTreeMap<(i32, Vec<i64>, Vec<u8>), String>,
}

pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Floats(Vec<f32>),
    Str(String),
    Strs(Vec<String>),
}

impl GraphBuilder {
    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{INTERNAL_PREFIX}{hint}_{}", self.counter)
    }

    /// Adds a node with one output and returns the output's name.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        self.op_in("", op_type, inputs, attrs)
    }

    pub fn op_in(
        &mut self,
        domain: &str,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) -> String {
        let output = self.fresh(&op_type.to_ascii_lowercase());
        self.op_to(domain, op_type, inputs, attrs, &output);
        output
    }

    /// Adds a node writing to a given output name (the graph outputs).
    pub fn op_to(
        &mut self,
        domain: &str,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
        output: &str,
    ) {
        let name = format!("{INTERNAL_PREFIX}node_{}", self.nodes.len());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name,
            op_type: op_type.to_string(),
            domain: domain.to_string(),
            attribute: attrs.into_iter().map(|(n, a)| attribute(n, a)).collect(),
            ..Default::default()
        });
    }

    fn constant(
        &mut self,
        data_type: DataType,
        dims: Vec<i64>,
        fill: impl FnOnce(&mut TensorProto),
        key: Vec<u8>,
    ) -> String {
        let cache_key = (data_type as i32, dims.clone(), key);
        if let Some(name) = self.constants.get(&cache_key) {
            return name.clone();
        }
        let name = self.fresh("const");
        let mut tensor = TensorProto {
            name: name.clone(),
            dims,
            data_type: data_type as i32,
            ..Default::default()
        };
        fill(&mut tensor);
        self.initializers.push(tensor);
        self.constants.insert(cache_key, name.clone());
        name
    }

    pub fn f32s(&mut self, dims: &[i64], values: &[f32]) -> String {
        let key = values
            .iter()
            .flat_map(|v| v.to_bits().to_le_bytes())
            .collect();
        let values = values.to_vec();
        self.constant(
            DataType::Float,
            dims.to_vec(),
            |t| t.float_data = values,
            key,
        )
    }

    pub fn f64s(&mut self, dims: &[i64], values: &[f64]) -> String {
        let key = values
            .iter()
            .flat_map(|v| v.to_bits().to_le_bytes())
            .collect();
        let values = values.to_vec();
        self.constant(
            DataType::Double,
            dims.to_vec(),
            |t| t.double_data = values,
            key,
        )
    }

    pub fn f64_scalar(&mut self, v: f64) -> String {
        self.f64s(&[], &[v])
    }

    pub fn i64s(&mut self, dims: &[i64], values: &[i64]) -> String {
        let key = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let values = values.to_vec();
        self.constant(
            DataType::Int64,
            dims.to_vec(),
            |t| t.int64_data = values,
            key,
        )
    }

    pub fn strings(&mut self, dims: &[i64], values: &[String]) -> String {
        // Length-prefixed so that different splits of the same bytes differ.
        let key = values
            .iter()
            .flat_map(|s| (s.len() as u64).to_le_bytes().into_iter().chain(s.bytes()))
            .collect();
        let values = values.iter().map(|s| s.as_bytes().to_vec()).collect();
        self.constant(
            DataType::String,
            dims.to_vec(),
            |t| t.string_data = values,
            key,
        )
    }
}

pub fn attribute(name: &str, value: Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    match value {
        Attr::Int(i) => {
            a.r#type = AttributeType::Int as i32;
            a.i = i;
        }
        Attr::Ints(v) => {
            a.r#type = AttributeType::Ints as i32;
            a.ints = v;
        }
        Attr::Float(f) => {
            a.r#type = AttributeType::Float as i32;
            a.f = f;
        }
        Attr::Floats(v) => {
            a.r#type = AttributeType::Floats as i32;
            a.floats = v;
        }
        Attr::Str(s) => {
            a.r#type = AttributeType::String as i32;
            a.s = s.into_bytes();
        }
        Attr::Strs(v) => {
            a.r#type = AttributeType::Strings as i32;
            a.strings = v.into_iter().map(String::into_bytes).collect();
        }
    }
    a
}

/// A tensor value-info with a shape of symbolic (`Err(name)`) or fixed (`Ok(n)`) dims.
pub fn value_info(name: &str, elem_type: DataType, dims: &[Result<i64, &str>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Ok(n) => tensor_shape_proto::dimension::Value::DimValue(*n),
                Err(s) => tensor_shape_proto::dimension::Value::DimParam(s.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem_type as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn opset(domain: &str, version: i64) -> pb::OperatorSetIdProto {
    pb::OperatorSetIdProto {
        domain: domain.to_string(),
        version,
    }
}
