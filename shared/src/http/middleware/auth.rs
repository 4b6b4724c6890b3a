//! Authentication: `Authorization: Bearer <key>` or `x-api-key: <key>`. A missing key is 401
//! `missing_api_key`; a malformed, unknown or revoked one is 401 `invalid_api_key`. On success the
//! [`Caller`] (account + key) goes into the request's extensions. Keys are never logged. The
//! key and account reads come from [`crate::http::lookups`] (at most 1 s stale).

use crate::domain::accounts::{self, Account};
use crate::domain::api_keys::{self, ApiKey};
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::Caller;
use crate::http::middleware::idempotency::SealingKey;
use crate::http::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::time::Instant;

const API_KEY_HEADER: &str = "x-api-key";

/// The presented key: `Ok(None)` when none was sent, `Err` when the header is unusable.
fn presented_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if let Some(v) = headers.get(API_KEY_HEADER) {
        let v = v.to_str().map_err(|_| invalid())?.trim();
        if v.is_empty() {
            return Err(invalid());
        }
        return Ok(Some(v.to_string()));
    }
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| invalid())?.trim();
    let Some((scheme, token)) = v.split_once(' ') else {
        return Err(invalid());
    };
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(invalid());
    }
    Ok(Some(token.trim().to_string()))
}

fn invalid() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidApiKey,
        "The API key is malformed, unknown or revoked. Send a valid key as \
         'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
    )
}

/// The key `secret` names, from the lookup cache or the store; the secret is checked against
/// its hash on every request, cached or not.
async fn caller_key(state: &AppState, secret: &str) -> Result<Arc<ApiKey>, ApiError> {
    let key_id = api_keys::key_id_of_secret(secret).ok_or_else(invalid)?;
    let key = match state.lookups.keys.get(&key_id) {
        Some(key) => key,
        None => {
            let read_at = Instant::now();
            let key = Arc::new(
                api_keys::get_key(state.store.as_ref(), &key_id)
                    .await?
                    .ok_or_else(invalid)?,
            );
            state.lookups.keys.insert(key_id, key.clone(), read_at);
            key
        }
    };
    if !api_keys::verifies(&key, secret) {
        return Err(invalid());
    }
    Ok(key)
}

async fn caller_account(state: &AppState, account_id: &str) -> Result<Arc<Account>, ApiError> {
    if let Some(account) = state.lookups.accounts.get(account_id) {
        return Ok(account);
    }
    let read_at = Instant::now();
    let account = Arc::new(
        accounts::get_account(state.store.as_ref(), account_id)
            .await?
            .ok_or_else(invalid)?,
    );
    state
        .lookups
        .accounts
        .insert(account_id.to_string(), account.clone(), read_at);
    Ok(account)
}

pub async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(secret) = presented_key(req.headers())? else {
        return Err(ApiError::new(
            ErrorCode::MissingApiKey,
            "This route needs an API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'. \
             The local server writes its first admin key to <data-dir>/admin.key.",
        ));
    };
    let key = caller_key(&state, &secret).await?;
    let account = caller_account(&state, &key.account_id).await?;
    tracing::Span::current().record("account_id", account.account_id.as_str());
    tracing::debug!(key_id = %key.key_id, account_id = %account.account_id, "authenticated");
    let sealing_key = SealingKey::derive(&secret);
    req.extensions_mut().insert(Caller {
        account,
        key,
        sealing_key,
    });
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn reads_either_header() {
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer abc")])).ok(),
            Some(Some("abc".into()))
        );
        assert_eq!(
            presented_key(&headers(&[("x-api-key", "abc")])).ok(),
            Some(Some("abc".into()))
        );
        assert_eq!(presented_key(&headers(&[])).ok(), Some(None));
        assert!(presented_key(&headers(&[("authorization", "Basic abc")])).is_err());
        assert!(presented_key(&headers(&[("authorization", "Bearer ")])).is_err());
    }
}
