//! The `keys` group: `GET /me` and the account's API keys (`admin` scope).

use crate::domain::api_keys::{self, Scope};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, Caller};
use crate::http::middleware::rate_limit::RateLimitState;
use crate::http::middleware::scope::Guard;
use crate::http::pagination::Pagination;
use crate::http::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes(guard: &Guard) -> Router<AppState> {
    Router::new()
        // Any valid key may look at itself, whatever its scopes.
        .route("/me", get(me))
        .route(
            "/api-keys",
            guard.scoped(Scope::Admin, get(list_keys).post(create_key)),
        )
        .route(
            "/api-keys/{key_id}",
            guard.scoped(Scope::Admin, delete(revoke_key)),
        )
}

#[utoipa::path(
    get,
    path = "/me",
    tag = "keys",
    summary = "The calling key: account, key id, scopes, tier, rate limit state",
    responses((status = 200, description = "{account_id, key_id, scopes, tier, rate_limit}"), (status = 401, description = "Missing or invalid key"))
)]
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

#[utoipa::path(
    post,
    path = "/api-keys",
    tag = "keys",
    summary = "Create an API key (admin)",
    request_body(content_type = "application/json", description = "{name, scopes: [read|write|predict|admin]}"),
    responses((status = 201, description = "{key_id, api_key (shown once), name, scopes, created_at}"), (status = 403, description = "Not an admin key"))
)]
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

#[utoipa::path(
    get,
    path = "/api-keys",
    tag = "keys",
    summary = "List the account's API keys without secrets (admin)",
    params(("limit" = Option<u32>, Query, description = "1-100, default 20"), ("offset" = Option<u32>, Query, description = "default 0")),
    responses((status = 200, description = "{api_keys, pagination}"), (status = 403, description = "Not an admin key"))
)]
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

#[utoipa::path(
    delete,
    path = "/api-keys/{key_id}",
    tag = "keys",
    summary = "Revoke an API key (admin)",
    params(("key_id" = String, Path, description = "key_…")),
    responses((status = 200, description = "The key, revoked"), (status = 404, description = "No such key"))
)]
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

/// This group's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(me, create_key, list_keys, revoke_key))]
pub struct KeysApi;
