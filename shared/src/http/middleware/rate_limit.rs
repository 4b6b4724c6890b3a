//! Per-account request rate limits in fixed one-minute windows, counted with
//! [`Store::increment`](crate::ports::Store::increment) on `RATE#<account_id>` / `<window start>`
//! (expiring after the window), so the count holds across processes and Lambdas. Every
//! authenticated response carries `X-RateLimit-Limit`, `-Remaining` and `-Reset` (epoch seconds);
//! over the limit is 429 `rate_limit_exceeded` with `Retry-After`.

use crate::domain::layout::request_rate_pk;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::Caller;
use crate::http::state::AppState;
use crate::ids::now_epoch;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;
use serde_json::json;

pub const WINDOW_SECONDS: i64 = 60;
pub const LIMIT_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub const REMAINING_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub const RESET_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-reset");
/// What the limit headers say for an account without a request-rate limit (the largest value a
/// 32-bit client parses), since the headers are numeric by convention.
pub const UNLIMITED: u64 = u32::MAX as u64;

/// The caller's standing in the current window (in request extensions, for `GET /me`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimitState {
    /// Requests per window; `None` is unlimited.
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// Epoch seconds when the window ends.
    pub reset: i64,
    pub window_seconds: i64,
}

impl RateLimitState {
    fn write_headers(&self, headers: &mut HeaderMap) {
        let limit = self.limit.unwrap_or(UNLIMITED);
        let remaining = self.remaining.unwrap_or(UNLIMITED);
        headers.insert(LIMIT_HEADER, HeaderValue::from(limit));
        headers.insert(REMAINING_HEADER, HeaderValue::from(remaining));
        headers.insert(RESET_HEADER, HeaderValue::from(self.reset));
    }
}

pub async fn enforce_rate_limit(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return Err(ApiError::internal(
            "rate limit layer ran before authentication",
        ));
    };
    let now = now_epoch();
    let window_start = now - now.rem_euclid(WINDOW_SECONDS);
    let reset = window_start + WINDOW_SECONDS;
    let limit = caller
        .account
        .requests_per_minute(&state.config.limits)
        .map(u64::from);
    let standing = match limit {
        // Unlimited accounts are not counted: nothing would ever read the count.
        None => RateLimitState {
            limit: None,
            remaining: None,
            reset,
            window_seconds: WINDOW_SECONDS,
        },
        Some(limit) => {
            let count = state
                .store
                .increment(
                    &request_rate_pk(&caller.account.account_id),
                    &window_start.to_string(),
                    1,
                    Some(reset + WINDOW_SECONDS),
                )
                .await?;
            let count = u64::try_from(count).unwrap_or(0);
            let standing = RateLimitState {
                limit: Some(limit),
                remaining: Some(limit.saturating_sub(count)),
                reset,
                window_seconds: WINDOW_SECONDS,
            };
            if count > limit {
                let retry_after = (reset - now).max(1);
                let mut headers = HeaderMap::new();
                standing.write_headers(&mut headers);
                let mut error = ApiError::new(
                    ErrorCode::RateLimitExceeded,
                    format!(
                        "This account may make {limit} requests per minute; retry after \
                         {retry_after} s, or ask for a higher tier."
                    ),
                )
                .with_details(json!({ "limit": limit, "reset": reset, "retry_after": retry_after }))
                .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after));
                for (name, value) in headers.iter() {
                    error = error.with_header(name.clone(), value.clone());
                }
                return Err(error);
            }
            standing
        }
    };
    req.extensions_mut().insert(standing);
    let mut response = next.run(req).await;
    standing.write_headers(response.headers_mut());
    Ok(response)
}
