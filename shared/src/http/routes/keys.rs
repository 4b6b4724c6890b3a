//! The `keys` group: `GET /me` and the account's API keys (`admin` scope).

use crate::api::ErrorEnvelope;
use crate::api::keys::{ApiKeyList, ApiKeyView, CreateKeyRequest, CreatedKey, Me, RateLimit};
use crate::domain::api_keys::{self, Scope};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, Caller};
use crate::http::middleware::rate_limit::RateLimitState;
use crate::http::middleware::scope::Guard;
use crate::http::pagination::{PageQuery, Pagination};
use crate::http::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};

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
    responses((status = 200, description = "The calling key", body = Me))
)]
async fn me(caller: Caller, rate: Option<Extension<RateLimitState>>) -> Json<Me> {
    Json(Me {
        account_id: caller.account.account_id.clone(),
        account_name: caller.account.name.clone(),
        key_id: caller.key.key_id.clone(),
        key_name: caller.key.name.clone(),
        scopes: caller.key.scopes.clone(),
        tier: caller.account.tier,
        rate_limit: rate.map(|Extension(r)| RateLimit {
            limit: r.limit,
            remaining: r.remaining,
            reset: r.reset,
            window_seconds: r.window_seconds,
        }),
    })
}

#[utoipa::path(
    post,
    path = "/api-keys",
    tag = "keys",
    summary = "Create an API key (admin)",
    request_body = CreateKeyRequest,
    responses(
        (status = 201, description = "The key, with its secret shown this once", body = CreatedKey),
        (status = 422, description = "An unknown scope or a bad name", body = ErrorEnvelope)
    )
)]
async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateKeyRequest>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let scopes = Scope::parse_list(&body.scopes)?;
    let issued = api_keys::create_key(
        state.store.as_ref(),
        &caller.account.account_id,
        &body.name,
        scopes,
    )
    .await?;
    tracing::info!(key_id = %issued.key.key_id, "API key created");
    Ok((StatusCode::CREATED, Json(CreatedKey::from(&issued))))
}

#[utoipa::path(
    get,
    path = "/api-keys",
    tag = "keys",
    summary = "List the account's API keys without secrets (admin)",
    params(PageQuery),
    responses((status = 200, description = "The account's keys, newest first", body = ApiKeyList))
)]
async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    page: Pagination,
) -> Result<Json<ApiKeyList>, ApiError> {
    let (keys, total) = api_keys::list_keys(
        state.store.as_ref(),
        &caller.account.account_id,
        page.limit,
        page.offset,
    )
    .await?;
    Ok(Json(ApiKeyList {
        api_keys: keys.iter().map(ApiKeyView::from).collect(),
        pagination: page.info(total),
    }))
}

#[utoipa::path(
    delete,
    path = "/api-keys/{key_id}",
    tag = "keys",
    summary = "Revoke an API key (admin)",
    params(("key_id" = String, Path, description = "key_…")),
    responses(
        (status = 200, description = "The key, revoked", body = ApiKeyView),
        (status = 404, description = "No such key in this account", body = ErrorEnvelope),
        (status = 409, description = "The account's last admin key cannot be revoked", body = ErrorEnvelope)
    )
)]
async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let revoked =
        api_keys::revoke_key(state.store.as_ref(), &caller.account.account_id, &key_id).await;
    // Whatever the outcome, the next request with this key reads it afresh.
    state.lookups.forget_key(&key_id);
    let key = revoked?;
    tracing::info!(key_id = %key.key_id, "API key revoked");
    Ok(Json(ApiKeyView::from(&key)))
}

/// This group's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(me, create_key, list_keys, revoke_key))]
pub struct KeysApi;
