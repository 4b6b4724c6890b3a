//! `tracing` output: JSON lines on Lambda (CloudWatch parses them; `AWS_LAMBDA_LOG_FORMAT=Text`
//! asks for text), readable lines locally. The filter is `RUST_LOG` when set, else the Lambda
//! function's log level (`AWS_LAMBDA_LOG_LEVEL`, from its logging configuration), else `info`.

use crate::config::LogSettings;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Readable,
}

impl LogSettings {
    /// JSON inside Lambda unless its logging configuration says `Text`; readable elsewhere.
    pub fn format(&self) -> LogFormat {
        match self.lambda_log_format.as_deref().map(str::trim) {
            Some(f) if f.eq_ignore_ascii_case("json") => LogFormat::Json,
            Some(f) if f.eq_ignore_ascii_case("text") => LogFormat::Readable,
            _ if self.lambda_function_name.is_some() => LogFormat::Json,
            _ => LogFormat::Readable,
        }
    }

    /// The filter directives: `RUST_LOG`, else Lambda's level (its words are tracing's, in
    /// capitals; `FATAL` has no tracing level and means errors only), else `info`.
    pub fn filter(&self) -> String {
        if let Some(filter) = self.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            return filter.to_string();
        }
        match self.lambda_log_level.as_deref().map(str::trim) {
            Some(level) if level.eq_ignore_ascii_case("fatal") => "error".into(),
            Some(level) if !level.is_empty() => level.to_ascii_lowercase(),
            _ => "info".into(),
        }
    }
}

/// Installs the global subscriber (a second call is a no-op). An unusable filter falls back to
/// `info` rather than silencing the logs.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(settings.filter()).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.format() {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .try_init(),
        LogFormat::Readable => builder.with_ansi(false).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_settings_choose_format_and_level() {
        let local = LogSettings::default();
        assert_eq!(local.format(), LogFormat::Readable);
        assert_eq!(local.filter(), "info");
        let lambda = LogSettings {
            lambda_function_name: Some("plexe-keys".into()),
            lambda_log_level: Some("DEBUG".into()),
            ..LogSettings::default()
        };
        assert_eq!(lambda.format(), LogFormat::Json);
        assert_eq!(lambda.filter(), "debug");
        let text = LogSettings {
            lambda_log_format: Some("Text".into()),
            lambda_log_level: Some("FATAL".into()),
            ..lambda.clone()
        };
        assert_eq!(text.format(), LogFormat::Readable);
        assert_eq!(text.filter(), "error");
        let overridden = LogSettings {
            filter: Some("shared=trace".into()),
            ..lambda
        };
        assert_eq!(overridden.filter(), "shared=trace");
    }
}
