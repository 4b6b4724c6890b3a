//! What the user asks of a build.

use super::metrics::Metric;
use std::time::Duration;

/// A build request: the intent in plain words, and what the user pinned down.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildRequest {
    pub intent: String,
    /// Explicit target column.
    pub target: Option<String>,
    /// The user's output schema: an object whose keys are field names, or an array of names
    /// (strings or `{"name": ...}` objects). A field naming a column makes it the target.
    pub output_schema: Option<serde_json::Value>,
    /// Selection metric; `None` = accuracy for classification, rmse for regression.
    pub metric: Option<Metric>,
    /// Wall-clock budget of the build, in seconds.
    pub time_budget_s: f64,
    /// At most this many candidate configurations are evaluated.
    pub max_iterations: Option<usize>,
    pub seed: u64,
}

impl BuildRequest {
    /// SPEC: `time_budget_s` defaults to 60.
    pub const DEFAULT_TIME_BUDGET_S: f64 = 60.0;
    /// The budget a build runs with is the request's, kept between a second and a day.
    const BUDGET_RANGE_S: (f64, f64) = (1.0, 86_400.0);

    pub fn new(intent: impl Into<String>) -> Self {
        BuildRequest {
            intent: intent.into(),
            target: None,
            output_schema: None,
            metric: None,
            time_budget_s: Self::DEFAULT_TIME_BUDGET_S,
            max_iterations: None,
            seed: 42,
        }
    }

    /// The budget the build runs with, in seconds (NaN, which no clock can run, means the
    /// default).
    pub fn budget_s(&self) -> f64 {
        let (low, high) = Self::BUDGET_RANGE_S;
        if self.time_budget_s.is_nan() {
            Self::DEFAULT_TIME_BUDGET_S
        } else {
            self.time_budget_s.clamp(low, high)
        }
    }

    pub(crate) fn budget(&self) -> Duration {
        Duration::from_secs_f64(self.budget_s())
    }

    /// The output schema's field names (they may name the target).
    pub fn output_fields(&self) -> Vec<String> {
        match &self.output_schema {
            Some(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| match v {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Object(o) => {
                        o.get("name").and_then(|n| n.as_str()).map(str::to_string)
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}
