//! The wire contract of the HTTP API: every request and response body, as typed structs that
//! serialize to exactly what the API sends and derive their OpenAPI schema (utoipa), so
//! `/openapi.json` describes every body and a generated client can read it. The server's
//! handlers build these from domain records (the `From` impls here); the `plexe` command-line
//! client deserializes them.
//!
//! One module per endpoint group: [`keys`], [`datasets`], [`models`] (models, versions, builds,
//! logs), [`deployments`], [`predictions`], [`operations`] (health); errors are [`ErrorEnvelope`].

pub mod datasets;
pub mod deployments;
pub mod keys;
pub mod legacy;
pub mod models;
pub mod operations;
pub mod predictions;
pub mod whole_number;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The pagination block of every list (`limit` 1–100, default 20; `offset` from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PageInfo {
    /// How many items there are in all.
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
    /// Whether items follow this page.
    pub has_more: bool,
}

impl PageInfo {
    pub fn new(total: usize, limit: usize, offset: usize) -> PageInfo {
        PageInfo {
            total: total as u64,
            limit: limit as u64,
            offset: offset as u64,
            has_more: offset.saturating_add(limit) < total,
        }
    }
}

/// Every error: `{"error": {code, message, status, request_id, details}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// `invalid_request`, `missing_api_key`, `invalid_api_key`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `conflict`, `payload_too_large`, `unsupported_media_type`,
    /// `validation_error`, `rate_limit_exceeded`, `concurrency_limit_exceeded`,
    /// `internal_error` or `service_unavailable`.
    #[schema(example = "validation_error")]
    pub code: String,
    /// What went wrong and what to do.
    pub message: String,
    /// The HTTP status, repeated.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// The request's id (`req_…`), also in the `x-request-id` header.
    pub request_id: String,
    /// More about the problem: `field` names the offending field; validation errors of
    /// predictions list each problem in `errors`.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// A body of raw bytes (a file sent or received as is): `{"type": "string", "format":
/// "binary"}` in the document, so generated clients take and give files, not integer arrays.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(pub Vec<u8>);

/// A JSON value whose shape depends on the model or the user (schemas, metrics, tags).
pub type AnyJson = Value;

/// `None` for an absent or `null` JSON value.
pub fn non_null(value: AnyJson) -> Option<AnyJson> {
    (!value.is_null()).then_some(value)
}
