//! `GET /health`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The service answers and its store does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` (a store that does not answer is a 503).
    #[schema(example = "ok")]
    pub status: String,
    /// `sqlite` (embedded) or `dynamodb` (AWS).
    pub backend: String,
    #[schema(example = "ok")]
    pub store: String,
}
