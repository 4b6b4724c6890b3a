//! Sorting AWS SDK errors into what the ports care about: transient (throttled, timed out, the
//! service or the network failing: `Unavailable`, worth retrying later) or not.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// An AWS call's failure, classified.
#[derive(Debug)]
pub(crate) enum AwsFailure {
    /// Throttling, 5xx, timeouts, connection failures.
    Transient(String),
    /// The service refused the request, with its error code (e.g. `ConditionalCheckFailedException`).
    Refused { code: String, message: String },
}

const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "InternalServerError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
    "RequestThrottled",
];

pub(crate) fn classify<E>(err: &SdkError<E, HttpResponse>) -> AwsFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let described = || format!("{}", DisplayErrorContext(err));
    match err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or_default().to_owned();
            if TRANSIENT_CODES.contains(&code.as_str()) || ctx.raw().status().is_server_error() {
                AwsFailure::Transient(described())
            } else {
                let message = ctx.err().message().unwrap_or_default().to_owned();
                AwsFailure::Refused { code, message }
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            AwsFailure::Transient(described())
        }
        // Construction failures are bugs in the request, not outages.
        _ => AwsFailure::Refused {
            code: "ConstructionFailure".into(),
            message: described(),
        },
    }
}

/// `err` as a port error's cause: its full description (the SDK's own `Display` is terse),
/// with the error itself kept as the source.
pub(crate) fn cause<E>(err: SdkError<E, HttpResponse>) -> super::Cause
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let described = format!("{}", DisplayErrorContext(&err));
    super::failed(described, err)
}

impl AwsFailure {
    pub(crate) fn is_code(&self, wanted: &str) -> bool {
        matches!(self, AwsFailure::Refused { code, .. } if code == wanted)
    }
}

impl std::fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AwsFailure::Transient(msg) => f.write_str(msg),
            AwsFailure::Refused { code, message } => write!(f, "{code}: {message}"),
        }
    }
}
