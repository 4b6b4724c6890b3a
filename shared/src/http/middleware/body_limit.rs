//! Caps request bodies (6 MB on JSON and direct-upload routes, Lambda's payload limit). The body
//! is read here, up to the limit, whether its length is declared or chunked: over the limit, the
//! rest is read and discarded (up to [`MAX_DISCARD_BYTES`]) so the client gets to read the 413
//! instead of a reset connection. Every route behind this layer buffers its body anyway.

use crate::http::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

/// How much of an oversized body is read and discarded before answering; beyond this the
/// connection is simply closed.
pub const MAX_DISCARD_BYTES: u64 = 64 * 1024 * 1024;

pub async fn limit_body(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (parts, mut body) = req.into_parts();
    if let Some(length) = declared
        && length > limit as u64
    {
        if length <= MAX_DISCARD_BYTES {
            discard(body, 0).await;
        }
        return ApiError::payload_too_large(limit).into_response();
    }
    let mut buffered: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return ApiError::invalid_request(
                "The request body could not be read completely: it stopped arriving or the \
                 connection closed. Send the whole body without pausing.",
            )
            .into_response();
        };
        if let Ok(data) = frame.into_data() {
            if buffered.len() + data.len() > limit {
                discard(body, buffered.len() as u64 + data.len() as u64).await;
                return ApiError::payload_too_large(limit).into_response();
            }
            buffered.extend_from_slice(&data);
        }
    }
    let req = Request::from_parts(parts, Body::from(Bytes::from(buffered)));
    next.run(req).await
}

/// Reads and drops the rest of `body`, `already` bytes of which count as read.
async fn discard(mut body: Body, already: u64) {
    let mut read = already;
    while read <= MAX_DISCARD_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            _ => return,
        }
    }
}
