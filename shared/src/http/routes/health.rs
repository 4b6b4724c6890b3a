//! `GET /health`: no key needed; says which backend serves and whether the store answers
//! (200, or 503 `service_unavailable` when it does not). The store is asked at most once per
//! [`CHECK_FOR`] per process, whatever the request rate (concurrent requests wait for the one
//! check in flight), so a load balancer or an attacker polling it costs the store nothing.

use crate::api::ErrorEnvelope;
use crate::api::operations::Health;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::time::{Duration, Instant};

const STORE_PING_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one store check answers for.
pub const CHECK_FOR: Duration = Duration::from_secs(2);

/// The last store check: when, and whether the store answered (else why not).
#[derive(Default)]
pub struct StoreCheck {
    last: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

impl StoreCheck {
    async fn answer(&self, state: &AppState) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = &*last
            && at.elapsed() < CHECK_FOR
        {
            return answer.clone();
        }
        let answer = match tokio::time::timeout(STORE_PING_TIMEOUT, state.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("store ping failed: {e}")),
            Err(_) => Err("store ping timed out".to_string()),
        };
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

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
    match state.store_check.answer(&state).await {
        Ok(()) => Ok(Json(Health {
            status: "ok".into(),
            backend: backend.into(),
            store: "ok".into(),
        })),
        Err(cause) => Err(ApiError::unavailable(format!("health: {cause}"))
            .with_details(json!({ "backend": backend, "store": "unavailable" }))),
    }
}

/// This route's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(health))]
pub struct HealthApi;
