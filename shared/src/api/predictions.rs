//! Predictions: `infer` (one row) and `predictions` (a batch). The fields of a prediction
//! depend on the model: the target column's name holds the prediction, then
//! `<target>_probability` (binary) or `<target>_probabilities` (multiclass: label → p), or the
//! names of the version's `output_schema`.

use super::AnyJson;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One row's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InferResponse {
    /// `req_…`
    pub request_id: String,
    /// The prediction's fields (see the module doc).
    #[schema(value_type = Object)]
    pub result: AnyJson,
    pub model_name: String,
    pub model_version: String,
    pub created_at: String,
}

/// One row's answer in a batch, in the order of the request's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PredictionItem {
    #[schema(value_type = Object)]
    pub prediction: AnyJson,
}
