//! Caps the size of a request's headers: at most [`MAX_HEADER_BYTES`] of names and values in
//! all, else 400 `invalid_request` (API Gateway refuses such requests on AWS before they reach
//! a function; the local server answers the same way, in the envelope). Headers beyond what
//! the HTTP server itself buffers never become a request at all.

use crate::http::error::ApiError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The most header bytes (names, values and the `: ` and line end of each) a request may send.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

pub async fn limit_headers(req: Request, next: Next) -> Response {
    let size = header_bytes(req.headers());
    if size > MAX_HEADER_BYTES {
        return ApiError::invalid_request(format!(
            "The request's headers are {size} bytes, over the limit of {} KB. Send the data in \
             the body instead.",
            MAX_HEADER_BYTES / 1024
        ))
        .with_details(json!({ "limit_bytes": MAX_HEADER_BYTES }))
        .into_response();
    }
    next.run(req).await
}

fn header_bytes(headers: &axum::http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn counts_names_and_values() {
        let mut headers = HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static("12345"));
        assert_eq!(header_bytes(&headers), 3 + 5 + 4);
    }
}
