//! One router per endpoint group; each group is one Lambda function on AWS and all of them are
//! merged into the local server. Routes are written at their bare path; [`crate::http::app`]
//! also serves them under `/v1`. The legacy `/v0` routes ([`legacy_v0`]) are written with their
//! prefix and served only there.

pub mod console;
pub mod datasets;
pub mod deployments;
pub mod health;
#[cfg(feature = "serving")]
pub mod inference;
pub mod keys;
pub mod legacy_v0;
pub mod models;
#[cfg(feature = "serving")]
pub mod openapi;
#[cfg(feature = "serving")]
pub mod prediction_jobs;
pub mod versions;

use crate::config::{PortNeeds, UsedPorts};
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

/// An endpoint group, as deployed (one Lambda each). A type rather than a value so that each
/// function's binary names its group at compile time and links only that group's handlers and
/// what they reach (parquet for datasets), not every group's; its [`PortNeeds`] say which
/// ports beyond the store its handlers (and the idempotency layer) use, and its function builds
/// only those, so it links only their AWS SDKs.
pub trait EndpointGroup: PortNeeds {
    /// The group's routes that need an API key.
    fn protected_routes(guard: &Guard) -> Router<AppState>;

    /// The group's legacy `/v0` routes (SPEC §8), which need an API key.
    fn legacy_routes(_guard: &Guard) -> Router<AppState> {
        Router::new()
    }

    /// The group's routes that need no API key.
    fn public_routes() -> Router<AppState> {
        Router::new()
    }
}

/// `/me`, `/api-keys`, and the public `/health` and console.
pub struct KeysGroup;
/// `/datasets` (and the upload sessions' public PUT).
pub struct DatasetsGroup;
/// `/models`, their versions and deployments.
pub struct ModelsGroup;
/// Predictions and batch prediction jobs, and the public `/openapi.json`: the document is
/// assembled from every group's route annotations, and this is the one function that links
/// them all (the others are built without the model runtime, see the `serving` feature).
#[cfg(feature = "serving")]
pub struct InferenceGroup;

/// Keys, accounts, health and the console read and write the store only (an idempotent key
/// creation's answer is a few hundred bytes, far below what the idempotency layer keeps inline
/// rather than in a blob).
impl PortNeeds for KeysGroup {
    const USED: UsedPorts = UsedPorts {
        blobs: false,
        build_queue: false,
        task_queue: false,
    };
}

/// Uploads go to blobs; large upload completions to the task queue.
impl PortNeeds for DatasetsGroup {
    const USED: UsedPorts = UsedPorts {
        blobs: true,
        build_queue: false,
        task_queue: true,
    };
}

/// Builds are queued for the trainer, models from an upload session completed through the task
/// queue, and artifacts read from blobs.
impl PortNeeds for ModelsGroup {
    const USED: UsedPorts = UsedPorts::ALL;
}

/// Models are read from blobs; batch prediction jobs go to the task queue.
#[cfg(feature = "serving")]
impl PortNeeds for InferenceGroup {
    const USED: UsedPorts = UsedPorts {
        blobs: true,
        build_queue: false,
        task_queue: true,
    };
}

impl EndpointGroup for KeysGroup {
    fn protected_routes(guard: &Guard) -> Router<AppState> {
        keys::routes(guard)
    }

    fn public_routes() -> Router<AppState> {
        health::routes().merge(console::routes())
    }
}

impl EndpointGroup for DatasetsGroup {
    fn protected_routes(guard: &Guard) -> Router<AppState> {
        datasets::routes(guard)
    }

    fn legacy_routes(guard: &Guard) -> Router<AppState> {
        legacy_v0::datasets_routes(guard)
    }

    fn public_routes() -> Router<AppState> {
        datasets::public_routes()
    }
}

impl EndpointGroup for ModelsGroup {
    fn protected_routes(guard: &Guard) -> Router<AppState> {
        models::routes(guard)
            .merge(versions::routes(guard))
            .merge(deployments::routes(guard))
    }

    fn legacy_routes(guard: &Guard) -> Router<AppState> {
        legacy_v0::models_routes(guard)
    }
}

#[cfg(feature = "serving")]
impl EndpointGroup for InferenceGroup {
    fn protected_routes(guard: &Guard) -> Router<AppState> {
        inference::routes(guard).merge(prediction_jobs::routes(guard))
    }

    fn legacy_routes(guard: &Guard) -> Router<AppState> {
        legacy_v0::inference_routes(guard)
    }

    fn public_routes() -> Router<AppState> {
        openapi::routes()
    }
}
