//! Caps request bodies (6 MB on JSON and direct-upload routes). A declared `Content-Length` over
//! the limit is answered 413 at once, after reading and discarding the body so the client gets to
//! read the answer instead of a reset connection; a chunked body is cut off at the limit and the
//! extractor reading it answers 413.

use crate::http::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};

/// How much of an oversized body is read and discarded before answering; beyond this the
/// connection is simply closed.
const MAX_DISCARD_BYTES: u64 = 64 * 1024 * 1024;

pub async fn limit_body(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared
        && length > limit as u64
    {
        if length <= MAX_DISCARD_BYTES {
            let mut body = req.into_body();
            while let Some(Ok(_)) = body.frame().await {}
        }
        return ApiError::payload_too_large(limit).into_response();
    }
    let req = req.map(|body| Body::new(Limited::new(body, limit)));
    next.run(req).await
}
