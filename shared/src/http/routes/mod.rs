//! One router per endpoint group; each group is one Lambda function on AWS and all of them are
//! merged into the local server. Routes are written at their bare path; [`crate::http::app`]
//! also serves them under `/v1`. The legacy `/v0` routes ([`legacy_v0`]) are written with their
//! prefix and served only there.

pub mod console;
pub mod datasets;
pub mod deployments;
pub mod health;
pub mod inference;
pub mod keys;
pub mod legacy_v0;
pub mod models;
pub mod openapi;
pub mod prediction_jobs;
pub mod versions;

use crate::http::middleware::scope::Guard;
use crate::http::state::AppState;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A 307 to a presigned blob URL (a download too large for an API function's answer), never
/// cached: the URL expires.
pub(crate) fn redirect_to_presigned(url: &str) -> Response {
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(url) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The endpoint groups, as deployed (one Lambda each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// `/me`, `/api-keys` (and `/health`, which needs no key).
    Keys,
    Datasets,
    Models,
    Inference,
}

impl Group {
    pub const ALL: [Group; 4] = [
        Group::Keys,
        Group::Datasets,
        Group::Models,
        Group::Inference,
    ];

    /// The group's routes that need an API key.
    pub fn protected_routes(self, guard: &Guard) -> Router<AppState> {
        match self {
            Group::Keys => keys::routes(guard),
            Group::Datasets => datasets::routes(guard),
            Group::Models => models::routes(guard)
                .merge(versions::routes(guard))
                .merge(deployments::routes(guard)),
            Group::Inference => inference::routes(guard).merge(prediction_jobs::routes(guard)),
        }
    }

    /// The group's legacy `/v0` routes (SPEC §8), which need an API key.
    pub fn legacy_routes(self, guard: &Guard) -> Router<AppState> {
        match self {
            Group::Keys => Router::new(),
            Group::Datasets => legacy_v0::datasets_routes(guard),
            Group::Models => legacy_v0::models_routes(guard),
            Group::Inference => legacy_v0::inference_routes(guard),
        }
    }

    /// The group's routes that need no API key.
    pub fn public_routes(self) -> Router<AppState> {
        match self {
            Group::Keys => health::routes()
                .merge(openapi::routes())
                .merge(console::routes()),
            Group::Datasets => datasets::public_routes(),
            Group::Models | Group::Inference => Router::new(),
        }
    }
}
