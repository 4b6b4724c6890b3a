//! The one error type of the HTTP surface and its envelope:
//! `{"error": {"code", "message", "status", "request_id", "details"}}`.
//!
//! A handler or middleware returns an [`ApiError`]; its `IntoResponse` parks the error in the
//! response's extensions and the request-id layer (the outermost one, the only place that knows
//! the request id) renders the final body. Error responses produced by the framework itself
//! (405, body-limit rejections, panics) are converted there too, so every error path has the
//! same shape.

use crate::api::{ErrorBody, ErrorEnvelope};
use crate::domain::DomainError;
use crate::ports::{BlobError, QueueError, StoreError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The body limit of every route that takes JSON or a direct upload on `plexe serve`.
pub const JSON_BODY_LIMIT: usize = 6 * 1024 * 1024;

/// Lambda's limit on a synchronous invocation's request: the whole event API Gateway sends.
pub const LAMBDA_INVOKE_LIMIT: usize = 6 * 1024 * 1024;
/// What an event takes besides the body: headers (API Gateway caps them at 10 KB), the request
/// context, path and query.
const LAMBDA_EVENT_ALLOWANCE: usize = 64 * 1024;
/// The body limit of the same routes on Lambda. API Gateway base64-encodes a body that is not
/// text into the event, so a body over about 4.7 MB never reaches the function (API Gateway
/// answers with an error of its own); the limit sits below that, so a body a little too large
/// gets the envelope's 413 pointing to upload sessions. A text body is passed as a JSON string,
/// escaped: under the limit that stays below the invoke limit too unless most of its bytes
/// need escaping.
pub const LAMBDA_BODY_LIMIT: usize = 4 * 1024 * 1024;
const _: () =
    assert!(LAMBDA_BODY_LIMIT.div_ceil(3) * 4 + LAMBDA_EVENT_ALLOWANCE <= LAMBDA_INVOKE_LIMIT);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    MissingApiKey,
    InvalidApiKey,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationError,
    RateLimitExceeded,
    ConcurrencyLimitExceeded,
    InternalError,
    ServiceUnavailable,
}

