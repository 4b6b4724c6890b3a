//! Requests that change state run to their end even when the client goes away. hyper drops a
//! request's future when its connection closes, which would cut a handler between two writes
//! (a build written but never queued) or leave an idempotency claim standing until it expires.
//! Such requests run on their own task, which the connection's end does not cancel. GET and
//! HEAD change nothing and stay cancellable; so do predictions (POST, but they write nothing)
//! unless they carry an `Idempotency-Key`, whose claim is a write. A task per prediction cost a
//! cross-thread wake-up on the hottest route.

use crate::http::error::ApiError;
use crate::http::middleware::idempotency::IDEMPOTENCY_KEY_HEADER;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

/// What a route's handler may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Anything, on any method but GET and HEAD.
    State,
    /// Nothing but an idempotency claim, when the request carries a key.
    OnlyIdempotencyClaims,
}

pub async fn run_to_completion(State(writes): State<Writes>, req: Request, next: Next) -> Response {
    let cancellable = match writes {
        Writes::State => matches!(*req.method(), Method::GET | Method::HEAD),
        Writes::OnlyIdempotencyClaims => !req.headers().contains_key(IDEMPOTENCY_KEY_HEADER),
    };
    if cancellable {
        return next.run(req).await;
    }
    let task = tokio::spawn(next.run(req).instrument(tracing::Span::current()));
    match task.await {
        Ok(response) => response,
        Err(e) => ApiError::internal(format!("request task ended abnormally: {e}")).into_response(),
    }
}
