//! Export of a fitted [`Pipeline`](crate::automl::Pipeline) to one standard ONNX file.
//!
//! The file, as any ONNX runtime sees it (ai.onnx opset 17, ai.onnx.ml opset 3):
//! - inputs: one per raw column, shape `[N, 1]`; string columns are `STRING` tensors (the empty
//!   string = missing), every other column `FLOAT` (booleans 0/1, datetimes as epoch seconds UTC,
//!   NaN = missing). Input names are the column names, except a name that would collide with an
//!   output or an internal value (recorded in the `input_schema` metadata);
//! - `prediction`: `[N]` `FLOAT` values (regression) or `[N]` `STRING` labels (classification);
//! - `probabilities` (classification only): `[N, K]` `FLOAT`, columns in label order;
//! - metadata props: `target`, `task` (`regression`|`binary`|`multiclass`), `labels` (JSON
//!   array), `positive_class`, `input_schema` (JSON, [`InputField`]s), `producer`.
//!
//! Graph shape: features → `Concat` → one `TreeEnsembleRegressor` per tree model (raw margins,
//! no post-transform) or `MatMul`/`Gather` arithmetic per linear model, in float64 → blend →
//! `Sigmoid`/`Softmax`, `Greater`/`ArgMax` and a `Gather` from the label strings. Only ops that
//! both tract and onnxruntime run; `TreeEnsembleRegressor` is registered into tract by
//! [`crate::serving`].

pub mod export;
pub mod graph;

pub use export::{ExportError, export, export_model};

use crate::ingest::ColumnType;
use serde::{Deserialize, Serialize};

pub const OUTPUT_PREDICTION: &str = "prediction";
pub const OUTPUT_PROBABILITIES: &str = "probabilities";

/// One entry of the `input_schema` metadata: the column, its ONNX input and its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputField {
    pub name: String,
    pub input: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataKey {
    Target,
    Task,
    Labels,
    PositiveClass,
    InputSchema,
    Producer,
}

impl MetadataKey {
    pub const ALL: [MetadataKey; 6] = [
        MetadataKey::Target,
        MetadataKey::Task,
        MetadataKey::Labels,
        MetadataKey::PositiveClass,
        MetadataKey::InputSchema,
        MetadataKey::Producer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MetadataKey::Target => "target",
            MetadataKey::Task => "task",
            MetadataKey::Labels => "labels",
            MetadataKey::PositiveClass => "positive_class",
            MetadataKey::InputSchema => "input_schema",
            MetadataKey::Producer => "producer",
        }
    }
}
