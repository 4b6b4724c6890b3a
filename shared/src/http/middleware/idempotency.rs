//! `Idempotency-Key` on POST: the first response per (account, key) is kept for 24 h along with a
//! hash of method + path + body. A retry with the same body gets that response again (same status
//! and body, plus `Idempotent-Replayed: true`) and nothing runs twice; the same key with another
//! request is 422; a retry while the first is still running is 409.
//!
//! The key is claimed with a conditional put before the handler runs (so two concurrent retries
//! cannot both run it) and the claim is released when the handler fails with a 5xx, so a retry
//! can succeed. A claim left by a crashed process expires after [`CLAIM_TTL_SECONDS`].

use crate::domain::account_pk;
use crate::http::error::{ApiError, ErrorCode, JSON_BODY_LIMIT};
use crate::http::extract::Caller;
use crate::http::state::AppState;
use crate::ids::now_epoch;
use crate::ports::{Condition, Item, StoreError};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const IDEMPOTENCY_KEY_HEADER: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");
pub const RECORD_TTL_SECONDS: i64 = 24 * 3600;
/// Longer than any request may run (Lambda's 15 minute maximum).
pub const CLAIM_TTL_SECONDS: i64 = 15 * 60;
/// Responses up to this size are kept inside the store item (DynamoDB items stop at 400 KB);
/// bigger ones go to the blob store.
const INLINE_BODY_MAX: usize = 256 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Record {
    InFlight {
        request_hash: String,
    },
    Done {
        request_hash: String,
        response: StoredResponse,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredResponse {
    /// An error: re-rendered on replay so its `request_id` is the retry's own.
    Error {
        code: String,
        message: String,
        details: Option<Value>,
    },
    Inline {
        status: u16,
        content_type: Option<String>,
        body_b64: String,
    },
    Blob {
        status: u16,
        content_type: Option<String>,
        blob_key: String,
    },
}

fn request_hash(method: &Method, path_and_query: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update(b"\n");
    h.update(path_and_query.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

fn is_length_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

pub async fn apply_idempotency(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if req.method() != Method::POST {
        return Ok(next.run(req).await);
    }
    let Some(raw_key) = req.headers().get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(next.run(req).await);
    };
    let key = raw_key
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()))
        .ok_or_else(|| {
            ApiError::invalid_request("Idempotency-Key must be 1 to 255 visible ASCII characters.")
                .with_details(serde_json::json!({ "field": "Idempotency-Key" }))
        })?;
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return Err(ApiError::internal(
            "idempotency layer ran before authentication",
        ));
    };
    let pk = account_pk(&caller.account.account_id);
    let key_digest = hex::encode(Sha256::digest(key.as_bytes()));
    let sk = format!("IDEM#{key_digest}");

    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(|e| {
        if is_length_limit(&e) {
            ApiError::payload_too_large(JSON_BODY_LIMIT)
        } else {
            ApiError::invalid_request("The request body could not be read.")
        }
    })?;
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let hash = request_hash(&parts.method, path, &bytes);

    // Claim the key; on a lost race look at what the winner left.
    let mut claimed_rev = None;
    for _ in 0..2 {
        let claim = Item::new(
            &pk,
            &sk,
            serde_json::to_value(Record::InFlight {
                request_hash: hash.clone(),
            })
            .unwrap_or_default(),
        )
        .with_ttl(now_epoch() + CLAIM_TTL_SECONDS);
        match state.store.put(claim, Condition::Absent).await {
            Ok(rev) => {
                claimed_rev = Some(rev);
                break;
            }
            Err(StoreError::ConditionFailed) => {
                let Some(item) = state.store.get(&pk, &sk).await? else {
                    continue; // expired between the put and the get: claim again
                };
                let record: Record = serde_json::from_value(item.data)
                    .map_err(|e| ApiError::internal(format!("idempotency record: {e}")))?;
                return replay_or_refuse(&state, record, &hash).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let Some(rev) = claimed_rev else {
        return Err(ApiError::conflict(
            "This Idempotency-Key is being used by another request; retry shortly.",
        ));
    };

    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if response.status().is_server_error() {
        release(&state, &pk, &sk).await;
        return Ok(response);
    }
    let (resp_parts, resp_body) = response.into_parts();
    let resp_bytes = match axum::body::to_bytes(resp_body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            release(&state, &pk, &sk).await;
            return Err(ApiError::internal(format!("buffering the response: {e}")));
        }
    };
    let stored = match resp_parts.extensions.get::<ApiError>() {
        Some(error) => Ok(StoredResponse::Error {
            code: error.code.as_str().to_string(),
            message: error.message.clone(),
            details: error.details.clone(),
        }),
        None => {
            let blob_key = format!("idempotency/{}/{key_digest}", caller.account.account_id);
            store_body(
                &state,
                resp_parts.status,
                resp_parts.headers.get(header::CONTENT_TYPE),
                &resp_bytes,
                blob_key,
            )
            .await
        }
    };
    let saved = match stored {
        Ok(response) => {
            let done = Record::Done {
                request_hash: hash,
                response,
            };
            match serde_json::to_value(&done) {
                Ok(data) => state
                    .store
                    .put(
                        Item::new(&pk, &sk, data).with_ttl(now_epoch() + RECORD_TTL_SECONDS),
                        Condition::Revision(rev),
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
        Err(e) => Err(e),
    };
    if let Err(e) = saved {
        // The work is done and the client gets its answer; only a later replay is lost.
        tracing::warn!(error = %e, "could not record the idempotent response");
        release(&state, &pk, &sk).await;
    }
    Ok(Response::from_parts(resp_parts, Body::from(resp_bytes)))
}

async fn store_body(
    state: &AppState,
    status: StatusCode,
    content_type: Option<&HeaderValue>,
    body: &Bytes,
    blob_key: String,
) -> Result<StoredResponse, String> {
    let content_type = content_type
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if body.len() <= INLINE_BODY_MAX {
        return Ok(StoredResponse::Inline {
            status: status.as_u16(),
            content_type,
            body_b64: BASE64.encode(body),
        });
    }
    state
        .blobs
        .put(&blob_key, body.clone())
        .await
        .map_err(|e| e.to_string())?;
    Ok(StoredResponse::Blob {
        status: status.as_u16(),
        content_type,
        blob_key,
    })
}

async fn release(state: &AppState, pk: &str, sk: &str) {
    if let Err(e) = state.store.delete(pk, sk, Condition::None).await {
        tracing::warn!(error = %e, "could not release an idempotency claim; it expires by itself");
    }
}

async fn replay_or_refuse(
    state: &AppState,
    record: Record,
    hash: &str,
) -> Result<Response, ApiError> {
    let (request_hash, stored) = match record {
        Record::InFlight { request_hash } => (request_hash, None),
        Record::Done {
            request_hash,
            response,
        } => (request_hash, Some(response)),
    };
    if request_hash != hash {
        return Err(ApiError::new(
            ErrorCode::ValidationError,
            "This Idempotency-Key was already used with a different request (method, path or \
             body). Use a new key for a new request.",
        )
        .with_details(serde_json::json!({ "field": "Idempotency-Key" })));
    }
    let Some(stored) = stored else {
        return Err(ApiError::conflict(
            "A request with this Idempotency-Key is still being processed; retry in a moment.",
        ));
    };
    let mut response = match stored {
        StoredResponse::Error {
            code,
            message,
            details,
        } => {
            let code = ErrorCode::parse(&code).unwrap_or(ErrorCode::InternalError);
            let mut error = ApiError::new(code, message);
            error.details = details;
            error.into_response()
        }
        StoredResponse::Inline {
            status,
            content_type,
            body_b64,
        } => {
            let body = BASE64
                .decode(body_b64)
                .map_err(|e| ApiError::internal(format!("idempotency record body: {e}")))?;
            rebuild(status, content_type, Bytes::from(body))?
        }
        StoredResponse::Blob {
            status,
            content_type,
            blob_key,
        } => rebuild(status, content_type, state.blobs.get(&blob_key).await?)?,
    };
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    Ok(response)
}

fn rebuild(status: u16, content_type: Option<String>, body: Bytes) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(status)
        .map_err(|e| ApiError::internal(format!("stored status: {e}")))?;
    let mut response = (status, body).into_response();
    if let Some(ct) = content_type.and_then(|ct| HeaderValue::from_str(&ct).ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_method_path_and_body() {
        let a = request_hash(&Method::POST, "/api-keys", b"{}");
        assert_eq!(a, request_hash(&Method::POST, "/api-keys", b"{}"));
        assert_ne!(a, request_hash(&Method::POST, "/api-keys", b"{ }"));
        assert_ne!(a, request_hash(&Method::POST, "/v1/api-keys", b"{}"));
        assert_ne!(a, request_hash(&Method::PUT, "/api-keys", b"{}"));
    }
}
