//! `tracing` output: JSON lines on Lambda (CloudWatch parses them), readable lines locally.
//! `RUST_LOG` overrides the default filter (`info`).

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Readable,
}

impl LogFormat {
    /// JSON when running inside Lambda, readable otherwise.
    pub fn detect() -> LogFormat {
        if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
            LogFormat::Json
        } else {
            LogFormat::Readable
        }
    }
}

/// Installs the global subscriber (a second call is a no-op).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .try_init(),
        LogFormat::Readable => builder.with_ansi(false).try_init(),
    };
}
