//! The AutoML engine: from a [`Table`](crate::ingest::Table) and an intent to a fitted
//! [`Pipeline`] (preprocessing + model) with metrics, feature importance and a leaderboard.

mod build;
mod describe;
mod features;
pub mod gbm;
mod importance;
mod linear;
pub mod metrics;
mod output;
pub mod pipeline;
mod plan;
mod predict;
mod probability;
mod random;
mod refit;
mod request;
mod search;
mod select;
mod split;
mod target;
mod task;

pub use build::{BuildError, BuildObserver, LogLevel, SilentObserver, build};
pub use features::FeatureError;
pub use metrics::Metric;
pub use output::{BuildOutput, FeatureImportance, SchemaField};
pub use pipeline::{Feature, Model, Pipeline, Task};
pub use plan::{BuildPlan, PlanError, PlanInput, plan_build};
pub use predict::{PredictError, Predictions};
pub use request::BuildRequest;
pub use search::{LeaderboardEntry, SearchError};
pub use target::TargetError;
pub use task::{TaskError, label_of, sort_labels};
