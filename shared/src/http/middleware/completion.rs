//! Requests that change state run to their end even when the client goes away. hyper drops a
//! request's future when its connection closes, which would cut a handler between two writes
//! (a build written but never queued) or leave an idempotency claim standing until it expires.
//! Such requests run on their own task, which the connection's end does not cancel. GET and
//! HEAD change nothing and stay cancellable.

use crate::http::error::ApiError;
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

pub async fn run_to_completion(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let task = tokio::spawn(next.run(req).instrument(tracing::Span::current()));
    match task.await {
        Ok(response) => response,
        Err(e) => ApiError::internal(format!("request task ended abnormally: {e}")).into_response(),
    }
}
