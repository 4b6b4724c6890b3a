//! `GET /health`: no key needed; says which backend serves and whether the store answers
//! (200, or 503 `service_unavailable` when it does not).

use crate::http::error::ApiError;
use crate::http::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::time::Duration;

const STORE_PING_TIMEOUT: Duration = Duration::from_secs(3);

pub fn routes() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let backend = state.store.backend();
    let answer = tokio::time::timeout(STORE_PING_TIMEOUT, state.store.ping()).await;
    match answer {
        Ok(Ok(())) => Ok(Json(
            json!({ "status": "ok", "backend": backend, "store": "ok" }),
        )),
        Ok(Err(e)) => Err(
            ApiError::unavailable(format!("health: store ping failed: {e}"))
                .with_details(json!({ "backend": backend, "store": "unavailable" })),
        ),
        Err(_) => Err(ApiError::unavailable("health: store ping timed out")
            .with_details(json!({ "backend": backend, "store": "unavailable" }))),
    }
}
