//! `GET /health`: no key needed; says which backend serves and whether the store answers
//! (200, or 503 `service_unavailable` when it does not).

use crate::api::ErrorEnvelope;
use crate::api::operations::Health;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::time::Duration;

const STORE_PING_TIMEOUT: Duration = Duration::from_secs(3);

pub fn routes() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    summary = "Backend and store health (no key needed)",
    security(()),
    responses(
        (status = 200, description = "The service and its store answer", body = Health),
        (status = 503, description = "The store does not answer", body = ErrorEnvelope)
    )
)]
async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let backend = state.store.backend();
    let answer = tokio::time::timeout(STORE_PING_TIMEOUT, state.store.ping()).await;
    match answer {
        Ok(Ok(())) => Ok(Json(Health {
            status: "ok".into(),
            backend: backend.into(),
            store: "ok".into(),
        })),
        Ok(Err(e)) => Err(
            ApiError::unavailable(format!("health: store ping failed: {e}"))
                .with_details(json!({ "backend": backend, "store": "unavailable" })),
        ),
        Err(_) => Err(ApiError::unavailable("health: store ping timed out")
            .with_details(json!({ "backend": backend, "store": "unavailable" }))),
    }
}

/// This route's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(health))]
pub struct HealthApi;
