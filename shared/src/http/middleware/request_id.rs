//! Gives every request a `req_<ulid>` id, runs it inside a tracing span carrying that id (so every
//! log line of the request has it), puts `x-request-id` on every response, and renders every
//! error response into the envelope (it is the only layer that knows the id).

use crate::http::error::ApiError;
use crate::ids::new_id;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request (in request extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

pub async fn assign_request_id(mut req: Request, next: Next) -> Response {
    let id = new_id("req");
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %loggable_path(req.uri().path()),
        account_id = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let mut response = span.in_scope(|| render_errors(response, &id));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            "request finished"
        )
    });
    response
}

/// The path as logs may show it: an upload URL's signed token is a credential (it lets its
/// holder store a file) and is replaced by `{token}`.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in ["/uploads/", "/v1/uploads/"] {
        if path.starts_with(prefix) && path.len() > prefix.len() {
            return std::borrow::Cow::Owned(format!("{prefix}{{token}}"));
        }
    }
    std::borrow::Cow::Borrowed(path)
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Replaces the body of an error response with the envelope carrying `request_id`, keeping the
/// headers set on the way out (rate-limit headers, `Allow`, `Retry-After`).
fn render_errors(response: Response, request_id: &str) -> Response {
    let error = match response.extensions().get::<ApiError>() {
        Some(e) => e.clone(),
        None if response.status().is_client_error() || response.status().is_server_error() => {
            if is_json(&response) {
                // A deliberate JSON error body from below this layer (none exist today).
                return response;
            }
            ApiError::from_status(response.status())
        }
        None => return response,
    };
    if error.status().is_server_error() {
        tracing::error!(
            code = error.code.as_str(),
            cause = error.internal_cause().unwrap_or("none"),
            "request failed"
        );
    }
    let mut rendered = error.render(request_id);
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !rendered.headers().contains_key(name)
        {
            rendered.headers_mut().append(name.clone(), value.clone());
        }
    }
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_tokens_stay_out_of_logged_paths() {
        assert_eq!(loggable_path("/uploads/abc.def"), "/uploads/{token}");
        assert_eq!(loggable_path("/v1/uploads/abc"), "/v1/uploads/{token}");
        assert_eq!(loggable_path("/datasets/uploads"), "/datasets/uploads");
        assert_eq!(loggable_path("/models/m"), "/models/m");
    }
}
