//! The HTTP surface: one axum router per endpoint group, served unchanged by Lambda
//! (`lambda_http`) and by `plexe serve` (hyper).
//!
//! - [`error`]: the one error type and its envelope;
//! - [`extract`]: JSON / query / caller extractors whose rejections are envelopes;
//! - [`lookups`]: the bounded caches of key, account and deployed-version reads;
//! - [`pagination`]: `limit`/`offset` and the list response shape;
//! - [`middleware`]: request ids, authentication, scopes, rate limits, body limits, idempotency;
//! - [`routes`]: the endpoint groups;
//! - [`state`]: what handlers reach (the ports).

pub mod error;
pub mod extract;
pub mod lookups;
pub mod middleware;
pub mod pagination;
pub mod routes;
pub mod state;

pub use error::{ApiError, ErrorCode};
#[cfg(feature = "serving")]
pub use routes::InferenceGroup;
pub use routes::{DatasetsGroup, EndpointGroup, KeysGroup, ModelsGroup};
pub use state::AppState;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use error::LAMBDA_BODY_LIMIT;
use middleware::scope::Guard;
use middleware::{auth, header_limit, rate_limit, request_id};
use tower_http::catch_panic::CatchPanicLayer;

/// Serves `routes` at their bare paths and under `/v1`.
fn versioned(routes: Router<AppState>) -> Router<AppState> {
    Router::new().merge(routes.clone()).nest("/v1", routes)
}

/// The layers of routes that need a key (the last added runs first): authentication, then the
/// rate limit; each route then checks its scope, caps its body and applies idempotency
/// ([`middleware::scope::Guard`]). A panicking handler is turned into a 500 below idempotency
/// too, so its claim on an `Idempotency-Key` is released for a retry.
fn protected(routes: Router<AppState>, state: &AppState, body_limit: usize) -> Router<AppState> {
    keyed(versioned(routes), state, body_limit)
}

/// The layers of [`protected`], around routes already at their final paths.
fn keyed(routes: Router<AppState>, state: &AppState, body_limit: usize) -> Router<AppState> {
    routes
        .layer(CatchPanicLayer::new())
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(from_fn_with_state(
            state.clone(),
            rate_limit::enforce_rate_limit,
        ))
        .layer(from_fn_with_state(state.clone(), auth::authenticate))
}

/// A group's routes: public and keyed ones at their bare paths and under `/v1`, its legacy
/// routes under `/v0` only (behind the same layers). `body_limit` caps every request body.
fn group_routes<G: EndpointGroup>(state: &AppState, body_limit: usize) -> Router<AppState> {
    let guard = Guard::new(state, body_limit);
    Router::new()
        .merge(versioned(G::public_routes()))
        .merge(protected(G::protected_routes(&guard), state, body_limit))
        .merge(keyed(G::legacy_routes(&guard), state, body_limit))
}

/// The outer shell every app gets: the 404 fallback, panic catching, and the request-id layer
/// that renders every error into the envelope.
fn finish(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(|| async { ApiError::from_status(axum::http::StatusCode::NOT_FOUND) })
        .layer(CatchPanicLayer::new())
        .layer(from_fn(header_limit::limit_headers))
        .layer(from_fn(request_id::assign_request_id))
        .with_state(state)
}

/// One group alone, as its Lambda function serves it: bodies are capped at
/// [`LAMBDA_BODY_LIMIT`], the most API Gateway can hand to a function.
pub fn group_app<G: EndpointGroup>(state: AppState) -> Router {
    finish(group_routes::<G>(&state, LAMBDA_BODY_LIMIT), state)
}

/// Every group merged, as `plexe serve` serves it.
#[cfg(feature = "serving")]
pub fn app(state: AppState) -> Router {
    let router = Router::new()
        .merge(group_routes::<KeysGroup>(&state, error::JSON_BODY_LIMIT))
        .merge(group_routes::<DatasetsGroup>(
            &state,
            error::JSON_BODY_LIMIT,
        ))
        .merge(group_routes::<ModelsGroup>(&state, error::JSON_BODY_LIMIT))
        .merge(group_routes::<InferenceGroup>(
            &state,
            error::JSON_BODY_LIMIT,
        ));
    finish(router, state)
}
