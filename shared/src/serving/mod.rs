//! Serving: ONNX files run by tract, with plans optimized once and cached.
//!
//! ```text
//! let model = OnnxModel::load(&bytes)?;          // parse + optimize once, share via Arc
//! let out = model.predict_json(&rows)?;           // JSON objects, checked per field
//! let fields = model.output_fields(&out, 0);      // {"<target>": …, "<target>_probability": …}
//! ```

pub mod cache;
pub mod category_mapper;
pub mod csv_batch;
pub mod explainer;
pub mod input;
pub mod model;
pub mod parts;
pub mod text_ops;
pub mod timing;
pub mod tree_ensemble;

pub use cache::{CacheError, PlanCache};
pub use csv_batch::{CsvBatch, CsvBatchError, CsvChunks};
pub use explainer::{Explainer, ExplainerError, ExplainerState, MAX_EXPLAINED_ROWS};
pub use input::{
    Batch, BatchBuilder, Cell, FieldError, InputColumn, InputError, JsonRows, MAX_BATCH_ROWS,
    MAX_LISTED_ERRORS, RowsError,
};
pub use model::{BatchOutput, LoadError, OnnxModel, OutputRow, Outputs, RunError, ServedTask};
pub use timing::{Timing, measure};
