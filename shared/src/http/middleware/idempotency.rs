//! `Idempotency-Key` on POST: the first deterministic answer per (account, key) is kept for 24 h
//! with a hash of method + path + body and the id of the API key that sent it. A retry by the
//! same API key with the same request gets that answer again (same status and body, plus
//! `Idempotent-Replayed: true`) and nothing runs twice; the same key with another request, or
//! from another API key, is 422; a retry while the first is still running is 409.
//!
//! - **Order.** This layer runs per route, after the route's scope check (see
//!   [`super::scope::Guard`]), so a key without the scope never reaches a replay.
//! - **What is kept.** Only answers that a retry would get again: 2xx and 400, 404, 413, 415,
//!   422. A 401, 403, 409, 429 or 5xx releases the claim, so a retry runs afresh.
//! - **Sealed.** The answer is stored encrypted (AES-256-GCM) under a key derived from the
//!   calling API key's secret, which the store never holds (it keeps only the secret's hash).
//!   No record or blob can be read without the secret: not the new key a `POST /api-keys`
//!   answered with, not an upload URL. The pk/sk of the record are the additional data, so a
//!   sealed answer cannot be moved to another record.
//! - **Expiry.** Records carry the store's TTL. Answers too large for an item go to a blob under
//!   [`crate::domain::layout::IDEMPOTENCY_PREFIX`], which expires a day later: an S3 lifecycle rule on AWS, the periodic
//!   sweep of `plexe serve` on the folder ([`crate::ports::Blobs::delete_older_than`]).
//!
//! The key is claimed with a conditional put before the handler runs (so two concurrent retries
//! cannot both run it). A claim left by a crashed process expires after [`CLAIM_TTL_SECONDS`];
//! a client that goes away does not leave one, because the request runs to its end regardless
//! ([`super::completion`]).

use crate::domain::layout::{account_pk, idempotency_blob_key, idempotency_sk};
use crate::http::error::{ApiError, ErrorCode, JSON_BODY_LIMIT};
use crate::http::extract::Caller;
use crate::http::state::AppState;
use crate::ids::now_epoch;
use crate::ports::{Condition, Item, StoreError};
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const IDEMPOTENCY_KEY_HEADER: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");
pub const RECORD_TTL_SECONDS: i64 = 24 * 3600;
/// Longer than any request may run (Lambda's 15 minute maximum).
pub const CLAIM_TTL_SECONDS: i64 = 15 * 60;
/// Sealed answers up to this size are kept inside the store item (DynamoDB items stop at
/// 400 KB, and base64 adds a third); bigger ones go to the blob store.
const INLINE_SEALED_MAX: usize = 256 * 1024;

/// A key derived from the secret of the calling API key (see [`SealingKey::derive`]). It exists
/// only while that key's holder is calling; the store keeps the secret's hash, never this.
#[derive(Clone)]
pub struct SealingKey([u8; 32]);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
        mac.update(b"\0");
    }
    mac.finalize().into_bytes().into()
}

impl SealingKey {
    /// HMAC-SHA256 of a fixed label under the presented secret: unrelated to the SHA-256 hash
    /// the store keeps, so a reader of the store cannot derive it.
    pub fn derive(secret: &str) -> SealingKey {
        SealingKey(hmac(
            secret.as_bytes(),
            &[b"plexe idempotency sealing key v1"],
        ))
    }

    /// The AEAD key of one record (one per pk/sk, so a key is never shared between records).
    fn record_cipher(&self, pk: &str, sk: &str) -> Result<RandomizedNonceKey, ApiError> {
        let key = hmac(&self.0, &[pk.as_bytes(), sk.as_bytes()]);
        RandomizedNonceKey::new(&AES_256_GCM, &key)
            .map_err(|_| ApiError::internal("idempotency: AES-256-GCM key setup failed"))
    }
}

/// What the store keeps per (account, idempotency key).
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// SHA-256 of method, path and query, and body.
    request_hash: String,
    /// The API key that made the request; only it may replay.
    key_id: String,
    /// `None` while the first request runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer: Option<SealedAnswer>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum SealedAnswer {
    /// Nonce, ciphertext and tag, base64.
    Inline { sealed_b64: String },
    /// The same bytes in a blob under [`crate::domain::layout::IDEMPOTENCY_PREFIX`].
    Blob { blob_key: String },
}