const ALL_CODES: [ErrorCode; 14] = [
    ErrorCode::InvalidRequest,
    ErrorCode::MissingApiKey,
    ErrorCode::InvalidApiKey,
    ErrorCode::Forbidden,
    ErrorCode::NotFound,
    ErrorCode::MethodNotAllowed,
    ErrorCode::Conflict,
    ErrorCode::PayloadTooLarge,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::ValidationError,
    ErrorCode::RateLimitExceeded,
    ErrorCode::ConcurrencyLimitExceeded,
    ErrorCode::InternalError,
    ErrorCode::ServiceUnavailable,
];

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::MissingApiKey => "missing_api_key",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::ValidationError => "validation_error",
            ErrorCode::RateLimitExceeded => "rate_limit_exceeded",
            ErrorCode::ConcurrencyLimitExceeded => "concurrency_limit_exceeded",
            ErrorCode::InternalError => "internal_error",
            ErrorCode::ServiceUnavailable => "service_unavailable",
        }
    }

    pub fn parse(code: &str) -> Option<ErrorCode> {
        ALL_CODES.iter().copied().find(|c| c.as_str() == code)
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::MissingApiKey | ErrorCode::InvalidApiKey => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::ValidationError => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::RateLimitExceeded | ErrorCode::ConcurrencyLimitExceeded => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error as the client sees it. `internal` is the cause of a 500/503, logged, never sent.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    /// Extra response headers (`Retry-After`, `Allow`, …).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    internal: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
            headers: Vec::new(),
            internal: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The error as a surface that names a field differently sees it (the legacy API's `goal` is
    /// the domain's `intent`): `details.field` and the message's first mention are renamed.
    pub fn with_field_renamed(mut self, from: &str, to: &str) -> Self {
        let names_it = self
            .details
            .as_ref()
            .is_some_and(|d| d.get("field").and_then(Value::as_str) == Some(from));
        if names_it {
            if let Some(details) = self.details.as_mut() {
                details["field"] = json!(to);
            }
            self.message = self.message.replacen(from, to, 1);
        }
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    pub fn validation(message: impl Into<String>, field: &str) -> Self {
        ApiError::new(ErrorCode::ValidationError, message).with_details(json!({ "field": field }))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Conflict, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    /// A body or multipart part that could not be read, from an extractor's rejection: 413 when
    /// it was over the body limit, else a 400 that says why. Every route reads bodies through
    /// this, so the two answers are the same everywhere.
    pub fn unreadable_body(status: StatusCode, detail: impl std::fmt::Display) -> Self {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(JSON_BODY_LIMIT)
        } else {
            ApiError::invalid_request(format!("The request body could not be read: {detail}"))
        }
    }

    pub fn payload_too_large(limit_bytes: usize) -> Self {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "The request body is larger than this route's limit of {} MB. Send prediction \
                 rows in several smaller batches; for a bigger dataset create an upload session \
                 with POST /datasets/uploads and PUT the file to the returned upload_url.",
                limit_bytes / (1024 * 1024)
            ),
        )
        .with_details(json!({ "limit_bytes": limit_bytes }))
    }

    /// A bug or an unexpected failure: the client gets a generic message, the log gets `cause`.
    pub fn internal(cause: impl Into<String>) -> Self {
        let mut e = ApiError::new(
            ErrorCode::InternalError,
            "An internal error occurred. It has been logged with this request_id; retrying may help.",
        );
        e.internal = Some(cause.into());
        e
    }

    pub fn unavailable(cause: impl Into<String>) -> Self {
        let mut e = ApiError::new(
            ErrorCode::ServiceUnavailable,
            "A backing service is unavailable. Retry the request shortly.",
        );
        e.internal = Some(cause.into());
        e
    }

    /// The error a framework-made error response of `status` stands for (used when a layer
    /// below returned a bare status, such as axum's 405 or a panic's 500).
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => ApiError::not_found(
                "No route matches this path. See GET /openapi.json for the available routes.",
            ),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
                ErrorCode::MethodNotAllowed,
                "This route does not accept this HTTP method; the Allow header lists the ones it does.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(JSON_BODY_LIMIT),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "Unsupported Content-Type for this route.",
            ),
            StatusCode::UNAUTHORIZED => ApiError::new(ErrorCode::InvalidApiKey, "Invalid API key."),
            StatusCode::FORBIDDEN => ApiError::forbidden("This key may not do this."),
            StatusCode::CONFLICT => {
                ApiError::conflict("The request conflicts with the current state.")
            }
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::new(
                ErrorCode::ValidationError,
                "The request is well-formed but invalid.",
            ),
            StatusCode::TOO_MANY_REQUESTS => {
                ApiError::new(ErrorCode::RateLimitExceeded, "Too many requests.")
            }
            StatusCode::SERVICE_UNAVAILABLE => ApiError::unavailable("service unavailable"),
            s if s.is_client_error() => ApiError::invalid_request(
                "The request could not be processed; check its method, headers and body.",
            ),
            s => ApiError::internal(format!("framework error response with status {s}")),
        }
    }

    /// The cause to log for a 5xx (never part of the body).
    pub fn internal_cause(&self) -> Option<&str> {
        self.internal.as_deref()
    }

    /// The envelope, as sent.
    pub fn envelope(&self, request_id: &str) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                code: self.code.as_str().to_string(),
                message: self.message.clone(),
                status: self.status().as_u16(),
                request_id: request_id.to_string(),
                details: self.details.clone().unwrap_or_else(|| json!({})),
            },
        }
    }

    /// The envelope as JSON.
    pub fn body(&self, request_id: &str) -> Value {
        serde_json::to_value(self.envelope(request_id)).unwrap_or(Value::Null)
    }

    /// The full response for `request_id`.
    pub fn render(&self, request_id: &str) -> Response {
        let body = serde_json::to_vec(&self.envelope(request_id)).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code.as_str(),
            self.status().as_u16(),
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Rendered without a request id here; the request-id layer re-renders it with one.
        let mut response = self.render("");
        response.extensions_mut().insert(self);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => ApiError::unavailable(format!("store: {cause}")),
            StoreError::ConditionFailed => ApiError::conflict(
                "The resource was changed by another request at the same time; retry.",
            ),
            StoreError::Other(cause) => ApiError::internal(format!("store: {cause}")),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::Unavailable(cause) => ApiError::unavailable(format!("blobs: {cause}")),
            BlobError::NotFound(key) => ApiError::internal(format!("blob missing: {key}")),
            BlobError::Other(cause) => ApiError::internal(format!("blobs: {cause}")),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Unavailable(cause) => ApiError::unavailable(format!("queue: {cause}")),
            QueueError::Other(cause) => ApiError::internal(format!("queue: {cause}")),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound { message } => ApiError::not_found(message),
            DomainError::Conflict { message } => ApiError::conflict(message),
            DomainError::Validation { message, field } => ApiError::validation(message, &field),
            DomainError::Store(e) => e.into(),
            DomainError::Blobs(e) => e.into(),
            DomainError::Queue(e) => e.into(),
            DomainError::Corrupt(cause) => ApiError::internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_field_is_renamed_in_details_and_message() {
        let e = ApiError::validation("intent must be at most 2000 characters", "intent")
            .with_field_renamed("intent", "goal")
            .with_field_renamed("description", "eval");
        assert_eq!(e.message, "goal must be at most 2000 characters");
        assert_eq!(e.details, Some(json!({"field": "goal"})));
        let other =
            ApiError::validation("name is too long", "name").with_field_renamed("intent", "goal");
        assert_eq!(other.message, "name is too long");
    }

    #[test]
    fn envelope_has_every_field() {
        let e = ApiError::validation("bad name", "name");
        let body = e.body("req_1");
        assert_eq!(body["error"]["code"], "validation_error");
        assert_eq!(body["error"]["status"], 422);
        assert_eq!(body["error"]["request_id"], "req_1");
        assert_eq!(body["error"]["details"]["field"], "name");
        assert_eq!(body["error"]["message"], "bad name");
    }

    #[test]
    fn internal_causes_stay_out_of_the_body() {
        let e = ApiError::from(StoreError::Other("disk I/O error at /secret/path".into()));
        let body = e.body("req_1").to_string();
        assert!(!body.contains("/secret/path"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            e.internal_cause()
                .is_some_and(|c| c.contains("/secret/path"))
        );
    }

    #[test]
    fn codes_round_trip() {
        for code in ALL_CODES {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
    }

    #[test]
    fn unavailable_store_is_503() {
        let e = ApiError::from(StoreError::Unavailable("timeout".into()));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code.as_str(), "service_unavailable");
    }

    #[test]
    fn payload_too_large_names_the_limit_and_the_alternative() {
        let e = ApiError::payload_too_large(JSON_BODY_LIMIT);
        assert!(e.message.contains("6 MB"));
        assert!(e.message.contains("POST /datasets/uploads"));
    }
}
