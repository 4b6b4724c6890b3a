//! The `keys` group: `GET /me` and the account's API keys (`admin` scope).

use crate::domain::api_keys::{self, Scope};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, Caller};
use crate::http::middleware::rate_limit::RateLimitState;
use crate::http::middleware::scope::scoped;
use crate::http::pagination::Pagination;
use crate::http::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        // Any valid key may look at itself, whatever its scopes.
        .route("/me", get(me))
        .route(
            "/api-keys",
            scoped(Scope::Admin, get(list_keys).post(create_key)),
        )
        .route(
            "/api-keys/{key_id}",
            scoped(Scope::Admin, delete(revoke_key)),
        )
}

async fn me(caller: Caller, rate: Option<Extension<RateLimitState>>) -> Json<Value> {
    Json(json!({
        "account_id": caller.account.account_id,
        "account_name": caller.account.name,
        "key_id": caller.key.key_id,
        "key_name": caller.key.name,
        "scopes": caller.key.scopes,
        "tier": caller.account.tier,
        "rate_limit": rate.map(|Extension(r)| r),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    scopes: Vec<String>,
}

async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let scopes = Scope::parse_list(&body.scopes)?;
    let issued = api_keys::create_key(
        state.store.as_ref(),
        &caller.account.account_id,
        &body.name,
        scopes,
    )
    .await?;
    tracing::info!(key_id = %issued.key.key_id, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "key_id": issued.key.key_id,
            "api_key": issued.secret,
            "name": issued.key.name,
            "scopes": issued.key.scopes,
            "created_at": issued.key.created_at,
        })),
    ))
}

async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    page: Pagination,
) -> Result<Json<Value>, ApiError> {
    let (keys, total) = api_keys::list_keys(
        state.store.as_ref(),
        &caller.account.account_id,
        page.limit,
        page.offset,
    )
    .await?;
    let items = keys.iter().map(api_keys::ApiKey::to_public_json).collect();
    Ok(Json(page.page_body("api_keys", items, total)))
}

async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key =
        api_keys::revoke_key(state.store.as_ref(), &caller.account.account_id, &key_id).await?;
    tracing::info!(key_id = %key.key_id, "API key revoked");
    Ok(Json(key.to_public_json()))
}