/// The answer before sealing: this header as JSON, then the body bytes.
#[derive(Debug, Serialize, Deserialize)]
struct AnswerHead {
    status: u16,
    #[serde(default)]
    content_type: Option<String>,
    /// An error is kept as its parts and rendered anew on replay, so its `request_id` is the
    /// retry's own.
    #[serde(default)]
    error: Option<StoredError>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredError {
    code: String,
    message: String,
    details: Option<Value>,
}

/// The statuses a retry of the same request would get again, and so may be replayed.
fn is_deterministic(status: StatusCode) -> bool {
    status.is_success()
        || matches!(
            status,
            StatusCode::BAD_REQUEST
                | StatusCode::NOT_FOUND
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::UNSUPPORTED_MEDIA_TYPE
                | StatusCode::UNPROCESSABLE_ENTITY
        )
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

fn seal(
    cipher: &RandomizedNonceKey,
    aad: &[u8],
    head: &AnswerHead,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let head = serde_json::to_vec(head)
        .map_err(|e| ApiError::internal(format!("idempotency answer head: {e}")))?;
    let head_len = u32::try_from(head.len())
        .map_err(|_| ApiError::internal("idempotency answer head over 4 GB"))?;
    let mut data = Vec::with_capacity(4 + head.len() + body.len() + 16);
    data.extend_from_slice(&head_len.to_be_bytes());
    data.extend_from_slice(&head);
    data.extend_from_slice(body);
    let nonce = cipher
        .seal_in_place_append_tag(Aad::from(aad), &mut data)
        .map_err(|_| ApiError::internal("idempotency: sealing the answer failed"))?;
    let mut sealed = Vec::with_capacity(NONCE_LEN + data.len());
    sealed.extend_from_slice(nonce.as_ref());
    sealed.extend_from_slice(&data);
    Ok(sealed)
}

fn open(
    cipher: &RandomizedNonceKey,
    aad: &[u8],
    sealed: &[u8],
) -> Result<(AnswerHead, Bytes), ApiError> {
    let corrupt = || ApiError::internal("idempotency: a stored answer does not open");
    if sealed.len() < NONCE_LEN {
        return Err(corrupt());
    }
    let (nonce, data) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
    let mut data = data.to_vec();
    let plain = cipher
        .open_in_place(nonce, Aad::from(aad), &mut data)
        .map_err(|_| corrupt())?;
    let (len, rest) = plain.split_first_chunk::<4>().ok_or_else(corrupt)?;
    let head_len = u32::from_be_bytes(*len) as usize;
    if rest.len() < head_len {
        return Err(corrupt());
    }
    let (head, body) = rest.split_at(head_len);
    let head: AnswerHead = serde_json::from_slice(head).map_err(|_| corrupt())?;
    Ok((head, Bytes::copy_from_slice(body)))
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
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| (0x21..=0x7e).contains(&b)))
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
    let sk = idempotency_sk(&key_digest);
    let cipher = caller.sealing_key.record_cipher(&pk, &sk)?;
    let aad = format!("{pk}\n{sk}");

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
        let claim = Record {
            request_hash: hash.clone(),
            key_id: caller.key.key_id.clone(),
            answer: None,
        };
        let claim = Item::new(&pk, &sk, serde_json::to_value(claim).unwrap_or_default())
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
                let record: Record = serde_json::from_value(item.data).map_err(|_| {
                    ApiError::conflict(
                        "This Idempotency-Key belongs to a request recorded in an older format; \
                         use a new key.",
                    )
                })?;
                return replay_or_refuse(&state, record, &caller, &hash, &cipher, &aad).await;
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
    if !is_deterministic(response.status()) {
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
    let head = AnswerHead {
        status: resp_parts.status.as_u16(),
        content_type: resp_parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        error: resp_parts
            .extensions
            .get::<ApiError>()
            .map(|error| StoredError {
                code: error.code.as_str().to_string(),
                message: error.message.clone(),
                details: error.details.clone(),
            }),
    };
    // An error's body is rendered anew on replay: only its parts are kept.
    let body: &[u8] = if head.error.is_some() {
        &[]
    } else {
        &resp_bytes
    };
    let saved = record_answer(
        &state,
        &caller,
        (&pk, &sk, rev),
        &key_digest,
        hash,
        seal(&cipher, aad.as_bytes(), &head, body),
    )
    .await;
    if let Err(e) = saved {
        // The work is done and the client gets its answer; only a later replay is lost.
        tracing::warn!(error = %e, "could not record the idempotent response");
        release(&state, &pk, &sk).await;
    }
    Ok(Response::from_parts(resp_parts, Body::from(resp_bytes)))
}

/// Replaces the claim (at revision `rev`) with the sealed answer, inline or in a blob.
async fn record_answer(
    state: &AppState,
    caller: &Caller,
    (pk, sk, rev): (&str, &str, u64),
    key_digest: &str,
    request_hash: String,
    sealed: Result<Vec<u8>, ApiError>,
) -> Result<(), ApiError> {
    let sealed = sealed?;
    let answer = if sealed.len() <= INLINE_SEALED_MAX {
        SealedAnswer::Inline {
            sealed_b64: BASE64.encode(&sealed),
        }
    } else {
        let blob_key = idempotency_blob_key(&caller.account.account_id, key_digest);
        state.blobs.put(&blob_key, Bytes::from(sealed)).await?;
        SealedAnswer::Blob { blob_key }
    };
    let record = Record {
        request_hash,
        key_id: caller.key.key_id.clone(),
        answer: Some(answer),
    };
    let data = serde_json::to_value(&record)
        .map_err(|e| ApiError::internal(format!("idempotency record: {e}")))?;
    state
        .store
        .put(
            Item::new(pk, sk, data).with_ttl(now_epoch() + RECORD_TTL_SECONDS),
            Condition::Revision(rev),
        )
        .await?;
    Ok(())
}

async fn release(state: &AppState, pk: &str, sk: &str) {
    if let Err(e) = state.store.delete(pk, sk, Condition::None).await {
        tracing::warn!(error = %e, "could not release an idempotency claim; it expires by itself");
    }
}

async fn replay_or_refuse(
    state: &AppState,
    record: Record,
    caller: &Caller,
    hash: &str,
    cipher: &RandomizedNonceKey,
    aad: &str,
) -> Result<Response, ApiError> {
    if record.key_id != caller.key.key_id {
        return Err(ApiError::new(
            ErrorCode::ValidationError,
            "This Idempotency-Key was used by another API key of this account; only the key \
             that made a request can replay it. Use a new Idempotency-Key.",
        )
        .with_details(serde_json::json!({ "field": "Idempotency-Key" })));
    }
    if record.request_hash != hash {
        return Err(ApiError::new(
            ErrorCode::ValidationError,
            "This Idempotency-Key was already used with a different request (method, path or \
             body). Use a new key for a new request.",
        )
        .with_details(serde_json::json!({ "field": "Idempotency-Key" })));
    }
    let Some(answer) = record.answer else {
        return Err(ApiError::conflict(
            "A request with this Idempotency-Key is still being processed; retry in a moment.",
        ));
    };
    let sealed = match answer {
        SealedAnswer::Inline { sealed_b64 } => Bytes::from(
            BASE64
                .decode(sealed_b64)
                .map_err(|e| ApiError::internal(format!("idempotency record: {e}")))?,
        ),
        SealedAnswer::Blob { blob_key } => state.blobs.get(&blob_key).await?,
    };
    let (head, body) = open(cipher, aad.as_bytes(), &sealed)?;
    let mut response = match head.error {
        Some(StoredError {
            code,
            message,
            details,
        }) => {
            let code = ErrorCode::parse(&code).unwrap_or(ErrorCode::InternalError);
            let mut error = ApiError::new(code, message);
            error.details = details;
            error.into_response()
        }
        None => rebuild(head.status, head.content_type, body)?,
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

    fn head() -> AnswerHead {
        AnswerHead {
            status: 201,
            content_type: Some("application/json".into()),
            error: None,
        }
    }

    fn aad(account: &str, digest: &str) -> Vec<u8> {
        format!("{}\n{}", account_pk(account), idempotency_sk(digest)).into_bytes()
    }

    #[test]
    fn a_sealed_answer_opens_only_with_its_key_and_record() {
        let key = SealingKey::derive("plx_secret_a");
        let cipher = key
            .record_cipher(&account_pk("a"), &idempotency_sk("1"))
            .expect("cipher");
        let body = br#"{"api_key":"plx_new_secret"}"#;
        let sealed = seal(&cipher, &aad("a", "1"), &head(), body).expect("seal");
        assert!(
            !sealed.windows(14).any(|w| w == b"plx_new_secret"),
            "the plaintext shows through"
        );
        let (h, b) = open(&cipher, &aad("a", "1"), &sealed).expect("open");
        assert_eq!((h.status, &b[..]), (201, &body[..]));

        // Another API key's secret, another record or tampered bytes do not open it.
        let other = SealingKey::derive("plx_secret_b")
            .record_cipher(&account_pk("a"), &idempotency_sk("1"))
            .expect("cipher");
        assert!(open(&other, &aad("a", "1"), &sealed).is_err());
        let moved = key
            .record_cipher(&account_pk("a"), &idempotency_sk("2"))
            .expect("cipher");
        assert!(open(&moved, &aad("a", "2"), &sealed).is_err());
        assert!(open(&cipher, &aad("b", "1"), &sealed).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(open(&cipher, &aad("a", "1"), &tampered).is_err());
        assert!(open(&cipher, &aad("a", "1"), &sealed[..5]).is_err());
    }

    #[test]
    fn only_answers_a_retry_would_get_again_are_kept() {
        for kept in [200, 201, 202, 204, 400, 404, 413, 415, 422] {
            assert!(is_deterministic(
                StatusCode::from_u16(kept).expect("status")
            ));
        }
        for not_kept in [401, 403, 405, 409, 429, 500, 502, 503] {
            assert!(!is_deterministic(
                StatusCode::from_u16(not_kept).expect("status")
            ));
        }
    }
}
